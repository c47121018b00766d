# SPDX-License-Identifier: GPL-2.0
# Shared settings for the build and test scripts; source it, do not run it.

IVSHM_ROOT=${IVSHM_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
# Everything downloaded or built from outside the checkout lives here.
IVSHM_CACHE=${IVSHM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/af-ivshmem}
IVSHM_BUILD=${IVSHM_BUILD:-$IVSHM_ROOT/build}

ivshm_log() { printf '%s\n' "$*" >&2; }
ivshm_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Newest installed Debian kernel of a series ("6.1" or "6.12"), e.g.
# 6.1.0-56-amd64, with its image in IVSHM_BOOT (default /boot) and its
# headers installed; empty if there is none.
ivshm_kver() {
	local series=$1 boot=${IVSHM_BOOT:-/boot} f v best=
	for f in "$boot"/vmlinuz-"$series".*-amd64; do
		[ -e "$f" ] || continue
		v=${f#"$boot"/vmlinuz-}
		[ -d "/usr/src/linux-headers-$v" ] || continue
		best+="$v"$'\n'
	done
	printf '%s' "$best" | sort -V | tail -n 1
}

# Whether QEMU can give virtio-net the kernel's vhost-net backend here:
# "on" where /dev/vhost-net can be opened for reading and writing, "off"
# otherwise (make bench's TCP, selftests/runner/run.sh).
ivshm_vhost_net() {
	if [ -c /dev/vhost-net ] && [ -r /dev/vhost-net ] && [ -w /dev/vhost-net ]; then
		echo on
	else
		echo off
	fi
}
