#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build af_ivshmem.ko and dev_shm.ko for the running kernel and load them,
# giving this machine "peers" virtual VMs on one shared region without any
# virtual machine. Needs root, the headers of the running kernel and a
# kernel that accepts modules.
#
#   dev_shm/build_and_load.sh [peers=N] [size=BYTES] [vectors=N]
#
# Run it again to rebuild and reload (with new parameters).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kdir=${KDIR:-/lib/modules/$(uname -r)/build}
out=$root/build/kmod/$(uname -r)

if [ ! -f "$kdir/Makefile" ]; then
	echo "error: no kernel build tree at $kdir (install linux-headers-$(uname -r) or set KDIR)" >&2
	exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "error: loading modules needs root" >&2
	exit 1
fi

"$root/scripts/build-modules.sh" "$kdir" "$out"

# Reload: dev_shm first, since it depends on af_ivshmem.
if [ -e /sys/module/dev_shm ]; then rmmod dev_shm; fi
if [ -e /sys/module/af_ivshmem ]; then rmmod af_ivshmem; fi
insmod "$out/src/net/ivshmem/af_ivshmem.ko"
insmod "$out/src/dev_shm/dev_shm.ko" "$@"

echo "loaded: address family $(cat /sys/module/af_ivshmem/parameters/family), $(cat /sys/module/dev_shm/parameters/peers) virtual peers"
