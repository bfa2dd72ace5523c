"""Query latency: a 1M-segment catalog in the project's own schema, and the CLI's start-up.

    python -m bench.query [--segments 1000000] [--work /tmp/drivecat-bench]

1. Builds a catalog with ``catalog.db.connect`` (the real DDL and indexes) holding N
   synthetic segments: 20k H3 cells around San Francisco, a year of start times, four
   device versions, four weathers. Rows are inserted sorted by time, as ingest does.
2. Times the DESIGN.md query shape: an H3 cell (through the ``h3_latlng_to_cell`` UDF), a
   time range, a device version pattern and a tag; median of 15 runs on a read-only
   connection (the ``catalog query`` path). Target: median under 20 ms.
3. Baseline in the same session: the same query on a copy of the table with the rows
   shuffled and no indexes (what a catalog without the sort and indexes would do).
4. ``catalog query "SELECT 1"`` end to end in a fresh process (median of 5).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import h3
import numpy as np
import pyarrow as pa

from drivecat.catalog import db


def build(store: Path, n: int) -> tuple[int, int, int]:
    shutil.rmtree(store, ignore_errors=True)
    con = db.connect(store)
    rng = np.random.default_rng(0)
    pool_lat = 37.7 + rng.random(20_000) * 0.2
    pool_lon = -122.5 + rng.random(20_000) * 0.2
    pool = np.array(
        [
            h3.str_to_int(h3.latlng_to_cell(a, b, 9))
            for a, b in zip(pool_lat, pool_lon, strict=True)
        ],
        dtype=np.uint64,
    )
    pick = rng.integers(0, len(pool), n)
    start = 1_780_000_000_000_000_000 + np.sort(rng.integers(0, 365 * 86_400 * 10**9, n))
    rows = pa.table(
        {
            "drive_id": pa.array([f"veh{i % 97:03d}_{i // 360}" for i in range(n)]),
            "seg_idx": pa.array(np.arange(n) % 360, pa.int32()),
            "start_ns": start,
            "end_ns": start + 10 * 10**9,
            "device_version": pa.array(rng.choice(["4.2.1", "4.2.2", "4.3.0", "5.0.0"], n)),
            "lat": pool_lat[pick],
            "lon": pool_lon[pick],
            "h3_cell": pool[pick],
            "weather": pa.array(rng.choice(["clear", "rain", "fog", "snow"], n)),
            "pedestrian_count": pa.array(rng.integers(0, 8, n), pa.int32()),
        }
    )
    con.register("incoming", rows)
    con.execute("INSERT INTO segments BY NAME SELECT * FROM incoming ORDER BY start_ns")
    con.execute("CREATE TABLE segments_baseline AS SELECT * FROM segments ORDER BY random()")
    con.close()
    return int(pool[pick[n // 3]]), int(start[n // 4]), int(start[3 * n // 4])


def median_ms(con: object, sql: str, runs: int = 15) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        con.execute(sql).fetchall()  # type: ignore[attr-defined]
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/drivecat-bench"))
    args = parser.parse_args()
    store = args.work / "query_store"
    cell, t0, t1 = build(store, args.segments)
    lat, lon = h3.cell_to_latlng(h3.int_to_str(cell))
    where = (
        f"h3_cell = h3_latlng_to_cell({lat}, {lon}, 9) AND start_ns BETWEEN {t0} AND {t1} "
        "AND device_version LIKE '4.2.%' AND weather = 'rain'"
    )
    con = db.connect(store, read_only=True)
    query = f"SELECT drive_id, seg_idx, start_time, pedestrian_count FROM segments WHERE {where}"
    matches = len(con.execute(query).fetchall())
    ours = median_ms(con, query)
    baseline = median_ms(con, query.replace("FROM segments", "FROM segments_baseline"))
    con.close()
    cli = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "drivecat",
                "catalog",
                "query",
                "SELECT 1",
                "--store",
                str(store),
            ],
            check=True,
            capture_output=True,
        )
        cli.append(time.perf_counter() - t)
    print(
        json.dumps(
            {
                "segments": args.segments,
                "matches": matches,
                "query_median_ms": round(ours, 2),
                "baseline_unsorted_no_index_median_ms": round(baseline, 2),
                "speedup_vs_baseline": round(baseline / ours, 2),
                "cli_trivial_query_median_s": round(statistics.median(cli), 3),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
