#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Split traced round trips into their stages (placement bench-stages).

Reads the results of the two guests of the bench-stages placement: the
client's (net_bench stages-client) and the server's (stages-server). Each
holds "stagetrace,TAG,SECONDS,PID,EVENT,FIELDS" lines, the events of
af_ivshmem's tracepoints (net/ivshmem/trace.h) and the scheduler's
switches into net_bench, and "bench-progress" lines with the untraced and
the traced round trips' p50 and p99.

A client round trip is: sendmsg() entered, the peer notified (a doorbell
rung), our interrupt, our NAPI poll, our socket woken, the task running,
recvmsg() returning. A server round trip is: the interrupt, the poll, the
wake-up, running, recvmsg() returning, sendmsg() entered, the peer
notified. The k-th record the client sends is the k-th the server
echoes, which pairs the two sides' round trips. Clocks of two guests
cannot be compared, so the doorbells' own delivery is what the client
waited beyond the server's whole turn. Round trips in which a stage is
missing (the reader found the record without sleeping, no doorbell rang)
are counted and left out.

Writes a Markdown report to stdout: per stage the p50 and p99, and the
mean over the slowest 1% of round trips, which shows where the tail
sits. Exits 1 if no size has a round trip complete on both sides.
"""
import argparse
import re
import sys

PROGRESS = re.compile(
    r"bench-progress: \[\d+/\d+\] \S+ (rtt|rtt-traced) \S+ (\d+) B x1 "
    r"rep \d+: p50 ([\d.]+) us, p99 ([\d.]+) us")
FIELD = re.compile(r"(\w+)=(\S+)")
WARMUP = 50        # net_bench's RTT_WARMUP: the first round trips of a run

class Event:
    __slots__ = ("t", "pid", "name", "f", "reader")

    def __init__(self, t, pid, name, fields):
        self.t = t
        self.pid = pid
        self.name = name
        self.f = dict(FIELD.findall(fields))
        self.reader = fields.endswith(" reader")


def read(path):
    """Events by tag, lost counts by tag, and (untraced, traced) figures."""
    events, lost, rtt = {}, {}, {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("stagetrace,"):
                parts = line.split(",", 5)
                if len(parts) < 6:
                    continue
                _, tag, ts, pid, name, fields = parts
                try:
                    ev = Event(float(ts) * 1e6, int(pid), name, fields)
                except ValueError:
                    continue
                events.setdefault(tag, []).append(ev)
            elif line.startswith("stagetrace-lost,"):
                _, tag, n = line.split(",", 2)
                lost[tag] = int(n)
            else:
                m = PROGRESS.search(line)
                if m:
                    kind, size = m.group(1), int(m.group(2))
                    rtt.setdefault(size, {})[kind] = (float(m.group(3)),
                                                       float(m.group(4)))
    for evs in events.values():
        evs.sort(key=lambda e: e.t)
    return events, lost, rtt


def data_irq(evs):
    """Whether an interrupt event is the data vector's: vector 1 when the
    device has two vectors (a control doorbell is not an echo's), any when
    it has one."""
    two = any(e.name == "ivshm_interrupt" and e.f.get("vector") == "1"
              for e in evs)
    return lambda e: not two or e.f.get("vector") == "1"


def client_rounds(evs, size):
    """Complete client round trips of @size by number, and how many were
    not complete."""
    sends = [e for e in evs if e.name == "ivshm_sendmsg" and
             int(e.f.get("len", -1)) == size]
    if not sends:
        return {}, 0
    pid = sends[0].pid
    is_data = data_irq(evs)
    rounds, incomplete, r, k = {}, 0, None, 0
    for e in evs:
        if e.name == "ivshm_sendmsg" and e.pid == pid:
            if r is not None:
                incomplete += 1
            r = None
            if int(e.f.get("len", -1)) == size:
                k += 1
                r = {"send": e.t, "k": k}
        elif r is None:
            continue
        elif e.name == "ivshm_notify" and e.pid == pid and \
                e.f.get("set") == "data" and "notify" not in r:
            r["notify"] = e.t
            r["rang"] = e.f.get("rang") == "1"
        elif e.name == "ivshm_interrupt" and "notify" in r and \
                "irq" not in r and is_data(e):
            r["irq"] = e.t
        elif e.name == "ivshm_poll" and "irq" in r and "poll" not in r:
            r["poll"] = e.t
        elif e.name == "ivshm_wake" and e.reader and "poll" in r and \
                "wake" not in r:
            r["wake"] = e.t
            r["wake_chan"] = e.f.get("chan")
        elif e.name == "sched_switch" and "wake" in r and "run" not in r and \
                int(e.f.get("next_pid", -1)) == pid:
            r["run"] = e.t
        elif e.name == "ivshm_recvmsg" and e.pid == pid:
            r["recv"] = e.t
            # The end marker's answer is the server's reply, not an echo;
            # the socket woken must be the one that read.
            if int(e.f.get("ret", -1)) == size and r.get("rang") and \
                    all(x in r for x in ("irq", "poll", "wake", "run")) and \
                    r["wake_chan"] == e.f.get("chan"):
                rounds[r["k"]] = r
            else:
                incomplete += 1
            r = None
    return rounds, incomplete


def server_rounds(evs, size):
    """Complete server round trips of @size by number (the k-th record
    echoed is the client's k-th sent), and how many were not complete."""
    is_data = data_irq(evs)
    rounds, incomplete, r, k = {}, 0, None, 0
    for e in evs:
        if e.name == "ivshm_recvmsg" and int(e.f.get("ret", -1)) == size:
            k += 1
        if e.name == "ivshm_interrupt" and is_data(e):
            if r is None or "recv" not in r:
                if r is not None and "poll" in r:
                    incomplete += 1
                r = {"irq": e.t}
            continue
        if r is None:
            continue
        if e.name == "ivshm_poll" and "poll" not in r:
            r["poll"] = e.t
        elif e.name == "ivshm_wake" and e.reader and "poll" in r and \
                "wake" not in r:
            r["wake"] = e.t
            r["wake_chan"] = e.f.get("chan")
            r["runs"] = {}
        elif e.name == "sched_switch" and "wake" in r and "recv" not in r:
            # The serving thread is known only once it reads: keep each
            # thread's first switch-in after the wake-up.
            r["runs"].setdefault(int(e.f.get("next_pid", -1)), e.t)
        elif e.name == "ivshm_recvmsg" and "wake" in r and "recv" not in r:
            if int(e.f.get("ret", -1)) != size or \
                    e.pid not in r["runs"] or \
                    r["wake_chan"] != e.f.get("chan"):
                incomplete += 1
                r = None
                continue
            r["run"] = r["runs"][e.pid]
            r["recv"] = e.t
            r["pid"] = e.pid
            r["k"] = k
        elif e.name == "ivshm_sendmsg" and "recv" in r and \
                e.pid == r["pid"] and "send" not in r:
            r["send"] = e.t
        elif e.name == "ivshm_notify" and "send" in r and \
                e.pid == r["pid"] and e.f.get("set") == "data":
            r["notify"] = e.t
            if e.f.get("rang") == "1":
                rounds[r["k"]] = r
            else:
                incomplete += 1
            r = None
    return rounds, incomplete


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, (len(v) * p) // 100)] if v else float("nan")


# A paired round trip, stage by stage, in the order the time passes. The
# two deliveries are what the client waited beyond the server's turn.
STAGES = [
    ("client", "sendmsg() entered to the doorbell rung",
     lambda c, s: c["notify"] - c["send"]),
    ("host", "two doorbell deliveries, one each way",
     lambda c, s: (c["irq"] - c["notify"]) - (s["notify"] - s["irq"])),
    ("server", "interrupt to NAPI poll", lambda c, s: s["poll"] - s["irq"]),
    ("server", "NAPI poll to socket woken",
     lambda c, s: s["wake"] - s["poll"]),
    ("server", "woken to running", lambda c, s: s["run"] - s["wake"]),
    ("server", "running to recvmsg() returning",
     lambda c, s: s["recv"] - s["run"]),
    ("server", "recvmsg() returned to sendmsg() entered (the echo)",
     lambda c, s: s["send"] - s["recv"]),
    ("server", "sendmsg() entered to the doorbell rung",
     lambda c, s: s["notify"] - s["send"]),
    ("client", "interrupt to NAPI poll", lambda c, s: c["poll"] - c["irq"]),
    ("client", "NAPI poll to socket woken",
     lambda c, s: c["wake"] - c["poll"]),
    ("client", "woken to running", lambda c, s: c["run"] - c["wake"]),
    ("client", "running to recvmsg() returning",
     lambda c, s: c["recv"] - c["run"]),
]


def report(size, cr, cinc, sr, sinc, ref, lost, out):
    out.write("### %d B round trips, two doorbell guests\n\n" % size)
    for kind, what in (("rtt", "untraced"), ("rtt-traced", "traced")):
        if kind in ref:
            out.write("- %s: p50 %.1f us, p99 %.1f us\n" %
                      (what, ref[kind][0], ref[kind][1]))
    if lost:
        # Pairing by number needs every event: one lost shifts the rest.
        out.write("- the trace lost %d events: the two sides' round trips "
                  "cannot be paired, so none is split\n\n" % lost)
        return False
    pairs = [(cr[k], sr[k]) for k in sorted(cr) if k in sr and k > WARMUP]
    # A stage that comes out negative means events were misattributed.
    bad = [p for p in pairs if any(f(*p) < 0 for _, _, f in STAGES)]
    pairs = [p for p in pairs if p not in bad]
    out.write("- round trips split: %d; left out: %d on the client, %d on "
              "the server (a stage missing), the %d of the warm-up, those "
              "complete on one side only, and %d with a stage below zero. "
              "Only round trips in which both readers slept are split.\n\n"
              % (len(pairs), cinc, sinc, WARMUP, len(bad)))
    if not pairs:
        out.write("(no round trip complete on both sides)\n\n")
        return False
    total = [c["recv"] - c["send"] for c, _ in pairs]
    order = sorted(range(len(pairs)), key=lambda i: total[i])
    slow = order[-max(1, len(pairs) // 100):]
    out.write("| where | stage | p50 us | p99 us | slowest 1%: mean us |\n")
    out.write("|---|---|---:|---:|---:|\n")
    for where, what, f in STAGES:
        d = [f(c, s) for c, s in pairs]
        out.write("| %s | %s | %.0f | %.0f | %.0f |\n" % (
            where, what, pct(d, 50), pct(d, 99),
            sum(d[i] for i in slow) / len(slow)))
    out.write("| | **the round trip, traced** | %.0f | %.0f | %.0f |\n\n" % (
        pct(total, 50), pct(total, 99),
        sum(total[i] for i in slow) / len(slow)))
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--client", required=True)
    ap.add_argument("--server", required=True)
    args = ap.parse_args()
    cev, clost, crtt = read(args.client)
    sev, slost, _ = read(args.server)
    done = 0
    for tag in sorted(cev, key=lambda t: int(t.split("-")[-1])):
        size = int(tag.split("-")[-1])
        stag = "server-%d" % size
        cr, cinc = client_rounds(cev[tag], size)
        sr, sinc = server_rounds(sev.get(stag, []), size)
        done += report(size, cr, cinc, sr, sinc, crtt.get(size, {}),
                       clost.get(tag, 0) + slost.get(stag, 0), sys.stdout)
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
