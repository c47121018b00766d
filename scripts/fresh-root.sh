#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The README's promise, tried as a new user would: on a minimal Debian 12
# root with only git and make added, a clone of the committed main runs
# `make demo` and `make check`, each started as a background job of a
# non-interactive shell with standard input from /dev/null (as CI runners
# and nohup start them), installing everything else itself.
#
#   fresh-root.sh [--full]
#
# Quick form (the default, run by make check): make demo (two guests on
# Debian's 6.1 kernel, the ivshmem server), then make check with
# CHECK_PHASES="lint native quick": both W=1 builds and sparse,
# checkpatch, the native tests, a short fuzz, the server and runner tests,
# make bench's two doorbell guests on Debian's 6.12 kernel, and a guest on
# the debug kernel, which is built from source on the way. That walks every
# dependency path: each package deps.sh installs is used.
# --full runs the whole make check there instead (about as long as make
# check itself, plus the installs and the debug kernel build).
#
# The base root (debootstrap --variant=minbase bookworm, plus git and make)
# is made once and cached as a tarball in $IVSHM_CACHE/fresh-root;
# FRESH_ROOT_REFRESH=1 makes it again. Every run unpacks a new copy, so
# nothing one run installs is seen by the next. The root runs in its own
# mount and PID namespaces: everything started in it ends with it, and
# nothing it mounts is visible outside. FRESH_MIRROR names the Debian
# mirror (default http://deb.debian.org/debian); FRESH_APT_CACHE (default
# the host's /var/cache/apt/archives, empty for none) lends the root the
# host's downloaded packages, so a run downloads only what the host never
# did; apt still resolves and installs every package in the root.
# Kernel packages installed there skip making an initramfs (INITRD=No, the
# knob of Debian's kernel hooks): the guests boot the kernel image with an
# initramfs of their own, and a chroot has nothing to boot.
#
# The logs of the last run stay in build/fresh-root/.
set -euo pipefail
. "$(dirname "$0")/common.sh"
. "$IVSHM_ROOT/scripts/tap.sh"

full=0
case ${1:-} in
--full) full=1 ;;
"") ;;
*) ivshm_die "usage: fresh-root.sh [--full]" ;;
esac
[ "$(id -u)" = 0 ] || ivshm_die "fresh-root.sh needs root (debootstrap, chroot)"
command -v debootstrap >/dev/null ||
	ivshm_die "debootstrap is not installed (package debootstrap; scripts/deps.sh installs it)"

mirror=${FRESH_MIRROR:-http://deb.debian.org/debian}
apt_cache=${FRESH_APT_CACHE-/var/cache/apt/archives}
cache=$IVSHM_CACHE/fresh-root
base=$cache/bookworm-minbase-git-make.tar

# --- the cached base root ----------------------------------------------------

make_base() {
	local tmp
	mkdir -p "$cache"
	tmp=$(mktemp -d "$cache/base.XXXXXX")
	# shellcheck disable=SC2064 # expand $tmp now
	trap "rm -rf '$tmp'" EXIT
	ivshm_log "fresh-root: debootstrap --variant=minbase bookworm (cached after this run)"
	debootstrap --variant=minbase bookworm "$tmp/root" "$mirror" >"$tmp/debootstrap.log" 2>&1 || {
		tail -n 20 "$tmp/debootstrap.log" >&2
		ivshm_die "debootstrap failed"
	}
	# The sources of an installed Debian 12: the release, its updates
	# and its security updates (Debian's 6.12 kernel comes from there).
	cat >"$tmp/root/etc/apt/sources.list" <<-EOF
	deb $mirror bookworm main
	deb $mirror bookworm-updates main
	deb http://deb.debian.org/debian-security bookworm-security main
	EOF
	cp /etc/resolv.conf "$tmp/root/etc/resolv.conf"
	in_root "$tmp/root" "apt-get update -q && apt-get install -y -q --no-install-recommends git make" \
		>"$tmp/apt.log" 2>&1 || {
		tail -n 20 "$tmp/apt.log" >&2
		ivshm_die "installing git and make into the base root failed"
	}
	rm -rf "$tmp/root/var/cache/apt/archives/"*.deb "$tmp/root/var/lib/apt/lists/"*_*
	tar -C "$tmp/root" -cf "$tmp/base.tar" .
	mv "$tmp/base.tar" "$base"
	rm -rf "$tmp"
	trap - EXIT
}

# in_root ROOT COMMAND: run COMMAND with bash inside ROOT, in new mount and
# PID namespaces, with /proc, /sys and the host's /dev, a clean
# environment, and the host's package downloads where FRESH_APT_CACHE says.
in_root() {
	local root=$1 cmd=$2
	unshare --mount --pid --fork --propagation private -- /bin/bash -c '
		set -e
		root=$1 apt_cache=$2
		mount -t proc proc "$root/proc"
		mount -t sysfs sysfs "$root/sys"
		mount --rbind /dev "$root/dev"
		if [ -n "$apt_cache" ] && [ -d "$apt_cache" ]; then
			mount --bind "$apt_cache" "$root/var/cache/apt/archives"
		fi
		exec chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb INITRD=No \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			/bin/bash -c "$3"
	' in_root "$root" "$apt_cache" "$cmd"
}

if [ ! -f "$base" ] || [ "${FRESH_ROOT_REFRESH:-0}" = 1 ]; then
	make_base
fi

# --- one run -----------------------------------------------------------------

work=$(mktemp -d /var/tmp/ivshm-fresh.XXXXXX)
logs=$IVSHM_BUILD/fresh-root
rm -rf "$logs"
mkdir -p "$logs"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'ivshm_log "interrupted"; exit 130' INT TERM HUP

ivshm_log "fresh-root: unpacking a new root in $work"
mkdir "$work/root"
tar -C "$work/root" -xf "$base"
cp /etc/resolv.conf "$work/root/etc/resolv.conf"
mkdir -p "$work/root/mnt/origin"
# The committed main (the checkout's branch, or HEAD when detached), cloned
# by the root's own git, as a user would.
# The bundle carries HEAD too, which a clone checks out.
refs=(HEAD)
branch=$(git -C "$IVSHM_ROOT" symbolic-ref -q --short HEAD) && refs+=("$branch")
git -C "$IVSHM_ROOT" bundle create "$work/root/mnt/origin/main.bundle" \
	"${refs[@]}" >/dev/null 2>&1 || ivshm_die "cannot bundle the checkout's ${refs[*]}"
in_root "$work/root" "git clone -q /mnt/origin/main.bundle /root/af-ivshmem &&
	test -f /root/af-ivshmem/Makefile" ||
	ivshm_die "git clone inside the fresh root failed"

if [ "$full" = 1 ]; then
	check_env="CHECK_PHASES='lint native guests pingpong bench guests-6.12 debug'"
else
	check_env="CHECK_PHASES='lint native quick' FUZZ_SECONDS=5"
fi

# step NAME COMMAND: run COMMAND in the root's checkout as a background job
# of a non-interactive shell, stdin from /dev/null; log it, time it.
step() {
	local name=$1 cmd=$2 t0=$SECONDS rc=0 log
	log=$logs/$(echo "$1" | tr -c 'a-z0-9\n' '-').log
	ivshm_log "fresh-root: $name"
	in_root "$work/root" "cd /root/af-ivshmem && { $cmd </dev/null & wait \$!; }" \
		>"$log" 2>&1 || rc=$?
	tap_result "$rc" "fresh root: $name ($((SECONDS - t0)) s)" "$log"
	grep -h '^installing: ' "$log" | sed 's/^/#   /' || true
	sed -n '/^==== summary/,$p' "$log" | sed 's/^/#   /'
	return 0
}

step "make demo" "make demo"
step "make check ($([ "$full" = 1 ] && echo full || echo quick))" "$check_env make check"
tap_summary
