#!/usr/bin/env python3
"""Checks a dagr trace file (tests/lib/test_trace.c runs this).

    check_trace.py TRACE.json --tasks N0,N1,... [--allow-dropped] [--aligned-within MS]
                   [--io "NAME=COUNT:BYTES" ...] [--copies "RANK:DEVICE=IN:OUT" ...]

Parses the file with json.load, then checks: the Chrome Trace Event shape (traceEvents,
displayTimeUnit, otherData; every "X" event has pid, tid, ts >= its rank's start, dur >= 0);
process and thread names for every rank; the number of task events of each rank (pid) against
--tasks; that tasks run on worker or device rows; that the events of each worker thread (tasks
and idle periods) and of each device's copy row do not overlap; transfer events carry peer and
bytes; copy events ("copy in", "copy out") lie on their device's "device D copies" row and carry
bytes and the device; with --aligned-within, that every rank's first and last task start within
MS milliseconds of rank 0's (the ranks of the traced scenario work in step, so a clock left
unaligned shows as a shift); with --io, that the I/O events called NAME ("hdf5 write") number
COUNT and move BYTES in all, each carrying bytes and the worker that did it, and each lying
within a task event of that worker; with --copies, that the copies of RANK's device DEVICE move
IN bytes into the device and OUT bytes out of it. Exits 0 when all hold, else prints what failed
and exits 1."""
import argparse
import json
import re
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--tasks", required=True, help="expected task events per rank, comma-separated")
    ap.add_argument("--allow-dropped", action="store_true")
    ap.add_argument("--aligned-within", type=float, metavar="MS")
    ap.add_argument("--io", action="append", default=[], metavar="NAME=COUNT:BYTES")
    ap.add_argument("--copies", action="append", default=[], metavar="RANK:DEVICE=IN:OUT")
    a = ap.parse_args()
    want = [int(x) for x in a.tasks.split(",")]
    errors = []
    with open(a.trace, encoding="utf-8") as f:
        doc = json.load(f)
    for key in ("traceEvents", "displayTimeUnit", "otherData"):
        if key not in doc:
            errors.append(f"missing top-level key {key}")
    other = doc.get("otherData", {})
    nranks = other.get("ranks")
    if nranks != len(want):
        errors.append(f"otherData.ranks = {nranks}, expected {len(want)}")
    threads = other.get("threads", [])
    events = doc.get("traceEvents", [])
    procs = {e["pid"] for e in events if e.get("ph") == "M" and e.get("name") == "process_name"}
    if procs != set(range(len(want))):
        errors.append(f"process_name metadata for pids {sorted(procs)}")
    tnames = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
              if e.get("ph") == "M" and e.get("name") == "thread_name"}
    per_rank = [0] * len(want)
    span = {}  # pid -> [first task start, last task start], microseconds
    lanes = {}
    copies = {}  # (pid, device) -> [copies in, copies out, bytes in, bytes out]
    for e in events:
        if e.get("ph") != "X":
            continue
        for k in ("name", "cat", "pid", "tid", "ts", "dur"):
            if k not in e:
                errors.append(f"event without {k}: {e}")
                break
        else:
            pid, tid = e["pid"], e["tid"]
            if e["dur"] < 0:
                errors.append(f"negative duration: {e}")
            if (pid, tid) not in tnames:
                errors.append(f"no thread_name for pid {pid} tid {tid}")
            if e["cat"] == "task":
                per_rank[pid] += 1
                ts = float(e["ts"])
                lo, hi = span.get(pid, (ts, ts))
                span[pid] = (min(lo, ts), max(hi, ts))
                if not re.fullmatch(r"(worker|device) \d+", tnames.get((pid, tid), "")):
                    errors.append(f"task on a thread that is neither a worker nor a device: {e}")
            if e["cat"] == "transfer":
                args = e.get("args", {})
                if "peer" not in args or "bytes" not in args:
                    errors.append(f"transfer without peer/bytes: {e}")
            if e["cat"] == "copy":
                args = e.get("args", {})
                row = re.fullmatch(r"device (\d+) copies", tnames.get((pid, tid), ""))
                if e["name"] not in ("copy in", "copy out") or "bytes" not in args:
                    errors.append(f"copy event without its direction or bytes: {e}")
                elif not row or int(row.group(1)) != args.get("device"):
                    errors.append(f"copy event off its device's copy row: {e}")
                else:
                    copied = copies.setdefault((pid, int(row.group(1))), [0, 0, 0, 0])
                    k = 0 if e["name"] == "copy in" else 1
                    copied[k] += 1
                    copied[2 + k] += args["bytes"]
            if (pid < len(threads) and tid < threads[pid]) or e["cat"] == "copy":
                lanes.setdefault((pid, tid), []).append((float(e["ts"]), float(e["dur"]), e["name"]))
    tasks_of = {}  # (pid, tid) -> [(start, end)] of task events
    for e in events:
        if e.get("ph") == "X" and e.get("cat") == "task":
            tasks_of.setdefault((e["pid"], e["tid"]), []).append(
                (float(e["ts"]), float(e["ts"]) + float(e["dur"])))
    for spec in a.io:
        name, counts = spec.split("=")
        want_n, want_bytes = (int(x) for x in counts.split(":"))
        ios = [e for e in events if e.get("ph") == "X" and e.get("cat") == "io"
               and e.get("name") == name]
        got_bytes = sum(e.get("args", {}).get("bytes", 0) for e in ios)
        if len(ios) != want_n or got_bytes != want_bytes:
            errors.append(f"{len(ios)} '{name}' events moving {got_bytes} bytes, expected "
                          f"{want_n} moving {want_bytes}")
        for e in ios:
            worker = e.get("args", {}).get("worker")
            t0, t1 = float(e["ts"]), float(e["ts"]) + float(e["dur"])
            inside = any(s0 - 1e-3 <= t0 and t1 <= s1 + 1e-3
                         for s0, s1 in tasks_of.get((e["pid"], worker), []))
            if not inside:
                errors.append(f"'{name}' event not within a task of worker {worker}: {e}")
                break
    for spec in a.copies:
        where, counts = spec.split("=")
        rank, dev = (int(x) for x in where.split(":"))
        want_in, want_out = (int(x) for x in counts.split(":"))
        n_in, n_out, b_in, b_out = copies.get((rank, dev), [0, 0, 0, 0])
        if (b_in, b_out) != (want_in, want_out):
            errors.append(f"rank {rank} device {dev}: copies move {b_in} bytes in and {b_out} "
                          f"out, expected {want_in} and {want_out}")
        if (n_in > 0) != (want_in > 0) or (n_out > 0) != (want_out > 0):
            errors.append(f"rank {rank} device {dev}: {n_in} copies in, {n_out} out")
    if per_rank != want:
        errors.append(f"task events per rank {per_rank}, expected {want}")
    overlaps = 0
    for (pid, tid), evs in lanes.items():
        evs.sort()
        for (t0, d0, n0), (t1, _, n1) in zip(evs, evs[1:]):
            if t1 < t0 + d0 - 1e-6:
                overlaps += 1
                if overlaps <= 5:
                    errors.append(f"rank {pid} thread {tid}: '{n0}' [{t0}, {t0 + d0}] overlaps "
                                  f"'{n1}' starting at {t1}")
    if a.aligned_within is not None and 0 in span:
        for pid, (lo, hi) in sorted(span.items()):
            dlo, dhi = (lo - span[0][0]) / 1e3, (hi - span[0][1]) / 1e3
            if abs(dlo) > a.aligned_within or abs(dhi) > a.aligned_within:
                errors.append(f"rank {pid}'s tasks start {dlo:+.3f} ms (first) and {dhi:+.3f} ms "
                              f"(last) from rank 0's: clocks not aligned within "
                              f"{a.aligned_within} ms")
    if not a.allow_dropped and any(other.get("dropped_events", [])):
        errors.append(f"events dropped: {other.get('dropped_events')}")
    for e in errors[:20]:
        print("check_trace:", e)
    if not errors:
        print(f"check_trace: ok: {len(events)} events, task events per rank {per_rank}, "
              f"{len(lanes)} worker and copy lanes without overlap"
              + (f", copies (in, out, bytes in, bytes out) {copies}" if copies else ""))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
