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
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from drivecat.catalog import db
from drivecat.catalog.errors import CatalogError
from drivecat.catalog.tables import DRIVE_TABLES
from drivecat.naming import drive_id_problem

STATE = "_published.json"


@dataclass(frozen=True)
class PublishReport:
    written: list[str]
    skipped: int
    removed: list[str]


def _partition(value: str) -> str:
    # Hive-style escaping: DuckDB and Spark decode %XX in partition values.
    return quote(value, safe="-_.~ ")


def _write(table: pa.Table, path: Path, out: Path) -> None:
    _contained(out, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


#: A partition as publish writes it: an ISO date and a %-escaped version (see _partition).
_PART = re.compile(r"^date=\d{4}-\d{2}-\d{2}/device_version=[A-Za-z0-9\-_.~ %]+$")


def _contained(out: Path, path: Path) -> Path:
    """``path``, once checked to stay inside ``out`` with links resolved."""
    if not path.resolve().is_relative_to(out.resolve()):
        raise CatalogError(f"{path}: outside --parquet {out}; nothing outside it is touched")
    return path


def _read_state(path: Path) -> dict[str, dict[str, str]]:
    """``_published.json``, every entry checked: it decides what is deleted, and anyone who
    can write the folder can edit it. CatalogError naming the file and the entry."""
    if not path.exists():
        return {}
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CatalogError(f"{path}: cannot read the publish state: {err}") from None
    if not isinstance(state, dict):
        raise CatalogError(f"{path}: the publish state is not an object of drives")
    for drive_id, entry in state.items():
        problem = drive_id_problem(drive_id)
        if problem is None and not (
            isinstance(entry, dict)
            and isinstance(entry.get("fingerprint"), str)
            and isinstance(entry.get("part"), str)
            and _PART.match(entry["part"])
            and entry["part"].rpartition("=")[2] not in (".", "..")
        ):
            problem = "its entry is not {fingerprint, part=date=.../device_version=...}"
        if problem is not None:
            raise CatalogError(
                f"{path}: entry {drive_id[:80]!r}: {problem}; fix or remove the file "
                "(publish then rewrites every drive)"
            )
    return state


def publish(store: Path, out: Path) -> PublishReport:
    """Write new and changed drives of the store's catalog under ``out``.

    Nothing outside ``out`` is ever written or removed: the state file's entries are
    checked, every path is resolved and checked to lie inside ``out``, and only emptied
    folders are removed (``rmdir``). A folder that cannot be written is one CatalogError.
    """
    out = Path(out)
    try:
        return _publish(store, out)
    except OSError as err:
        where = err.filename or out
        reason = err.strerror or str(err).strip().splitlines()[0]
        raise CatalogError(f"{where}: cannot publish: {reason}") from None


def _publish(store: Path, out: Path) -> PublishReport:
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / STATE
    state = _read_state(state_path)
    con = db.connect(store, read_only=True)
    try:
        drives = con.execute(
            "SELECT drive_id, fingerprint, strftime(start_time AT TIME ZONE 'UTC', '%Y-%m-%d'), "
            "coalesce(device_version, 'unknown') FROM drives ORDER BY drive_id"
        ).fetchall()
        for drive_id, *_ in drives:  # the catalog names files here, so it is checked too
            if drive_id_problem(drive_id):
                raise CatalogError(
                    f"{db.catalog_path(store)}: drive id {drive_id!r}: {drive_id_problem(drive_id)}"
                )
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
                _write(rows, out / table.name / part / f"{drive_id}.parquet", out)
            state[drive_id] = {"fingerprint": str(fingerprint), "part": part}
            written.append(drive_id)
        current = {d[0] for d in drives}
        removed = [d for d in state if d not in current]
        for drive_id in removed:
            _remove(out, drive_id, state.pop(drive_id)["part"])
        if written or removed or not (out / "schemas" / "schemas.parquet").exists():
            schemas = con.sql("SELECT * FROM schemas").to_arrow_table()
            _write(schemas, out / "schemas" / "schemas.parquet", out)
    finally:
        con.close()
    tmp = state_path.with_name(f".{STATE}.partial")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, state_path)
    return PublishReport(written, skipped, removed)


def _remove(out: Path, drive_id: str, part: str) -> None:
    """Remove a drive's files of one partition, then the folders that emptied: files only
    (never a folder tree), each checked to lie inside ``out``; folders with ``rmdir``."""
    for table in DRIVE_TABLES:
        top = out / table.name
        path = _contained(out, top / part / f"{drive_id}.parquet")
        if path.is_file() or path.is_symlink():
            path.unlink()  # a link is removed itself; what it points to is not touched
        folder = path.parent
        while folder != top and folder.is_relative_to(top):
            try:
                folder.rmdir()
            except OSError:  # not empty, or gone: stop climbing
                break
            folder = folder.parent
