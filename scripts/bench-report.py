#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the raw socket benchmark CSV into a table, a summary and plots.

    bench-report.py --raw RAW.csv [--ring RING.csv] [--meta META.txt] --out DIR

RAW.csv holds one line per measurement (one repetition of one point):

    setup,transport,test,size,conns,rep,records,seconds,records_per_s,
    bytes_per_s,p50_us,p99_us,doorbells_per_record,polls_per_record

A header line may appear anywhere (even several times, when files are
concatenated) and is skipped; any other line that does not parse is ignored
and counted on stderr. An empty field means "not applicable".

RING.csv (optional) is the CSV of the native ring benchmark (bench_ring); its
point-to-point rows for the ring itself ("measure,p2p,ring,SIZE,1,...") are
drawn as the ceiling in the throughput plots. META.txt (optional) is free
text, copied verbatim into the summary's "Machine" section.

Written into DIR:
  bench.csv      one row per (setup, transport, test, size, conns): the
                 median, min and max over repetitions of every metric
  summary.md     the tables, the plots and the targets, met or not
  *.png          the plots, drawn by gnuplot from the *.gp scripts next to
                 them (self-contained: "cd DIR && gnuplot X.gp" redraws X.png)

The targets table is also printed on stdout. Exit status: 0 when the outputs
were written, 1 on an unreadable input (or one without a single measurement)
or an unwritable DIR, 2 on a usage error.
"""

import argparse
import csv
import math
import os
import shutil
import statistics
import subprocess
import sys

PROG = "bench-report"

RAW_FIELDS = [
    "setup", "transport", "test", "size", "conns", "rep", "records",
    "seconds", "records_per_s", "bytes_per_s", "p50_us", "p99_us",
    "doorbells_per_record", "polls_per_record",
]
# Aggregated over repetitions: median, min and max of each.
METRICS = [
    "records_per_s", "bytes_per_s", "p50_us", "p99_us",
    "doorbells_per_record", "polls_per_record",
]
TESTS = ["stream", "rtt", "rtt-busy", "scale"]
# The round-trip tests: without and with busy polling on both ends, each
# with its table and plot (the second only when measured).
RTT_TESTS = [
    ("rtt", "latency", "Round trip by record size",
     "Round trip of one record each way", ""),
    ("rtt-busy", "latency-busy", "Round trip with busy polling",
     "Round trip with busy polling on both ends",
     "Both ends set SO_BUSY_POLL (`ivshm.bench_busy_us`, 1000 µs by "
     "default) before the round trips: each reader spins that long before "
     "it sleeps. AF_UNIX has no busy polling, so its figures are its plain "
     "round trips measured again. "),
]

# The two setups, in the summary's order. "ratios" lists the (numerator,
# denominator) transports of the ratio columns: AF_IVSHMEM / the other.
SETUPS = [
    {
        "name": "one-guest",
        "title": "One guest (dev_shm): AF_IVSHMEM against AF_UNIX "
                 "SOCK_SEQPACKET",
        "plot": "one guest (dev_shm)",
        "transports": ["af_ivshmem", "af_unix"],
        "ratios": [("af_ivshmem", "af_unix")],
    },
    {
        "name": "two-guests",
        "title": "Two guests: AF_IVSHMEM (doorbell, plain) against TCP over "
                 "virtio-net, the region's raw ring and a lock-guarded "
                 "buffer",
        "plot": "two guests",
        "transports": ["af_ivshmem-doorbell", "af_ivshmem-plain",
                       "tcp-virtio", "raw-ring", "lock-buffer"],
        "ratios": [("af_ivshmem-doorbell", "tcp-virtio"),
                   ("af_ivshmem-plain", "tcp-virtio"),
                   ("af_ivshmem-doorbell", "raw-ring"),
                   ("af_ivshmem-plain", "raw-ring"),
                   ("af_ivshmem-plain", "lock-buffer")],
    },
]
SETUP_ORDER = [s["name"] for s in SETUPS]

LABELS = {
    "af_ivshmem": "AF_IVSHMEM",
    "af_unix": "AF_UNIX",
    "af_ivshmem-doorbell": "AF_IVSHMEM (doorbell)",
    "af_ivshmem-plain": "AF_IVSHMEM (plain)",
    "tcp-virtio": "TCP (virtio-net)",
    "raw-ring": "raw ring (no module)",
    "lock-buffer": "lock-guarded buffer (no module)",
}
# Short names for the ratio column headers.
SHORT = {
    "af_ivshmem": "IVSHMEM",
    "af_unix": "UNIX",
    "af_ivshmem-doorbell": "doorbell",
    "af_ivshmem-plain": "plain",
    "tcp-virtio": "TCP",
    "raw-ring": "raw",
    "lock-buffer": "lock",
}
# One colour per transport, the same in every plot.
COLOURS = {
    "af_ivshmem": "#1f77b4",
    "af_unix": "#ff7f0e",
    "af_ivshmem-doorbell": "#2ca02c",
    "af_ivshmem-plain": "#9467bd",
    "tcp-virtio": "#d62728",
    "raw-ring": "#000000",
    "lock-buffer": "#bc8f3f",
}
SPARE_COLOURS = ["#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]
RING_COLOUR = "#444444"

# (description, setup, test, size, numerator, denominator, metric, op,
# threshold): the ratio numerator/denominator of the metric's medians.
TARGETS = [
    ("one guest: throughput AF_IVSHMEM / AF_UNIX at 64 KiB",
     "one-guest", "stream", 65536, "af_ivshmem", "af_unix",
     "bytes_per_s", ">=", 1.5),
    ("one guest: throughput AF_IVSHMEM / AF_UNIX at 64 B",
     "one-guest", "stream", 64, "af_ivshmem", "af_unix",
     "bytes_per_s", ">=", 1.0),
    ("one guest: round-trip p50 AF_IVSHMEM / AF_UNIX at 64 B "
     "(no worse than AF_UNIX)",
     "one-guest", "rtt", 64, "af_ivshmem", "af_unix",
     "p50_us", "<=", 1.0),
    ("two guests: throughput AF_IVSHMEM (doorbell) / TCP at 64 KiB",
     "two-guests", "stream", 65536, "af_ivshmem-doorbell", "tcp-virtio",
     "bytes_per_s", ">=", 5.0),
    ("two guests: throughput AF_IVSHMEM (plain) / TCP at 64 KiB",
     "two-guests", "stream", 65536, "af_ivshmem-plain", "tcp-virtio",
     "bytes_per_s", ">=", 5.0),
    ("two guests: round-trip p50 AF_IVSHMEM (doorbell) / TCP at 64 B",
     "two-guests", "rtt", 64, "af_ivshmem-doorbell", "tcp-virtio",
     "p50_us", "<=", 0.3),
    ("two guests: round-trip p50 AF_IVSHMEM (plain) / TCP at 64 B",
     "two-guests", "rtt", 64, "af_ivshmem-plain", "tcp-virtio",
     "p50_us", "<=", 0.3),
    ("two guests, busy polling on both ends: round-trip p50 AF_IVSHMEM "
     "(doorbell) / TCP at 64 B",
     "two-guests", "rtt-busy", 64, "af_ivshmem-doorbell", "tcp-virtio",
     "p50_us", "<=", 0.3),
    ("two guests, busy polling on both ends: round-trip p50 AF_IVSHMEM "
     "(plain) / TCP at 64 B",
     "two-guests", "rtt-busy", 64, "af_ivshmem-plain", "tcp-virtio",
     "p50_us", "<=", 0.3),
]

# (transport, test) pairs that are never measured: region_bench's ends
# always spin, so their round trips stand beside AF_IVSHMEM's with busy
# polling, not beside the interrupt-driven ones.
NOT_RUN = {("raw-ring", "rtt"), ("lock-buffer", "rtt")}

TCG_NOTE = ("Absolute figures under QEMU TCG are not a product claim; "
            "the ratios are.")
DASH = "—"      # an empty table cell


class InputError(Exception):
    """An input that cannot be read at all (exit status 1)."""


def warn(msg):
    print(f"{PROG}: {msg}", file=sys.stderr)


# ---------------------------------------------------------------- parsing

def split_csv_line(line):
    """The fields of one CSV line, stripped; None if it is not CSV."""
    try:
        fields = next(csv.reader([line]), [])
    except csv.Error:
        return None
    return [f.strip() for f in fields]


def parse_count(text, minimum, what="count"):
    """An integer of at least minimum, or ValueError."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise ValueError(f"{what} {text!r} is not an integer >= {minimum}")
    return value


def parse_metric(text, what="value"):
    """A finite non-negative number, None for an empty field."""
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} {text!r} is not a number >= 0")
    return value


def parse_raw_fields(fields):
    """One measurement as a dict, or ValueError saying why not."""
    if len(fields) != len(RAW_FIELDS):
        raise ValueError(f"{len(fields)} fields, not {len(RAW_FIELDS)}")
    row = dict(zip(RAW_FIELDS, fields))
    for key in ("setup", "transport"):
        if not row[key] or not all(c.isalnum() or c in "-_."
                                   for c in row[key]):
            raise ValueError(f"bad {key} {row[key]!r}")
    if row["test"] not in TESTS:
        raise ValueError(f"unknown test {row['test']!r}")
    for key, minimum in (("size", 1), ("conns", 1), ("rep", 0)):
        row[key] = parse_count(row[key], minimum, key)
    for key in ["records", "seconds"] + METRICS:
        row[key] = parse_metric(row[key], key)
    return row


def read_raw(path):
    """The measurements of RAW.csv, and the (line number, line, reason) of
    each line ignored."""
    rows, ignored = [], []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}") from e
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = split_csv_line(line)
        if fields == RAW_FIELDS:
            continue                    # a header line
        if fields is None:
            ignored.append((lineno, line, "not CSV"))
            continue
        try:
            rows.append(parse_raw_fields(fields))
        except ValueError as e:
            ignored.append((lineno, line, str(e)))
    return rows, ignored


def read_ring(path):
    """The native ring's point-to-point rows of RING.csv as {size: (bytes/s,
    min bytes/s, max bytes/s)}, and its meta rows as [(what, value)]."""
    ceiling, meta, bad = {}, [], 0
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}") from e
    for line in lines:
        fields = split_csv_line(line) if line.strip() else []
        if not fields or fields[0] == "kind":
            continue
        if len(fields) < 12:
            bad += 1
            continue
        if fields[0] == "meta" and fields[11]:
            meta.append((fields[11], fields[12] if len(fields) > 12 else ""))
        if fields[0:3] != ["measure", "p2p", "ring"] or fields[4] != "1":
            continue
        try:
            size = parse_count(fields[3], 1)
            bps = parse_metric(fields[7])
            rmin = parse_metric(fields[8])
            rmax = parse_metric(fields[9])
        except ValueError:
            bad += 1
            continue
        if bps is None:
            bad += 1
            continue
        ceiling[size] = (bps,
                         rmin * size if rmin is not None else bps,
                         rmax * size if rmax is not None else bps)
    if bad:
        warn(f"{path}: ignored {bad} line{'s' if bad != 1 else ''} "
             "that do not parse")
    if not ceiling:
        warn(f"{path}: no 'measure,p2p,ring,SIZE,1' row; no ceiling drawn")
    return ceiling, meta


def read_meta(path):
    """The lines of META.txt, as they are."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}") from e


# ------------------------------------------------------------ aggregation

def order_key(setup, transport):
    """Known setups and transports first, in their documented order."""
    known = [t for s in SETUPS for t in s["transports"]]
    return (SETUP_ORDER.index(setup) if setup in SETUP_ORDER
            else len(SETUP_ORDER), setup,
            known.index(transport) if transport in known else len(known),
            transport)


def aggregate(rows):
    """{(setup, transport, test, size, conns): point}, where a point has
    "reps" and, for each metric, (median, min, max) or None."""
    groups = {}
    for row in rows:
        key = (row["setup"], row["transport"], row["test"], row["size"],
               row["conns"])
        groups.setdefault(key, []).append(row)
    points = {}
    for key, reps in groups.items():
        seen = [r["rep"] for r in reps]
        if len(set(seen)) != len(seen):
            warn("{} {} {} size {} conns {}: repetition index repeated; "
                 "all lines are counted".format(*key))
        point = {"reps": len(reps)}
        for m in METRICS:
            values = [r[m] for r in reps if r[m] is not None]
            point[m] = ((statistics.median(values), min(values), max(values))
                        if values else None)
        points[key] = point
    return points


def sorted_keys(points):
    return sorted(points, key=lambda k: (order_key(k[0], k[1]),
                                         TESTS.index(k[2]), k[3], k[4]))


def num(value):
    """A number for a CSV or a gnuplot data block: no exponent for counts."""
    return f"{value:.15g}"


def write_bench_csv(path, points):
    header = ["setup", "transport", "test", "size", "conns", "reps"]
    for m in METRICS:
        header += [m, f"{m}_min", f"{m}_max"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(header)
        for key in sorted_keys(points):
            point = points[key]
            line = list(key) + [point["reps"]]
            for m in METRICS:
                line += ([num(v) for v in point[m]] if point[m]
                         else ["", "", ""])
            out.writerow(line)


class Data:
    """Look-ups into the aggregated points."""

    def __init__(self, points):
        self.points = points

    def get(self, setup, transport, test, size, conns=None):
        """A point; for stream and rtt (one connection) conns may be left
        out, and the point with the fewest connections is taken."""
        if conns is not None:
            return self.points.get((setup, transport, test, size, conns))
        found = sorted(k for k in self.points
                       if k[:4] == (setup, transport, test, size))
        return self.points[found[0]] if found else None

    def metric(self, setup, transport, test, size, metric, conns=None):
        """(median, min, max) of a metric, or None."""
        point = self.get(setup, transport, test, size, conns)
        return point[metric] if point else None

    def ratio(self, setup, num_t, den_t, test, size, metric, conns=None):
        """The ratio of the medians, or None if either is missing or the
        denominator is zero."""
        a = self.metric(setup, num_t, test, size, metric, conns)
        b = self.metric(setup, den_t, test, size, metric, conns)
        if a is None or b is None or b[0] == 0:
            return None
        return a[0] / b[0]

    def transports(self, setup):
        """The setup's documented transports, then any other in the data."""
        spec = next((s for s in SETUPS if s["name"] == setup), None)
        known = list(spec["transports"]) if spec else []
        extra = sorted({k[1] for k in self.points if k[0] == setup} -
                       set(known))
        return known + extra

    def sizes(self, setup, test):
        return sorted({k[3] for k in self.points
                       if k[0] == setup and k[2] == test})

    def size_conns(self, setup, test):
        return sorted({(k[3], k[4]) for k in self.points
                       if k[0] == setup and k[2] == test})

    def has(self, setup, transport, test):
        return any(k[:3] == (setup, transport, test) for k in self.points)


# ------------------------------------------------------------- formatting

def fmt_size(size):
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} B"


def fmt_rate(value):
    """Records per second: 123, 45.6 k, 1.23 M."""
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.0f}"


def fmt_fixed(value):
    """MB/s and µs: one decimal from 10 up, else two."""
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def fmt_small(value):
    """Doorbells and polls per record."""
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def fmt_ratio(value):
    return DASH if value is None else f"{value:.2f}"


def cell(stat, fmt, scale=1.0):
    """The median with its min–max spread, e.g. "20.0 (10.0–30.0)"."""
    if stat is None:
        return DASH
    med, lo, hi = (v * scale for v in stat)
    return f"{fmt(med)} ({fmt(lo)}–{fmt(hi)})"


def md_table(headers, rows, align=None):
    """A Markdown table. align has one letter a column, "l" (left) or "r"
    (right); by default the first column is left-aligned, the numbers after
    it right-aligned."""
    align = align or "l" + "r" * (len(headers) - 1)
    rule = [":---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return lines


def label(transport):
    return LABELS.get(transport, transport)


def short(transport):
    return SHORT.get(transport, transport)


# ------------------------------------------------------------------ plots

def colours_for(points):
    """The documented colours, and spare ones for any other transport."""
    colours = dict(COLOURS)
    extra = sorted({k[1] for k in points} - set(colours))
    for i, transport in enumerate(extra):
        colours[transport] = SPARE_COLOURS[i % len(SPARE_COLOURS)]
    return colours


def gp_string(text):
    """A gnuplot single-quoted string (noenhanced: no markup inside)."""
    return "'" + text.replace("'", "''") + "'"


class Plotter:
    """Writes one self-contained gnuplot script per plot and runs it."""

    def __init__(self, outdir, points):
        self.outdir = outdir
        self.colours = colours_for(points)
        self.gnuplot = shutil.which(os.environ.get("GNUPLOT", "gnuplot"))
        self.drawn = {}         # plot name -> None if drawn, else why not
        if not self.gnuplot:
            warn("gnuplot not found (set GNUPLOT=...); no plots drawn")

    def remove_stale(self, name):
        for ext in (".png", ".gp"):
            try:
                os.remove(os.path.join(self.outdir, name + ext))
            except FileNotFoundError:
                pass

    def plot(self, name, title, xlabel, ylabel, xtics, series,
             yformat="%g"):
        """Draw name.png. series: dicts with title, colour, dashed (bool),
        errorbars (bool) and points [(x, y, ylow, yhigh)]. Points that a
        log axis cannot show (y <= 0) are left out."""
        for s in series:
            s["points"] = [(x, y, lo if lo > 0 else y, hi if hi > 0 else y)
                           for x, y, lo, hi in s["points"] if y > 0]
        series = [s for s in series if s["points"]]
        self.remove_stale(name)
        if not any(not s.get("reference") for s in series):
            self.drawn[name] = "no data"
            warn(f"{name}.png: no data, not drawn")
            return
        if not self.gnuplot:
            self.drawn[name] = "gnuplot not found"
            return

        xs = sorted({p[0] for s in series for p in s["points"]})
        gp = [
            "# Drawn by scripts/bench-report.py; gnuplot this file to "
            "redraw it.",
            "set terminal pngcairo size 900,560 noenhanced font 'sans,11'",
            "set encoding utf8",
            f"set output {gp_string(name + '.png')}",
            f"set title {gp_string(title)}",
            f"set xlabel {gp_string(xlabel)}",
            f"set ylabel {gp_string(ylabel)}",
            "set logscale xy",
            # A little room either side of the first and last point.
            f"set xrange [{num(xs[0] / 1.4)}:{num(xs[-1] * 1.4)}]",
            "set xtics (" + ", ".join(f"{gp_string(t)} {num(x)}"
                                      for x, t in xtics if x in xs) + ")",
            f"set format y {gp_string(yformat)}",
            "set grid xtics ytics mytics lc rgb '#dddddd' lw 1 dt 1",
            "set key top left Left reverse box opaque samplen 3 width 1",
            "set bars small",
            "",
        ]
        plots = []
        for i, s in enumerate(series):
            gp.append(f"$s{i} << EOD")
            gp += [" ".join(num(v) for v in p) for p in s["points"]]
            gp.append("EOD")
            style = ("using 1:2:3:4 with yerrorlines" if s["errorbars"]
                     else "using 1:2 with linespoints")
            plots.append(f"$s{i} {style} lw 2 pt 7 ps 0.8 "
                         f"dt {s.get('dashtype', 2 if s['dashed'] else 1)} "
                         f"lc rgb {gp_string(s['colour'])} "
                         f"title {gp_string(s['title'])}")
        gp.append("plot " + ", \\\n     ".join(plots))
        gp_path = os.path.join(self.outdir, name + ".gp")
        with open(gp_path, "w", encoding="utf-8") as f:
            f.write("\n".join(gp) + "\n")
        try:
            run = subprocess.run([self.gnuplot, name + ".gp"],
                                 cwd=self.outdir, capture_output=True,
                                 text=True, timeout=60)
            err = run.stderr.strip()
            failed = run.returncode != 0
        except (OSError, subprocess.TimeoutExpired) as e:
            err, failed = str(e), True
        if err:
            warn(f"{name}.gp: gnuplot says: {err}")
        png = os.path.join(self.outdir, name + ".png")
        if failed or not os.path.isfile(png) or os.path.getsize(png) == 0:
            self.drawn[name] = "gnuplot failed"
            warn(f"{name}.png: gnuplot failed; see {gp_path}")
            return
        self.drawn[name] = None

    def embed(self, name, alt):
        """The summary's line for a plot: the image, or why there is none."""
        why = self.drawn.get(name, "not drawn")
        if why is None:
            return [f"![{alt}]({name}.png)", ""]
        return [f"*Plot `{name}.png` not drawn: {why}.*", ""]


def size_tics(data, setup, test):
    return [(s, fmt_size(s)) for s in data.sizes(setup, test)]


def draw_plots(plotter, data, ceiling):
    for spec in SETUPS:
        setup, where = spec["name"], spec["plot"]
        transports = data.transports(setup)

        # Throughput by record size, and the native ring as the ceiling.
        series = []
        for t in transports:
            pts = []
            for size in data.sizes(setup, "stream"):
                st = data.metric(setup, t, "stream", size, "bytes_per_s")
                if st:
                    pts.append((size,) + tuple(v / 1e6 for v in st))
            series.append({"title": label(t), "colour": plotter.colours[t],
                           "dashed": False, "errorbars": True,
                           "points": pts})
        tics = size_tics(data, setup, "stream")
        if ceiling:
            series.append({
                "title": "native ring, two processes (no kernel)",
                "colour": RING_COLOUR, "dashed": True, "errorbars": False,
                "reference": True,
                "points": [(size,) + tuple(v / 1e6 for v in ceiling[size])
                           for size in sorted(ceiling)]})
            tics = sorted(set(tics) | {(s, fmt_size(s)) for s in ceiling})
        plotter.plot(f"throughput-{setup}",
                     f"One-way throughput by record size, {where} "
                     "(median, bars: min–max)",
                     "record size", "payload MB/s (10^6 bytes/s)", tics,
                     series)

        # Round trip by record size: p50 with its spread, p99 dashed.
        for test, name, _, title, _ in RTT_TESTS:
            if test != "rtt" and not data.sizes(setup, test):
                plotter.remove_stale(f"{name}-{setup}")
                continue
            series = []
            for t in transports:
                p50, p99 = [], []
                for size in data.sizes(setup, test):
                    st = data.metric(setup, t, test, size, "p50_us")
                    if st:
                        p50.append((size,) + st)
                    st = data.metric(setup, t, test, size, "p99_us")
                    if st:
                        p99.append((size,) + st)
                series.append({"title": f"{label(t)} p50",
                               "colour": plotter.colours[t],
                               "dashed": False, "errorbars": True,
                               "points": p50})
                series.append({"title": f"{label(t)} p99",
                               "colour": plotter.colours[t],
                               "dashed": True, "errorbars": False,
                               "points": p99})
            plotter.plot(f"{name}-{setup}",
                         f"{title}, {where} "
                         "(p50 solid with min–max bars, p99 dashed)",
                         "record size", "round trip (µs)",
                         size_tics(data, setup, test), series)

        # Aggregate throughput by connections, per record size used.
        size_conns = data.size_conns(setup, "scale")
        sizes = sorted({s for s, _ in size_conns})
        series = []
        for t in transports:
            for i, size in enumerate(sizes):
                pts = []
                for s, conns in size_conns:
                    st = (data.metric(setup, t, "scale", size,
                                      "records_per_s", conns)
                          if s == size else None)
                    if st:
                        pts.append((conns,) + st)
                title = label(t) if len(sizes) == 1 else \
                    f"{label(t)}, {fmt_size(size)}"
                series.append({"title": title, "colour": plotter.colours[t],
                               "dashed": False, "dashtype": 1 + i,
                               "errorbars": True, "points": pts})
        conns = sorted({c for _, c in size_conns})
        plotter.plot(f"scaling-{setup}",
                     f"Aggregate one-way throughput over N connections, "
                     f"{where}, {', '.join(fmt_size(s) for s in sizes)} "
                     "records",
                     "concurrent connections", "records/s (all connections)",
                     [(c, str(c)) for c in conns], series,
                     yformat="%.0s%c")


# ---------------------------------------------------------------- summary

def evaluate_targets(data):
    """[(description, measured ratio or None, "op threshold", status)]."""
    results = []
    for desc, setup, test, size, a, b, metric, op, want in TARGETS:
        value = data.ratio(setup, a, b, test, size, metric)
        if value is None:
            status = "not measured"
        elif (value >= want) if op == ">=" else (value <= want):
            status = "met"
        else:
            status = "NOT met"
        results.append((desc, value, f"{op} {want:.1f}", status))
    return results


def metric_table(data, setup, transports, ratios, test, columns,
                 ratio_metric, ratio_prefix, by_conns=False):
    """The lines of one table of @test: a row per size (and connection
    count, @by_conns), the @columns (header suffix, metric, formatter,
    scale) of every transport, then the ratios of @ratio_metric. A
    transport that never runs @test (NOT_RUN) has no columns, nor do the
    ratios it is part of; one that should have and did not shows dashes."""
    transports = [t for t in transports
                  if (t, test) not in NOT_RUN or data.has(setup, t, test)]
    ratios = [(a, b) for a, b in ratios
              if a in transports and b in transports]
    headers = ["size"] + (["conns"] if by_conns else [])
    for t in transports:
        headers += [f"{label(t)} {suffix}" for suffix, _, _, _ in columns]
    headers += [f"{ratio_prefix}{short(a)} / {short(b)}" for a, b in ratios]
    if by_conns:
        keys = data.size_conns(setup, test)
    else:
        keys = [(size, None) for size in data.sizes(setup, test)]
    rows = []
    for size, conns in keys:
        row = [fmt_size(size)] + ([str(conns)] if by_conns else [])
        for t in transports:
            row += [cell(data.metric(setup, t, test, size, metric, conns),
                         fmt, scale)
                    for _, metric, fmt, scale in columns]
        row += [fmt_ratio(data.ratio(setup, a, b, test, size, ratio_metric,
                                     conns))
                for a, b in ratios]
        rows.append(row)
    return md_table(headers, rows) if rows else [f"No {test} measurement."]


def setup_section(data, spec, plotter):
    setup = spec["name"]
    transports = data.transports(setup)
    ratios = spec["ratios"]
    out = [f"## {spec['title']}", ""]
    if not any(k[0] == setup for k in data.points):
        return out + ["No measurement for this setup (the run may have "
                      "failed).", ""]

    out += ["### Throughput by record size", "",
            "One connection, one-way records as fast as possible; payload "
            "MB/s (10^6 bytes/s) and records/s, median (min–max) over the "
            "repetitions; the ratios are of the medians.", ""]
    out += metric_table(data, setup, transports, ratios, "stream",
                        [("MB/s", "bytes_per_s", fmt_fixed, 1e-6),
                         ("records/s", "records_per_s", fmt_rate, 1)],
                        "bytes_per_s", "")
    out += [""] + plotter.embed(f"throughput-{setup}",
                                f"throughput, {spec['plot']}")

    for test, name, heading, _, note in RTT_TESTS:
        if test != "rtt" and not data.sizes(setup, test):
            continue
        out += [f"### {heading}", "",
                note + "One connection, one record each way; µs, median "
                "(min–max) over the repetitions; the ratios are of the p50 "
                "medians (lower is better for AF_IVSHMEM).", ""]
        out += metric_table(data, setup, transports, ratios, test,
                            [("p50 µs", "p50_us", fmt_fixed, 1),
                             ("p99 µs", "p99_us", fmt_fixed, 1)],
                            "p50_us", "p50 ")
        out += [""] + plotter.embed(f"{name}-{setup}",
                                    f"{heading.lower()}, {spec['plot']}")

    out += ["### Scaling by connections", "",
            "Aggregate one-way throughput over all the connections, median "
            "(min–max); the ratios are of the records/s medians.", ""]
    out += metric_table(data, setup, transports, ratios, "scale",
                        [("records/s", "records_per_s", fmt_rate, 1),
                         ("MB/s", "bytes_per_s", fmt_fixed, 1e-6)],
                        "records_per_s", "", by_conns=True)
    out += [""] + plotter.embed(f"scaling-{setup}",
                                f"scaling, {spec['plot']}")

    # Doorbells and NAPI polls per record, AF_IVSHMEM only.
    ivshm = [t for t in transports if t.startswith("af_ivshmem")]
    out += ["### Doorbells and NAPI polls per record (AF_IVSHMEM)", "",
            "Median (min–max) over the repetitions.", ""]
    headers = ["test", "size", "conns"]
    for t in ivshm:
        headers += [f"{label(t)} doorbells", f"{label(t)} polls"]
    # Every (test, size, conns) measured by any AF_IVSHMEM transport.
    keys = sorted({(k[2], k[3], k[4]) for k in data.points
                   if k[0] == setup and k[1] in ivshm},
                  key=lambda k: (TESTS.index(k[0]), k[1], k[2]))
    rows = []
    for test, size, conns in keys:
        row = [test, fmt_size(size), str(conns)]
        for t in ivshm:
            row += [cell(data.metric(setup, t, test, size, m, conns),
                         fmt_small)
                    for m in ("doorbells_per_record", "polls_per_record")]
        if any(c != DASH for c in row[3:]):
            rows.append(row)
    out += (md_table(headers, rows) if rows
            else ["No doorbell or poll count in the data."])
    out.append("")
    return out


def write_summary(path, args, data, nrows, nignored, ring_meta, meta_lines,
                  targets, plotter):
    out = ["# AF_IVSHMEM socket benchmark", "",
           f"From `{os.path.basename(args.raw)}`: {nrows} measurement"
           f"{'s' if nrows != 1 else ''} in {len(data.points)} points"
           + (f", {nignored} line{'s' if nignored != 1 else ''} ignored"
              if nignored else "") + ". " + TCG_NOTE, ""]

    out += ["## Machine", ""]
    if meta_lines is not None:
        out += ["```text"] + meta_lines + ["```", ""]
    else:
        out += ["Not given (`--meta`).", ""]
    if ring_meta:
        out += [f"Native ring benchmark (`{os.path.basename(args.ring)}`): "
                + "; ".join(f"{w}: {v}" for w, v in ring_meta) + ".", ""]

    for spec in SETUPS:
        out += setup_section(data, spec, plotter)

    others = sorted({k[0] for k in data.points} - set(SETUP_ORDER))
    if others:
        out += ["## Other setups", "",
                "In `bench.csv` only: " + ", ".join(others) + ".", ""]

    out += ["## Targets", "", TCG_NOTE, ""]
    out += md_table(["target", "measured", "wanted", "status"],
                    [(d, fmt_ratio(v), w, s) for d, v, w, s in targets],
                    align="lrll")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


def print_targets(targets, outdir):
    rows = [(d, fmt_ratio(v), w, s) for d, v, w, s in targets]
    widths = [max(len(r[i]) for r in rows + [("target", "measured",
                                               "wanted", "status")])
              for i in range(4)]
    print(f"Targets ({os.path.join(outdir, 'summary.md')}); {TCG_NOTE}")
    for r in [("target", "measured", "wanted", "status")] + rows:
        print(f"  {r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  "
              f"{r[2]:<{widths[2]}}  {r[3]}")


# ------------------------------------------------------------------- main

def main(argv):
    parser = argparse.ArgumentParser(
        prog="bench-report.py",
        description="Summarise the socket benchmark: bench.csv, summary.md "
                    "and gnuplot PNGs in DIR.")
    parser.add_argument("--raw", required=True, metavar="RAW.csv",
                        help="the raw measurements, one line a repetition")
    parser.add_argument("--ring", metavar="RING.csv",
                        help="the native ring benchmark's CSV (ceiling)")
    parser.add_argument("--meta", metavar="META.txt",
                        help="'key: value' lines describing the machine")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="where to write the report (created)")
    args = parser.parse_args(argv)      # exits 2 on a usage error

    try:
        rows, ignored = read_raw(args.raw)
        ceiling, ring_meta = read_ring(args.ring) if args.ring else ({}, [])
        meta_lines = read_meta(args.meta) if args.meta else None
    except InputError as e:
        warn(str(e))
        return 1
    if ignored:
        warn(f"{args.raw}: ignored {len(ignored)} line"
             f"{'s' if len(ignored) != 1 else ''} that do not parse:")
        for lineno, line, why in ignored[:10]:
            warn(f"  line {lineno}: {why}: {line[:80]!r}")
        if len(ignored) > 10:
            warn(f"  ... and {len(ignored) - 10} more")
    if not rows:
        warn(f"{args.raw}: no measurement at all; nothing written")
        return 1
    unknown = sorted({r["setup"] for r in rows} - set(SETUP_ORDER))
    if unknown:
        warn(f"setup{'s' if len(unknown) > 1 else ''} "
             f"{', '.join(unknown)}: in bench.csv, not in the summary")

    points = aggregate(rows)
    data = Data(points)
    try:
        os.makedirs(args.out, exist_ok=True)
        write_bench_csv(os.path.join(args.out, "bench.csv"), points)
        plotter = Plotter(args.out, points)
        draw_plots(plotter, data, ceiling)
        targets = evaluate_targets(data)
        write_summary(os.path.join(args.out, "summary.md"), args, data,
                      len(rows), len(ignored), ring_meta, meta_lines,
                      targets, plotter)
    except OSError as e:
        warn(f"{args.out}: {e}")
        return 1
    print_targets(targets, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
