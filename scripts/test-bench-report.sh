#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Self-test of scripts/bench-report.py on a synthetic run whose results are
# known: the medians, min and max in bench.csv, a ratio in summary.md, the
# targets met and not met, a garbage line reported as ignored, the PNGs, the
# exit status of a usage error and of a missing input. TAP-style output,
# ending with "N passed, N failed"; needs python3 and gnuplot, no QEMU.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/tap.sh"
report=$here/bench-report.py

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$tmp/out
diag=$tmp/diag

# check DESCRIPTION COMMAND...: one test (tap_check).
check() { tap_check "$diag" "$@"; }

# expect_eq WHAT GOT WANT
expect_eq() {
	if [ "$2" != "$3" ]; then
		echo "$1: got '$2', want '$3'"
		return 1
	fi
}

# csv_field SETUP TRANSPORT TEST SIZE CONNS COLUMN: one cell of bench.csv.
csv_field() {
	python3 - "$out/bench.csv" "$@" <<'EOF'
import csv, sys
path, key, column = sys.argv[1], sys.argv[2:7], sys.argv[7]
for row in csv.DictReader(open(path)):
    if [row[k] for k in ("setup", "transport", "test", "size", "conns")] == key:
        print(row[column])
        break
else:
    print("(no such row)")
EOF
}

# bench_row SETUP TRANSPORT TEST SIZE CONNS COLUMN=VALUE...
bench_row() {
	local key=("$@") kv col ret=0
	key=("${key[@]:0:5}")
	shift 5
	for kv in "$@"; do
		col=${kv%%=*}
		expect_eq "bench.csv ${key[*]} $col" \
			"$(csv_field "${key[@]}" "$col")" "${kv#*=}" || ret=1
	done
	return $ret
}

# section TITLE-PREFIX: the lines of summary.md from "## TITLE-PREFIX" to
# the next "## ".
section() {
	awk -v t="## $1" 'index($0, t) == 1 { on = 1; print; next }
		/^## / { on = 0 } on' "$out/summary.md"
}

# grep_in FILE PATTERN: like grep -E -q, and show the file if it fails.
grep_in() {
	local input
	input=$(cat "$1")
	if ! grep -E -q -- "$2" <<<"$input"; then
		echo "no line matches /$2/ in:"
		echo "$input"
		return 1
	fi
}

is_png() {
	local f sig
	for f in "$@"; do
		if [ ! -s "$f" ]; then
			echo "$f: missing or empty"
			return 1
		fi
		sig=$(head -c 8 "$f" | od -An -tx1 | tr -d ' \n')
		if [ "$sig" != 89504e470d0a1a0a ]; then
			echo "$f: not a PNG (starts with $sig)"
			return 1
		fi
	done
}

# ---- The synthetic run.
{
	echo "setup,transport,test,size,conns,rep,records,seconds,records_per_s,bytes_per_s,p50_us,p99_us,doorbells_per_record,polls_per_record"
	# One guest, 64 KiB: 10, 20, 30 MB/s against 5, 5, 5: ratio 4.00.
	for rep in 0 1 2; do
		bps=$(((rep + 1) * 10000000))
		echo "one-guest,af_ivshmem,stream,65536,1,$rep,100,1.0,$((bps / 65536)),$bps,,,0.0$((rep + 1)),0.5"
		echo "one-guest,af_unix,stream,65536,1,$rep,100,1.0,76,5000000,,,,"
	done
	# 64 B: 1 MB/s against 2 MB/s: 0.50, the target (>= 1.0) not met.
	for rep in 0 1 2; do
		echo "one-guest,af_ivshmem,stream,64,1,$rep,100,1.0,15625,1000000,,,0.1,0.2"
		echo "one-guest,af_unix,stream,64,1,$rep,100,1.0,31250,2000000,,,,"
	done
	# Round trips at 64 B: p50 5, 6, 7 µs against 10: 0.60, met.
	for rep in 0 1 2; do
		echo "one-guest,af_ivshmem,rtt,64,1,$rep,1000,1.0,160000,20480000,$((rep + 5)),$((rep + 20)),2,1"
		echo "one-guest,af_unix,rtt,64,1,$rep,1000,1.0,100000,12800000,10,30,,"
		echo "one-guest,af_ivshmem,rtt,4096,1,$rep,1000,1.0,50000,409600000,20,40,2,1"
		echo "one-guest,af_unix,rtt,4096,1,$rep,1000,1.0,40000,327680000,25,50,,"
	done
	for conns in 1 8 64; do
		for rep in 0 1 2; do
			echo "one-guest,af_ivshmem,scale,4096,$conns,$rep,1000,1.0,$((conns * 100000 + rep)),$((conns * 409600000)),,,0.05,"
			echo "one-guest,af_unix,scale,4096,$conns,$rep,1000,1.0,$((conns * 50000)),$((conns * 204800000)),,,,"
		done
	done
	echo "this line is garbage"
	# Two guests, 64 KiB: doorbell 6.00 (met), plain 4.00 (NOT met); the
	# plain guest died before its round trips (not measured).
	for rep in 0 1 2; do
		echo "two-guests,af_ivshmem-doorbell,stream,65536,1,$rep,100,1.0,915,60000000,,,0.02,0.1"
		echo "two-guests,af_ivshmem-plain,stream,65536,1,$rep,100,1.0,610,40000000,,,0,0.3"
		echo "two-guests,tcp-virtio,stream,65536,1,$rep,100,1.0,152,10000000,,,,"
		echo "two-guests,af_ivshmem-doorbell,stream,1024,1,$rep,100,1.0,50000,51200000,,,0.02,0.1"
		echo "two-guests,tcp-virtio,stream,1024,1,$rep,100,1.0,10000,10240000,,,,"
		echo "two-guests,af_ivshmem-doorbell,rtt,64,1,$rep,1000,1.0,50000,6400000,20,50,2,1"
		echo "two-guests,tcp-virtio,rtt,64,1,$rep,1000,1.0,10000,1280000,100,300,,"
		# Busy polling: doorbell 8 / 80 = 0.10 (met), plain 32 / 80 =
		# 0.40 (NOT met); one guest has none.
		echo "two-guests,af_ivshmem-doorbell,rtt-busy,64,1,$rep,1000,1.0,125000,8000000,8,20,0,0"
		echo "two-guests,af_ivshmem-plain,rtt-busy,64,1,$rep,1000,1.0,31250,2000000,32,60,0,0"
		echo "two-guests,tcp-virtio,rtt-busy,64,1,$rep,1000,1.0,12500,800000,80,200,,"
		# The region without the module, at 64 KiB: doorbell 60 / 120
		# = 0.50 and plain 40 / 120 = 0.33 of the raw ring, plain 40 /
		# 20 = 2.00 of the lock-guarded buffer; a spinning round trip
		# of 4 µs, beside the busy-polling ones (doorbell 8 / 4 = 2.00,
		# plain 32 / 4 = 8.00). Neither makes interrupt-driven ones.
		echo "two-guests,raw-ring,stream,65536,1,$rep,100,1.0,1831,120000000,,,,"
		echo "two-guests,lock-buffer,stream,65536,1,$rep,100,1.0,305,20000000,,,,"
		echo "two-guests,raw-ring,rtt-busy,64,1,$rep,1000,1.0,100000,6400000,4,30,,"
	done
	for conns in 1 8 64; do
		echo "two-guests,af_ivshmem-doorbell,scale,1024,$conns,0,1000,1.0,$((conns * 40000)),$((conns * 40960000)),,,0.1,"
		echo "two-guests,tcp-virtio,scale,1024,$conns,0,1000,1.0,$((conns * 5000)),$((conns * 5120000)),,,,"
	done
	echo "two-guests,tcp-virtio,rtt,64,1,3,1000,1.0,10000,1280000,not-a-number,300,,"
} >"$tmp/raw.csv"

cat >"$tmp/ring.csv" <<'EOF'
kind,section,transport,size_bytes,producers,reps,records_per_s,bytes_per_s,records_per_s_min,records_per_s_max,others_cpus,what,value,target,status
meta,,,,,,,,,,,date,"2025-01-01, 12:00",,
meta,,,,,,,,,,,machine,"test machine, 4 cpus",,
measure,p2p,ring,64,1,5,30000000,1920000000,29000000,31000000,0.01,,,,
measure,p2p,memcpy,64,1,5,90000000,5760000000,89000000,91000000,0.01,,,,
measure,p2p,ring,1024,1,5,9000000,9216000000,8800000,9100000,0.01,,,,
measure,p2p,ring,65536,1,5,250000,16384000000,240000,260000,0.01,,,,
measure,scaling,ring,64,2,5,50000000,3200000000,49000000,51000000,0.01,,,,
target,,,,,,,,,,,"ring / memcpy at 64 KiB",1.23,>=1.5,NOT met
EOF
printf 'host cpu: test cpu\nqemu: 7.2 (TCG)\n' >"$tmp/meta.txt"

# ---- The run.
rc=0
"$report" --raw "$tmp/raw.csv" --ring "$tmp/ring.csv" --meta "$tmp/meta.txt" \
	--out "$out" >"$tmp/stdout" 2>"$tmp/stderr" || rc=$?
check "the report exits 0" expect_eq "exit status" "$rc" 0

check "bench.csv: 10, 20, 30 MB/s give median 20, min 10, max 30" \
	bench_row one-guest af_ivshmem stream 65536 1 reps=3 \
	bytes_per_s=20000000 bytes_per_s_min=10000000 bytes_per_s_max=30000000 \
	doorbells_per_record=0.02 doorbells_per_record_min=0.01 \
	doorbells_per_record_max=0.03 p50_us= p50_us_max=
check "bench.csv: round trips p50 5, 6, 7 µs give 6 (5-7), p99 21 (20-22)" \
	bench_row one-guest af_ivshmem rtt 64 1 reps=3 p50_us=6 p50_us_min=5 \
	p50_us_max=7 p99_us=21 p99_us_min=20 p99_us_max=22
check "bench.csv: scale rows are per connection count" \
	bench_row one-guest af_ivshmem scale 4096 8 reps=3 \
	records_per_s=800001 records_per_s_min=800000 records_per_s_max=800002
check "bench.csv: a line with a bad number is not counted" \
	bench_row two-guests tcp-virtio rtt 64 1 reps=3 p50_us=100

section "One guest" >"$tmp/one"
section "Two guests" >"$tmp/two"
section "Targets" >"$tmp/targets"
check "summary.md: one guest, 64 KiB, ratio of medians 20/5 = 4.00" \
	grep_in "$tmp/one" '^\| 64 KiB \| 20\.0 \(10\.0–30\.0\) \|.*\| 4\.00 \|$'
check "summary.md: one guest, round trip p50 ratio 6/10 = 0.60" \
	grep_in "$tmp/one" '^\| 64 B \| 6\.00 \(5\.00–7\.00\) \|.*\| 0\.60 \|$'
check "summary.md: two guests, 64 KiB, ratios 6.00 (doorbell) 4.00 (plain), then 0.50 and 0.33 of raw and 2.00 of lock" \
	grep_in "$tmp/two" '^\| 64 KiB \|.*\| 6\.00 \| 4\.00 \| 0\.50 \| 0\.33 \| 2\.00 \|$'
check "summary.md: two guests, round trips without busy polling: no raw or lock column" \
	grep_in "$tmp/two" '^\| 64 B \| 20\.0 \(20\.0–20\.0\) \| 50\.0 \(50\.0–50\.0\) \| — \| — \| 100\.0 \(100\.0–100\.0\) \| 300\.0 \(300\.0–300\.0\) \| 0\.20 \| — \|$'
check "summary.md: two guests, busy-poll round trip ratios 0.10 and 0.40 of TCP, 2.00 and 8.00 of the spinning raw ring" \
	grep_in "$tmp/two" '^\| 64 B \| 8\.00 \(8\.00–8\.00\) \|.*\| 4\.00 \(4\.00–4\.00\) \| 30\.0 \(30\.0–30\.0\) \| — \| — \| 0\.10 \| 0\.40 \| 2\.00 \| 8\.00 \| — \|$'
check "summary.md: no busy-poll table where none was measured" \
	expect_eq "busy-poll tables in one guest" \
	"$(grep -c '^### Round trip with busy polling' "$tmp/one" || true)" 0
check "summary.md: the machine section is copied" \
	grep_in "$out/summary.md" '^qemu: 7\.2 \(TCG\)$'
check "summary.md: the plots are embedded" \
	grep_in "$out/summary.md" '^!\[.*\]\(throughput-one-guest\.png\)$'
check "summary.md: the TCG note" grep_in "$tmp/targets" 'QEMU TCG'
check "target met: one guest, 64 KiB, 4.00 >= 1.5" \
	grep_in "$tmp/targets" 'one guest: throughput .* at 64 KiB \| 4\.00 \| >= 1\.5 \| met \|'
check "target NOT met: one guest, 64 B, 0.50 >= 1.0" \
	grep_in "$tmp/targets" 'one guest: throughput .* at 64 B \| 0\.50 \| >= 1\.0 \| NOT met \|'
check "target met: one guest, round trip, 0.60 <= 1.0" \
	grep_in "$tmp/targets" 'one guest: round-trip .* \| 0\.60 \| <= 1\.0 \| met \|'
check "target NOT met: two guests, plain, 64 KiB, 4.00 >= 5.0" \
	grep_in "$tmp/targets" '\(plain\) / TCP at 64 KiB \| 4\.00 \| >= 5\.0 \| NOT met \|'
check "target not measured: two guests, plain, round trip" \
	grep_in "$tmp/targets" '\(plain\) / TCP at 64 B \| — \| <= 0\.3 \| not measured \|'
check "target met: two guests, busy polling, doorbell, 0.10 <= 0.3" \
	grep_in "$tmp/targets" 'busy polling on both ends: .*\(doorbell\) / TCP at 64 B \| 0\.10 \| <= 0\.3 \| met \|'
check "target NOT met: two guests, busy polling, plain, 0.40 <= 0.3" \
	grep_in "$tmp/targets" 'busy polling on both ends: .*\(plain\) / TCP at 64 B \| 0\.40 \| <= 0\.3 \| NOT met \|'
check "stdout: the targets table" \
	grep_in "$tmp/stdout" 'doorbell\) / TCP at 64 KiB +6\.00 +>= 5\.0 +met$'
check "stderr: 2 lines ignored, the garbage one among them" \
	grep_in "$tmp/stderr" 'ignored 2 lines'
check "stderr: the garbage line is named" \
	grep_in "$tmp/stderr" 'line [0-9]+: .*this line is garbage'
check "the 7 plots are non-empty PNG files" is_png \
	"$out"/{throughput,latency,scaling}-{one-guest,two-guests}.png \
	"$out"/latency-busy-two-guests.png
check "no busy-poll plot where none was measured" \
	test ! -e "$out/latency-busy-one-guest.png"

rc=0
"$report" --raw "$tmp/raw.csv" >"$tmp/usage" 2>&1 || rc=$?
check "a usage error exits 2" expect_eq "exit status" "$rc" 2
rc=0
"$report" --raw "$tmp/missing.csv" --out "$tmp/out2" >"$tmp/missing" 2>&1 ||
	rc=$?
check "a missing input exits 1" expect_eq "exit status" "$rc" 1

tap_summary
