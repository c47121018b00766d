# SPDX-License-Identifier: GPL-2.0
# TAP-style results for the shell test suites; source it.

tap_passed=0 tap_failed=0 tap_n=0

# tap_result STATUS DESCRIPTION [DIAGNOSTIC-FILE]: STATUS 0 is a pass; on a
# failure the last 60 lines of DIAGNOSTIC-FILE are shown as comments.
tap_result() {
	tap_n=$((tap_n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $tap_n $2"
		tap_passed=$((tap_passed + 1))
	else
		echo "not ok $tap_n $2"
		tap_failed=$((tap_failed + 1))
		[ -z "${3:-}" ] || tail -n 60 "$3" | sed 's/^/#   /'
	fi
}

# tap_check DIAG-FILE DESCRIPTION COMMAND...: one test, passed when COMMAND
# succeeds; its output, kept in DIAG-FILE, is the diagnostic of a failure.
tap_check() {
	local diag=$1 desc=$2
	shift 2
	if "$@" >"$diag" 2>&1; then
		tap_result 0 "$desc"
	else
		tap_result 1 "$desc" "$diag"
	fi
}

# tap_summary: the closing line; returns non-zero if anything failed.
tap_summary() {
	echo "$tap_passed passed, $tap_failed failed"
	[ "$tap_failed" = 0 ]
}
