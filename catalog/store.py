"""The store on disk: drive folders, their manifests, and rebuilding the catalog from them.

```
<store>/catalog.duckdb
<store>/drives/<drive_id>/manifest.json          identity, inputs and their sha256, every file below
<store>/drives/<drive_id>/catalog/<table>.parquet the drive's catalog rows, listed in the manifest
<store>/drives/<drive_id>/attachments/<nnnn>_<name> the inputs' attachments, raw
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

from drivecat.catalog import db, journal, locks
from drivecat.catalog.errors import CatalogError
from drivecat.catalog.tables import BY_NAME, DRIVES, EXPORTS, FILES, LABELS, Table, sql_literal
from drivecat.files import sha256_file
from drivecat.naming import CATALOG_DIR, MANIFEST_NAME, drive_id_problem

MANIFEST = MANIFEST_NAME
# The version of manifest.json's layout: a reader that finds a newer one knows it cannot
# trust its own reading of the fields.
MANIFEST_FORMAT = 1
TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"


def drives_dir(store: Path) -> Path:
    return Path(store) / "drives"


def check_drive_id(drive_id: object) -> str:
    """``drive_id`` when it can name a drive folder (:func:`naming.drive_id_problem`);
    CatalogError saying why not otherwise."""
    problem = drive_id_problem(drive_id)
    if problem is not None:
        shown = repr(drive_id)
        shown = shown if len(shown) <= 80 else f"{shown[:60]}...{shown[-12:]}"
        raise CatalogError(f"invalid drive id {shown}: {problem}")
    return str(drive_id)


def drive_dir(store: Path, drive_id: str) -> Path:
    return drives_dir(store) / check_drive_id(drive_id)


def new_tmp_dir(store: Path) -> Path:
    """A fresh ``drives/.tmp-*`` folder, marked as being built by this process."""
    path = drives_dir(store) / f"{TMP_PREFIX}{uuid.uuid4().hex}"
    try:
        path.mkdir(parents=True)
        locks.hold_folder(path)
    except OSError as err:
        shutil.rmtree(path, ignore_errors=True)
        raise CatalogError(f"{path}: cannot create the drive folder: {err.strerror}") from None
    return path


def inside(root: Path, relative: object, what: str) -> Path:
    """``root / relative``, which must be a relative path that stays inside ``root`` once
    symbolic links are resolved; CatalogError naming it otherwise. Paths come from
    manifests and catalog rows, which anyone who can write the store can edit."""
    if not isinstance(relative, str) or not relative or "\x00" in relative:
        raise CatalogError(f"{root}: {what} {relative!r} is not a relative path")
    joined = os.path.join(root, relative)
    # os.path on strings, not Path.resolve(): the same check, without the Path objects a
    # frame access would build a dozen of per call.
    real, real_root = os.path.realpath(joined), os.path.realpath(root)
    if os.path.isabs(relative) or (
        real != real_root and not real.startswith(os.path.join(real_root, ""))
    ):
        raise CatalogError(f"{Path(joined)}: {what} is outside {root}")
    return Path(joined)


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
    catalog = manifest.get("catalog", {})
    if not isinstance(catalog, dict):
        raise CatalogError(f"{folder / MANIFEST}: 'catalog' is not a table of entries")
    for name, entry in catalog.items():
        if not isinstance(entry, dict):
            raise CatalogError(f"{folder / MANIFEST}: catalog entry {name!r} is not an object")
        path = inside(folder, entry.get("path"), f"catalog rows of {name!r}")
        if name not in BY_NAME:
            raise CatalogError(
                f"{path}: rows of a table {name!r} this drivecat does not know "
                "(written by a newer drivecat? upgrade drivecat)"
            )
        _check_sha256(path, entry.get("sha256"))
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as err:
            raise CatalogError(f"{path}: cannot read catalog rows: {err}") from None
        try:
            rows[name] = BY_NAME[name].conform(table)
        except CatalogError as err:
            raise CatalogError(f"{path}: {err}") from None
    return rows


def _check_sha256(path: Path, expected: object) -> None:
    """The manifest records each rows file's sha256 (since the first release): a file that
    no longer matches was damaged or edited, and its rows are not trusted."""
    if expected is None:
        return
    try:
        actual = sha256_file(path)
    except OSError as err:
        raise CatalogError(f"{path}: cannot read catalog rows: {err.strerror}") from None
    if actual != expected:
        raise CatalogError(f"{path}: sha256 {actual[:12]}... differs from the manifest's")


def check_drive_rows(
    folder: Path, manifest: Mapping[str, Any], rows: Mapping[str, pa.Table]
) -> str:
    """The drive id of a drive folder, once its manifest and rows agree with the folder.

    The manifest's ``drive_id`` must be a valid id equal to the folder's name; every row
    must carry it; every ``files`` path must lie inside the folder. CatalogError naming the
    folder otherwise.
    """
    drive_id = check_drive_id(manifest.get("drive_id"))
    if drive_id != folder.name:
        raise CatalogError(f"{folder}: the manifest names drive {drive_id!r}, not the folder's")
    if DRIVES.name not in rows or rows[DRIVES.name].num_rows != 1:
        raise CatalogError(f"{folder}: the manifest lists no single drives row")
    for name, table in rows.items():
        if "drive_id" in table.column_names:
            ids = set(table.column("drive_id").to_pylist())
            if ids - {drive_id}:
                raise CatalogError(
                    f"{folder}: {name} rows of another drive {min(map(str, ids - {drive_id}))!r}"
                )
    for name, table in rows.items():  # files.path, attachments.path, frames.file, ...
        for column in ("path", "file"):
            if column in table.column_names and name in _PATH_TABLES:
                for path in set(table.column(column).to_pylist()) - {None}:
                    file_in_drive(folder.parent.parent, drive_id, path)
    return drive_id


#: Drive tables whose ``path`` or ``file`` column names a store file.
_PATH_TABLES = frozenset({FILES.name, "attachments", "frames", "sensor_index"})


def file_in_drive(store: Path, drive_id: str, path: object) -> Path:
    """A store file's path (relative to the store, as the ``files`` table and manifests
    record it) checked to lie inside ``drives/<drive_id>/``; CatalogError otherwise."""
    return inside(drive_dir(store, drive_id), _strip_drive(path, drive_id), "store file")


def _strip_drive(path: object, drive_id: str) -> object:
    prefix = f"drives/{drive_id}/"
    if isinstance(path, str) and path.startswith(prefix):
        return path[len(prefix) :]
    return None  # not under the drive's folder: refused by inside()


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
    """Commit a drive folder's rows, once they pass :func:`check_drive_rows`."""
    manifest = read_manifest(folder)
    rows = read_rows(folder, manifest)
    drive_id = check_drive_rows(folder, manifest, rows)
    db.commit_drive(con, rows)
    return drive_id


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
        # another ingest may be building this one right now: only a dead builder's goes
        if entry.name.startswith(TMP_PREFIX) and locks.folder_abandoned(entry):
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


@dataclass(frozen=True)
class RebuildReport:
    """What ``catalog rebuild`` did: the drives rebuilt, the exports and labels restored,
    and one line for each drive folder or journal file it had to skip."""

    drive_ids: list[str]
    exports: int
    labels: int
    skipped: list[str]


def rebuild(store: Path, lock_wait_s: float | None = None) -> RebuildReport:
    """Rebuild ``catalog.duckdb`` from the drive folders and the journal alone.

    The new catalog is built beside the old one and renamed over it, under the store's
    writer lock (:func:`locks.store_lock`), so an ingest never commits into a catalog that
    is then replaced. A drive folder that fails its checks (:func:`check_drive_rows`, the
    rows files' sha256) is skipped with one line, and the others are rebuilt. ``exports``
    and ``labels`` come back from the journal (:mod:`catalog.journal`) and from the old
    catalog when it opens; rows only the old catalog had are journaled now.

    CatalogError (nothing changed) when ``store`` has no ``drives/`` folder: an empty
    catalog in place of a wrong ``--store`` would look like lost data.
    """
    store = Path(store)
    root = drives_dir(store)
    if not root.is_dir():
        raise CatalogError(f"{store}: no drives/ folder here; is this a drivecat store?")
    with locks.store_lock(store, "catalog rebuild", lock_wait_s):
        return _rebuild_locked(store, root)


def _rebuild_locked(store: Path, root: Path) -> RebuildReport:
    tmp_store = store / f".rebuild-{uuid.uuid4().hex[:8]}"
    try:
        tmp_store.mkdir()
    except OSError as err:
        raise CatalogError(
            f"{tmp_store}: cannot rebuild the catalog here: {err.strerror}"
        ) from None
    try:
        con = db.connect(tmp_store)
        drive_ids: list[str] = []
        skipped: list[str] = []
        for folder in sorted(p for p in root.iterdir() if not p.name.startswith(".")):
            if not (folder / MANIFEST).is_file():
                continue
            # A bad folder is skipped; a DuckDB error (a full disk) stops the whole rebuild,
            # or every drive would be "skipped" and the catalog replaced by an empty one.
            try:
                drive_ids.append(commit_from_folder(con, folder))
            except CatalogError as err:
                skipped.append(f"{folder}: skipped: {_first_line(err)}")
        _carry_over(con, db.catalog_path(store))
        exports, labels = _restore_journal(con, store, skipped)
        con.close()
        os.replace(db.catalog_path(tmp_store), db.catalog_path(store))
        wal = Path(str(db.catalog_path(store)) + ".wal")
        if wal.exists():
            wal.unlink()
        return RebuildReport(drive_ids, exports, labels, skipped)
    except OSError as err:
        raise CatalogError(f"{err.filename or tmp_store}: cannot rebuild: {err.strerror}") from None
    except duckdb.Error as err:  # the old catalog is left as it was
        raise CatalogError(f"{tmp_store}: cannot rebuild: {_first_line(err)}") from None
    finally:
        shutil.rmtree(tmp_store, ignore_errors=True)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _restore_journal(
    con: duckdb.DuckDBPyConnection, store: Path, problems: list[str]
) -> tuple[int, int]:
    """Add the journaled exports and labels the old catalog did not carry over, and journal
    the carried rows the journal lacks (exports recorded before the journal existed)."""
    found = journal.read_exports(store)
    problems.extend(found.problems)
    have = {str(r[0]) for r in con.execute("SELECT export_id FROM exports").fetchall()}
    missing = [r for r in found.rows if r["export_id"] not in have]
    _insert_rows(con, EXPORTS, journal.rows_table(EXPORTS, missing))
    journaled = {r["export_id"] for r in found.rows}
    carried = con.sql("SELECT * FROM exports").to_arrow_table().to_pylist()
    for row in carried:
        if row["export_id"] not in journaled and journal.valid_id(row["export_id"]):
            journal.record_export(store, row)
    labels = journal.read_labels(store)
    problems.extend(labels.problems)
    _insert_rows(con, LABELS, journal.rows_table(LABELS, labels.rows), new_only=True)
    exports = con.execute("SELECT count(*) FROM exports").fetchone()
    label_count = con.execute("SELECT count(*) FROM labels").fetchone()
    return int(exports[0]) if exports else 0, int(label_count[0]) if label_count else 0


def _insert_rows(
    con: duckdb.DuckDBPyConnection, table: Table, rows: pa.Table, new_only: bool = False
) -> None:
    """Insert ``rows``; with ``new_only``, leave out the rows the table already holds."""
    if rows.num_rows == 0:
        return
    cols = ", ".join(table.names)
    select = f"SELECT {cols} FROM _journaled"
    if new_only:  # labels have no key: a row carried over and journaled is one row
        select = f"{select} EXCEPT ALL SELECT {cols} FROM {table.name}"
    con.register("_journaled", rows)
    try:
        con.execute(f"INSERT INTO {table.name} BY NAME {select}")
    finally:
        con.unregister("_journaled")


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
