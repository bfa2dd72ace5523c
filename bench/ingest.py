"""Ingest time, CPU use and memory on four drives, each against a naive split in the same run.

    python -m bench.ingest [--seconds 180] [--repeat 3] [--drives bench,lidar,many,bag]
                           [--work /tmp/drivecat-bench] [--no-memory]      (from the repo root)

Drives (made once, cached under ``--work``):
1. ``bench``: the generator's drive (full-size lidar, 30k points at 10 Hz; 15 fps video);
2. ``lidar``: one lidar topic about 90% of the bytes, points quantized like a real sensor
   (``bench.drives.lidar_heavy``);
3. ``many``: about 200 topics of small ROS 1 messages at 10 to 100 Hz (``many_topics``);
4. ``bag``: that drive as a ROS 1 bag (``many_topics_bag``); ``bag_bz2`` and ``bag_lz4``
   (not run by default): the same with compressed chunks.

Baselines: for MCAP, read every recording in log-time order with the mcap library
(``iter_messages(log_time_order=True)``, merged across files) and write one ``Writer`` per
topic and minute with the library's defaults; for the bag, the same with rosbags' reader.

Every run is a fresh process, timed from outside: naive, ``ingest`` with ``--jobs 1``,
with ``--jobs 2`` and with the default ``--jobs`` (``jobs_default``: one per core where
the plan says workers pay, else one process), in turn, ``--repeat`` times, so that each
round sees the same machine (it is shared and noisy): ratios are the median of each
round's own ratio. For each run: wall time, CPU utilization (user + system seconds of the
process and all its children, over wall time and the cores) and peak RSS of all its
processes together (sampled every 10 ms from /proc). ``--no-memory`` skips the run on a
drive 4x longer (the bench drive only, with ``--jobs 2``) that shows memory does not grow
with length.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import drives
from bench.cache import generated

MINUTE_NS = 60 * 1_000_000_000
CORES = len(os.sched_getaffinity(0))


def drive(work: Path, seconds: int, seed: int = 7) -> Path:
    return generated(
        work / f"drive_{seconds}s", seconds=seconds, seed=seed, split_every=60, lidar_points=30000
    )


def make_drive(kind: str, work: Path, seconds: int) -> Path:
    if kind == "bench":
        return drive(work, seconds)
    if kind == "lidar":
        return drives.lidar_heavy(work / f"lidar_{seconds}s", seconds)
    if kind == "many":
        return drives.many_topics(work / f"many_{seconds}s", seconds)
    if kind == "bag":
        return drives.many_topics_bag(work / f"bag_{seconds}s", seconds)
    if kind in ("bag_bz2", "bag_lz4"):
        compression = kind.removeprefix("bag_")
        return drives.many_topics_bag(work / f"{kind}_{seconds}s", seconds, compression=compression)
    raise ValueError(f"unknown drive {kind!r}")


class _Split:
    """One mcap Writer per topic and minute, with the library's defaults."""

    def __init__(self, out: Path) -> None:
        from mcap.writer import Writer

        self.out, self.writer_type = out, Writer
        self.writers: dict[str, tuple[Any, int, int]] = {}  # topic -> writer, minute, channel
        self.count = 0

    def add(self, topic: str, schema: tuple[str, str, bytes] | None, encoding: str,
            log: int, pub: int, seq: int, data: bytes) -> None:  # fmt: skip
        minute = log // MINUTE_NS
        entry = self.writers.get(topic)
        if entry is None or entry[1] != minute:
            if entry is not None:
                entry[0].finish()
            folder = self.out / topic.strip("/").replace("/", "_")
            folder.mkdir(parents=True, exist_ok=True)
            writer = self.writer_type(str(folder / f"{minute}.mcap"))
            writer.start()
            sid = writer.register_schema(*schema) if schema else 0
            channel = writer.register_channel(topic, encoding, sid)
            entry = self.writers[topic] = (writer, minute, channel)
        entry[0].add_message(entry[2], log, data, pub, seq)
        self.count += 1

    def close(self) -> int:
        for writer, _, _ in self.writers.values():
            writer.finish()
        return self.count


def naive_mcap(inputs: list[Path], out: Path) -> int:
    """The MCAP baseline: read in time order with the mcap library, split by topic and minute."""
    from mcap.reader import make_reader

    files = [open(p, "rb") for p in inputs]  # noqa: SIM115 - closed below
    streams = [make_reader(f).iter_messages(log_time_order=True) for f in files]
    split = _Split(out)
    for schema, channel, m in heapq.merge(*streams, key=lambda item: item[2].log_time):
        s = (schema.name, schema.encoding, schema.data) if schema else None
        split.add(channel.topic, s, channel.message_encoding, m.log_time, m.publish_time,
                  m.sequence, m.data)  # fmt: skip
    for f in files:
        f.close()
    return split.close()


def naive_bag(inputs: list[Path], out: Path) -> int:
    """The ROS 1 baseline: rosbags' reader in time order, split by topic and minute."""
    from rosbags.rosbag1 import Reader

    split = _Split(out)
    with Reader(inputs[0]) as bag:
        for conn, t, data in bag.messages():
            schema = (conn.msgtype.replace("/msg/", "/"), "ros1msg", conn.msgdef.data.encode())
            split.add(conn.topic, schema, "ros1", t, t, 0, data)
    return split.close()


def _tree_rss_kb(pid: int) -> int:
    """RSS of a process and all its descendants, from /proc (kB); 0 once it is gone."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next((int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:")), 0)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue
    return total


def measured(argv: list[str]) -> dict[str, float]:
    """Run ``argv``; its wall time, CPU utilization and peak RSS of all its processes."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kb(proc.pid))
        time.sleep(0.01)
    wall = time.perf_counter() - t0
    out, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"{argv[:4]} failed: {err.decode()[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "utilization": cpu / wall / CORES,
        "peak_rss_mb": peak / 1024,
        "messages": float(out.decode().strip().splitlines()[-1]),
    }


_NAIVE = "import sys; from pathlib import Path; from bench.ingest import {fn}; print({fn}(sorted(Path(sys.argv[1]).glob('*.{ext}')), Path(sys.argv[2])))"  # noqa: E501
_OURS = (
    "import sys; from pathlib import Path; from drivecat.ingest.run import IngestOptions, "
    "ingest_drive; r = ingest_drive(Path(sys.argv[1]), IngestOptions(store=Path(sys.argv[2]), "
    "jobs=None if sys.argv[3] == 'default' else int(sys.argv[3]))); "
    "assert r.status == 'ingested', r; print(r.message_count)"
)


def run_drive(kind: str, src: Path, work: Path, repeat: int, jobs: list[str]) -> dict[str, Any]:
    bag = kind.startswith("bag")
    naive = _NAIVE.format(fn="naive_bag" if bag else "naive_mcap", ext="bag" if bag else "mcap")
    ways: dict[str, Callable[[], dict[str, float]]] = {
        "naive": lambda: measured([sys.executable, "-c", naive, str(src), str(work / "naive")])
    }
    for n in jobs:
        ways[f"jobs_{n}"] = lambda n=n: measured(  # type: ignore[misc]
            [sys.executable, "-c", _OURS, str(src), str(work / "store"), str(n)]
        )
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in ways}
    for _ in range(repeat):
        for name, way in ways.items():
            for folder in ("naive", "store"):
                shutil.rmtree(work / folder, ignore_errors=True)
            os.sync()  # no run pays for the write-back of the one before
            runs[name].append(way())
            print(f"{kind} {name}: {runs[name][-1]['wall_s']:.2f} s", file=sys.stderr)
    counts = {r["messages"] for rs in runs.values() for r in rs}
    assert len(counts) == 1, f"{kind}: message counts differ between runs: {counts}"
    size = sum(p.stat().st_size for p in src.iterdir() if p.is_file())
    out: dict[str, Any] = {"input_mb": round(size / 1e6, 1), "messages": int(counts.pop())}
    for name, rs in runs.items():
        out[name] = {
            key: round(statistics.median(r[key] for r in rs), 3)
            for key in ("wall_s", "cpu_s", "utilization", "peak_rss_mb")
        }
    paired = {
        f"{name}/naive": round(
            statistics.median(
                r["wall_s"] / b["wall_s"] for r, b in zip(runs[name], runs["naive"], strict=True)
            ),
            3,
        )
        for name in runs
        if name != "naive"
    }
    if "jobs_1" in runs and "jobs_2" in runs:
        pairs = zip(runs["jobs_1"], runs["jobs_2"], strict=True)
        paired["speedup_jobs_2_over_jobs_1"] = round(
            statistics.median(a["wall_s"] / b["wall_s"] for a, b in pairs), 3
        )
    out["paired_ratios"] = paired
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--seconds", type=int, default=180, help="drive length (default 180)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--drives", default="bench,lidar,many,bag")
    parser.add_argument(
        "--jobs", default="1,2,default", help="--jobs values to run (default 1,2,default)"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/drivecat-bench"))
    parser.add_argument("--no-memory", action="store_true", help="skip the 4x longer drive")
    args = parser.parse_args(argv)
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    jobs = args.jobs.split(",")
    if any(j != "default" and not (j.isdigit() and int(j) >= 1) for j in jobs):
        parser.error(f"--jobs: numbers or 'default', not {args.jobs!r}")
    report: dict[str, Any] = {"cores": CORES, "seconds": args.seconds, "repeat": args.repeat}
    for kind in args.drives.split(","):
        src = make_drive(kind, work, args.seconds)
        report[kind] = run_drive(kind, src, work, args.repeat, jobs)
    if not args.no_memory:
        long = drive(work, args.seconds * 4, seed=8)
        report["bench_4x_longer"] = run_drive("bench", long, work, 1, ["2"])
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
