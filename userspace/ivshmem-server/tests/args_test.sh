#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Command line tests for ivshmem-server: every bad argument must exit 2 with
# a one-line message naming the problem plus a usage hint; --help exits 0;
# runtime failures exit 1.  Prints TAP-style "ok N - ..." lines.
#
# usage: args_test.sh SERVER_BINARY

SERVER=${1:?usage: $0 SERVER_BINARY}
. "$(dirname "$0")/lib.sh"
TMP=$(mktemp -d /tmp/ivs-args-XXXXXX)
SPID=
n=0
fail=0

cleanup() {
	if [ -n "$SPID" ]; then
		kill -KILL "$SPID" 2>/dev/null
		wait "$SPID" 2>/dev/null
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

# expect STATUS PATTERN DESCRIPTION -- ARGS...
# PATTERN must match the first line of stderr (case-insensitive).
expect() {
	local want=$1 pat=$2 desc=$3 rc first ok=1
	shift 4
	timeout 10 "$SERVER" "$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	first=$(head -n1 "$TMP/err")
	[ "$rc" = "$want" ] || ok=0
	if [ -n "$pat" ]; then
		grep -qi -- "$pat" <<<"$first" || ok=0
	fi
	# Usage errors also point at --help.
	if [ "$want" = 2 ]; then
		grep -q -- "--help" "$TMP/err" || ok=0
		[ "$(wc -l <"$TMP/err")" -le 2 ] || ok=0
	fi
	result $ok "$desc (exit $want)" \
		"$(printf 'args: %s\nexit: %s\nstderr:\n%s' "$*" "$rc" \
			"$(cat "$TMP/err")")"
}

S=$TMP/sock

# --help
timeout 10 "$SERVER" --help >"$TMP/out" 2>"$TMP/err"
rc=$?
ok=0
[ $rc = 0 ] && grep -q -- "--socket" "$TMP/out" && grep -q -- "--vectors" "$TMP/out" &&
	[ ! -s "$TMP/err" ] && ok=1
result $ok "--help prints usage to stdout and exits 0" "exit $rc"
timeout 10 "$SERVER" -h >/dev/null 2>&1
result "$([ $? = 0 ] && echo 1)" "-h exits 0"

expect 2 "missing required option -S/--socket" "no arguments" --
expect 2 "missing required option -S/--socket" "no socket" -- -n 2
expect 2 "unknown or ambiguous option '--bogus'" "unknown long option" -- -S "$S" --bogus
expect 2 "unknown option '-x'" "unknown short option" -- -S "$S" -x
expect 2 "option '--help=1' does not take an argument" "argument to a flag" \
	-- -S "$S" --help=1
expect 2 "ambiguous option '--s'" "ambiguous abbreviation" -- -S "$S" --s 1
expect 2 "option '-S' requires an argument" "-S without argument" -- -S
expect 2 "option '--socket' requires an argument" "--socket without argument" -- --socket
expect 2 "option '-l' requires an argument" "-l without argument" -- -S "$S" -l
expect 2 "unexpected argument 'extra'" "stray argument" -- -S "$S" extra
expect 2 "socket path.*empty" "empty socket path" -- -S ""
expect 2 "socket path.*longer than" "socket path too long" -- \
	-S "/tmp/$(printf 'x%.0s' $(seq 1 120))"
expect 2 "not a power of two" "size not a power of two" -- -S "$S" -l 3000
expect 2 "not a power of two" "size 3M not a power of two" -- -S "$S" -l 3M
expect 2 "invalid size '4Mjunk'" "size with junk after suffix" -- -S "$S" -l 4Mjunk
expect 2 "invalid size '4X'" "size with unknown suffix" -- -S "$S" -l 4X
expect 2 "invalid size 'abc'" "size not a number" -- -S "$S" -l abc
expect 2 "invalid size '-4M'" "negative size" -- -S "$S" -l -4M
expect 2 "invalid size ' 4M'" "size with leading blank" -- -S "$S" -l " 4M"
expect 2 "invalid size ''" "empty size" -- -S "$S" -l ""
expect 2 "not a power of two" "size 3 not a power of two" -- -S "$S" -l 3
expect 2 "too small" "size below 4K" -- -S "$S" -l 2K
expect 2 "too small" "size zero" -- -S "$S" -l 0
expect 2 "too large" "size overflow" -- -S "$S" -l 99999999999999999999G
expect 2 "too large" "size too large" -- -S "$S" -l 1048576G
expect 2 "vector count '0'.*between 1 and 64" "zero vectors" -- -S "$S" -n 0
expect 2 "vector count '65'.*between 1 and 64" "65 vectors" -- -S "$S" -n 65
expect 2 "vector count '2x'.*not a number" "vectors with junk" -- -S "$S" -n 2x
expect 2 "vector count '-1'" "negative vectors" -- -S "$S" --vectors=-1
expect 2 "peer limit '0'.*between 1 and 65535" "zero peers" -- -S "$S" -p 0
expect 2 "peer limit '65536'" "too many peers" -- -S "$S" --max-peers 65536
expect 2 "mutually exclusive" "-m and -M together" -- -S "$S" -m ivs -M
expect 2 "shm name.*empty" "empty shm name" -- -S "$S" -m ""
expect 2 "invalid shm name 'a/b'" "shm name with a slash" -- -S "$S" -m a/b
expect 2 "invalid shm name '/'" "shm name just a slash" -- -S "$S" -m /
expect 2 "pidfile.*empty" "empty pidfile" -- -S "$S" --pidfile ""

# Runtime failures are status 1, not 2.
expect 1 "cannot bind" "socket directory missing" -- -S "$TMP/nodir/sock"
expect 1 "cannot create pidfile" "pidfile directory missing" -- \
	-S "$S" --pidfile "$TMP/nodir/pid"
[ ! -e "$S" ]
result "$([ $? = 0 ] && echo 1)" "socket removed after a start-up failure"
mkdir "$TMP/piddir"
expect 1 "cannot create pidfile" "pidfile path is a directory" -- \
	-S "$S" --pidfile "$TMP/piddir"
ls "$TMP"/piddir.* >/dev/null 2>&1
result "$([ $? != 0 ] && [ ! -e "$S" ] && echo 1)" \
	"no temporary pidfile or socket left after a pidfile failure" \
	"$(ls -a "$TMP")"

# Every valid option at once, including extreme values; SIGTERM exits 0.
"$SERVER" -F -v -S "$S" --pidfile "$TMP/pid" -l 8k -n 64 -p 65535 -M \
	2>"$TMP/err" &
SPID=$!
for _ in $(seq 1 500); do
	[ -s "$TMP/pid" ] && break
	sleep 0.02
done
ok=0
# The pidfile appears whole: whoever sees it reads the whole pid.
if [ -s "$TMP/pid" ] && [ "$(cat "$TMP/pid")" = "$SPID" ] && [ -S "$S" ] &&
	[ "$(stat -c %a "$TMP/pid")" = 644 ] && ! ls "$TMP"/pid.* >/dev/null 2>&1; then
	kill -TERM "$SPID"
	reap "$SPID" 10
	rc=$?
	SPID=
	[ $rc = 0 ] && [ ! -e "$S" ] && [ ! -e "$TMP/pid" ] && ok=1
fi
result $ok "all valid options accepted; SIGTERM exits 0 and cleans up" \
	"$(cat "$TMP/err")"

echo "# args: $((n - fail)) passed, $fail failed"
[ $fail = 0 ]
