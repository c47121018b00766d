#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Count the places outside the portable core (net/ivshmem/core/) that touch
# the region directly, per file and function:
#   acc  calls of the core's shared-memory accessors (ivshm_get32() ...);
#   mb   ivshm_mb(), one half of a barrier pair of the protocol;
#   ptr  region pointers taken or followed (ivshm_chan(), ring.chan ...).
# The goal is that only the core reads or writes region fields; lint fails
# when the total exceeds the limit it is given, so the count only goes down.
#
#   scripts/region-access.sh            per-function lines and totals
#   scripts/region-access.sh --total    one number: acc + mb + ptr
set -euo pipefail
cd "$(dirname "$0")/.."

export ACC='(^|[^A-Za-z0-9_])ivshm_(get(16|32|64)|put(16|32|64)|load_acquire(32|64)|store_release(32|64)|cmpxchg(32|64)|xchg64|set_bit64)[(]'
export MB='(^|[^A-Za-z0-9_])ivshm_mb[(]'
export PTR='(^|[^A-Za-z0-9_])ivshm_(chan|peer|ctrl|hdr|pending)[(]|[.>]chan(->|[,;])'

count() {
	local f
	git ls-files 'net/ivshmem/*.c' 'net/ivshmem/*.h' 'dev_shm/*.c' |
		grep -v '^net/ivshmem/core/' |
	while read -r f; do
		awk -v F="$f" '
		# A function starts at a "{" in column 0 after its declarator.
		/^[A-Za-z].*[(]/ && $0 !~ /;[ \t]*$/ { cand = $0 }
		/^[{]/ { fn = "?"
			 if (match(cand, /[A-Za-z_0-9]+[(]/))
				fn = substr(cand, RSTART, RLENGTH - 1) }
		/^[}]/ { fn = "" }
		/^[ \t]*([\/][*]|[*])/ { next }
		{ l = $0; a = gsub(ENVIRON["ACC"], "", l)
		  l = $0; b = gsub(ENVIRON["MB"], "", l)
		  l = $0; c = gsub(ENVIRON["PTR"], "", l)
		  if (a + b + c) {
			k = fn == "" ? "(file scope)" : fn
			n[k] += a; m[k] += b; d[k] += c; ln[k] = ln[k] " " NR
		  } }
		END { for (k in n)
			printf "%s %s acc=%d mb=%d ptr=%d lines%s\n",
			       F, k, n[k], m[k], d[k], ln[k] }' "$f"
	done | sort -k1,1 -k2,2
}

if [ "${1:-}" = --total ]; then
	count | awk '{ for (i = 3; i <= 5; i++) { split($i, kv, "="); t += kv[2] } }
		     END { print t + 0 }'
	exit 0
fi
count | awk '{ print
	       for (i = 3; i <= 5; i++) { split($i, kv, "="); s[kv[1]] += kv[2] } }
	     END { printf "total acc=%d mb=%d ptr=%d\n", s["acc"], s["mb"], s["ptr"] }'
