#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Tests of scan-log.sh, the guard that fails a guest run on any kernel
# report: every sample of a report is caught, and a clean boot of the debug
# kernel (sanitizer banners, the out-of-tree taint notice, our own error
# messages) is not mistaken for one.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
scan=$here/scan-log.sh
data=$here/testdata
. "$here/../../scripts/tap.sh"

check() {
	local want=$1 log=$2 got
	if "$scan" "$data/$log" >/dev/null; then got=clean; else got=flagged; fi
	[ "$got" = "$want" ]
	tap_result $? "scan-log: $log is $got (expected $want)"
}

check clean clean-debug-boot.log
# A data race KCSAN found in the rest of the kernel is not ours to fail on.
check clean kcsan-elsewhere.log
for f in "$data"/*.log; do
	f=${f##*/}
	case $f in
	clean-debug-boot.log | kcsan-elsewhere.log) ;;
	*) check flagged "$f" ;;
	esac
done

# Several logs: one bad log among clean ones fails the whole scan.
! "$scan" "$data/clean-debug-boot.log" "$data/warning.log" >/dev/null
tap_result $? "scan-log: a report in the second of two logs is caught"

tap_summary
