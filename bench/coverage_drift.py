"""``catalog coverage`` and ``catalog drift`` on a catalog of 1M segments (target: under 2 s).

    python -m bench.coverage_drift [--segments 1000000] [--work /tmp/drivecat-bench]

Builds the catalog of ``bench.query`` (20k H3 cells around San Francisco, a year, four
device versions, four weathers), then times, median of 5 in this process (the catalog
opened read-only each time, as the commands do):
- coverage by weather, time_of_day, at_intersection, pedestrians (5 x 3 x 3 x 5 combinations);
- coverage by weather and H3 cell at resolution 7;
- drift of device_version 5.0.0 against 4.2.%;
and each command end to end in a fresh process (``python -m drivecat catalog ...``, one run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.query import build
from drivecat.catalog.coverage import coverage
from drivecat.catalog.drift import drift


def median_s(run: Callable[[], Any], runs: int = 5) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def cli_s(*args: str) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "drivecat", "catalog", *args], capture_output=True, text=True
    )
    if done.returncode not in (0, 1):
        raise SystemExit(done.stderr)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/drivecat-bench"))
    args = parser.parse_args()
    store = args.work / "coverage_store"
    t0 = time.perf_counter()
    build(store, args.segments)
    built = time.perf_counter() - t0
    by = ["weather", "time_of_day", "at_intersection", "pedestrians"]
    cov_s, cov = median_s(lambda: coverage(store, by))
    h3_s, cells = median_s(lambda: coverage(store, ["weather"], h3_resolution=7))
    base, cur = "device_version LIKE '4.2.%'", "device_version = '5.0.0'"
    drift_s, result = median_s(lambda: drift(store, base, cur))
    report = {
        "segments": args.segments,
        "build_s": round(built, 1),
        "coverage_4_conditions_median_s": round(cov_s, 3),
        "coverage_rows": cov.rows.num_rows,
        "coverage_by_h3_res7_median_s": round(h3_s, 3),
        "coverage_h3_rows": cells.rows.num_rows,
        "drift_median_s": round(drift_s, 3),
        "drift_segments": result.segments,
        "drift_flagged": result.flagged,
        "cli_coverage_s": round(
            cli_s("coverage", "--store", str(store), "--by", ",".join(by), "--format", "csv"), 3
        ),
        "cli_drift_s": round(
            cli_s("drift", "--store", str(store), "--baseline", base, "--current", cur), 3
        ),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
