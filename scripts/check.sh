#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make check: every test of the project, in the order that fails fastest.
#
#   1. lint        W=1 and sparse against 6.1 and 6.12, checkpatch --strict
#   2. native      the region core (ASan/UBSan), the model check of the
#                  handshakes, 60 s of fuzzing the core as bytes and 60 s
#                  as programs of two VMs' actions
#                  (FUZZ_SECONDS), the ivshmem server against
#                  fake clients and real QEMU,
#                  the runner's log scanner, the runner itself and the
#                  benchmark's report and stage splitter
#   3. guests      the in-guest suite on Debian's 6.1 kernel, then part of
#                  it on 6.12; 10^6 round trips through dev_shm on 6.1;
#                  make bench's guests with one short measurement each,
#                  and a traced round trip split into its stages
#   4. debug       most of the suite on the debug kernel (KASAN, lockdep,
#                  UBSAN, KFENCE, kmemleak), built and cached on first use,
#                  with the hostile peer, random system calls and the soak
#   5. kcsan       socket, rebalance and sysfuzz tests on the KCSAN kernel
#                  (built and cached beside the debug kernel): any data race
#                  KCSAN reports in af_ivshmem or dev_shm fails
#   6. fresh-root  the committed main on a minimal Debian 12 root with only
#                  git and make: make demo, then make check's quick form
#                  (scripts/fresh-root.sh)
#
# The quick form ("lint native quick") is what fresh-root.sh runs after
# make demo (which boots 6.1 guests): the lint and native phases, then one
# placement on 6.12 and one on the debug kernel, chosen so that every
# package deps.sh installs is used.
#
# Each phase ends with "N passed, N failed[, N skipped]"; this script adds
# them up and ends with the same line for the whole run. CHECK_PHASES
# (e.g. "lint native guests") selects phases; all run by default.
set -uo pipefail
. "$(dirname "$0")/common.sh"
cd "$IVSHM_ROOT" || exit 1

phases=${CHECK_PHASES:-lint native guests pingpong bench guests-6.12 debug kcsan fresh-root}
total_p=0 total_f=0 total_s=0
summary=()

# phase NAME COMMAND...: run it, echo its output, add up its closing line.
phase() {
	local name=$1 out line p f s rc t0=$SECONDS
	shift
	echo "==== $name: $*"
	out=$(mktemp)
	"$@" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed|^# Totals: pass:' "$out" |
		tail -n 1)
	rm -f "$out"
	p=0 f=0 s=0
	if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)? ]]; then
		p=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]} s=${BASH_REMATCH[4]:-0}
	elif [[ $line =~ pass:([0-9]+)\ fail:([0-9]+)\ xfail:[0-9]+\ xpass:([0-9]+)\ skip:([0-9]+)\ error:([0-9]+) ]]; then
		# A kselftest harness binary run directly.
		p=${BASH_REMATCH[1]} s=${BASH_REMATCH[4]}
		f=$((BASH_REMATCH[2] + BASH_REMATCH[3] + BASH_REMATCH[5]))
	fi
	# A phase that failed without saying how many tests failed still
	# fails the run.
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		f=1
	fi
	total_p=$((total_p + p)) total_f=$((total_f + f)) total_s=$((total_s + s))
	summary+=("$(printf '%-12s %4d passed %3d failed %3d skipped %5ds' \
		"$name" "$p" "$f" "$s" $((SECONDS - t0)))")
}

for ph in $phases; do
	case $ph in
	lint) phase lint scripts/lint.sh ;;
	native)
		phase core make -s native-test
		phase model make -s model-check
		phase fuzz selftests/fuzz/run.sh "${FUZZ_SECONDS:-60}"
		phase conn-fuzz env TARGET=conn_fuzz \
			selftests/fuzz/run.sh "${FUZZ_SECONDS:-60}"
		phase server make -s -C userspace/ivshmem-server test
		phase tool make -s tool-test
		phase scan-log selftests/runner/test-scan-log.sh
		phase runner selftests/runner/test-runner.sh
		phase bench-report scripts/test-bench-report.sh
		phase bench-stages scripts/test-bench-stages.sh
		;;
	guests) phase guests-6.1 selftests/runner/run.sh --kernel 6.1 \
		--placements devshm,netlink,doorbell,plain,trio,crash,pause,hammer,sysfuzz ;;
	pingpong) phase pingpong selftests/runner/run.sh --kernel 6.1 --placements pingpong ;;
	# make bench's guests, briefly: every measurement is made once, so
	# that the benchmark keeps working; the figures are not judged.
	bench) BENCH_MS=100 BENCH_WARMUP_MS=100 BENCH_REPS=1 phase bench selftests/runner/run.sh --kernel 6.1 \
		--placements bench-one,bench-doorbell,bench-plain,bench-raw,bench-stages ;;
	# To keep make check within its time, 6.12 runs the placements that
	# exercise the most kernel interfaces (the socket suite through
	# dev_shm and between PCI guests, rebalancing, netlink) and 20 s of
	# rebalance_test's stress; 6.1 runs everything else too.
	guests-6.12) STRESS_S=20 phase guests-6.12 selftests/runner/run.sh --kernel 6.12 \
		--placements devshm,netlink,doorbell ;;
	# The debug kernel: the suite but for plain and trio (whose kernel
	# paths the others cover), and the hostile peer and the soak, which
	# run here only; its slowness widens the races sysfuzz looks for.
	debug) STRESS_S=15 SOAK_S=40 phase guests-debug selftests/runner/run.sh --kernel debug \
		--placements devshm,netlink,doorbell,crash,hostile,soak,sysfuzz ;;
	# For the quick form: the bench guests take Debian's modules
	# (virtio-net's, and uio's for every initramfs), ss and the server,
	# and the netlink guest the tool with its shared libraries; the
	# debug kernel is built on the way.
	quick)
		BENCH_MS=100 BENCH_WARMUP_MS=100 BENCH_REPS=1 phase quick-6.12 \
			selftests/runner/run.sh --kernel 6.12 --placements bench-doorbell
		phase quick-debug selftests/runner/run.sh --kernel debug --placements netlink
		;;
	kcsan) STRESS_S=15 phase guests-kcsan selftests/runner/run.sh --kernel kcsan \
		--placements devshm,sysfuzz ;;
	fresh-root) phase fresh-root scripts/fresh-root.sh ;;
	*) ivshm_die "unknown phase '$ph'" ;;
	esac
done

echo "==== summary"
printf '%s\n' "${summary[@]}"
echo "$total_p passed, $total_f failed, $total_s skipped"
[ "$total_f" = 0 ]
