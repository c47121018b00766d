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
#   kcsan      the same with KCSAN instead of KASAN, cached beside it.
#
# Anything that keeps a guest kernel from being prepared (no image, no
# headers, no decompressor for the image, an image that does not unpack to
# an ELF) is one error naming the cause and the package that cures it, and
# a non-zero exit: nothing half-made is ever printed or cached.
#
# IVSHM_BOOT (default /boot) is where the kernel images and their configs
# are looked for; the runner's own tests point it elsewhere.
set -euo pipefail
. "$(dirname "$0")/common.sh"

# The decompressor for a kernel built with CONFIG_KERNEL_<KIND>, its magic
# bytes (a grep -P pattern) and the package that provides it.
declare -A unpack=(
	[GZIP]="gunzip|\\x1f\\x8b\\x08|gzip"
	[XZ]="unxz|\\xfd7zXZ\\x00|xz-utils"
	[ZSTD]="unzstd|\\x28\\xb5\\x2f\\xfd|zstd"
	[BZIP2]="bunzip2|BZh|bzip2"
	[LZMA]="unlzma|\\x5d\\x00\\x00\\x00|xz-utils"
	[LZ4]="lz4 -d|\\x02\\x21\\x4c\\x18|lz4"
	[LZO]="lzop -d|\\x89\\x4c\\x5a|lzop"
)

# extract IMAGE CONFIG OUT: write the vmlinux inside IMAGE to OUT, or die
# saying why. The compression comes from the kernel's own configuration,
# the payload's offset from the first place its magic bytes make a
# decompressor yield an ELF.
extract() {
	local img=$1 config=$2 out=$3 kind tool magic pkg off
	[ -r "$config" ] || ivshm_die "cannot read $config, the configuration of $img (package linux-image-${img##*/vmlinuz-})"
	kind=$(sed -n 's/^CONFIG_KERNEL_\(GZIP\|XZ\|ZSTD\|BZIP2\|LZMA\|LZ4\|LZO\)=y$/\1/p' "$config")
	[ -n "$kind" ] && [ -n "${unpack[$kind]:-}" ] ||
		ivshm_die "$config names no kernel compression this script knows"
	IFS='|' read -r tool magic pkg <<<"${unpack[$kind]}"
	command -v "${tool%% *}" >/dev/null ||
		ivshm_die "cannot extract vmlinux from $img: it is ${kind,,}-compressed and '${tool%% *}' is not installed (install package $pkg)"
	command -v readelf >/dev/null ||
		ivshm_die "cannot check the vmlinux extracted from $img: 'readelf' is not installed (install package binutils)"
	for off in $(LC_ALL=C grep -aboP "$magic" "$img" | cut -d: -f1); do
		# Trailing bytes after the payload make the decompressor
		# complain; the ELF check below is what decides.
		tail -c +$((off + 1)) "$img" | $tool >"$out" 2>/dev/null || true
		readelf -h "$out" >/dev/null 2>&1 && return 0
	done
	rm -f "$out"
	ivshm_die "no vmlinux found inside $img (${kind,,} payload not found or corrupt; reinstall package linux-image-${img##*/vmlinuz-})"
}

boot=${IVSHM_BOOT:-/boot}
kind=${1:-6.1}
case $kind in
debug | kcsan)
	kdir=$("$IVSHM_ROOT/selftests/kernel/build-debug-kernel.sh" "$kind") ||
		ivshm_die "the $kind kernel could not be built (see the messages above)"
	# PVH cannot boot a KASAN kernel on 6.1 (selftests/kernel/README.md).
	echo "$kdir/arch/x86/boot/bzImage $kdir"
	;;
6.1 | 6.12)
	pkg=linux-image-amd64
	[ "$kind" = 6.12 ] && pkg=linux-image-6.12-amd64
	compgen -G "$boot/vmlinuz-$kind.*-amd64" >/dev/null ||
		ivshm_die "no Debian $kind kernel image in $boot (package $pkg; scripts/deps.sh installs it)"
	kver=$(IVSHM_BOOT=$boot ivshm_kver "$kind")
	[ -n "$kver" ] ||
		ivshm_die "no headers for the Debian $kind kernel in $boot (package ${pkg/image/headers}; scripts/deps.sh installs it)"
	vmlinux=$IVSHM_CACHE/vmlinux-$kver
	if ! readelf -h "$vmlinux" >/dev/null 2>&1; then
		mkdir -p "$IVSHM_CACHE"
		extract "$boot/vmlinuz-$kver" "$boot/config-$kver" "$vmlinux.tmp"
		mv "$vmlinux.tmp" "$vmlinux"
	fi
	echo "$vmlinux /usr/src/linux-headers-$kver"
	;;
*)
	ivshm_die "unknown kernel '$kind' (6.1, 6.12, debug or kcsan)"
	;;
esac
