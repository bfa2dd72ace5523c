"""Export throughput: a training dataset and an MCAP subset of a 2-minute drive.

    python -m bench.export [--seconds 120] [--work /tmp/drivecat-bench]   (from the repo root)

1. Generates a drive (full-size lidar: 30k points at 10 Hz; 15 fps video), once, cached in
   ``--work`` (the same drive ``bench.ingest`` uses), and ingests it into a store there.
2. ``catalog export --format dataset`` of every segment: one sample per lidar sweep, the
   nearest front-camera frame decoded to PNG, the sweep as .pcd, a label JSON. Reports
   samples per second, and frames decoded and images written per second.
3. ``catalog export --format mcap`` of every segment, for comparison: messages per second.

Wall and CPU seconds (this process and its image workers) are both reported: on a shared
machine the wall time says little on its own.

Prints one JSON document on standard output; progress goes to standard error.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

from bench.ingest import drive as generated_drive
from drivecat.catalog.export import ExportOptions, ExportResult, export
from drivecat.ingest.config import Config
from drivecat.ingest.run import IngestOptions, ingest_drive


def ingest(drive: Path, store: Path) -> None:
    config = Config(tags={"intersection": {"map": str(drive / "intersections.geojson")}})
    result = ingest_drive(drive, IngestOptions(store=store, config=config))
    if result.status == "failed":
        raise SystemExit(f"ingest failed: {result.error}")
    print(f"ingest: {result.status} {result.drive_id}", file=sys.stderr)


def run(store: Path, out: Path, fmt: str, workers: int | None) -> tuple[ExportResult, float, float]:
    """One export of every segment: the result, wall seconds, CPU seconds (with children)."""
    shutil.rmtree(out, ignore_errors=True)
    cpu0 = _cpu()
    t0 = time.perf_counter()
    try:
        options = ExportOptions(where="true", format=fmt, out=out, image_workers=workers)
        result = export(store, options)
        return result, time.perf_counter() - t0, _cpu() - cpu0
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _cpu() -> float:
    own, children = (
        resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.export", description=__doc__)
    parser.add_argument("--seconds", type=int, default=120, help="drive length (default 120)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/drivecat-bench"))
    parser.add_argument(
        "--image-workers", type=int, default=None, help="worker processes (default: auto)"
    )
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    drive = generated_drive(args.work, args.seconds)
    store = args.work / f"export_store_{args.seconds}s"
    ingest(drive, store)
    work = args.work
    dataset, dataset_s, dataset_cpu = run(
        store, work / "export_dataset", "dataset", args.image_workers
    )
    mcap, mcap_s, mcap_cpu = run(store, work / "export_mcap", "mcap", None)
    report = {
        "drive_seconds": args.seconds,
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "dataset": {
            "image_workers": "auto" if args.image_workers is None else args.image_workers,
            "samples": dataset.sample_count,
            "dropped": dataset.dropped,
            **dataset.stats,
            "seconds": round(dataset_s, 2),
            "cpu_seconds": round(dataset_cpu, 2),
            "samples_per_s": round(dataset.sample_count / dataset_s, 1),
            "decoded_frames_per_s": round(dataset.stats["decoded_frames"] / dataset_s, 1),
            "images_per_s": round(dataset.stats["images"] / dataset_s, 1),
            "realtime_factor": round(args.seconds / dataset_s, 2),
        },
        "mcap": {
            "messages": mcap.sample_count,
            "files": mcap.ranges,
            "seconds": round(mcap_s, 2),
            "cpu_seconds": round(mcap_cpu, 2),
            "messages_per_s": round(mcap.sample_count / mcap_s, 1),
        },
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
