"""Export throughput: a training dataset and an MCAP subset of a 2-minute drive.

    python -m bench.export [--seconds 120] [--work /tmp/drivecat-bench]   (from the repo root)

1. Generates a drive (full-size lidar: 30k points at 10 Hz; 15 fps video), once, cached in
   ``--work`` (the same drive ``bench.ingest`` uses), and ingests it into a store there.
2. ``catalog export --format dataset`` of every segment: one sample per lidar sweep, the
   nearest front-camera frame decoded to PNG, the sweep as .pcd, a label JSON. Reports
   samples per second, and frames decoded and images written per second.
3. ``catalog export --format mcap`` of every segment, for comparison: messages per second.

Prints one JSON document on standard output; progress goes to standard error.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from bench.ingest import drive as generated_drive
from catalog.export import ExportFormat, ExportOptions, ExportResult, export
from ingest.config import Config
from ingest.run import IngestOptions, ingest_drive


def ingest(drive: Path, store: Path) -> None:
    config = Config(tags={"intersection": {"map": str(drive / "intersections.geojson")}})
    result = ingest_drive(drive, IngestOptions(store=store, config=config))
    if result.status == "failed":
        raise SystemExit(f"ingest failed: {result.error}")
    print(f"ingest: {result.status} {result.drive_id}", file=sys.stderr)


def run(store: Path, out: Path, fmt: ExportFormat) -> ExportResult:
    shutil.rmtree(out, ignore_errors=True)
    try:
        return export(store, ExportOptions(where="true", format=fmt, out=out))
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.export", description=__doc__)
    parser.add_argument("--seconds", type=int, default=120, help="drive length (default 120)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/drivecat-bench"))
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    drive = generated_drive(args.work, args.seconds)
    store = args.work / f"export_store_{args.seconds}s"
    ingest(drive, store)
    t0 = time.perf_counter()
    dataset = run(store, args.work / "export_dataset", ExportFormat.DATASET)
    dataset_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    mcap = run(store, args.work / "export_mcap", ExportFormat.MCAP)
    mcap_s = time.perf_counter() - t0
    report = {
        "drive_seconds": args.seconds,
        "dataset": {
            "samples": dataset.sample_count,
            "dropped": dataset.dropped,
            **dataset.stats,
            "seconds": round(dataset_s, 2),
            "samples_per_s": round(dataset.sample_count / dataset_s, 1),
            "decoded_frames_per_s": round(dataset.stats["decoded_frames"] / dataset_s, 1),
            "images_per_s": round(dataset.stats["images"] / dataset_s, 1),
            "realtime_factor": round(args.seconds / dataset_s, 2),
        },
        "mcap": {
            "messages": mcap.sample_count,
            "files": mcap.ranges,
            "seconds": round(mcap_s, 2),
            "messages_per_s": round(mcap.sample_count / mcap_s, 1),
        },
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
