#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Tests of run.sh itself: a guest that hangs, a guest whose kernel panics, a
# QEMU killed under the runner, a guest kernel that cannot be prepared, a
# QEMU that never starts, and the runner interrupted by Ctrl-C. Each must
# end the run, bounded in time, as a failure that says why, and leave no
# QEMU process, temporary directory or /dev/shm object behind.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
run=$here/run.sh
. "$here/../../scripts/tap.sh"
out=$(mktemp)
fake=$(mktemp -d)
# The runs under test put their work directories here (run.sh honours
# TMPDIR), so that other runs on the machine, such as a second checkout's
# tests, are neither taken for our leftovers nor able to hide one.
runs=$(mktemp -d)
trap 'rm -f "$out"; rm -rf "$fake" "$runs"' EXIT
export TMPDIR=$runs

result() { tap_result "$1" "runner: $2" "$out"; }

leftovers() {
	local d
	pgrep -f 'ivshm.name=st-' >/dev/null && return 0
	for d in "$runs"/ivshm-run.*; do
		[ -e "$d" ] && return 0
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

# A guest kernel that cannot be prepared is one failure that names the
# cause, found before anything is built or booted, and never a boot
# failure run again. IVSHM_BOOT points the kernel lookup at a directory
# the test fills; IVSHM_CACHE keeps the real cache's vmlinux out of it.
expect_kernel_error() {
	local name=$1 pattern=$2 t0=$SECONDS rc=0 ok=0
	IVSHM_BOOT=$fake/boot IVSHM_CACHE=$fake/cache \
		"$run" --placements selftest-hang >"$out" 2>&1 || rc=$?
	[ "$rc" != 0 ] || ok=1
	[ $((SECONDS - t0)) -le 30 ] || ok=1
	[ "$(grep -c '^FAIL ' "$out")" = 1 ] || ok=1
	grep -q -- "^FAIL kernel 6.1: $pattern" "$out" || ok=1
	grep -q 'running the placement again' "$out" && ok=1
	tail -n 1 "$out" | grep -q '^0 passed, 1 failed' || ok=1
	leftovers && ok=1
	result $ok "$name: one failure naming the cause, in $((SECONDS - t0))s"
}
mkdir -p "$fake/boot"
expect_kernel_error "no kernel image" "no Debian 6.1 kernel image in $fake/boot"
# An image whose decompressor is not installed: Debian's own image, with a
# configuration that names a compression no script here installs.
kver=$(. "$here/../../scripts/common.sh"; ivshm_kver 6.1)
if command -v lzop >/dev/null; then
	tap_result 0 "runner: missing decompressor # SKIP lzop is installed here"
else
	cp "/boot/vmlinuz-$kver" "$fake/boot/"
	sed 's/^CONFIG_KERNEL_[A-Z0-9]*=y$/CONFIG_KERNEL_LZO=y/' \
		"/boot/config-$kver" >"$fake/boot/config-$kver"
	expect_kernel_error "missing decompressor" \
		"cannot extract vmlinux .* 'lzop' is not installed (install package lzop)"
fi

# A guest that QEMU never starts (here: a kernel image it cannot load) is
# one failure with QEMU's own message, and is not run again as a guest
# that died while booting.
t0=$SECONDS rc=0
head -c 4096 /dev/zero >"$fake/garbage"
GUEST_KERNEL=$fake/garbage "$run" --placements selftest-hang >"$out" 2>&1 || rc=$?
ok=0
[ "$rc" != 0 ] || ok=1
[ "$(grep -c '^FAIL ' "$out")" = 1 ] || ok=1
grep -q '^FAIL selftest-hang/st-hang: QEMU did not start the guest: .*[a-z]' "$out" || ok=1
grep -q 'running the placement again' "$out" && ok=1
leftovers && ok=1
result $ok "qemu does not start: one failure with QEMU's message, no second run"

# Ctrl-C in the middle of a guest run. A terminal sends SIGINT to the
# whole foreground process group: the runner gets a session and group of
# its own (setsid) and the test signals that group. A shell started as a
# background job of a non-interactive shell (a CI job, nohup) begins with
# SIGINT ignored, which it cannot undo for itself or its children: the
# runner is then started with the default disposition restored, as a
# terminal's shell would start it.
sigint_ignored=0
ign=$(awk '/^SigIgn:/ { print $2 }' /proc/$$/status)
(( (16#$ign >> 1) & 1 )) && sigint_ignored=1
t0=$SECONDS
setsid env --default-signal=INT "$run" --placements selftest-hang \
	--timeout 300 >"$out" 2>&1 </dev/null &
pid=$!
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
why=
[ "$sigint_ignored" = 1 ] && why="; SIGINT was ignored on entry, reset for the runner"
result $ok "interrupt: exits 130 and stops its guest (rc $rc$why)"

tap_summary
