#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Static checks of the kernel code, each reported as one test:
#   - a W=1 build against Debian's 6.1 headers and against its 6.12 headers,
#     with no warning at all;
#   - sparse (C=2: every file, every time) against both, with no report;
#   - checkpatch.pl --strict on every module source and uapi header;
#   - no more direct region accesses outside the portable core than the
#     limit below (scripts/region-access.sh), which only ever goes down.
set -uo pipefail
. "$(dirname "$0")/common.sh"

. "$(dirname "$0")/tap.sh"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

result() { tap_result "$1" "lint: $2" "$log"; }

# A build passes when it succeeds and the compiler or sparse said nothing.
build_clean() {
	local kdir=$1 out=$2
	shift 2
	rm -rf "$out"
	"$IVSHM_ROOT/scripts/build-modules.sh" "$kdir" "$out" "$@" >"$log" 2>&1 &&
		! grep -E -q 'warning:|error:' "$log"
}

for series in 6.1 6.12; do
	kver=$(ivshm_kver "$series")
	if [ -z "$kver" ]; then
		echo "no Debian $series headers" >"$log"
		result 1 "W=1 build against $series"
		result 1 "sparse against $series"
		result 1 "the test guests' build against $series"
		continue
	fi
	kdir=/usr/src/linux-headers-$kver
	build_clean "$kdir" "$IVSHM_BUILD/lint/$kver-w1" W=1
	result $? "W=1 build against $kver is warning-free"
	build_clean "$kdir" "$IVSHM_BUILD/lint/$kver-sparse" C=2
	result $? "sparse (C=2) against $kver is clean"
	# The test guests' build: the test hooks and the test modules.
	build_clean "$kdir" "$IVSHM_BUILD/lint/$kver-test" W=1 C=2 \
		IVSHM_TEST_MODULES=1
	result $? "the test guests' build (W=1, C=2) against $kver is clean"
done

ksrc=$("$IVSHM_ROOT/scripts/ksrc.sh")
cd "$IVSHM_ROOT" || exit 1
files=(net/ivshmem/*.[ch] net/ivshmem/core/*.[ch] dev_shm/*.[ch] include/uapi/linux/*.h)
perl "$ksrc/scripts/checkpatch.pl" --strict --no-tree --terse --show-types \
	-f "${files[@]}" >"$log" 2>&1
# --terse prints one line per report and a total per file.
! grep -v -E '^total: 0 errors, 0 warnings, 0 checks' "$log" | grep -q .
result $? "checkpatch.pl --strict is clean on ${#files[@]} files"

# Lower this with every change that moves region accesses into the core.
# What is left is dev_shm's flood (one store through one pointer): the
# test transport playing a hostile peer, which writes what no honest
# module would, so it has no core function to call.
region_limit=2
region_total=$("$IVSHM_ROOT/scripts/region-access.sh" --total 2>"$log")
{ echo "region accesses outside net/ivshmem/core/: $region_total"
  "$IVSHM_ROOT/scripts/region-access.sh"; } >>"$log" 2>&1
[ -n "$region_total" ] && [ "$region_total" -le "$region_limit" ]
result $? "region accesses outside the core: $region_total (at most $region_limit)"

tap_summary
