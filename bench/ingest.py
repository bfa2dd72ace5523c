"""Ingest throughput and memory, against a naive split run in the same process.

    python -m bench.ingest [--seconds 180] [--work /tmp/drivecat-bench]   (from the repo root)

1. Generates a drive (full-size lidar: 30k points at 10 Hz; 15 fps video), once, cached.
2. Baseline: a naive split with the mcap library on the same input: read every recording
   in log-time order (``iter_messages(log_time_order=True)`` merged across files), one
   ``Writer`` per topic and minute, with the library's defaults.
3. drivecat: ``ingest_drive`` on the same input into a fresh store (which also indexes
   frames and sensors, computes statistics and tags, hashes every file, writes the catalog).
   Runs alternate, best of ``--repeat``; the ratio is ingest / baseline (target <= 0.6).
   Each pair of neighbouring runs also gives a ratio of its own, and their median is
   reported too: on a shared machine whose speed drifts, a pair sees the same conditions.
4. Peak RSS of ``ingest run`` in a child process on the drive and on one 4x longer, to show
   that memory does not grow with drive length.
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
from pathlib import Path

from mcap.reader import make_reader
from mcap.writer import Writer

from bench.cache import generated
from drivecat.ingest.run import IngestOptions, ingest_drive

MINUTE_NS = 60 * 1_000_000_000


def drive(work: Path, seconds: int, seed: int = 7) -> Path:
    return generated(
        work / f"drive_{seconds}s", seconds=seconds, seed=seed, split_every=60, lidar_points=30000
    )


def naive_split(inputs: list[Path], out: Path) -> int:
    """The baseline: read in time order, one mcap Writer (defaults) per topic and minute."""
    files = [open(p, "rb") for p in inputs]  # noqa: SIM115 - closed below
    readers = [make_reader(f) for f in files]
    streams = [r.iter_messages(log_time_order=True) for r in readers]
    merged = heapq.merge(*streams, key=lambda item: item[2].log_time)
    writers: dict[tuple[str, int], tuple[Writer, int, object]] = {}
    open_minute: dict[str, int] = {}
    count = 0
    for schema, channel, message in merged:
        minute = message.log_time // MINUTE_NS
        key = (channel.topic, minute)
        if open_minute.get(channel.topic) != minute:
            old = (channel.topic, open_minute.get(channel.topic, -1))
            if old in writers:
                writers.pop(old)[0].finish()
            open_minute[channel.topic] = minute
        entry = writers.get(key)
        if entry is None:
            folder = out / channel.topic.strip("/").replace("/", "_")
            folder.mkdir(parents=True, exist_ok=True)
            writer = Writer(str(folder / f"{minute}.mcap"))
            writer.start()
            sid = writer.register_schema(schema.name, schema.encoding, schema.data) if schema else 0
            cid = writer.register_channel(
                channel.topic, channel.message_encoding, sid, channel.metadata
            )
            entry = writers[key] = (writer, cid, None)
        entry[0].add_message(
            entry[1], message.log_time, message.data, message.publish_time, message.sequence
        )
        count += 1
    for writer, _cid, _ in writers.values():
        writer.finish()
    for f in files:
        f.close()
    return count


def timed(fn, *args):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - t0, value


def peak_rss_mb(path: Path, store: Path) -> float:
    """Peak RSS of an ingest in a fresh process plus its reading child's (they run side
    by side, so the sum bounds the memory in use at once)."""
    shutil.rmtree(store, ignore_errors=True)
    code = (
        "import resource, sys; from pathlib import Path;"
        "from ingest.run import IngestOptions, ingest_drive;"
        "ingest_drive(Path(sys.argv[1]), IngestOptions(store=Path(sys.argv[2])));"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss"
        " + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path), str(store)],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=180)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("/tmp/drivecat-bench"))
    parser.add_argument("--no-memory", action="store_true", help="skip the 4x RSS runs")
    args = parser.parse_args()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    src = drive(work, args.seconds)
    inputs = sorted(src.glob("*.mcap"))
    size_mb = sum(p.stat().st_size for p in src.iterdir() if p.is_file()) / 1e6
    base_times, ours_times = [], []
    for _ in range(args.repeat):
        # Each run starts with the previous run's output flushed to disk, so neither pays
        # for the other's write-back.
        shutil.rmtree(work / "naive", ignore_errors=True)
        os.sync()
        t, count = timed(naive_split, inputs, work / "naive")
        base_times.append(t)
        shutil.rmtree(work / "store", ignore_errors=True)
        os.sync()
        t, result = timed(ingest_drive, src, IngestOptions(store=work / "store"))
        ours_times.append(t)
        assert result.message_count == count, (result.message_count, count)
    base, ours = min(base_times), min(ours_times)
    report: dict[str, object] = {
        "drive_seconds": args.seconds,
        "input_mb": round(size_mb, 1),
        "messages": count,
        "naive_split_s": round(base, 2),
        "ingest_s": round(ours, 2),
        "naive_mb_per_s": round(size_mb / base, 1),
        "ingest_mb_per_s": round(size_mb / ours, 1),
        "ratio_ingest_over_naive": round(ours / base, 3),
        "median_paired_ratio": round(
            statistics.median(o / b for o, b in zip(ours_times, base_times, strict=True)), 3
        ),
        "all_naive_s": [round(t, 2) for t in base_times],
        "all_ingest_s": [round(t, 2) for t in ours_times],
        "bench_process_peak_rss_mb": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        ),
    }
    if not args.no_memory:
        long = drive(work, args.seconds * 4, seed=8)
        report["ingest_peak_rss_mb"] = round(peak_rss_mb(src, work / "rss_store"), 1)
        report["ingest_peak_rss_mb_4x_longer"] = round(peak_rss_mb(long, work / "rss_store"), 1)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
