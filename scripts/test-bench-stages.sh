#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Self-test of scripts/bench-stages.py on synthetic traces whose stages are
# known: every stage's p50 in the table, the pairing of the two sides'
# round trips by number (a round trip the server left incomplete shifts no
# other), a round trip without a doorbell left out, the end marker's reply
# taken for no echo, and the exit status when nothing pairs. TAP-style
# output, ending with "N passed, N failed"; needs python3, no QEMU.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/tap.sh"
stages=$here/bench-stages.py

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
diag=$tmp/diag

# check DESCRIPTION COMMAND...: one test (tap_check).
check() { tap_check "$diag" "$@"; }

# The synthetic run: 64 B round trips; the client's pid 100, the server's
# serving thread 200. Times in microseconds, written as the trace's
# seconds. Client stages: send 3, then 40 until its interrupt (the
# server's turn of 20 and two deliveries of 10 each), irq->poll 4,
# poll->wake 2, wake->run 6, run->recv 5. Server stages: irq->poll 1,
# poll->wake 2, wake->run 3, run->recv 4, echo 6, send->notify 4.
# Round trip number BAD_SERVER has no server wake-up (incomplete there);
# number NORING's doorbell was suppressed on the client. The end marker
# comes back as the server's reply, of another length. Each side also
# takes a control doorbell just before the data one, and on the server
# another thread runs before the one that reads: none of them may be
# taken for a stage of the round trip.
gen() {
	python3 - "$tmp" "$1" "$2" <<'EOF'
import sys
tmp, rounds, lost = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
BAD_SERVER, NORING = 70, 80
c = open(tmp + "/client", "w")
s = open(tmp + "/server", "w")
def ev(f, tag, t, pid, name, fields):
    f.write("stagetrace,%s,%.6f,%d,%s,%s\n" % (tag, t / 1e6, pid, name, fields))
ct, st = 1000.0, 0.0
ev(c, "client-64", ct - 5, 100, "ivshm_sendmsg", "dev=0 chan=0 len=12")
for k in range(1, rounds + 2):
    end = k == rounds + 1          # the end marker: its answer is the reply
    t = ct
    ev(c, "client-64", t, 100, "ivshm_sendmsg", "dev=0 chan=0 len=64")
    ev(c, "client-64", t + 3, 100, "ivshm_notify",
       "dev=0 vm=1 chan=0 set=data rang=%d" % (k != NORING))
    s0 = t + 3 + 10                # the server's clock is the client's
    # A control doorbell just before the data one: not the echo's.
    ev(s, "server-64", s0 - 1, 0, "ivshm_interrupt", "dev=0 vector=0")
    ev(s, "server-64", s0, 0, "ivshm_interrupt", "dev=0 vector=1")
    ev(s, "server-64", s0 + 1, 0, "ivshm_poll", "dev=0")
    if k != BAD_SERVER:
        ev(s, "server-64", s0 + 3, 0, "ivshm_wake", "dev=0 chan=1 reader")
    # Another thread of the server's runs first: not the one that reads.
    ev(s, "server-64", s0 + 5, 0, "sched_switch",
       "prev_comm=swapper/0 prev_pid=0 ==> next_comm=net_bench next_pid=300 next_prio=120")
    ev(s, "server-64", s0 + 6, 300, "sched_switch",
       "prev_comm=net_bench prev_pid=300 ==> next_comm=net_bench next_pid=200 next_prio=120")
    ev(s, "server-64", s0 + 10, 200, "ivshm_recvmsg", "dev=0 chan=1 ret=64")
    ev(s, "server-64", s0 + 16, 200, "ivshm_sendmsg",
       "dev=0 chan=0 len=%d" % (40 if end else 64))
    ev(s, "server-64", s0 + 20, 200, "ivshm_notify",
       "dev=0 vm=0 chan=0 set=data rang=1")
    c0 = s0 + 20 + 10
    ev(c, "client-64", c0 - 2, 0, "ivshm_interrupt", "dev=0 vector=0")
    ev(c, "client-64", c0, 0, "ivshm_interrupt", "dev=0 vector=1")
    ev(c, "client-64", c0 + 4, 0, "ivshm_poll", "dev=0")
    ev(c, "client-64", c0 + 6, 0, "ivshm_wake", "dev=0 chan=1 reader")
    ev(c, "client-64", c0 + 12, 0, "sched_switch",
       "prev_comm=swapper/1 prev_pid=0 ==> next_comm=net_bench next_pid=100 next_prio=120")
    ev(c, "client-64", c0 + 17, 100, "ivshm_recvmsg",
       "dev=0 chan=1 ret=%d" % (40 if end else 64))
    ct = c0 + 17 + 7
c.write("bench-progress: [1/2] two-guests rtt af_ivshmem-doorbell 64 B x1 rep 1: p50 61.0 us, p99 70.0 us (300 rounds)\n")
c.write("bench-progress: [2/2] two-guests rtt-traced af_ivshmem-doorbell 64 B x1 rep 1: p50 63.0 us, p99 75.0 us (300 rounds)\n")
c.write("stagetrace-lost,client-64,0\n")
s.write("stagetrace-lost,server-64,%d\n" % lost)
EOF
}

# row STAGE-TEXT WHERE: the p50 column of that row of the report.
row() {
	awk -F' \\| ' -v w="$2" -v s="$1" \
		'$1 == "| " w && $2 == s { print $3 }' "$tmp/report"
}

# expect WHERE STAGE P50
expect() {
	local got
	got=$(row "$2" "$1")
	[ "$got" = "$3" ] || { echo "$1 / $2: p50 '$got', want '$3'"; cat "$tmp/report"; return 1; }
}

gen 300 0
check "a synthetic run is split" \
	bash -c '"$0" --client "$1" --server "$2" >"$3"' "$stages" \
	"$tmp/client" "$tmp/server" "$tmp/report"
check "the client's send stage" expect client "sendmsg() entered to the doorbell rung" 3
check "the deliveries: the client's wait less the server's turn" \
	expect host "two doorbell deliveries, one each way" 20
check "the server's stages" expect server "woken to running" 3
check "the server's echo" \
	expect server "recvmsg() returned to sendmsg() entered (the echo)" 6
check "the client's wake-up" expect client "woken to running" 6
check "the whole round trip" \
	grep -q -F "| | **the round trip, traced** | 60 | 60 | 60 |" "$tmp/report"
# 300 round trips, the first 50 of them warm-up, number 70 incomplete on
# the server, number 80 without a doorbell; the end marker, answered by
# the reply, is no round trip on the client and pairs with nothing.
check "round trips paired by number, the incomplete left out" \
	grep -q -- "- round trips split: 248; left out: 2 on the client, 1 on the server" "$tmp/report"
check "untraced and traced figures quoted" \
	grep -q -- "- untraced: p50 61.0 us, p99 70.0 us" "$tmp/report"

# Events lost: pairing by number would be wrong, so nothing is split.
gen 300 3
check "lost events: nothing split, exit status 1" \
	bash -c '! "$0" --client "$1" --server "$2" >"$3"' "$stages" \
	"$tmp/client" "$tmp/server" "$tmp/report"
check "lost events reported" grep -q "the trace lost 3 events" "$tmp/report"

# Nothing to pair: the server's trace is missing.
gen 300 0
: >"$tmp/empty"
check "no server trace: exit status 1" \
	bash -c '! "$0" --client "$1" --server "$2" >/dev/null' "$stages" \
	"$tmp/client" "$tmp/empty"
check "a usage error: exit status 2" \
	bash -c '"$0" --client "$1" >/dev/null 2>&1; [ $? = 2 ]' "$stages" \
	"$tmp/client"

tap_summary
