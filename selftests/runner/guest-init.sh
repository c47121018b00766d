#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the test guests. The runner describes the guest on the kernel
# command line (ivshm.plan=STEP,STEP,... and facts the tests read); this
# script runs the steps in order, writes everything the tests print to the
# second serial port (the results channel; the first carries the kernel
# log), and powers the guest off.
#
# Steps: insmod-MODULE[:PARAMS] loads a module (":" separates parameters,
# "+" stands for a space), NAME runs /tests/NAME, NAME:ARG runs it with
# one argument, "net-up:ADDR" brings up eth0 (virtio-net) with ADDR/24,
# loading the runner's copies of the drivers first where they are modules,
# and "leakcheck" asks kmemleak for a scan when the kernel has it. "hang" and "panic" exist
# for the runner's own tests: a guest that never finishes, and one whose
# kernel dies.

/bin/busybox mkdir -p /proc /sys /dev /tmp /run
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
/bin/busybox --install -s /bin
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
echo 20 >/proc/sys/kernel/hung_task_timeout_secs 2>/dev/null
# kmemleak's own periodic scan would stall the tests' timed waits for
# seconds on a KASAN kernel under TCG; leakcheck scans when the tests are
# done, which is what counts.
echo scan=off >/sys/kernel/debug/kmemleak 2>/dev/null

exec >/dev/ttyS1 2>&1

param() {
	for word in $(cat /proc/cmdline); do
		case $word in
		"ivshm.$1="*) echo "${word#ivshm.$1=}" ;;
		esac
	done
}

step_rc() {
	echo "IVSHM-STEP-RC $1 $2"
}

leakcheck() {
	if [ ! -e /sys/kernel/debug/kmemleak ]; then
		echo "ok 1 # SKIP leakcheck: this kernel has no kmemleak"
		return 0
	fi
	# Two scans: an object is reported only once it has stayed
	# unreferenced across a full scan, and freed memory may sit in
	# per-CPU caches or RCU callbacks for a moment.
	sleep 1
	echo scan >/sys/kernel/debug/kmemleak
	sleep 1
	echo scan >/sys/kernel/debug/kmemleak
	if [ -s /sys/kernel/debug/kmemleak ]; then
		echo "kmemleak: suspected memory leaks found by leakcheck" >/dev/kmsg
		cat /sys/kernel/debug/kmemleak >/dev/kmsg
		cat /sys/kernel/debug/kmemleak
		echo "not ok 1 leakcheck: kmemleak reports suspected leaks"
	else
		echo "ok 1 leakcheck: kmemleak reports no leak"
	fi
}

# The runner lists the modules virtio-net needs, in load order, in
# /lib/modules/net/order; a kernel with the drivers built in has none.
net_up() {
	if [ -f /lib/modules/net/order ]; then
		for m in $(cat /lib/modules/net/order); do
			insmod "/lib/modules/net/$m.ko" || return 1
		done
	fi
	for _ in $(seq 50); do
		[ -e /sys/class/net/eth0 ] && break
		sleep 0.1
	done
	ip link set lo up &&
		ip link set eth0 up &&
		ip addr add "$1/24" dev eth0
}

echo "IVSHM-GUEST-START $(param name) $(uname -r)"
for step in $(param plan | tr ',' ' '); do
	echo "IVSHM-STEP $step"
	case $step in
	insmod-*)
		spec=${step#insmod-}
		mod=${spec%%:*}
		args=
		[ "$mod" != "$spec" ] && args=$(echo "${spec#*:}" | tr '+' ' ')
		# shellcheck disable=SC2086
		insmod "/lib/modules/ivshmem/$mod.ko" $args
		step_rc "$step" $?
		;;
	rmmod-*)
		rmmod "${step#rmmod-}"
		step_rc "$step" $?
		;;
	net-up:*)
		net_up "${step#net-up:}"
		step_rc "$step" $?
		;;
	leakcheck)
		leakcheck
		step_rc "$step" 0
		;;
	hang)
		while :; do sleep 1000; done
		;;
	panic)
		echo c >/proc/sysrq-trigger
		;;
	*:*)
		"/tests/${step%%:*}" "${step#*:}"
		step_rc "$step" $?
		;;
	*)
		"/tests/$step"
		step_rc "$step" $?
		;;
	esac
done
echo "IVSHM-GUEST-DONE"
sync
poweroff -f
