#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install whatever this project needs on a Debian 12 machine. Idempotent:
# when everything is present it only asks dpkg and returns.
set -euo pipefail

pkgs=(
	# building the modules and user space
	gcc make libc6-dev pkg-config clang llvm libclang-rt-14-dev libmnl-dev rsync
	linux-headers-amd64 linux-headers-6.12-amd64 sparse
	# the guest kernels (booted uncompressed) and the debug kernel build
	linux-image-amd64 linux-image-6.12-amd64
	linux-source-6.1 xz-utils flex bison bc libelf-dev libssl-dev
	# guests
	qemu-system-x86 qemu-utils busybox-static cpio kmod
	# the guest kernels' images: 6.1 is xz-compressed, 6.12 zstd
	zstd binutils
	# helpers used by the scripts
	perl python3 procps valgrind gnuplot-nox iproute2 git util-linux
	# the fresh-root check (scripts/fresh-root.sh)
	debootstrap
)

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "error: missing packages: ${missing[*]}; run this as root" >&2
	exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2
apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
