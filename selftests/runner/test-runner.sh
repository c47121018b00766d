#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Tests of run.sh itself: a guest that hangs, a guest whose kernel panics, a
# QEMU killed under the runner, and the runner interrupted by Ctrl-C. Each
# must end the run, bounded in time, as a failure with the guest's log tail,
# and leave no QEMU process, temporary directory or /dev/shm object behind.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
run=$here/run.sh
. "$here/../../scripts/tap.sh"
out=$(mktemp)
trap 'rm -f "$out"' EXIT

result() { tap_result "$1" "runner: $2" "$out"; }

# Work directories that existed before (kept with --keep by someone) are
# not ours to judge; any new one is a leftover.
existing=$(ls -d /tmp/ivshm-run.* 2>/dev/null || true)

leftovers() {
	local d
	pgrep -f 'ivshm.name=st-' >/dev/null && return 0
	for d in /tmp/ivshm-run.*; do
		[ -e "$d" ] || continue
		grep -qxF -- "$d" <<<"$existing" || return 0
	done
	return 1
}

# expect_failure NAME TIMEOUT MAX-SECONDS PATTERN: the run fails within
# MAX-SECONDS, prints PATTERN and a log tail, and cleans up.
expect_failure() {
	local name=$1 tmo=$2 max=$3 pattern=$4 t0=$SECONDS rc=0
	"$run" --placements "selftest-$name" --timeout "$tmo" >"$out" 2>&1 ||
		rc=$?
	local took=$((SECONDS - t0)) ok=0
	[ "$rc" != 0 ] || ok=1
	[ "$took" -le "$max" ] || ok=1
	grep -q -- "$pattern" "$out" || ok=1
	grep -q -- '---- last lines of' "$out" || ok=1
	tail -n 1 "$out" | grep -Eq '^0 passed, [1-9][0-9]* failed' || ok=1
	leftovers && ok=1
	result $ok "$name: fails in ${took}s (limit ${max}s) with '$pattern', cleans up"
}

# The runner builds the modules and tests first; do that once, untimed.
make -s -C "$here/../.." selftests-bin userspace-bin >/dev/null

expect_failure hang 20 90 'did not finish within 20s'
expect_failure panic 120 90 'kernel log reports a problem'
expect_failure kill 120 90 'stopped before finishing'

# Ctrl-C in the middle of a guest run. A terminal sends SIGINT to the
# whole foreground process group; job control gives the runner a group of
# its own (and keeps bash from starting it with SIGINT ignored).
t0=$SECONDS
set -m
"$run" --placements selftest-hang --timeout 300 >"$out" 2>&1 &
pid=$!
set +m
for _ in $(seq 600); do
	pgrep -f 'ivshm.name=st-hang' >/dev/null && break
	sleep 0.1
done
sleep 2
kill -INT -- "-$pid"
wait "$pid"
rc=$?
sleep 0.5
ok=0
[ "$rc" = 130 ] || ok=1
[ $((SECONDS - t0)) -le 90 ] || ok=1
leftovers && ok=1
result $ok "interrupt: exits 130 and stops its guest (rc $rc)"

tap_summary
