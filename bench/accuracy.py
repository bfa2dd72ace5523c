"""Per-tag accuracy against truth.json over many generated drives (not a speed benchmark).

    python -m bench.accuracy [--drives 20] [--seconds 60] [--work /tmp/drivecat-bench]

Drives use seeds 1000.. and a mix of variants (night, sidecar, truncated, ros2). Each is
ingested with its intersection map; every segment's tags are compared with the truth.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from collections import Counter
from pathlib import Path

import duckdb

from drivecat.ingest.config import Config
from drivecat.ingest.run import IngestOptions, ingest_drive
from sample_logs.generate import generate
from sample_logs.truth import SEGMENT_TAGS

TAGS = SEGMENT_TAGS
VARIANTS = ((), ("night",), ("sidecar",), ("truncated",), ("ros2",))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drives", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--work", type=Path, default=Path("/tmp/drivecat-bench"))
    args = parser.parse_args()
    root = args.work / "accuracy"
    shutil.rmtree(root, ignore_errors=True)
    right: Counter[str] = Counter()
    total = 0
    mismatches = []
    for i in range(args.drives):
        variants = VARIANTS[i % len(VARIANTS)]
        drive = generate(
            root / f"drive{i}",
            seconds=args.seconds,
            seed=1000 + i,
            variants=variants,
            lidar_points=500,
        )
        store = root / f"store{i}"
        config = Config(tags={"intersection": {"map": str(drive / "intersections.geojson")}})
        ingest_drive(drive, IngestOptions(store=store, config=config))
        truth = json.loads((drive / "truth.json").read_text())["segments"]
        con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
        rows = con.execute(
            f"SELECT lat, lon, {', '.join(TAGS)} FROM segments ORDER BY seg_idx"
        ).fetchall()
        con.close()
        assert len(rows) == len(truth), (drive, len(rows), len(truth))
        for row, want in zip(rows, truth, strict=True):
            total += 1
            got = dict(zip(("lat", "lon", *TAGS), row, strict=True))
            for tag in TAGS:
                if got[tag] == want[tag]:
                    right[tag] += 1
                else:
                    mismatches.append((i, want["seg_idx"], tag, got[tag], want[tag]))
            if math.isclose(got["lat"], want["lat"], abs_tol=1e-7) and math.isclose(
                got["lon"], want["lon"], abs_tol=1e-7
            ):
                right["position"] += 1
    report = {
        "drives": args.drives,
        "segments": total,
        "accuracy": {tag: round(right[tag] / total, 4) for tag in (*TAGS, "position")},
        "mismatches": mismatches[:20],
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
