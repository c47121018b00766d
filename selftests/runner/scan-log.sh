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

# A KCSAN report is ours when a frame of it is in af_ivshmem or dev_shm;
# reports on the rest of the kernel are its maintainers' business. Each
# report runs from its "BUG: KCSAN:" line to the next line of "=" signs;
# those that name neither module are left out before the match.
ours_only() {
	awk '
		/BUG: KCSAN:/ { inrep = 1; n = 0; ours = 0 }
		inrep {
			buf[n++] = $0
			if ($0 ~ /\[(af_ivshmem|dev_shm)\]/)
				ours = 1
			if ($0 ~ /====================/) {
				if (ours)
					for (i = 0; i < n; i++)
						print buf[i]
				inrep = 0
			}
			next
		}
		{ print }
		END { if (inrep) for (i = 0; i < n; i++) print buf[i] }
	'
}

rc=0
for log in "$@"; do
	# Strip the carriage returns of a serial console before matching.
	if hits=$(tr -d '\r' <"$log" | ours_only | grep -E -n -- "$re"); then
		printf '%s: kernel problem reported:\n%s\n' "$log" "$hits"
		rc=1
	fi
done
exit $rc
