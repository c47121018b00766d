#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# selftests/fuzz/run.sh SECONDS [libFuzzer options...]
#
# Builds the fuzz targets and fuzzes one for SECONDS over a temporary copy
# of its committed corpus: TARGET=region_fuzz (the default; corpus/) or
# TARGET=conn_fuzz (conn-corpus/). The corpus is left alone unless
# UPDATE_CORPUS=1, which merges what the run found into it, minimised.
# A crash, sanitizer report, invariant violation, timeout (-timeout=2: a
# slow input is a finding) or out-of-memory fails the run; the inputs are
# kept in $BUILD/fuzz/artifacts/ and the full log in
# $BUILD/fuzz/TARGET-last-run.log. The last line is "N passed, N failed".
#
# Environment: BUILD (default build/ at the top), KEEP=1 keeps the working
# directory, JOBS=n runs n fuzzing processes (default 1).

set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${1:-}
if [[ ! $secs =~ ^[0-9]+$ ]] || (( secs < 1 )); then
	echo "usage: $0 SECONDS [libFuzzer options...]" >&2
	exit 2
fi
shift
BUILD=${BUILD:-$root/build}
jobs=${JOBS:-1}

target=${TARGET:-region_fuzz}
case $target in
region_fuzz) corpus=$here/corpus ;;
conn_fuzz) corpus=$here/conn-corpus ;;
*) echo "run.sh: unknown TARGET $target" >&2; exit 2 ;;
esac

make -s -C "$here" BUILD="$BUILD" || { echo "0 passed, 1 failed"; exit 1; }
bin=$BUILD/fuzz/$target
out=$BUILD/fuzz
work=$(mktemp -d "${TMPDIR:-/tmp}/$target.XXXXXX")
cleanup() {
	if [[ ${KEEP:-0} == 1 ]]; then
		echo "run.sh: working directory kept: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/corpus" "$work/artifacts" "$out"
cp "$corpus"/* "$work/corpus/"
log=$out/$target-last-run.log

# Every option that decides pass or fail is here; extra ones follow.
opts=(-max_total_time="$secs" -timeout=2 -rss_limit_mb=2048
      -max_len=65537 -print_final_stats=1
      -artifact_prefix="$work/artifacts/")
if (( jobs > 1 )); then
	opts+=(-fork="$jobs" -ignore_crashes=0 -ignore_timeouts=0 -ignore_ooms=0)
fi

echo "run.sh: $target for ${secs}s, corpus copy in $work/corpus, log $log"
# Progress on the terminal, without the NEW/REDUCE chatter.
"$bin" "${opts[@]}" "$@" "$work/corpus" 2>&1 | tee "$log" |
	grep --line-buffered -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE)[[:space:]]'
rc=${PIPESTATUS[0]}

fail=0
(( rc != 0 )) && fail=1
if grep -q -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|INVARIANT|SUMMARY: ' "$log"; then
	fail=1
fi
if compgen -G "$work/artifacts/*" >/dev/null; then
	fail=1
	mkdir -p "$out/artifacts"
	cp "$work"/artifacts/* "$out/artifacts/"
	echo "run.sh: failing inputs copied to $out/artifacts/:"
	ls -l "$work"/artifacts/
fi

if [[ ${UPDATE_CORPUS:-0} == 1 ]] && (( !fail )); then
	echo "run.sh: merging new inputs into $corpus"
	"$bin" -merge=1 -max_len=65537 -timeout=2 -rss_limit_mb=2048 \
		"$corpus" "$work/corpus" >>"$log" 2>&1 || fail=1
fi

echo "run.sh: libFuzzer exit status $rc; $(ls "$work/corpus" | wc -l) inputs in the working corpus"
if (( fail )); then
	echo "0 passed, 1 failed"
	exit 1
fi
echo "1 passed, 0 failed"
