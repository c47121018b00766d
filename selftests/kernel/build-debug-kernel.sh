#!/usr/bin/env bash
# Build (or reuse from cache) a small sanitizer-enabled x86_64 debug kernel for
# running the test suite in QEMU/TCG guests.
#
#   KDIR=$(selftests/kernel/build-debug-kernel.sh [debug|kcsan])
#
# debug (the default): KASAN, lockdep, UBSAN, KFENCE, kmemleak, from
# debug.config. kcsan: the same without KASAN and with KCSAN (kcsan.config),
# a second kernel cached beside the first, for data races.
#
# The only thing written to stdout is the kernel build directory ($KDIR); it
# contains vmlinux, arch/x86/boot/bzImage and everything needed for
#   make -C "$KDIR" M=/path/to/module modules
# Progress goes to stderr.  See selftests/kernel/README.md.
#
# Environment:
#   IVSHM_CACHE      cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/af-ivshmem)
#   LINUX_SOURCE_TARBALL  (default /usr/src/linux-source-6.1.tar.xz)
#   JOBS             parallel make jobs (default: nproc)
#   FORCE_REBUILD=1  ignore the completion stamp and rebuild in place
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VARIANT=${1:-debug}
PKG=linux-source-6.1
TARBALL=${LINUX_SOURCE_TARBALL:-/usr/src/$PKG.tar.xz}
CACHE=${IVSHM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/af-ivshmem}
JOBS=${JOBS:-$(nproc)}
STAMP_NAME=.af-ivshmem-build-complete

# Do not let a calling make (MAKEFLAGS may carry M=, O=, -s, V=, jobserver fds)
# or the caller's kbuild environment change what gets built.
unset MAKEFLAGS MAKELEVEL MFLAGS KBUILD_OUTPUT KBUILD_EXTMOD KCONFIG_CONFIG \
	KCFLAGS KCPPFLAGS KAFLAGS LOCALVERSION CROSS_COMPILE LLVM ARCH SUBARCH

log() { printf '[build-debug-kernel] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------------------
# Config logic.  The text of these functions (as printed by `declare -f`, i.e.
# without comments) is part of the build-directory hash, so changing how the
# kernel is configured/built automatically yields a fresh build directory.
# ---------------------------------------------------------------------------
configure_kernel() {
	local src=$1 out=$2 frag=$3
	make -C "$src" O="$out" ARCH=x86_64 tinyconfig
	"$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "$frag"
	make -C "$src" O="$out" ARCH=x86_64 olddefconfig
}

# Kconfig silently drops options whose dependencies are not met; check that
# every assignment of the fragment survived into the final .config.
verify_config() {
	local frag=$1 config=$2 line opt val missing=()
	while IFS= read -r line; do
		if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
			opt=${BASH_REMATCH[1]} val=${BASH_REMATCH[2]}
			# shellcheck disable=SC1087 # "$opt[= ]" is a regex bracket, not an array
			grep -qxF -- "$opt=$val" "$config" ||
				missing+=("$opt=$val (got: $(grep -E "^(# )?$opt[= ]" "$config" || echo 'absent'))")
		elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
			opt=${BASH_REMATCH[1]}
			! grep -qE "^$opt=" "$config" ||
				missing+=("$opt is not set (got: $(grep -E "^$opt=" "$config"))")
		fi
	done <"$frag"
	if ((${#missing[@]})); then
		log "the following options of $frag did not end up in $config"
		log "(missing Kconfig dependencies, or not available in this kernel version):"
		printf '    %s\n' "${missing[@]}" >&2
		return 1
	fi
}

build_kernel() {
	local src=$1 out=$2
	make -C "$src" O="$out" ARCH=x86_64 -j"$JOBS" vmlinux bzImage modules modules_prepare
}
# --------------------------------------------------------------------------- end of config logic

command -v dpkg-query >/dev/null || die "dpkg-query not found (Debian host expected)"
PKG_VERSION=$(dpkg-query -W -f='${Version}' "$PKG" 2>/dev/null) ||
	die "package $PKG is not installed (apt-get install $PKG)"
[[ -r $TARBALL ]] || die "$TARBALL not found"
case $VARIANT in
debug)
	FRAGMENT=$SCRIPT_DIR/debug.config
	;;
kcsan)
	# KASAN and KCSAN exclude each other: debug.config without KASAN.
	mkdir -p "$CACHE"
	FRAGMENT=$(mktemp "$CACHE/kcsan.config.XXXXXX")
	trap 'rm -f "$FRAGMENT"' EXIT
	{
		grep -v 'KASAN' "$SCRIPT_DIR/debug.config"
		cat "$SCRIPT_DIR/kcsan.config"
	} >"$FRAGMENT"
	;;
*)
	die "unknown kernel variant '$VARIANT' (debug or kcsan)"
	;;
esac
[[ -r $FRAGMENT ]] || die "$FRAGMENT not found"

HASH=$({
	printf 'pkg=%s\n' "$PKG_VERSION"
	printf 'cc=%s\n' "$(gcc --version 2>/dev/null | head -n1)"
	cat "$FRAGMENT"
	declare -f configure_kernel verify_config build_kernel
} | sha256sum | cut -c1-12)

SRC=$CACHE/src/$PKG-$PKG_VERSION
OUT=$CACHE/$VARIANT-kernel-$HASH
STAMP=$OUT/$STAMP_NAME

# Fast path: cache hit.
if [[ -e $STAMP && ${FORCE_REBUILD:-0} != 1 ]]; then
	log "cache hit: $OUT"
	printf '%s\n' "$OUT"
	exit 0
fi

mkdir -p "$CACHE/src"
# Serialise concurrent invocations (they would otherwise race on the same dirs).
exec 9>"$CACHE/.build-debug-kernel.lock"
if ! flock -n 9; then
	log "another build is running, waiting for $CACHE/.build-debug-kernel.lock ..."
	flock 9
fi
if [[ -e $STAMP && ${FORCE_REBUILD:-0} != 1 ]]; then
	log "cache hit (built by a concurrent run): $OUT"
	printf '%s\n' "$OUT"
	exit 0
fi

TMP_EXTRACT=
cleanup() {
	[[ -z $TMP_EXTRACT ]] || rm -rf -- "$TMP_EXTRACT"
	[[ $VARIANT == debug ]] || rm -f -- "$FRAGMENT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
# Leftovers of interrupted extractions (safe to remove: we hold the lock).
rm -rf -- "$CACHE"/src/.extract.*

# Extract the kernel source once.  Extract into a temporary directory next to
# the destination and rename it into place, so an interrupted run never leaves
# a partial tree under the final name.
if [[ ! -d $SRC ]]; then
	log "extracting $TARBALL -> $SRC (once, ~15 s)"
	TMP_EXTRACT=$(mktemp -d "$CACHE/src/.extract.XXXXXX")
	xz -T0 -dc "$TARBALL" | tar -x -C "$TMP_EXTRACT" -f -
	[[ -f $TMP_EXTRACT/$PKG/Makefile ]] || die "unexpected tarball layout (no $PKG/Makefile)"
	mv -T -- "$TMP_EXTRACT/$PKG" "$SRC"
	rm -rf -- "$TMP_EXTRACT"
	TMP_EXTRACT=
fi

mkdir -p "$OUT"
rm -f "$STAMP"
LOG=$OUT/build.log
: >"$LOG"
log "building the $VARIANT kernel in $OUT (log: $LOG; takes several minutes)"

run_logged() {
	local what=$1
	shift
	log "  $what"
	if ! "$@" >>"$LOG" 2>&1; then
		log "FAILED: $what; last lines of $LOG:"
		tail -n 60 "$LOG" >&2
		exit 1
	fi
}

SECONDS=0
run_logged "configure (tinyconfig + $(basename "$FRAGMENT"))" configure_kernel "$SRC" "$OUT" "$FRAGMENT"
verify_config "$FRAGMENT" "$OUT/.config" || die "kernel configuration incomplete, see above"
cp "$FRAGMENT" "$OUT/debug.config.used"
run_logged "make -j$JOBS vmlinux bzImage modules modules_prepare" build_kernel "$SRC" "$OUT"
for f in vmlinux arch/x86/boot/bzImage Module.symvers scripts/mod/modpost; do
	[[ -e $OUT/$f ]] || die "build finished but $OUT/$f is missing"
done
date -u +%FT%TZ >"$STAMP"
log "done in ${SECONDS}s: $OUT ($(cat "$OUT/include/config/kernel.release"))"

# Builds for an older fragment are never used again: about 300 MB each.
for old in "$CACHE/$VARIANT"-kernel-*; do
	[[ -d $old && $old != "$OUT" ]] || continue
	log "removing stale build $old"
	rm -rf -- "$old"
done
printf '%s\n' "$OUT"
