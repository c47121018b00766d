#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run every ivshmem-server test suite and print, as the very last line,
# "N passed, N failed" over all individual test cases.  Skipped cases are
# counted on the line before.  Exits non-zero if anything failed, including
# a suite that died without reporting (crash, timeout).
#
# usage: run.sh DIR   (DIR holds ivshmem-server and tests/)

DIR=${1:-$(cd "$(dirname "$0")/.." && pwd)}
T=$DIR/tests
OUT=$(mktemp /tmp/ivs-run-XXXXXX)
trap 'rm -f "$OUT"' EXIT
pass=0
fail=0
skip=0

# suite NAME CMD...: run one suite (bounded), echo its output, tally it.
suite() {
	local name=$1 rc p f s
	shift
	echo "# ==== $name ===="
	timeout -k 10 900 "$@" 2>&1 | tee "$OUT"
	rc=${PIPESTATUS[0]}
	p=$(grep -E '^ok ' "$OUT" | grep -vc '# SKIP')
	s=$(grep -E '^ok .*# SKIP' -c "$OUT")
	f=$(grep -Ec '^not ok ' "$OUT")
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "not ok - $name: exited with status $rc without reporting a failure"
		f=1
	elif [ $((p + s + f)) = 0 ]; then
		echo "not ok - $name: reported no results"
		f=1
	fi
	pass=$((pass + p))
	fail=$((fail + f))
	skip=$((skip + s))
}

suite "arguments" "$T/args_test.sh" "$T/ivshmem-server-asan"

IVS_SERVER=$T/ivshmem-server-asan \
	suite "protocol (ASan+UBSan server)" "$T/protocol_test"

if command -v valgrind >/dev/null 2>&1; then
	IVS_SERVER=$DIR/ivshmem-server \
	IVS_SERVER_WRAPPER="valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect" \
		suite "protocol (release server under valgrind)" \
		"$T/protocol_test"
else
	echo "# ==== protocol (release server under valgrind) ===="
	echo "ok 1 - protocol under valgrind # SKIP valgrind not installed"
	skip=$((skip + 1))
fi

suite "qemu smoke test (release server)" "$T/qemu_smoke.sh" "$DIR/ivshmem-server"

echo "# $skip skipped"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
