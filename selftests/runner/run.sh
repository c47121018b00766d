#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot QEMU guests (TCG, uncompressed kernel, busybox initramfs), run the
# kselftest-harness tests inside them and report.
#
#   run.sh [--kernel 6.1|6.12|debug|kcsan] [--placements LIST] [--timeout SEC]
#          [--keep]
#
# Placements (comma-separated; default devshm,netlink,doorbell,plain,trio,crash):
#   devshm    one guest, the dev_shm pseudo device with virtual peers
#   netlink   one dev_shm guest: the netlink family and the ivshm tool
#   doorbell  two guests on one ivshmem-doorbell region, through our server
#   plain     two guests on one ivshmem-plain region (no interrupts)
#   trio      three doorbell guests on one region, each talking to both
#             others at once
#   crash     a doorbell guest killed mid-transfer, then restarted
#   hammer    two ivshmem-plain guests, one on a single vCPU, hammering the
#             same words of the region (ivshm_hammer.ko, hammer_test): the
#             region core's read-modify-writes lose no update
#   pause     two ivshmem-plain guests; the runner stops one through its
#             QEMU monitor for PAUSE_S seconds (default 4) and lets it go
#             on: the connection between them survives (pause_test)
#   hostile   a guest without the module attacks the region (hostile_peer)
#             while a victim guest runs traffic through it (hostile_test)
#   pingpong  one dev_shm guest: 10^6 round trips (about 5 minutes under TCG)
#   sysfuzz   one dev_shm guest (32 MiB region): random socket calls from
#             threads racing close, every record checked (sysfuzz_test)
#   demo      a receiver and a sender in two doorbell guests (make demo)
#   soak      two doorbell guests (32 MiB region), 12 connections each way,
#             workers killed and restarted, every record checked (soak_test)
#   bench-one  net_bench in one dev_shm guest: AF_IVSHMEM against AF_UNIX
#   bench-doorbell  net_bench in two doorbell guests joined by virtio-net
#              too (tap devices on a bridge in a network namespace of the
#              runner's own): AF_IVSHMEM against TCP
#   bench-plain  net_bench in two ivshmem-plain guests
#   bench-raw  region_bench in two ivshmem-plain guests without the module:
#              the region core's ring from user space (the ceiling) and a
#              lock-guarded buffer (the design the seed replaces)
#   bench-rebal  rebal_bench in one dev_shm guest (make bench-rebal)
#   bench-stages  net_bench in two doorbell guests with the data path's
#              tracepoints on: a round trip split into its stages
#              (scripts/bench-stages.py; BENCH_OUT/stages.md)
#
# A placement in which a guest died while booting, before its first step
# (so before any of our code ran), is run once more, and says so.
#
# Every guest runs under a wall-clock timeout. A guest that times out, dies
# without finishing its plan, or whose kernel log reports a problem (see
# scan-log.sh) counts as a failed test, and its log tails are printed. The
# last line is "N passed, N failed, N skipped". Everything started is
# stopped by pid and every temporary file and /dev/shm object is removed,
# on success, failure and Ctrl-C alike (--keep keeps the logs).
#
# STRESS_S=N in the environment runs rebalance_test's stress for N seconds
# instead of 60; SOAK_S=N runs soak_test for N seconds instead of 60.
# SYSFUZZ_OPS=N, SYSFUZZ_S=N and SYSFUZZ_SEED=S give sysfuzz_test its
# operation budget (100000), wall-clock cap (120 s) and seed (the token).
# BENCH_MS=N, BENCH_WARMUP_MS=N, BENCH_REPS=N and BENCH_BUSY_US=N give
# net_bench its measuring time (1000 ms), the streams' warm-up (2000 ms),
# its repetitions (3) and the busy-polling budget of its rtt-busy round
# trips (1000 us; 0 skips them); with BENCH_OUT=DIR, the bench placements append
# their measurements to DIR/raw.csv and show their progress as it comes.
set -euo pipefail
. "$(dirname "$0")/../../scripts/common.sh"

kernel=6.1
placements=devshm,netlink,doorbell,plain,trio,crash
timeout=
keep=0
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=$2; shift 2 ;;
	--placements) placements=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	-h | --help) sed -n '3,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) ivshm_die "unknown argument '$1' (see --help)" ;;
	esac
done
case $kernel in
debug) timeout=${timeout:-1200}; mem=1G; extra_append="kasan_multi_shot" ;;
kcsan) timeout=${timeout:-1200}; mem=1G; extra_append= ;;
6.1 | 6.12) timeout=${timeout:-480}; mem=512M; extra_append= ;;
*) ivshm_die "unknown kernel '$kernel'" ;;
esac

REGION_SIZE=4194304
VECTORS=2

work=$(mktemp -d "${TMPDIR:-/tmp}/ivshm-run.XXXXXX")
pids=()
shm_files=()

# Stop everything started so far, by pid, and remove the /dev/shm objects.
stop_all() {
	local pid
	for pid in "${pids[@]+"${pids[@]}"}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]+"${pids[@]}"}"; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	pids=()
	[ ${#shm_files[@]} -eq 0 ] || rm -f "${shm_files[@]}"
	shm_files=()
}

cleanup() {
	stop_all
	if [ "$keep" = 1 ]; then
		ivshm_log "logs kept in $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'ivshm_log "interrupted"; exit 130' INT TERM HUP

passed=0 failed=0 skipped=0 boot_failed=0

pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
skip() { skipped=$((skipped + 1)); echo "SKIP $*"; }

# --- build what the guests need ------------------------------------------

# guest_kernel KIND: "VMLINUX KDIR" of that guest kernel in $kline, or one
# failure naming why it cannot be prepared (guest-kernel.sh's error) and a
# non-zero return. No guest is started on a kernel that is not there.
guest_kernel() {
	local err=$work/guest-kernel.err rc=0
	{ "$IVSHM_ROOT/scripts/guest-kernel.sh" "$1" 2>&1 >"$work/guest-kernel.out"; } |
		tee "$err" >&2 || rc=${PIPESTATUS[0]}
	kline=$(cat "$work/guest-kernel.out")
	[ "$rc" = 0 ] && return 0
	fail "kernel $1: $(sed -n 's/^error: //p' "$err" | tail -n 1)"
	return 1
}

if ! guest_kernel "$kernel"; then
	echo "$passed passed, $failed failed, $skipped skipped"
	exit 1
fi
read -r vmlinux kdir <<<"$kline"

ivshm_log "building modules against $kdir"
kmod=$IVSHM_BUILD/kmod/$kernel
"$IVSHM_ROOT/scripts/build-modules.sh" "$kdir" "$kmod" IVSHM_TEST_MODULES=1 >&2
make -s -C "$IVSHM_ROOT" selftests-bin userspace-bin >&2

tests_dir=$IVSHM_BUILD/selftests
server=$IVSHM_BUILD/userspace/ivshmem-server

# One initramfs per run: busybox, the modules, the test binaries, /init.
initrd=$work/initramfs.cpio
(
	root=$work/root
	mkdir -p "$root"/{bin,dev,proc,sys,tmp,tests,lib/modules/ivshmem}
	cp /bin/busybox "$root/bin/busybox"
	ln -s busybox "$root/bin/sh"
	cp "$IVSHM_ROOT/selftests/runner/guest-init.sh" "$root/init"
	chmod 755 "$root/init"
	cp "$kmod"/src/net/ivshmem/af_ivshmem.ko "$kmod"/src/dev_shm/dev_shm.ko \
		"$kmod"/src/selftests/kmod/ivshm_hammer.ko "$root/lib/modules/ivshmem/"
	cp "$tests_dir"/*_test "$tests_dir"/hostile_peer "$tests_dir"/net_bench "$tests_dir"/rebal_bench "$tests_dir"/region_bench "$tests_dir"/ivshmem_sender "$tests_dir"/ivshmem_receiver "$root/tests/"
	# The tool links libmnl, which has no static library, and the
	# sanitizer runtimes: the guest gets them and the loader too.
	cp "$tests_dir/ivshm" "$root/tests/"
	for lib in $(ldd "$tests_dir/ivshm" | grep -o '/[^ ]*'); do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
	# perm_test shows that uio_pci_generic cannot take the device from
	# af_ivshmem: Debian's uio modules of the guest kernel go to
	# /lib/modules/extra, decompressed here (a bare finit_module() of a
	# .ko.xz fails unless the kernel decompresses, which 6.1 does not),
	# and the kernel's configuration to /boot (Debian's kernels have no
	# /proc/config.gz). The debug kernel has both built in.
	if [ "$kernel" = 6.1 ] || [ "$kernel" = 6.12 ]; then
		gkver=$(ivshm_kver "$kernel")
		mkdir -p "$root/lib/modules/extra" "$root/boot"
		cp "/boot/config-$gkver" "$root/boot/"
		for m in uio uio_pci_generic; do
			src=/lib/modules/$gkver/kernel/drivers/uio/$m.ko
			dst=$root/lib/modules/extra/$m.ko
			if [ -f "$src" ]; then
				cp "$src" "$dst"
			elif [ -f "$src.xz" ]; then
				xz -dc "$src.xz" >"$dst"
			elif [ -f "$src.zst" ]; then
				zstd -qdc "$src.zst" >"$dst"
			else
				ivshm_die "no $m module for $gkver in /lib/modules (package linux-image-$gkver)"
			fi
		done
	fi
	# The bench placements bring up virtio-net (guest-init.sh net-up):
	# where its drivers are modules, they go to /lib/modules/net, with
	# their load order as modprobe computes it from the host's copy of
	# the guest kernel's modules.
	if [ "$kernel" = 6.1 ] || [ "$kernel" = 6.12 ]; then
		mkdir -p "$root/lib/modules/net"
		: >"$root/lib/modules/net/order"
		for src in $(modprobe -S "$gkver" -a --show-depends virtio_pci virtio_net |
				awk '$1 == "insmod" { print $2 }'); do
			m=$(basename "${src%.ko*}")
			grep -qx "$m" "$root/lib/modules/net/order" && continue
			case $src in
			*.xz) xz -dc "$src" ;;
			*.zst) zstd -qdc "$src" ;;
			*) cat "$src" ;;
			esac >"$root/lib/modules/net/$m.ko"
			echo "$m" >>"$root/lib/modules/net/order"
		done
	fi
	mknod -m 600 "$root/dev/console" c 5 1
	cd "$root" && find . | cpio -o -H newc --quiet >"$initrd"
)

# --- guests -----------------------------------------------------------------

token=$(od -An -N5 -tu8 /dev/urandom | tr -d ' ')
token=$((token + 1))

# start_guest NAME PLAN "EXTRA APPEND" QEMU-ARGS...  (pid in $guest_pid)
# GUEST_KERNEL, GUEST_MEM and GUEST_SMP in the environment override the
# run's kernel image, memory and vCPUs (2) for this guest.
start_guest() {
	local name=$1 plan=$2 append=$3
	shift 3
	# GUEST_NETNS: the PID of a process whose network namespace QEMU
	# runs in (bench_net_up).
	local wrap=()
	[ -z "${GUEST_NETNS:-}" ] || wrap=(nsenter --net="/proc/$GUEST_NETNS/ns/net" --)
	"${wrap[@]}" qemu-system-x86_64 -accel tcg -M q35 -cpu max -smp "${GUEST_SMP:-2}" -m "${GUEST_MEM:-$mem}" \
		-nodefaults -display none -no-reboot \
		-kernel "${GUEST_KERNEL:-$vmlinux}" -initrd "$initrd" \
		-append "console=ttyS0,115200 panic=-1 loglevel=7 ivshm.name=$name ivshm.plan=$plan ivshm.token=$token ivshm.size=$REGION_SIZE ivshm.vectors=$VECTORS ${STRESS_S:+ivshm.stress_s=$STRESS_S} ${SOAK_S:+ivshm.soak_s=$SOAK_S} $extra_append $append" \
		-serial "file:$work/$name.console" -serial "file:$work/$name.results" \
		"$@" </dev/null >"$work/$name.qemu" 2>&1 &
	guest_pid=$!
	pids+=("$guest_pid")
}

log_tail() {
	local f
	for f in "$work/$1.console" "$work/$1.results" "$work/$1.qemu"; do
		[ -s "$f" ] || continue
		echo "---- last lines of ${f##*/} ----"
		tail -n 40 "$f" | tr -d '\r'
	done
}

# wait_guests NAME:PID...  Wait for all, killing those past the deadline.
wait_guests() {
	local deadline=$((SECONDS + timeout)) spec name pid alive
	while :; do
		alive=0
		for spec in "$@"; do
			pid=${spec#*:}
			kill -0 "$pid" 2>/dev/null && alive=1
		done
		[ $alive = 0 ] && break
		if [ $SECONDS -ge $deadline ]; then
			for spec in "$@"; do
				name=${spec%%:*} pid=${spec#*:}
				if kill -0 "$pid" 2>/dev/null; then
					kill -KILL "$pid" 2>/dev/null || true
					echo "TIMEOUT $name" >>"$work/$name.status"
				fi
			done
			break
		fi
		sleep 0.5
	done
	for spec in "$@"; do
		wait "${spec#*:}" 2>/dev/null || true
	done
}

# report PLACEMENT NAME  Count one guest's results. A failing test's own
# diagnostics (its lines since "#  RUN") are printed with it.
report() {
	local placement=$1 name=$2 results=$work/$2.results step="" line
	local -A step_fail=()
	local guest_ok=1 diag=()

	# No kernel message at all: QEMU never started this guest (bad
	# arguments, a missing image, a server it could not reach). That is
	# one failure with QEMU's own words, and no reason to run again.
	if [ ! -f "$work/$name.status" ] &&
		! grep -q 'Linux version' "$work/$name.console" 2>/dev/null; then
		fail "$placement/$name: QEMU did not start the guest: $(tr -d '\r' <"$work/$name.qemu" 2>/dev/null | grep -v '^$' | tail -n 1)"
		return 0
	fi
	grep -q 'IVSHM-STEP ' "$results" 2>/dev/null || boot_failed=1

	if [ -f "$work/$name.status" ]; then
		fail "$placement/$name: guest did not finish within ${timeout}s"
		guest_ok=0
	fi
	if [ ! -s "$results" ] || ! grep -q 'IVSHM-GUEST-DONE' "$results"; then
		[ $guest_ok = 1 ] && fail "$placement/$name: guest stopped before finishing its plan"
		guest_ok=0
	fi
	while IFS= read -r line; do
		line=${line%$'\r'}
		case $line in
		"IVSHM-STEP "*) step=${line#IVSHM-STEP } diag=() ;;
		"#  RUN "*) diag=("$line") ;;
		"#"*) diag+=("$line") ;;
		"ok "*"# SKIP"*) skip "$placement/$name/$step: ${line#ok }" ;;
		"ok "*) pass "$placement/$name/$step: ${line#ok }" ;;
		"not ok "*)
			fail "$placement/$name/$step: ${line#not ok }"
			printf '    %s\n' "${diag[@]+"${diag[@]}"}"
			step_fail[$step]=1
			;;
		"IVSHM-STEP-RC "*)
			set -- ${line#IVSHM-STEP-RC }
			# A step that failed without a failing test line (a
			# crash, a failed insmod) still counts.
			if [ "$2" != 0 ] && [ -z "${step_fail[$1]:-}" ]; then
				fail "$placement/$name/$1: exited with status $2"
			fi
			;;
		esac
	done <"$results"
	if ! "$IVSHM_ROOT/selftests/runner/scan-log.sh" "$work/$name.console" \
			>"$work/$name.scan"; then
		fail "$placement/$name: kernel log reports a problem"
		cat "$work/$name.scan"
		guest_ok=0
	fi
	[ $guest_ok = 1 ] || log_tail "$name"
}

# The plans: which steps each guest runs, in order.
# Two guests on one region (doorbell or plain): the socket suite runs in b
# against the agent in a; b also has dev_shm, so that two regions are in
# use in one guest at once. Before that, b checks permissions (perm_test),
# while its PCI device is the only region.
# Then round trips, and (doorbell) a flood of doorbells from a to b; then
# 64 connections resized all the time.
plan_door_a="region_raw_test,insmod-af_ivshmem,pci_test,module_test,socket_test:agent,pingpong_test:serve,rebalance_test:serve,rmmod-af_ivshmem,leakcheck"
plan_door_b="region_raw_test,insmod-af_ivshmem,pci_test,module_test,perm_test,insmod-dev_shm,socket_test:remote,rmmod-dev_shm,pingpong_test:remote,rebalance_test:remote,rmmod-af_ivshmem,leakcheck"
# Three guests, each connected to both others at once.
plan_trio="insmod-af_ivshmem,mesh_test:3,rmmod-af_ivshmem,leakcheck"
# The demo: a receiver in a, a sender in b, 256 MiB through AF_IVSHMEM.
plan_demo_a="insmod-af_ivshmem,ivshmem_receiver,rmmod-af_ivshmem"
plan_demo_b="insmod-af_ivshmem,ivshmem_sender,rmmod-af_ivshmem"
# The soak: both guests connect to each other and restart their workers.
plan_soak_a="insmod-af_ivshmem,soak_test:a,rmmod-af_ivshmem,leakcheck"
plan_soak_b="insmod-af_ivshmem,soak_test:b,rmmod-af_ivshmem,leakcheck"
# The socket benchmark: in one guest; or the server in a, the client in b.
plan_bench_one="insmod-af_ivshmem,insmod-dev_shm:size=33554432,net_bench:one-guest,rmmod-dev_shm,rmmod-af_ivshmem"
plan_bench_a="insmod-af_ivshmem,net-up:192.168.100.1,net_bench:server,rmmod-af_ivshmem"
plan_bench_b="insmod-af_ivshmem,net-up:192.168.100.2,net_bench:client-doorbell,rmmod-af_ivshmem"
plan_bench_plain_a="insmod-af_ivshmem,net_bench:server,rmmod-af_ivshmem"
plan_bench_plain_b="insmod-af_ivshmem,net_bench:client-plain,rmmod-af_ivshmem"
# Rebalancing off against on, one bulk connection on a 4 MiB region.
plan_bench_raw_a="region_bench:a"
plan_bench_raw_b="region_bench:b"
plan_bench_stages_a="insmod-af_ivshmem,net_bench:stages-server,rmmod-af_ivshmem"
plan_bench_stages_b="insmod-af_ivshmem,net_bench:stages-client,rmmod-af_ivshmem"
plan_bench_rebal="insmod-af_ivshmem,insmod-dev_shm:size=4194304,rebal_bench,rmmod-dev_shm,rmmod-af_ivshmem"
plan_pingpong="insmod-af_ivshmem,insmod-dev_shm,pingpong_test,rmmod-dev_shm,rmmod-af_ivshmem,leakcheck"
plan_devshm="insmod-af_ivshmem,insmod-dev_shm,devshm_test,module_test,rmmod-dev_shm,insmod-dev_shm:size=4194304,rebalance_test:bulk,rmmod-dev_shm,insmod-dev_shm:size=33554432,socket_test,lib_test,pingpong_test,rebalance_test:stress,rmmod-dev_shm,rmmod-af_ivshmem,leakcheck"
# The netlink family and the tool: the module loaded by its alias first.
plan_netlink="nl_test:autoload,insmod-af_ivshmem,insmod-dev_shm:size=33554432,nl_test,rmmod-dev_shm,rmmod-af_ivshmem,leakcheck"

run_devshm() {
	ivshm_log "placement devshm: one guest, dev_shm virtual peers"
	start_guest devshm "$plan_devshm" ""
	wait_guests "devshm:$guest_pid"
	report devshm devshm
}

run_netlink() {
	ivshm_log "placement netlink: one guest, dev_shm virtual peers, the ivshm tool"
	# The debug kernel takes 6 ms a request: a quarter of the fuzzing.
	start_guest netlink "$plan_netlink" "$([ "$kernel" = debug ] || [ "$kernel" = kcsan ] && echo ivshm.fuzz=5000)"
	wait_guests "netlink:$guest_pid"
	report netlink netlink
}

# Random socket calls (sysfuzz_test), in a dev_shm guest of their own.
plan_sysfuzz="insmod-af_ivshmem,insmod-dev_shm:size=33554432,sysfuzz_test,rmmod-dev_shm,rmmod-af_ivshmem,leakcheck"

run_sysfuzz() {
	ivshm_log "placement sysfuzz: one guest, dev_shm virtual peers, random socket calls"
	start_guest sysfuzz "$plan_sysfuzz" "${SYSFUZZ_OPS:+ivshm.ops=$SYSFUZZ_OPS} ${SYSFUZZ_S:+ivshm.fuzz_s=$SYSFUZZ_S} ${SYSFUZZ_SEED:+ivshm.fuzz_seed=$SYSFUZZ_SEED}"
	wait_guests "sysfuzz:$guest_pid"
	report sysfuzz sysfuzz
	grep -h '^sysfuzz: ' "$work/sysfuzz.results" 2>/dev/null | tr -d '\r' |
		sed 's/^/  /' || true
}

# 10^6 round trips through dev_shm, in a guest of their own: at about
# 250 us a round under TCG they need a longer timeout than the others.
run_pingpong() {
	local timeout=$((timeout + 3900))
	ivshm_log "placement pingpong: one guest, 10^6 round trips through dev_shm"
	start_guest pingpong "$plan_pingpong" "ivshm.rounds=1000000"
	wait_guests "pingpong:$guest_pid"
	report pingpong pingpong
}

# doorbell_args SOCK  QEMU's arguments for an ivshmem-doorbell device on
# the server at SOCK, in $region_args.
doorbell_args() {
	region_args=(-chardev "socket,path=$1,id=ivsh"
		     -device "ivshmem-doorbell,chardev=ivsh,vectors=$VECTORS")
}

# plain_args  A new /dev/shm file (removed at the end) and QEMU's arguments
# for an ivshmem-plain device on it, in $region_args.
plain_args() {
	local shm=/dev/shm/ivshm-test-$$-$RANDOM
	rm -f "$shm"
	shm_files+=("$shm")
	region_args=(-object "memory-backend-file,size=$REGION_SIZE,share=on,mem-path=$shm,id=hm"
		     -device "ivshmem-plain,memdev=hm")
}

# start_server PLACEMENT SOCK [SERVER-ARGS...]  Start the ivshmem server
# on SOCK for the doorbell guests and wait for it; fails the placement
# with the server's log if it does not come up.
start_server() {
	local placement=$1 sock=$2
	shift 2
	"$server" "$@" -S "$sock" -M -l "$REGION_SIZE" -n "$VECTORS" \
		>"$work/server.log" 2>&1 </dev/null &
	pids+=("$!")
	for _ in $(seq 50); do
		[ -S "$sock" ] && return 0
		sleep 0.1
	done
	fail "$placement: ivshmem-server did not start"
	cat "$work/server.log"
	return 1
}

# run_doorbell [PLACEMENT PLAN_A [PLAN_B]]
run_doorbell() {
	local placement=${1:-doorbell} plan=${2:-$plan_door_a}
	local plan_b=${3:-${2:-$plan_door_b}}
	local sock=$work/ivshmem.sock a b
	ivshm_log "placement $placement: two guests, ivshmem-doorbell"
	start_server doorbell "$sock" || return 0
	doorbell_args "$sock"
	start_guest door-a "$plan" "ivshm.role=a ivshm.mode=doorbell" "${region_args[@]}"
	a=$guest_pid
	start_guest door-b "$plan_b" "ivshm.role=b ivshm.mode=doorbell" "${region_args[@]}"
	b=$guest_pid
	wait_guests "door-a:$a" "door-b:$b"
	report "$placement" door-a
	report "$placement" door-b
	if [ "$placement" = demo ]; then
		echo
		grep -h -E '^(sender|receiver):' "$work/door-b.results" \
			"$work/door-a.results" | tr -d '\r' | sed 's/^/  /'
		echo
	fi
	if [ "$placement" = soak ]; then
		local g
		echo
		for g in a b; do
			grep -h '^soak:' "$work/door-$g.results" 2>/dev/null |
				tr -d '\r' | sed "s/^/  $g: /" || true
		done
		echo
	fi
}

run_plain() {
	local a b
	ivshm_log "placement plain: two guests, ivshmem-plain"
	plain_args
	start_guest plain-a "$plan_door_a" "ivshm.role=a ivshm.mode=plain" "${region_args[@]}"
	a=$guest_pid
	start_guest plain-b "$plan_door_b" "ivshm.role=b ivshm.mode=plain" "${region_args[@]}"
	b=$guest_pid
	wait_guests "plain-a:$a" "plain-b:$b"
	report plain plain-a
	report plain plain-b
}

# Three doorbell guests on one region, each talking to both others.
run_trio() {
	local sock=$work/ivshmem.sock name specs=()
	ivshm_log "placement trio: three guests, ivshmem-doorbell"
	start_server trio "$sock" || return 0
	doorbell_args "$sock"
	for name in trio-a trio-b trio-c; do
		start_guest "$name" "$plan_trio" "ivshm.role=${name#trio-} ivshm.mode=doorbell" \
			"${region_args[@]}"
		specs+=("$name:$guest_pid")
	done
	wait_guests "${specs[@]}"
	for name in trio-a trio-b trio-c; do
		report trio "$name"
	done
}

# A VM killed mid-transfer: guest b streams to guest a until the runner
# kills b's QEMU (SIGKILL), then a new QEMU takes b's place and sends a
# whole transfer. crash_test in a checks both.
run_crash() {
	local sock=$work/ivshmem.sock a b c
	ivshm_log "placement crash: a doorbell guest killed mid-transfer, then restarted"
	doorbell_args "$sock"
	start_server crash "$sock" -v || return 0
	start_guest crash-a "insmod-af_ivshmem:peer_timeout_ms=60000,crash_test:receiver,rmmod-af_ivshmem,leakcheck" \
		"ivshm.role=a ivshm.mode=doorbell" "${region_args[@]}"
	a=$guest_pid
	start_guest crash-b "insmod-af_ivshmem,crash_test:sender" \
		"ivshm.role=b ivshm.mode=doorbell" "${region_args[@]}"
	b=$guest_pid
	for _ in $(seq $((timeout * 10))); do
		grep -q 'crash_test: streaming' "$work/crash-a.results" 2>/dev/null && break
		kill -0 "$a" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$b" 2>/dev/null || true
	wait "$b" 2>/dev/null || true
	start_guest crash-c "insmod-af_ivshmem,crash_test:sender-2000,rmmod-af_ivshmem" \
		"ivshm.role=b ivshm.mode=doorbell" "${region_args[@]}"
	c=$guest_pid
	wait_guests "crash-a:$a" "crash-c:$c"
	report crash crash-a
	report crash crash-c
	grep -q 'marked dead in the region' "$work/server.log" ||
		fail "crash: the server did not mark the killed VM dead"
}

# A hostile peer: guest x, without af_ivshmem, writes the region through
# BAR2 and rings doorbells (hostile_peer) while guest v, on the run's
# kernel, runs traffic through it (hostile_test). The attacker needs no
# sanitizers, so it boots Debian's 6.1 kernel, which is faster.
run_hostile() {
	local sock=$work/ivshmem.sock v x x_kernel
	ivshm_log "placement hostile: a hostile peer attacks a victim guest"
	doorbell_args "$sock"
	guest_kernel 6.1 || return 0
	read -r x_kernel _ <<<"$kline"
	start_server hostile "$sock" || return 0
	start_guest hostile-v "insmod-af_ivshmem,hostile_test,rmmod-af_ivshmem,leakcheck" \
		"ivshm.role=a ivshm.mode=doorbell" "${region_args[@]}"
	v=$guest_pid
	GUEST_KERNEL=$x_kernel GUEST_MEM=512M start_guest hostile-x hostile_peer \
		"ivshm.role=b ivshm.mode=doorbell" "${region_args[@]}"
	x=$guest_pid
	wait_guests "hostile-v:$v" "hostile-x:$x"
	report hostile hostile-v
	report hostile hostile-x
	echo
	grep -h -E '^(hostile:|# )' "$work/hostile-x.results" "$work/hostile-v.results" |
		tr -d '\r' | sed 's/^/  /'
	echo
}

# The runner's own tests (test-runner.sh): a guest that hangs, one whose
# kernel panics, and one whose QEMU is killed under it.
run_selftest() {
	local kind=$1 name=st-$1 plan=hang
	[ "$kind" = panic ] && plan=panic
	start_guest "$name" "$plan" ""
	if [ "$kind" = kill ]; then
		for _ in $(seq 300); do
			grep -q IVSHM-STEP "$work/$name.results" 2>/dev/null && break
			sleep 0.1
		done
		kill -KILL "$guest_pid"
	fi
	wait_guests "$name:$guest_pid"
	report "selftest-$kind" "$name"
}

# bench_follow NAME PID  Show the bench-progress lines of guest NAME (QEMU
# PID) as they come, with BENCH_OUT; the follower ends with the guest.
bench_follow() {
	follow_pid=
	[ -n "${BENCH_OUT:-}" ] || return 0
	: >>"$work/$1.results"
	tail --pid="$2" -n +1 -F "$work/$1.results" 2>/dev/null |
		grep --line-buffered '^bench-progress:' |
		sed -u 's/\r$//; s/^bench-progress: /  /' &
	follow_pid=$!
	pids+=("$follow_pid")
}

# bench_collect PLACEMENT NAME  Append guest NAME's measurements to
# BENCH_OUT/raw.csv; a run that produced none fails.
bench_collect() {
	local n
	[ -z "$follow_pid" ] || wait "$follow_pid" 2>/dev/null || true
	# The benchmark's own complaints, from either end.
	grep -h '^net_bench:\|^region_bench:' "$work/$1"*.results 2>/dev/null | tr -d '\r' |
		sed 's/^/  /' || true
	n=$(grep -c '^benchcsv,' "$work/$2.results" 2>/dev/null || true)
	if [ "${n:-0}" = 0 ]; then
		fail "$1/$2: the benchmark measured nothing"
		return
	fi
	pass "$1/$2: the benchmark made $n measurements"
	[ -n "${BENCH_OUT:-}" ] || return 0
	grep '^benchcsv,' "$work/$2.results" | tr -d '\r' |
		sed 's/^benchcsv,//' >>"$BENCH_OUT/raw.csv"
	ivshm_log "$1: $n measurements added to $BENCH_OUT/raw.csv"
}

bench_append() {
	echo "${BENCH_MS:+ivshm.bench_ms=$BENCH_MS} ${BENCH_WARMUP_MS:+ivshm.bench_warmup_ms=$BENCH_WARMUP_MS} ${BENCH_REPS:+ivshm.bench_reps=$BENCH_REPS} ${BENCH_BUSY_US:+ivshm.bench_busy_us=$BENCH_BUSY_US}"
}

# The socket benchmark in one dev_shm guest: AF_IVSHMEM against AF_UNIX.
run_bench_one() {
	local timeout=$((timeout + 900))
	ivshm_log "placement bench-one: one guest, dev_shm, AF_IVSHMEM against AF_UNIX"
	start_guest bench-one "$plan_bench_one" "$(bench_append)"
	bench_follow bench-one "$guest_pid"
	wait_guests "bench-one:$guest_pid"
	report bench-one bench-one
	bench_collect bench-one bench-one
}

# bench_net_up  The network users join VMs with: a tap device per guest on
# a Linux bridge, here inside a network namespace of its own, so that no
# address or device outside it is ever touched. A process of the runner's
# holds the namespace; it is in pids, so stop_all ends it, and the
# namespace goes with it and the QEMUs in it, devices and all. virtio-net
# uses vhost-net where /dev/vhost-net can be opened. Sets netns_pid and
# vhost (on or off).
bench_net_up() {
	local ours ns
	ours=$(readlink /proc/self/ns/net)
	unshare --net -- sleep infinity &
	netns_pid=$!
	pids+=("$netns_pid")
	# The holder is in a namespace of its own once its link differs
	# from ours; an unshare that failed has exited (no link at all).
	for _ in $(seq 100); do
		ns=$(readlink "/proc/$netns_pid/ns/net" 2>/dev/null) || ns=
		[ -n "$ns" ] && [ "$ns" != "$ours" ] && break
		kill -0 "$netns_pid" 2>/dev/null || break
		sleep 0.05
	done
	if [ -z "$ns" ] || [ "$ns" = "$ours" ] || ! kill -0 "$netns_pid" 2>/dev/null; then
		fail "bench: no network namespace (unshare --net failed: CAP_SYS_ADMIN, CONFIG_NET_NS?)"
		return 1
	fi
	# No IPv6 on the link measured: no router or listener chatter.
	nsenter --net="/proc/$netns_pid/ns/net" -- sh -e -c '
		echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null || :
		echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6 2>/dev/null || :
		ip link add ivshm-br type bridge
		for t in a b; do
			ip tuntap add dev ivshm-tap$t mode tap
			ip link set ivshm-tap$t master ivshm-br
			ip link set ivshm-tap$t up
		done
		ip link set ivshm-br up' ||
		{ fail "bench: cannot make a bridge and tap devices (bridge, tun)"; return 1; }
	vhost=$(ivshm_vhost_net)
}

# The socket benchmark across two guests of one region. Doorbell guests
# are joined by virtio-net as well (bench_net_up), for TCP.
run_bench_two() {
	local placement=$1 mode=${1#bench-} timeout=$((timeout + 900))
	local sock=$work/ivshmem.sock a b netns_pid vhost
	local dev_a dev_b
	ivshm_log "placement $placement: two guests, ivshmem-$mode$([ "$mode" = doorbell ] && echo " and virtio-net")"
	if [ "$mode" = doorbell ]; then
		start_server "$placement" "$sock" || return 0
		bench_net_up || return 0
		ivshm_log "$placement: TCP over virtio-net on tap devices bridged in a network namespace, vhost-net $vhost"
		doorbell_args "$sock"
		dev_a=("${region_args[@]}")
		dev_b=("${region_args[@]}")
		dev_a+=(-netdev "tap,id=n0,ifname=ivshm-tapa,script=no,downscript=no,vhost=$vhost"
			-device "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:01")
		dev_b+=(-netdev "tap,id=n0,ifname=ivshm-tapb,script=no,downscript=no,vhost=$vhost"
			-device "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:02")
		GUEST_NETNS=$netns_pid start_guest "$placement-a" "$plan_bench_a" \
			"ivshm.role=a ivshm.mode=doorbell $(bench_append)" "${dev_a[@]}"
		a=$guest_pid
		GUEST_NETNS=$netns_pid start_guest "$placement-b" "$plan_bench_b" \
			"ivshm.role=b ivshm.mode=doorbell $(bench_append)" "${dev_b[@]}"
		b=$guest_pid
	else
		plain_args
		start_guest "$placement-a" "$plan_bench_plain_a" \
			"ivshm.role=a ivshm.mode=plain $(bench_append)" "${region_args[@]}"
		a=$guest_pid
		start_guest "$placement-b" "$plan_bench_plain_b" \
			"ivshm.role=b ivshm.mode=plain $(bench_append)" "${region_args[@]}"
		b=$guest_pid
	fi
	bench_follow "$placement-b" "$b"
	wait_guests "$placement-a:$a" "$placement-b:$b"
	report "$placement" "$placement-a"
	report "$placement" "$placement-b"
	bench_collect "$placement" "$placement-b"
	[ "$mode" = doorbell ] || return 0
	# What virtio-net really used: QEMU falls back to its own backend,
	# and says so, where vhost-net cannot start (make bench's summary).
	if [ "$vhost" = on ] && grep -qi 'vhost.*\(fall\|fail\|unable\)' \
		"$work/$placement-a.qemu" "$work/$placement-b.qemu" 2>/dev/null; then
		vhost="off (QEMU could not start vhost-net)"
	elif [ "$vhost" = off ]; then
		vhost="off (no usable /dev/vhost-net)"
	fi
	[ -z "${BENCH_OUT:-}" ] ||
		echo "- TCP: virtio-net on tap devices bridged in a private network namespace, vhost-net $vhost" \
			>"$BENCH_OUT/net.txt"
}

# A kernel that boots on one CPU patches the lock prefix out of cmpxchg():
# guest a runs on one vCPU, b on two, and both hammer the same words.
# Guest a may hot-plug a second vCPU (maxcpus=2): its kernel still patches
# to UP, as it sees one CPU present, but QEMU's TCG then emulates locked
# instructions atomically, as a CPU does; with one possible vCPU TCG makes
# no instruction of it atomic against another process, locked or not.
run_hammer() {
	local a b
	ivshm_log "placement hammer: two guests, ivshmem-plain, one of them on one vCPU"
	plain_args
	GUEST_SMP=1,maxcpus=2 start_guest hammer-a "insmod-ivshm_hammer,hammer_test:0" "" \
		"${region_args[@]}"
	a=$guest_pid
	start_guest hammer-b "insmod-ivshm_hammer,hammer_test:1" "" \
		"${region_args[@]}"
	b=$guest_pid
	wait_guests "hammer-a:$a" "hammer-b:$b"
	report hammer hammer-a
	report hammer hammer-b
	grep -h '^ok .*hammer:\|^not ok .*hammer:' "$work/hammer-a.results" \
		"$work/hammer-b.results" 2>/dev/null | tr -d '\r' | sed 's/^/  /' || true
}

# monitor_cmd SOCKET COMMAND  One command to a QEMU's human monitor.
monitor_cmd() {
	python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.recv(4096)
s.sendall((sys.argv[2] + "\n").encode())
time.sleep(0.3)
s.close()
' "$1" "$2"
}

# A VM paused longer than the liveness bound of earlier versions (1.5 s)
# and shorter than today's default: two ivshmem-plain guests, where only
# the heartbeat tells a death; b's QEMU is stopped when a says so.
run_pause() {
	local a b mon=$work/pause-b.mon pause_s=${PAUSE_S:-4}
	ivshm_log "placement pause: two guests, ivshmem-plain, one stopped for ${pause_s} s"
	plain_args
	start_guest pause-a "insmod-af_ivshmem,pause_test:a,rmmod-af_ivshmem" \
		"ivshm.pause_s=$pause_s" "${region_args[@]}"
	a=$guest_pid
	start_guest pause-b "insmod-af_ivshmem,pause_test:b,rmmod-af_ivshmem" "" \
		"${region_args[@]}" -monitor "unix:$mon,server=on,wait=off"
	b=$guest_pid
	for _ in $(seq $((timeout * 10))); do
		grep -q 'pause_test: pause now' "$work/pause-a.results" 2>/dev/null && break
		kill -0 "$a" 2>/dev/null || break
		sleep 0.1
	done
	if grep -q 'pause_test: pause now' "$work/pause-a.results" 2>/dev/null; then
		monitor_cmd "$mon" stop || fail "pause: the monitor did not take stop"
		sleep "$pause_s"
		monitor_cmd "$mon" cont || fail "pause: the monitor did not take cont"
	fi
	wait_guests "pause-a:$a" "pause-b:$b"
	report pause pause-a
	report pause pause-b
}

# The region without the module, between two ivshmem-plain guests: the
# ceiling under the same emulation, and the lock-guarded buffer.
run_bench_raw() {
	local a b timeout=$((timeout + 900))
	ivshm_log "placement bench-raw: two guests, ivshmem-plain, no module: the region core's ring and a lock-guarded buffer from user space"
	plain_args
	start_guest bench-raw-a "$plan_bench_raw_a" "ivshm.role=a $(bench_append)" \
		"${region_args[@]}"
	a=$guest_pid
	start_guest bench-raw-b "$plan_bench_raw_b" "ivshm.role=b $(bench_append)" \
		"${region_args[@]}"
	b=$guest_pid
	bench_follow bench-raw-b "$b"
	wait_guests "bench-raw-a:$a" "bench-raw-b:$b"
	report bench-raw bench-raw-a
	report bench-raw bench-raw-b
	bench_collect bench-raw bench-raw-b
}

# A round trip's stages, from the tracepoints of two doorbell guests.
run_bench_stages() {
	local sock=$work/ivshmem.sock a b out timeout=$((timeout + 600))
	ivshm_log "placement bench-stages: two guests, ivshmem-doorbell, round trips traced"
	start_server bench-stages "$sock" || return 0
	doorbell_args "$sock"
	start_guest bench-stages-a "$plan_bench_stages_a" \
		"ivshm.role=a ivshm.mode=doorbell $(bench_append)" "${region_args[@]}"
	a=$guest_pid
	start_guest bench-stages-b "$plan_bench_stages_b" \
		"ivshm.role=b ivshm.mode=doorbell $(bench_append)" "${region_args[@]}"
	b=$guest_pid
	bench_follow bench-stages-b "$b"
	wait_guests "bench-stages-a:$a" "bench-stages-b:$b"
	report bench-stages bench-stages-a
	report bench-stages bench-stages-b
	out=${BENCH_OUT:-$work}/stages.md
	if "$IVSHM_ROOT/scripts/bench-stages.py" \
		--client <(tr -d '\r' <"$work/bench-stages-b.results") \
		--server <(tr -d '\r' <"$work/bench-stages-a.results") \
		>"$out"; then
		pass "bench-stages: the round trips split into stages ($out)"
		sed 's/^/  /' "$out"
	else
		fail "bench-stages: the traces could not be split into stages"
	fi
}

# Rebalancing off against on, in one dev_shm guest.
run_bench_rebal() {
	ivshm_log "placement bench-rebal: one guest, dev_shm, a bulk transfer with rebalancing off and on"
	start_guest bench-rebal "$plan_bench_rebal" ""
	wait_guests "bench-rebal:$guest_pid"
	report bench-rebal bench-rebal
	echo
	grep -h -E '^(rebal_bench|rebalancing|ratio)' "$work/bench-rebal.results" |
		tr -d '\r' | sed 's/^/  /'
	echo
}

run_placement() {
	case $1 in
	devshm) run_devshm ;;
	netlink) run_netlink ;;
	doorbell) run_doorbell ;;
	plain) run_plain ;;
	trio) run_trio ;;
	pingpong) run_pingpong ;;
	sysfuzz) run_sysfuzz ;;
	crash) run_crash ;;
	pause) run_pause ;;
	hammer) run_hammer ;;
	hostile) run_hostile ;;
	demo) run_doorbell demo "$plan_demo_a" "$plan_demo_b" ;;
	soak)
		REGION_SIZE=33554432 run_doorbell soak "$plan_soak_a" "$plan_soak_b" ;;
	bench-one) run_bench_one ;;
	bench-doorbell | bench-plain) REGION_SIZE=33554432 run_bench_two "$1" ;;
	bench-raw) REGION_SIZE=33554432 run_bench_raw ;;
	bench-rebal) run_bench_rebal ;;
	bench-stages) run_bench_stages ;;
	selftest-hang | selftest-panic | selftest-kill) run_selftest "${1#selftest-}" ;;
	*) ivshm_die "unknown placement '$1'" ;;
	esac
}

start=$SECONDS
for p in ${placements//,/ }; do
	# A guest whose kernel dies while booting, before its first step
	# (TCG has been seen to trip over the kernel's own code patching),
	# has run none of our code: its placement is run once more.
	for attempt in 1 2; do
		counts="$passed $failed $skipped"
		boot_failed=0
		t0=$SECONDS
		run_placement "$p"
		# Stop this placement's helpers before the next one starts.
		stop_all
		ivshm_log "placement $p took $((SECONDS - t0)) s"
		[ "$boot_failed" = 1 ] && [ "$attempt" = 1 ] || break
		read -r passed failed skipped <<<"$counts"
		rm -f "$work"/*.status
		ivshm_log "placement $p: a guest died while booting, before any step ran; running the placement again"
	done
done

ivshm_log "guests ($kernel kernel) finished in $((SECONDS - start)) s"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
