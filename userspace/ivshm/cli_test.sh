#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Command-line tests of ivshm(8) that need no kernel module:
#
#	userspace/ivshm/cli_test.sh build/userspace/ivshm
#
# Help at every level, usage errors (exit 2, a message on stderr naming the
# word at fault, nothing on stdout), abbreviations, and the commands that
# get as far as netlink, which without af_ivshmem must exit 3 saying the
# ivshmem family is not available. Prints one "PASS name" or "FAIL name"
# line per check and exits 1 if any failed. A sanitizer report on stderr
# fails the check it appears in, so an ASan/UBSan build runs as is.
set -u

bin=${1:?usage: $0 IVSHM_BINARY}
[ -x "$bin" ] || { echo "$0: $bin is not an executable" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

# Only when af_ivshmem is absent can a request be told to fail with 3.
if [ -d /sys/module/af_ivshmem ]; then
	echo "$0: af_ivshmem is loaded; these tests expect it not to be" >&2
	exit 2
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

# check NAME RC STDOUT [ STDERR_STRING ... ] -- ARGS ...
#   RC      the exit status expected
#   STDOUT  "empty", "usage" (has a line "Usage: ivshm ..."), "any" or
#           "re:REGEX", an extended regular expression a line must match
#   STDERR_STRING  strings stderr must contain (fixed, not patterns);
#           with none, stderr must be empty
check()
{
	local name=$1 want_rc=$2 want_out=$3 rc ok=1 why='' s
	local -a errs=()

	shift 3
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		errs+=("$1")
		shift
	done
	shift
	"$bin" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?

	if [ "$rc" -ne "$want_rc" ]; then
		ok=0
		why+=" exit $rc, not $want_rc;"
	fi
	case $want_out in
	empty)
		if [ -s "$tmp/out" ]; then
			ok=0
			why+=" stdout not empty;"
		fi
		;;
	usage)
		if ! grep -q '^Usage: ivshm ' "$tmp/out"; then
			ok=0
			why+=" no usage on stdout;"
		fi
		;;
	re:*)
		if ! grep -q -E -e "${want_out#re:}" "$tmp/out"; then
			ok=0
			why+=" stdout does not match ${want_out#re:};"
		fi
		;;
	esac
	if [ ${#errs[@]} -eq 0 ]; then
		if [ -s "$tmp/err" ]; then
			ok=0
			why+=" stderr not empty;"
		fi
	fi
	for s in "${errs[@]}"; do
		if ! grep -q -F -e "$s" "$tmp/err"; then
			ok=0
			why+=" stderr lacks \"$s\";"
		fi
	done
	if grep -q -E 'Sanitizer|runtime error:' "$tmp/err"; then
		ok=0
		why+=" sanitizer report;"
	fi

	if [ $ok -eq 1 ]; then
		echo "PASS $name"
		pass=$((pass + 1))
	else
		echo "FAIL $name:$why"
		echo "  command: ivshm $*"
		sed 's/^/  stdout: /' "$tmp/out" | head -n 5
		sed 's/^/  stderr: /' "$tmp/err" | head -n 10
		fail=$((fail + 1))
	fi
}

# Help: exit 0, usage on stdout, nothing on stderr.
usage_ok()
{
	local name=$1

	shift
	check "$name" 0 usage -- "$@"
}

# A usage error: exit 2, nothing on stdout, the named strings on stderr,
# and the pointer to the help (which also proves it is not the netlink
# step's message).
bad()
{
	local name=$1

	shift
	local -a errs=()
	while [ "$1" != -- ]; do
		errs+=("$1")
		shift
	done
	shift
	check "$name" 2 empty "${errs[@]}" "Try 'ivshm" -- "$@"
}

# Got past parsing to netlink, where the missing family is exit 3.
nl()
{
	local name=$1

	shift
	check "$name" 3 empty "the ivshmem generic netlink family is not available" \
		"af_ivshmem" -- "$@"
}

# --- help at every level ---
usage_ok "help" help
usage_ok "help abbreviated (h)" h
usage_ok "-h" -h
usage_ok "-help" -help
usage_ok "--help" --help
usage_ok "dev help" dev help
usage_ok "dev h" dev h
usage_ok "dev show help" dev show help
usage_ok "dev set help" dev set help
usage_ok "dev set DEV help" dev set ivshm0 help
usage_ok "peer help" peer help
usage_ok "peer show help" peer show help
usage_ok "chan help" chan help
usage_ok "chan show help" chan show help
usage_ok "monitor help" monitor help
usage_ok "-j dev help" -j dev help
for p in rebalance rebalance-interval rebalance-ms rebalance-idle-ms \
	 chan-initial chan-min chan-max poll-min-us poll-max-us coalesce-us \
	 coalesce-bulk coalesce-idle-us peer-timeout-ms; do
	check "dev set help lists $p" 0 "re:^$p +" -- dev set help
done
check "-V" 0 're:^ivshm [0-9]' -- -V
check "--version" 0 're:^ivshm [0-9]' -- --version
check "-Version" 0 're:^ivshm [0-9]' -- -Version
check "no object: usage on stderr, exit 2" 2 empty "Usage: ivshm" --
check "options only: usage on stderr, exit 2" 2 empty "Usage: ivshm" -- -j

# --- unknown words ---
bad "unknown object" "unknown object" "'frob'" -- frob
bad "object longer than the word" "'devices'" -- devices
bad "unknown option" "'-x'" -- -x dev
bad "unknown long option" "'--bogus'" -- --bogus dev
bad "--Version is not a long option" "'--Version'" -- --Version
bad "option after the object" "'-j'" -- dev show -j
bad "unknown dev command" "unknown command" "'frob'" -- dev frob
bad "unknown peer command" "'set'" -- peer set
bad "unknown chan command" "'frob'" -- chan frob
bad "unknown monitor argument" "'frob'" -- monitor frob
bad "monitor takes no vm" "'vm'" -- monitor vm 1
bad "unknown peer show argument" "'frob'" -- peer show frob
bad "unknown chan show argument" "'frob'" -- chan show dev ivshm0 frob
bad "unknown dev set parameter" "unknown parameter" "'frob'" -- dev set ivshm0 frob 1
bad "help takes no argument" "'extra'" -- help extra
bad "dev show: two devices" "'ivshm1'" -- dev show ivshm0 ivshm1
bad "peer show: dev twice" "dev given twice" -- peer show dev ivshm0 dev ivshm1
bad "chan show: vm twice" "vm given twice" -- chan show vm 1 vm 2
bad "dev set: parameter twice" "chan-min given twice" -- \
	dev set ivshm0 chan-min 16k chan-max 1m chan-min 32k
bad "dev set: parameter twice, by prefix" "rebalance-ms given twice" -- \
	dev set ivshm0 rebalance-ms 5 rebalance-m 6
bad "dev set: nothing to set" "no parameter" -- dev set ivshm0

# --- ambiguous parameter prefixes, with their candidates ---
bad "ambiguous rebalance-" "'rebalance-'" "ambiguous" "rebalance-interval" \
	"rebalance-ms" "rebalance-idle-ms" -- dev set ivshm0 rebalance- 1
bad "ambiguous chan-" "'chan-'" "ambiguous" "chan-initial" "chan-min" \
	"chan-max" -- dev set ivshm0 chan- 16k
bad "ambiguous chan-m" "'chan-m'" "chan-min" "chan-max" -- \
	dev set ivshm0 chan-m 16k
bad "ambiguous c" "'c'" "chan-initial" "coalesce-us" -- dev set ivshm0 c 1
bad "ambiguous poll-m" "'poll-m'" "poll-min-us" "poll-max-us" -- \
	dev set ivshm0 poll-m 1
bad "ambiguous coalesce-" "'coalesce-'" "coalesce-bulk" -- \
	dev set ivshm0 coalesce- 1
bad "ambiguous r" "'r'" "ambiguous" -- dev set ivshm0 r on

# --- missing values ---
bad "missing dev set value" "chan-min needs a value" -- dev set ivshm0 chan-min
bad "missing rebalance value" "rebalance needs a value" -- \
	dev set ivshm0 chan-max 1m rebalance
bad "missing dev set device" "missing device" -- dev set
bad "missing device after dev (set)" "dev needs a device name" -- dev set dev
bad "missing device after dev (show)" "dev needs a device name" -- dev show dev
bad "missing peer show dev value" "dev needs a value" -- peer show dev
bad "missing peer show vm value" "vm needs a value" -- peer show vm
bad "missing chan show vm value" "vm needs a value" -- chan show dev ivshm0 vm
bad "missing monitor dev value" "dev needs a value" -- monitor dev

# --- bad values ---
bad "rebalance not on/off" "'yes'" -- dev set ivshm0 rebalance yes
bad "rebalance ON is not on" "'ON'" -- dev set ivshm0 rebalance ON
bad "negative number" "'-1'" "negative" -- dev set ivshm0 rebalance-ms -1
bad "negative size" "'-16k'" "negative" -- dev set ivshm0 chan-min -16k
bad "negative vm" "'-1'" "negative" -- peer show vm -1
bad "number with sign" "'+5'" -- dev set ivshm0 rebalance-ms +5
bad "number with blank" "' 5'" -- dev set ivshm0 rebalance-ms " 5"
bad "empty number" "''" -- dev set ivshm0 rebalance-ms ""
bad "hex number" "'0x10'" -- dev set ivshm0 rebalance-ms 0x10
bad "trailing junk (number)" "'12x'" -- dev set ivshm0 rebalance-ms 12x
bad "trailing junk (vm)" "'1x'" -- chan show vm 1x
bad "trailing junk (size)" "'16kb'" -- dev set ivshm0 chan-min 16kb
bad "unknown size suffix" "'1g'" -- dev set ivshm0 chan-max 1g
bad "double size suffix" "'16kk'" -- dev set ivshm0 chan-max 16kk
bad "u32 overflow" "'4294967296'" -- dev set ivshm0 poll-max-us 4294967296
bad "u64 overflow" "'99999999999999999999999'" "out of range" -- \
	dev set ivshm0 coalesce-us 99999999999999999999999
bad "size overflow" "'18014398509481984k'" "out of range" -- \
	dev set ivshm0 chan-max 18014398509481984k
bad "vm overflow" "'4294967296'" -- peer show vm 4294967296
bad "rebalance-interval above 1000000" "'1000001'" "out of range" -- \
	dev set ivshm0 rebalance-interval 1000001
bad "rebalance-ms 0" "'0'" "out of range" -- dev set ivshm0 rebalance-ms 0
bad "rebalance-ms above 60000" "'60001'" -- dev set ivshm0 rebalance-ms 60001
bad "rebalance-idle-ms 0" "'0'" -- dev set ivshm0 rebalance-idle-ms 0
bad "rebalance-idle-ms above 600000" "'600001'" -- \
	dev set ivshm0 rebalance-idle-ms 600001
bad "poll-min-us 0" "'0'" -- dev set ivshm0 poll-min-us 0
bad "poll-max-us above 1000000" "'1000001'" -- \
	dev set ivshm0 poll-max-us 1000001
bad "coalesce-us above 100000" "'100001'" -- dev set ivshm0 coalesce-us 100001
bad "coalesce-bulk 0" "'0'" -- dev set ivshm0 coalesce-bulk 0
bad "coalesce-bulk above 16m" "'16777217'" -- \
	dev set ivshm0 coalesce-bulk 16777217
bad "coalesce-idle-us 0" "'0'" -- dev set ivshm0 coalesce-idle-us 0
bad "coalesce-idle-us above 10000000" "'10000001'" -- \
	dev set ivshm0 coalesce-idle-us 10000001
bad "peer-timeout-ms below 500" "'499'" -- dev set ivshm0 peer-timeout-ms 499
bad "peer-timeout-ms above 3600000" "'3600001'" -- \
	dev set ivshm0 peer-timeout-ms 3600001
bad "chan size below 16k" "'8k'" "out of range" -- dev set ivshm0 chan-min 8k
bad "chan size above 16m" "'17m'" "out of range" -- \
	dev set ivshm0 chan-max 17m
bad "chan size 0" "'0'" -- dev set ivshm0 chan-initial 0
bad "chan size not a multiple of 4096" "'20000'" "multiple of 4096" -- \
	dev set ivshm0 chan-initial 20000
bad "chan size 16k+1" "'16385'" "multiple of 4096" -- \
	dev set ivshm0 chan-max 16385
bad "device name too long" "'abcdefghijklmnop'" -- dev show abcdefghijklmnop
bad "device name with slash" "'a/b'" -- peer show dev a/b
bad "device name empty" "''" -- dev set "" rebalance on
bad "an error stops before later words" "'-1'" -- \
	dev set ivshm0 rebalance-ms -1 frob

# --- accepted, as far as netlink (exit 3 without af_ivshmem) ---
nl "dev" dev
nl "dev show" dev show
nl "d sh" d sh
nl "de s" de s
nl "dev show DEV" dev show ivshm0
nl "dev show dev DEV" dev show dev ivshm0
nl "dev show d DEV" dev show d ivshm0
nl "dev set DEV rebalance on" dev set ivshm0 rebalance on
nl "d se dev DEV rebalance off" d se dev ivshm0 rebalance off
nl "dev set every parameter at its lower bound" dev set ivshm0 \
	rebalance off rebalance-interval 0 rebalance-ms 1 rebalance-idle-ms 1 \
	chan-initial 16384 chan-min 16k chan-max 16K poll-min-us 1 \
	poll-max-us 1 coalesce-us 0 coalesce-bulk 1 coalesce-idle-us 1 \
	peer-timeout-ms 500
nl "dev set every parameter at its upper bound" dev set ivshm0 \
	rebalance on rebalance-interval 1000000 rebalance-ms 60000 \
	rebalance-idle-ms 600000 chan-initial 16777216 chan-min 16m \
	chan-max 16M poll-min-us 1000000 poll-max-us 1000000 \
	coalesce-us 100000 coalesce-bulk 16m coalesce-idle-us 10000000 \
	peer-timeout-ms 3600000
nl "dev set unique prefixes" dev set ivshm0 rebalance-in 5 rebalance-id 5 \
	chan-i 64k chan-mi 16k chan-ma 1m poll-mi 10 poll-ma 100 coalesce-u 5 \
	coalesce-b 4k coalesce-i 50
nl "dev set chan size 4096 multiple" dev set ivshm0 chan-initial 20480
nl "p" p
nl "peer show" peer show
nl "peer show dev DEV vm N" peer show dev ivshm0 vm 1
nl "peer show v N d DEV" peer show v 4294967295 d ivshm0
nl "ch s" ch s
nl "c s" c s
nl "chan show vm 0" chan show vm 0
nl "chan show dev DEV" chan show de ivshm1
nl "m" m
nl "monitor" monitor
nl "monitor dev DEV" monitor dev ivshm0
nl "-s dev" -s dev
nl "-j dev" -j dev
nl "-p dev" -p dev
nl "-js dev (cluster)" -js dev
nl "-sjp dev (cluster)" -sjp dev
nl "-json -stat dev (long, single dash)" -json -stat dev
nl "--json --stats --pretty dev" --json --stats --pretty dev
nl "--statistics dev" --statistics dev
nl "-- ends the options" -j -- dev
nl "-j monitor" -j monitor

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
