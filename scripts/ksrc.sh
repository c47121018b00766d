#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Extract the few files this project takes from Debian's linux-source-6.1
# tarball (checkpatch.pl and its data files, extract-vmlinux, the kselftest
# harness headers) into the cache, once per package version, and print the
# directory. Nothing extracted here is ever committed.
set -euo pipefail
. "$(dirname "$0")/common.sh"

tarball=/usr/src/linux-source-6.1.tar.xz
[ -f "$tarball" ] || ivshm_die "$tarball is missing (package linux-source-6.1)"
ver=$(dpkg-query -W -f='${Version}' linux-source-6.1)
dir=$IVSHM_CACHE/ksrc-$ver

if [ ! -f "$dir/.complete" ]; then
	ivshm_log "extracting checkpatch and the kselftest harness from linux-source $ver"
	mkdir -p "$IVSHM_CACHE"
	tmp=$(mktemp -d "$IVSHM_CACHE/ksrc.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	tar -xJf "$tarball" -C "$tmp" --strip-components=1 \
		linux-source-6.1/scripts/checkpatch.pl \
		linux-source-6.1/scripts/spelling.txt \
		linux-source-6.1/scripts/const_structs.checkpatch \
		linux-source-6.1/scripts/extract-vmlinux \
		linux-source-6.1/tools/testing/selftests/kselftest.h \
		linux-source-6.1/tools/testing/selftests/kselftest_harness.h
	touch "$tmp/.complete"
	rm -rf "$dir"
	mv "$tmp" "$dir"
	trap - EXIT
fi
echo "$dir"
