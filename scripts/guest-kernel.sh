#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Print "VMLINUX KDIR" for a guest kernel:
#   6.1, 6.12  Debian's kernel of that series: the uncompressed vmlinux is
#              extracted from /boot/vmlinuz-VER once into the cache (QEMU
#              boots it directly through PVH, skipping decompression), and
#              KDIR is the matching headers package.
#   debug      the debug kernel (its bzImage), built from linux-source-6.1
#              and cached.
set -euo pipefail
. "$(dirname "$0")/common.sh"

kind=${1:-6.1}
case $kind in
debug)
	kdir=$("$IVSHM_ROOT/selftests/kernel/build-debug-kernel.sh")
	# PVH cannot boot a KASAN kernel on 6.1 (selftests/kernel/README.md).
	echo "$kdir/arch/x86/boot/bzImage $kdir"
	;;
6.1 | 6.12)
	kver=$(ivshm_kver "$kind")
	[ -n "$kver" ] || ivshm_die "no Debian $kind kernel with headers installed (run scripts/deps.sh)"
	vmlinux=$IVSHM_CACHE/vmlinux-$kver
	if [ ! -s "$vmlinux" ]; then
		ksrc=$("$IVSHM_ROOT/scripts/ksrc.sh")
		mkdir -p "$IVSHM_CACHE"
		sh "$ksrc/scripts/extract-vmlinux" "/boot/vmlinuz-$kver" \
			>"$vmlinux.tmp"
		mv "$vmlinux.tmp" "$vmlinux"
	fi
	echo "$vmlinux /usr/src/linux-headers-$kver"
	;;
*)
	ivshm_die "unknown kernel '$kind' (6.1, 6.12 or debug)"
	;;
esac
