"""Many drives: serial ingest against ``--workers 2`` on a Dask LocalCluster (127.0.0.1).

    python -m bench.distributed [--drives 6] [--seconds 60] [--work /tmp/drivecat-bench]

Both runs ingest the same drives into fresh stores in this session; the LocalCluster's
start-up is included in the parallel time, as a user would see it. Prints JSON with both
times and the speed-up.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from bench.cache import generated
from drivecat.ingest.distributed import ingest_distributed
from drivecat.ingest.run import IngestOptions, ingest_many


def drives(work: Path, n: int, seconds: int) -> list[Path]:
    return [
        generated(work / f"fleet_{seconds}s_{i}", seconds=seconds, seed=100 + i, lidar_points=30000)
        for i in range(n)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drives", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/drivecat-bench"))
    args = parser.parse_args()
    paths = drives(args.work, args.drives, args.seconds)
    size_mb = sum(f.stat().st_size for p in paths for f in p.iterdir() if f.is_file()) / 1e6

    def run(name: str, parallel: bool) -> float:
        store = args.work / f"store_{name}"
        shutil.rmtree(store, ignore_errors=True)
        options = IngestOptions(store=store)
        t0 = time.perf_counter()
        if parallel:
            results = list(ingest_distributed(paths, options, workers=args.workers))
        else:
            results = list(ingest_many(paths, options))
        elapsed = time.perf_counter() - t0
        assert [r.status for r in results] == ["ingested"] * len(paths), results
        return elapsed

    serial = run("serial", False)
    parallel = run("workers", True)
    print(
        json.dumps(
            {
                "drives": args.drives,
                "drive_seconds": args.seconds,
                "input_mb": round(size_mb, 1),
                "serial_s": round(serial, 2),
                f"workers_{args.workers}_s": round(parallel, 2),
                "speedup": round(serial / parallel, 2),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
