#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Smoke test against real QEMU: two ivshmem-doorbell devices connect to the
# server, the device shows up as 1af4:1110, and once SeaBIOS has assigned
# the BARs the guests' IVPosition registers read 0 and 1 and BAR2 shows
# bytes the host wrote into the shm object.  Quitting QEMU is announced.
# Prints TAP-style lines; SKIPs if qemu-system-x86_64 is missing.  Every
# process it starts is killed by pid on exit, whatever happens.
#
# usage: qemu_smoke.sh SERVER_BINARY

SERVER=${1:?usage: $0 SERVER_BINARY}
. "$(dirname "$0")/lib.sh"
QEMU=${QEMU:-qemu-system-x86_64}
TIME_LIMIT=20		# seconds, for the whole test

if ! command -v "$QEMU" >/dev/null 2>&1; then
	echo "ok 1 - qemu smoke test # SKIP $QEMU not found"
	exit 0
fi

TMP=$(mktemp -d /tmp/ivs-qemu-XXXXXX)
SHM=ivs-smoke-$$
SPID=
QPID=()
n=0
fail=0
START=$SECONDS

cleanup() {
	local p

	exec 7>&- 8>&- 2>/dev/null
	for p in "${QPID[@]}" $SPID; do
		[ -n "$p" ] || continue
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -f "/dev/shm/$SHM"
	rm -rf "$TMP"
}
trap cleanup EXIT

bail() {
	result 0 "$1" "$2"
	echo "# server log:"; sed 's/^/#   /' "$TMP/server.log"
	for i in 0 1; do
		[ -f "$TMP/q$i.out" ] || continue
		echo "# qemu $i output:"
		tr -d '\r' <"$TMP/q$i.out" | sed 's/\x1b\[[0-9]*[A-Z]//g;s/^/#   /' |
			tail -n 30
	done
	echo "# qemu: $((n - fail)) passed, $fail failed"
	exit 1
}

# wait_for FILE REGEX: poll until the (escape-stripped) file matches.
wait_for() {
	while [ $((SECONDS - START)) -lt $TIME_LIMIT ]; do
		tr -d '\r' <"$1" 2>/dev/null | sed 's/\x1b\[[0-9]*[A-Z]//g' |
			grep -qE -- "$2" && return 0
		sleep 0.05
	done
	return 1
}

# hmp I CMD: run a monitor command on QEMU I, wait for the next prompt and
# leave its output in $TMP/reply.
hmp() {
	local out="$TMP/q$1.out" before

	before=$(wc -c <"$out")
	echo "$2" >&$((7 + $1))
	while [ $((SECONDS - START)) -lt $TIME_LIMIT ]; do
		tail -c +$((before + 1)) "$out" | tr -d '\r' |
			sed 's/\x1b\[[0-9]*[A-Z]//g' >"$TMP/reply"
		# Output is complete when a new prompt follows it.
		[ "$(grep -c '(qemu)' "$TMP/reply")" -ge 1 ] &&
			grep -q "$(printf '\n')" "$TMP/reply" &&
			tail -n1 "$TMP/reply" | grep -q '^(qemu)' && return 0
		sleep 0.05
	done
	return 1
}

start_qemu() {	# start_qemu I
	mkfifo "$TMP/q$1.in"
	"$QEMU" -accel tcg -M q35 -m 128 -nographic -nodefaults -S \
		-chardev socket,path="$TMP/sock",id=ch \
		-device ivshmem-doorbell,chardev=ch,vectors=2 \
		-monitor stdio <"$TMP/q$1.in" >"$TMP/q$1.out" 2>&1 &
	QPID+=($!)
	eval "exec $((7 + $1))>\"$TMP/q$1.in\""
	# The monitor's banner ends in its first prompt. hmp() counts output
	# from the moment it sends, so a banner still on its way would pass
	# for the reply.
	wait_for "$TMP/q$1.out" '^\(qemu\)' || bail "monitor of QEMU $1 prompts"
}

"$SERVER" -v -S "$TMP/sock" -m "$SHM" -l 1M -n 2 --pidfile "$TMP/pid" \
	2>"$TMP/server.log" &
SPID=$!
while [ ! -s "$TMP/pid" ]; do
	[ $((SECONDS - START)) -lt 5 ] || bail "server starts"
	sleep 0.02
done
# A marker for the guests to find at the start of BAR2.
printf 'IVSH' | dd of="/dev/shm/$SHM" conv=notrunc status=none ||
	bail "write marker into /dev/shm/$SHM"

start_qemu 0
wait_for "$TMP/server.log" "peer 0 joined" || bail "QEMU 0 connects as peer 0"
result 1 "QEMU 0 connects as peer 0"
hmp 0 "info pci" || bail "monitor answers 'info pci'"
grep -q "PCI device 1af4:1110" "$TMP/reply"
result "$([ $? = 0 ] && echo 1)" "info pci shows ivshmem 1af4:1110" \
	"$(cat "$TMP/reply")"
grep -q "BAR2: 64 bit prefetchable memory at .*\[0x000ffffe\]" "$TMP/reply"
result "$([ $? = 0 ] && echo 1)" "BAR2 is the 1M shm object" "$(cat "$TMP/reply")"

start_qemu 1
wait_for "$TMP/server.log" "peer 1 joined" || bail "QEMU 1 connects as peer 1"
result 1 "QEMU 1 connects as peer 1"

# Let SeaBIOS assign BARs, then read the registers from the host side.
for i in 0 1; do
	hmp $i "cont" || bail "QEMU $i runs"
done
for i in 0 1; do
	bar0= bar2=
	while [ $((SECONDS - START)) -lt $TIME_LIMIT ]; do
		hmp $i "info pci" || break
		dev=$(sed -n '/1af4:1110/,/id ""/p' "$TMP/reply")
		bar0=$(sed -n 's/.*BAR0: 32 bit memory at \(0x[0-9a-f]*\) .*/\1/p' <<<"$dev")
		bar2=$(sed -n 's/.*BAR2: 64 bit prefetchable memory at \(0x[0-9a-f]*\) .*/\1/p' <<<"$dev")
		[ -n "$bar0" ] && [ "$bar0" != 0xffffffffffffffff ] &&
			[ -n "$bar2" ] && [ "$bar2" != 0xffffffffffffffff ] && break
		bar0=
		sleep 0.2
	done
	[ -n "$bar0" ] || bail "firmware assigns the BARs of QEMU $i" "$dev"
	hmp $i "xp /1wx $((bar0 + 8))" || bail "QEMU $i: read IVPosition"
	pos=$(sed -n 's/^[0-9a-f]*: \(0x[0-9a-f]*\).*/\1/p' "$TMP/reply")
	result "$([ "$pos" = "$(printf '0x%08x' $i)" ] && echo 1)" \
		"QEMU $i: IVPosition register reads $i" "$(cat "$TMP/reply")"
	hmp $i "xp /1wx $bar2" || bail "QEMU $i: read BAR2"
	word=$(sed -n 's/^[0-9a-f]*: \(0x[0-9a-f]*\).*/\1/p' "$TMP/reply")
	result "$([ "$word" = 0x48535649 ] && echo 1)" \
		"QEMU $i: BAR2 shows the host's marker" "$(cat "$TMP/reply")"
done

# No prompt follows "quit": send it without waiting for one.
echo quit >&7
reap "${QPID[0]}" 5
QPID[0]=
wait_for "$TMP/server.log" "peer 0 left"
result "$([ $? = 0 ] && echo 1)" "server announces QEMU 0 leaving" \
	"$(cat "$TMP/server.log")"
echo quit >&8
reap "${QPID[1]}" 5
QPID[1]=
wait_for "$TMP/server.log" "peer 1 left"
result "$([ $? = 0 ] && echo 1)" "server announces QEMU 1 leaving"

kill -TERM "$SPID"
reap "$SPID" 5
rc=$?
SPID=
ok=0
[ $rc = 0 ] && [ ! -e "$TMP/sock" ] && [ ! -e "/dev/shm/$SHM" ] && ok=1
result $ok "server exits 0 on SIGTERM, removes socket and shm" "exit $rc"
echo "# qemu: $((n - fail)) passed, $fail failed ($((SECONDS - START)) s)"
[ $fail = 0 ]
