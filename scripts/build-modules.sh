#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# build-modules.sh KDIR OUTDIR [kbuild arguments...]
#
# Build af_ivshmem.ko and dev_shm.ko against the kernel tree KDIR in OUTDIR,
# a mirror of the module sources, so that builds against several kernels
# never mix their objects and the checkout stays free of build outputs.
set -euo pipefail
. "$(dirname "$0")/common.sh"

[ $# -ge 2 ] || ivshm_die "usage: build-modules.sh KDIR OUTDIR [kbuild args]"
kdir=$1 out=$2
shift 2
[ -f "$kdir/Makefile" ] || ivshm_die "$kdir is not a kernel build tree"

mkdir -p "$out"
out=$(cd "$out" && pwd)
# Build outputs are excluded first, which also keeps --delete from removing
# them, so a rebuild is incremental; sources removed from the checkout do
# leave the mirror.
rsync -rlpc --delete \
	--exclude='*.o' --exclude='*.ko' --exclude='.*.cmd' --exclude='*.mod' \
	--exclude='*.mod.c' --exclude='modules.order' --exclude='Module.symvers' \
	--include='/Kbuild' --include='/net/***' --include='/dev_shm/***' \
	--include='/include/***' --include='/selftests/' \
	--include='/selftests/kmod/***' --exclude='*' \
	"$IVSHM_ROOT/" "$out/src/"
# Debian kernels offer BTF for modules but ship no vmlinux to build it from.
make -s -C "$kdir" M="$out/src" CONFIG_DEBUG_INFO_BTF_MODULES= "$@" modules
