#!/usr/bin/env python3
"""Renders dagr-bench results (JSON lines) as a Markdown table and a gnuplot PNG.

    python3 benchmarks/report.py results.jsonl [--md out.md] [--png out.png]

The table has one row per (op, n, nb, grid, ranks) with the GFLOP/s of dagr, ScaLAPACK and
one-node BLAS, dagr's ratio to each and dagr's residual. The plot shows GFLOP/s against n,
one panel per op, a line per implementation. Lines that are not dagr-bench output are
skipped. gnuplot must be installed for the PNG (Debian: gnuplot-nox)."""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict

IMPLS = ("dagr", "scalapack", "blas")


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "op" in r and "impl" in r and "gflops" in r:
                rows.append(r)
    return rows


def table(rows):
    # The last measurement of each configuration and implementation wins.
    best = defaultdict(dict)
    for r in rows:
        key = (r["op"], r["n"], r["nb"], r["grid"], r["ranks"])
        best[key][r["impl"]] = r
    out = ["| op | n | nb | grid | ranks | dagr GFLOP/s | ScaLAPACK GFLOP/s | BLAS (1 node) "
           "GFLOP/s | dagr / ScaLAPACK | dagr / BLAS | residual |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key in sorted(best):
        d = best[key]

        def g(i):
            return d[i]["gflops"] if i in d else None

        def fmt(x, f="{:.1f}"):
            return f.format(x) if x is not None else "—"

        ratio_s = g("dagr") / g("scalapack") if g("dagr") and g("scalapack") else None
        ratio_b = g("dagr") / g("blas") if g("dagr") and g("blas") else None
        res = d.get("dagr", {}).get("residual")
        out.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
            *key, fmt(g("dagr")), fmt(g("scalapack")), fmt(g("blas")),
            fmt(ratio_s, "{:.2f}"), fmt(ratio_b, "{:.2f}"),
            "—" if res is None else "{:.2g}".format(res)))
    return "\n".join(out) + "\n"


def plot(rows, png):
    ops = sorted({r["op"] for r in rows})
    with tempfile.TemporaryDirectory() as tmp:
        width, height = 420 * min(len(ops), 3), 320 * ((len(ops) + 2) // 3)
        script = ["set terminal png size {},{}".format(width, height),
                  "set output '{}'".format(png),
                  "set multiplot layout {},{}".format((len(ops) + 2) // 3, min(len(ops), 3)),
                  "set xlabel 'n'", "set ylabel 'GFLOP/s'", "set key bottom right", "set grid",
                  "set yrange [0:*]", "set offsets graph 0.1, graph 0.1, 0, 0"]
        for op in ops:
            plots = []
            for impl in IMPLS:
                pts = sorted((r["n"], r["gflops"]) for r in rows
                             if r["op"] == op and r["impl"] == impl)
                if not pts:
                    continue
                data = os.path.join(tmp, "{}_{}.dat".format(op, impl))
                with open(data, "w") as f:
                    for n, gf in pts:
                        f.write("{} {}\n".format(n, gf))
                plots.append("'{}' using 1:2 with linespoints title '{}'".format(data, impl))
            script.append("set title '{}'".format(op))
            script.append("plot " + ", ".join(plots))
        script.append("unset multiplot")
        subprocess.run(["gnuplot"], input="\n".join(script), text=True, check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--md", help="write the Markdown table here (default: stdout)")
    ap.add_argument("--png", help="write the plot here")
    a = ap.parse_args()
    rows = load(a.results)
    if not rows:
        sys.exit("report.py: no dagr-bench lines in " + a.results)
    md = table(rows)
    if a.md:
        with open(a.md, "w") as f:
            f.write(md)
    else:
        sys.stdout.write(md)
    if a.png:
        plot(rows, a.png)


if __name__ == "__main__":
    main()
