#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make bench: AF_IVSHMEM against what users would pick instead, measured
# side by side in one run (Documentation/benchmarks.md).
#
#   1. the native ring benchmark (bench_ring), the ceiling;
#   2. one guest through dev_shm: AF_IVSHMEM against AF_UNIX SEQPACKET;
#   3. two guests on one region: AF_IVSHMEM (doorbell, then plain) against
#      TCP over virtio-net on tap devices bridged in a network namespace,
#      and the region without the module (region_bench): the core's ring
#      from user space, the ceiling, and a lock-guarded buffer;
#   4. a round trip between two doorbell guests split into its stages by
#      the data path's tracepoints (bench-stages.py: stages.md);
#   5. bench-report.py: the CSV, the summary with the ratios and the
#      targets, and the plots.
#
# Results go to build/bench/results (BENCH_RESULTS=DIR elsewhere). The
# guests run Debian's 6.1 kernel (KERNEL=6.12 for the other). BENCH_MS,
# BENCH_WARMUP_MS and BENCH_REPS set each measurement's time (1000 ms), the
# warm-up before a stream (2000 ms) and the repetitions (3), whose median
# is reported; BENCH_BUSY_US the busy-polling budget of the rtt-busy
# round trips (1000 us; 0 skips them); RING_ARGS passes arguments to
# bench_ring.
# The exit status says whether everything ran, not whether targets were met.
set -euo pipefail
. "$(dirname "$0")/common.sh"

out=${BENCH_RESULTS:-$IVSHM_BUILD/bench/results}
kernel=${KERNEL:-6.1}
reps=${BENCH_REPS:-3}
ms=${BENCH_MS:-1000}
warmup=${BENCH_WARMUP_MS:-2000}

rm -rf "$out"
mkdir -p "$out"
start=$SECONDS

# The machine and the code, before anything is built from the tree.
read -r vmlinux _ < <("$IVSHM_ROOT/scripts/guest-kernel.sh" "$kernel")
{
	echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- Host: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) CPUs, $(free -g | awk '/^Mem:/ { print $2 }') GiB, $(uname -r)"
	echo "- QEMU: $(qemu-system-x86_64 --version | head -n 1), TCG (no KVM), -smp 2 guests"
	echo "- Guest kernel: ${vmlinux##*/} (Debian), 512 MiB per guest"
	echo "- Region: 32 MiB; each figure the median of $reps repetitions of $ms ms (streams after $warmup ms of warm-up); rtt-busy: SO_BUSY_POLL ${BENCH_BUSY_US:-1000} us on both ends"
	echo "- Commit: $(git -C "$IVSHM_ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
	echo "- Command: make bench"
} >"$out/meta.txt"

ivshm_log "bench: [1/3] the native ring (bench_ring), the ceiling"
make -s -C "$IVSHM_ROOT/userspace/bench" BUILD="$IVSHM_BUILD" >&2
# shellcheck disable=SC2086
"$IVSHM_BUILD/bench/bench_ring" --only p2p --csv "$out/ring.csv" \
	${RING_ARGS:-} >"$out/ring.txt"

ivshm_log "bench: [2/3] the guests ($kernel kernel): $reps repetitions of $ms ms per figure"
BENCH_OUT=$out BENCH_MS=$ms BENCH_WARMUP_MS=$warmup BENCH_REPS=$reps \
	"$IVSHM_ROOT/selftests/runner/run.sh" --kernel "$kernel" \
	--placements bench-one,bench-doorbell,bench-plain,bench-raw,bench-stages |
	tee "$out/guests.log"

# How TCP's guests were joined, as the runner found it.
[ ! -f "$out/net.txt" ] || cat "$out/net.txt" >>"$out/meta.txt"

ivshm_log "bench: [3/3] the report"
"$IVSHM_ROOT/scripts/bench-report.py" --raw "$out/raw.csv" \
	--ring "$out/ring.csv" --meta "$out/meta.txt" --out "$out"
ivshm_log "bench: done in $((SECONDS - start)) s; results in $out (summary.md)"
