"""The store on disk: drive folders, their manifests, and rebuilding the catalog from them.

```
<store>/catalog.duckdb
<store>/drives/<drive_id>/manifest.json          identity, inputs and their sha256, every file below
<store>/drives/<drive_id>/catalog/<table>.parquet the drive's catalog rows, listed in the manifest
<store>/drives/<drive_id>/<topic_slug>/<start>_<end>.mcap
```
A drive is built in ``<store>/drives/.tmp-<id>/`` and renamed into place when complete;
``--force`` moves the old folder to ``.trash-<drive_id>-<id>`` first. :func:`sweep` cleans
both up after a crash, and finishes a drive whose folder was renamed into place but whose
catalog commit never happened. The catalog can always be rebuilt from the manifests.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from drivecat.catalog import db
from drivecat.catalog.errors import CatalogError
from drivecat.catalog.tables import BY_NAME, DRIVES, EXPORTS, LABELS, Table, sql_literal
from drivecat.files import sha256_file
from drivecat.naming import CATALOG_DIR, MANIFEST_NAME

MANIFEST = MANIFEST_NAME
MANIFEST_FORMAT = 1
TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"


def drives_dir(store: Path) -> Path:
    return Path(store) / "drives"


def drive_dir(store: Path, drive_id: str) -> Path:
    if not drive_id or "/" in drive_id or drive_id.startswith(".") or "\\" in drive_id:
        raise CatalogError(f"invalid drive id {drive_id!r}: it must be a plain folder name")
    return drives_dir(store) / drive_id


def new_tmp_dir(store: Path) -> Path:
    path = drives_dir(store) / f"{TMP_PREFIX}{uuid.uuid4().hex}"
    path.mkdir(parents=True)
    return path


def write_rows(folder: Path, rows: Mapping[str, pa.Table]) -> dict[str, dict[str, Any]]:
    """Write each table to ``folder/catalog/<table>.parquet``; return the manifest entries."""
    out = folder / CATALOG_DIR
    out.mkdir(exist_ok=True)
    entries: dict[str, dict[str, Any]] = {}
    for name, table in rows.items():
        path = out / f"{name}.parquet"
        pq.write_table(table, path, compression="zstd")
        entries[name] = {
            "path": str(path.relative_to(folder)),
            "rows": table.num_rows,
            "sha256": sha256_file(path),
        }
    return entries


def write_manifest(folder: Path, manifest: Mapping[str, Any]) -> None:
    """Write ``manifest.json`` last, atomically: a folder with a manifest is complete."""
    tmp = folder / f".{MANIFEST}.partial"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, folder / MANIFEST)


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CatalogError(f"{path}: cannot read manifest: {err}") from None
    return manifest


def read_rows(folder: Path, manifest: Mapping[str, Any]) -> dict[str, pa.Table]:
    """The drive's catalog rows, as listed in its manifest, in this drivecat's tables.

    Rows written by an earlier release are read as today's tables (``Table.conform``): a
    column they lack gets its default, and a table they lack (``attachments`` of a drive
    ingested before version 2) is simply absent. Rows this drivecat cannot represent, a
    table or a column it does not know, raise CatalogError naming the file.
    """
    rows: dict[str, pa.Table] = {}
    for name, entry in manifest.get("catalog", {}).items():
        path = folder / entry["path"]
        if name not in BY_NAME:
            raise CatalogError(
                f"{path}: rows of a table {name!r} this drivecat does not know "
                "(written by a newer drivecat? upgrade drivecat)"
            )
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as err:
            raise CatalogError(f"{path}: cannot read catalog rows: {err}") from None
        try:
            rows[name] = BY_NAME[name].conform(table)
        except CatalogError as err:
            raise CatalogError(f"{path}: {err}") from None
    return rows


def install(store: Path, tmp: Path, drive_id: str) -> Path | None:
    """Move a finished drive folder into place. Returns the trash folder of a replaced drive."""
    final = drive_dir(store, drive_id)
    trash = None
    if final.exists():
        trash = drives_dir(store) / f"{TRASH_PREFIX}{drive_id}-{uuid.uuid4().hex[:8]}"
        os.replace(final, trash)
    os.replace(tmp, final)
    return trash


def commit_from_folder(con: duckdb.DuckDBPyConnection, folder: Path) -> str:
    manifest = read_manifest(folder)
    db.commit_drive(con, read_rows(folder, manifest))
    return str(manifest["drive_id"])


@dataclass(frozen=True)
class SweepReport:
    removed_tmp: int
    restored: list[str]
    completed: list[str]


def sweep(store: Path, con: duckdb.DuckDBPyConnection) -> SweepReport:
    """Clean up after an interrupted run.

    - ``.tmp-*`` folders are unfinished drives: removed.
    - ``.trash-<drive_id>-*`` folders are drives being replaced. If the catalog still holds
      the old drive's fingerprint, the replacement never committed: the old folder is put
      back. Otherwise the replacement committed, and the old folder is removed.
    - A drive folder with a complete manifest but no catalog row was renamed into place
      just before a crash: its rows are committed now.
    """
    root = drives_dir(store)
    if not root.is_dir():
        return SweepReport(0, [], [])
    removed, restored, completed = 0, [], []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(TMP_PREFIX):
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    for entry in sorted(root.iterdir()):
        if not entry.name.startswith(TRASH_PREFIX):
            continue
        try:
            old = read_manifest(entry)
        except CatalogError:
            shutil.rmtree(entry, ignore_errors=True)
            continue
        drive_id = str(old["drive_id"])
        final = root / drive_id
        if db.drive_fingerprint(con, drive_id) == old.get("fingerprint"):
            if final.exists():
                shutil.rmtree(final)
            os.replace(entry, final)
            restored.append(drive_id)
        else:
            shutil.rmtree(entry, ignore_errors=True)
    known = {r[0] for r in con.execute("SELECT drive_id FROM drives").fetchall()}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or entry.name in known:
            continue
        if (entry / MANIFEST).is_file():
            completed.append(commit_from_folder(con, entry))
    return SweepReport(removed, restored, completed)


def rebuild(store: Path) -> list[str]:
    """Rebuild ``catalog.duckdb`` from the drive manifests alone; return the drive ids.

    The new catalog is built beside the old one and renamed over it, so a failure leaves
    the old catalog as it was. Drive folders written by any earlier release are read (see
    :func:`read_rows`). Export and label records are carried over when the old catalog
    opens, whatever its version.
    """
    store = Path(store)
    root = drives_dir(store)
    tmp_store = store / f".rebuild-{uuid.uuid4().hex[:8]}"
    tmp_store.mkdir(parents=True)
    try:
        con = db.connect(tmp_store)
        drive_ids: list[str] = []
        folders = (
            sorted(p for p in root.iterdir() if not p.name.startswith(".")) if root.is_dir() else []
        )
        for folder in folders:
            if (folder / MANIFEST).is_file():
                drive_ids.append(commit_from_folder(con, folder))
        _carry_over(con, db.catalog_path(store))
        con.close()
        os.replace(db.catalog_path(tmp_store), db.catalog_path(store))
        wal = Path(str(db.catalog_path(store)) + ".wal")
        if wal.exists():
            wal.unlink()
        return drive_ids
    finally:
        shutil.rmtree(tmp_store, ignore_errors=True)


#: What only the catalog knows, and the drive folders cannot give back.
CARRIED: tuple[Table, ...] = (EXPORTS, LABELS)


def _carry_over(con: duckdb.DuckDBPyConnection, old_catalog: Path) -> None:
    """Copy export and label rows from the old catalog, whatever its version: by name,
    the columns both have (a column the old one lacks gets its default)."""
    if not old_catalog.exists():
        return
    try:
        con.execute(f"ATTACH {sql_literal(str(old_catalog))} AS old (READ_ONLY)")
    except duckdb.Error as err:
        if db.is_lock_error(err):  # replacing a catalog in use would lose its last writes
            raise db.busy_error(old_catalog, err) from None
        return  # a catalog that cannot be opened has nothing to keep
    try:
        _copy_carried(con)
    except duckdb.Error as err:
        reason = str(err).strip().splitlines()[0]
        raise CatalogError(
            f"{old_catalog}: cannot carry its exports and labels over: {reason} "
            "(move it aside to rebuild without them)"
        ) from None
    finally:
        con.execute("DETACH old")


def _copy_carried(con: duckdb.DuckDBPyConnection) -> None:
    for table in CARRIED:
        names = {
            str(r[0])
            for r in con.execute(
                "SELECT column_name FROM duckdb_columns() "
                "WHERE database_name = 'old' AND schema_name = 'main' AND table_name = ?",
                [table.name],
            ).fetchall()
        }
        common = ", ".join(n for n in table.names if n in names)
        if common:
            con.execute(f"INSERT INTO {table.name} BY NAME SELECT {common} FROM old.{table.name}")


def drive_row(rows: Mapping[str, pa.Table]) -> dict[str, Any]:
    table = rows[DRIVES.name]
    return {k: v[0] for k, v in table.to_pydict().items()}
