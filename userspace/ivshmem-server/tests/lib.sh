# SPDX-License-Identifier: GPL-2.0
# Shared by the shell test suites; source it. Callers set n=0 and fail=0.

# result OK DESCRIPTION [DIAGNOSTIC]: one TAP-style line, counted.
result() {
	n=$((n + 1))
	if [ "$1" = 1 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		[ -n "$3" ] && printf '%s\n' "$3" | sed 's/^/#   /'
		fail=$((fail + 1))
	fi
}

# reap PID SECS: wait up to SECS for our child PID to exit, then SIGKILL it.
# Until we wait() for it the pid cannot be recycled, so killing is safe.
reap() {
	local i st

	for ((i = 0; i < $2 * 20; i++)); do
		st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
		[ -z "$st" ] || [ "$st" = Z ] && break
		sleep 0.05
	done
	kill -KILL "$1" 2>/dev/null
	wait "$1"
}
