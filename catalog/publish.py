"""``catalog publish``: the catalog as hive-partitioned Parquet, for DuckDB, Spark or Trino.

```
<out>/<table>/date=<UTC start date>/device_version=<version>/<drive_id>.parquet
<out>/schemas/schemas.parquet
<out>/_published.json        drive id -> fingerprint of what was published
```
Every drive table is partitioned by the drive's start date and device version, one file
per drive, so a publish is incremental: a drive already published with the same
fingerprint is skipped, a replaced drive (``ingest run --force``) is rewritten, and a drive
no longer in the catalog is removed. Each file is written under a temporary name and
renamed. Query it with, for example::

    SELECT weather, count(*) FROM read_parquet('<out>/segments/*/*/*.parquet',
                                               hive_partitioning = true) GROUP BY 1
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from drivecat.catalog import db
from drivecat.catalog.tables import DRIVE_TABLES

STATE = "_published.json"


@dataclass(frozen=True)
class PublishReport:
    written: list[str]
    skipped: int
    removed: list[str]


def _partition(value: str) -> str:
    # Hive-style escaping: DuckDB and Spark decode %XX in partition values.
    return quote(value, safe="-_.~ ")


def _write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def publish(store: Path, out: Path) -> PublishReport:
    """Write new and changed drives of the store's catalog under ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / STATE
    state: dict[str, dict[str, str]] = (
        json.loads(state_path.read_text()) if state_path.exists() else {}
    )
    con = db.connect(store, read_only=True)
    try:
        drives = con.execute(
            "SELECT drive_id, fingerprint, strftime(start_time AT TIME ZONE 'UTC', '%Y-%m-%d'), "
            "coalesce(device_version, 'unknown') FROM drives ORDER BY drive_id"
        ).fetchall()
        written, skipped = [], 0
        for drive_id, fingerprint, date, version in drives:
            part = f"date={date}/device_version={_partition(version)}"
            previous = state.get(drive_id)
            if previous and previous["fingerprint"] == fingerprint and previous["part"] == part:
                skipped += 1
                continue
            if previous:
                _remove(out, drive_id, previous["part"])
            for table in DRIVE_TABLES:
                rows = con.sql(
                    f"SELECT * FROM {table.name} WHERE drive_id = ?", params=[drive_id]
                ).to_arrow_table()
                _write(rows, out / table.name / part / f"{drive_id}.parquet")
            state[drive_id] = {"fingerprint": str(fingerprint), "part": part}
            written.append(drive_id)
        current = {d[0] for d in drives}
        removed = [d for d in state if d not in current]
        for drive_id in removed:
            _remove(out, drive_id, state.pop(drive_id)["part"])
        if written or removed or not (out / "schemas" / "schemas.parquet").exists():
            schemas = con.sql("SELECT * FROM schemas").to_arrow_table()
            _write(schemas, out / "schemas" / "schemas.parquet")
    finally:
        con.close()
    tmp = state_path.with_name(f".{STATE}.partial")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, state_path)
    return PublishReport(written, skipped, removed)


def _remove(out: Path, drive_id: str, part: str) -> None:
    for table in DRIVE_TABLES:
        path = out / table.name / part / f"{drive_id}.parquet"
        path.unlink(missing_ok=True)
        folder = path.parent
        while folder != out and folder.is_dir() and not any(folder.iterdir()):
            shutil.rmtree(folder)
            folder = folder.parent
