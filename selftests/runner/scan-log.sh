#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# scan-log.sh LOG...  Print the lines of guest kernel logs that report a
# kernel problem and exit 1 if there is any, 0 if there is none.
#
# The patterns are the report headers the kernel prints for each class of
# problem, not the subsystem names: "KASAN" alone also appears in the boot
# banner of a sanitizer-enabled kernel, "kmemleak" in its initialisation.
set -euo pipefail

patterns=(
	'BUG:'				# BUG(), KASAN, KFENCE, sleeping in atomic, soft lockup
	'WARNING:'			# WARN(), lockdep reports
	'Oops'
	'Kernel panic'
	'general protection fault'
	'UBSAN:'
	'KASAN:'
	'KFENCE:'
	'INFO: task .* blocked for more than'
	'INFO: rcu_[a-z]* (self-)?detected stall'
	'rcu: INFO: .* detected stall'
	'kmemleak: [0-9]+ new suspected memory leak'
	'kmemleak: suspected memory leaks'
	'\-\-\-\-\-\-\-\-\-\-\-\-\[ cut here \]'
	'Call Trace:'
	'invalid opcode:'
	'unable to handle'
	'list_(add|del) corruption'
)

re=$(printf '%s|' "${patterns[@]}")
re=${re%|}
rc=0
for log in "$@"; do
	# Strip the carriage returns of a serial console before matching.
	if hits=$(tr -d '\r' <"$log" | grep -E -n -- "$re"); then
		printf '%s: kernel problem reported:\n%s\n' "$log" "$hits"
		rc=1
	fi
done
exit $rc
