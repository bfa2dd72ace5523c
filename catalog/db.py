"""Open and create the DuckDB catalog, and commit one drive's rows in one transaction.

The catalog lives at ``<store>/catalog.duckdb``. Every connection this project opens goes
through :func:`connect`, which creates the tables on first use, upgrades a catalog written
by an older drivecat (``migrations.py``), refuses one written by a newer drivecat, and
registers the H3 SQL functions. A drive's rows are written by :func:`commit_drive` in a
single transaction: a crash before the commit leaves no trace of the drive in the catalog.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from drivecat.catalog import h3sql, migrations
from drivecat.catalog.align import STORED_ALIGN_MACRO, register_macros
from drivecat.catalog.errors import CatalogBusyError, CatalogError
from drivecat.catalog.tables import ALL_TABLES, BY_NAME, DRIVE_TABLES, DRIVES

CATALOG_NAME = "catalog.duckdb"

#: How long opening the catalog waits for another process to release it, in seconds.
LOCK_WAIT_S = 10.0

_INDEXES = (
    "CREATE INDEX IF NOT EXISTS segments_start_ns ON segments (start_ns)",
    "CREATE INDEX IF NOT EXISTS segments_h3_cell ON segments (h3_cell)",
    "CREATE INDEX IF NOT EXISTS segments_device_version ON segments (device_version)",
    "CREATE INDEX IF NOT EXISTS drives_drive_id ON drives (drive_id)",
    "CREATE INDEX IF NOT EXISTS drives_device_version ON drives (device_version)",
    "CREATE INDEX IF NOT EXISTS frames_drive_topic ON frames (drive_id, topic)",
)


# Which schema each device version recorded on each topic: a topic with more than one
# hash across versions is a schema change that reached the fleet.
_VIEWS = (
    """CREATE OR REPLACE VIEW schema_drift AS
    SELECT t.topic, d.device_version, t.schema_name, t.schema_sha256,
           count(DISTINCT d.drive_id) AS drives,
           min(d.start_time) AS first_seen, max(d.start_time) AS last_seen,
           count(DISTINCT t.schema_sha256) OVER (PARTITION BY t.topic) > 1 AS topic_changed
    FROM topics t JOIN drives d USING (drive_id)
    GROUP BY t.topic, d.device_version, t.schema_name, t.schema_sha256""",
)

_LOCK_MESSAGE = re.compile(r"Could not set lock on file")
_LOCK_PID = re.compile(r"\(PID (\d+)\)")


@dataclass(frozen=True)
class Upgrade:
    """What opening the catalog for writing did to its version."""

    path: Path
    from_version: int | None  # None: the catalog was created
    to_version: int


def catalog_path(store: Path) -> Path:
    return Path(store) / CATALOG_NAME


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def is_lock_error(err: duckdb.Error) -> bool:
    """Whether DuckDB could not open a file because another process holds its lock."""
    return bool(_LOCK_MESSAGE.search(str(err)))


def busy_error(path: Path, err: duckdb.Error) -> CatalogBusyError:
    pid = _LOCK_PID.search(str(err))
    who = f" (PID {pid.group(1)})" if pid else ""
    return CatalogBusyError(
        f"{path}: the catalog is in use by another process{who}; try again when it has finished"
    )


class _CannotOpen(CatalogError):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: cannot open the catalog: {reason}")
        self.reason = reason


def _open(path: Path, read_only: bool, wait_s: float) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file, waiting up to ``wait_s`` while another process holds it."""
    deadline = time.monotonic() + wait_s
    pause = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as err:
            if not is_lock_error(err):
                raise _CannotOpen(path, _one_line(err)) from None
            if time.monotonic() + pause > deadline:
                raise busy_error(path, err) from None
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
        except (duckdb.Error, OSError) as err:
            raise _CannotOpen(path, _one_line(err)) from None


def _prepare(con: duckdb.DuckDBPyConnection, path: Path) -> Upgrade:
    """Create a new catalog, or bring an older one to the current version, in one
    transaction: a process killed (or a step failing) midway leaves the catalog as it was."""
    with transaction(con):
        try:
            version = migrations.read_version(con)
            if version is None:
                for table in ALL_TABLES:
                    con.execute(table.ddl())
                migrations.write_version(con, migrations.latest())
            else:
                migrations.check_supported(version)
                migrations.upgrade(con, version)
        except CatalogError as err:
            raise CatalogError(f"{path}: {err}") from None
        # The stored macro is refreshed like the views: the file holds this drivecat's align.
        for statement in (*_INDEXES, *_VIEWS, STORED_ALIGN_MACRO):
            con.execute(statement)
    return Upgrade(path, version, migrations.latest())


def connect(
    store: Path,
    *,
    read_only: bool = False,
    lock_wait_s: float | None = None,
    functions: bool = True,
) -> duckdb.DuckDBPyConnection:
    """Open the store's catalog; create it (and the store folder) unless ``read_only``.

    A catalog written by an older drivecat is upgraded first, in one transaction; a
    read-only open does that through a short write connection, so ``catalog query`` works
    on an old store. Raises CatalogError when a read-only catalog does not exist, cannot
    be opened or upgraded, or was written by a newer drivecat; CatalogBusyError when
    another process still holds it after ``lock_wait_s`` (default :data:`LOCK_WAIT_S`).
    ``functions=False`` skips registering the H3 UDFs and the align macro (about 6 ms), for
    a caller that only reads plain columns.
    """
    path = catalog_path(store)
    wait_s = LOCK_WAIT_S if lock_wait_s is None else lock_wait_s
    if read_only and not path.exists():
        raise CatalogError(f"{path}: no catalog here (run `ingest run ... --store {store}` first)")
    if read_only:
        con = _open_for_reading(Path(store), path, wait_s)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = _open(path, read_only=False, wait_s=wait_s)
        try:
            _prepare(con, path)
        except BaseException:
            con.close()
            raise
    if functions:
        h3sql.register(con)
        register_macros(con)
    return con


def _open_for_reading(store: Path, path: Path, wait_s: float) -> duckdb.DuckDBPyConnection:
    """Read-only, at the current version: an older catalog is upgraded first through a short
    write connection, because a user who runs ``catalog query`` after upgrading drivecat
    expects an answer, not a chore. Only when that write is impossible (a read-only
    mount, no permission) is the user told to run ``catalog migrate``."""
    con = _open(path, read_only=True, wait_s=wait_s)
    try:
        version = migrations.read_version(con)
        if version is not None:
            migrations.check_supported(version)
    except CatalogError as err:
        con.close()
        raise CatalogError(f"{path}: {err}") from None
    if version == migrations.latest():
        return con
    con.close()
    try:
        writer = _open(path, read_only=False, wait_s=wait_s)
    except _CannotOpen as err:
        raise CatalogError(
            f"{path}: catalog version {version} must be upgraded to {migrations.latest()} "
            f"before this drivecat can read it, and it cannot be written here ({err.reason}); "
            f"run `catalog migrate --store {store}` as a user who can write it"
        ) from None
    try:
        _prepare(writer, path)
    finally:
        writer.close()
    return _open(path, read_only=True, wait_s=wait_s)


def migrate(store: Path, *, lock_wait_s: float | None = None) -> Upgrade:
    """Bring the store's catalog to the current version (creating it if needed)."""
    path = catalog_path(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = _open(path, read_only=False, wait_s=LOCK_WAIT_S if lock_wait_s is None else lock_wait_s)
    try:
        return _prepare(con, path)
    finally:
        con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _insert(con: duckdb.DuckDBPyConnection, name: str, rows: pa.Table) -> None:
    if rows.num_rows == 0:
        return
    table = BY_NAME[name]
    rows = rows.select([c.name for c in table.columns]).cast(table.arrow_schema)
    order = f" ORDER BY {', '.join(table.sort_key)}" if table.sort_key else ""
    con.register("_incoming", rows)
    try:
        con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _incoming{order}")
    finally:
        con.unregister("_incoming")


def delete_drive_rows(con: duckdb.DuckDBPyConnection, drive_id: str) -> None:
    for table in DRIVE_TABLES:
        con.execute(f"DELETE FROM {table.name} WHERE drive_id = ?", [drive_id])


def commit_drive(con: duckdb.DuckDBPyConnection, rows: Mapping[str, pa.Table]) -> None:
    """Replace one drive's rows in every drive table, in one transaction.

    ``rows`` maps table names to Arrow tables with that table's columns; ``drives`` must
    hold exactly one row. ``schemas`` rows are added when their hash is new.
    """
    with transaction(con):
        write_drive_rows(con, rows)


def write_drive_rows(con: duckdb.DuckDBPyConnection, rows: Mapping[str, pa.Table]) -> None:
    """:func:`commit_drive` inside a transaction the caller holds (so that it can check
    the catalog and move files under the same transaction)."""
    drive = rows[DRIVES.name]
    if drive.num_rows != 1:
        raise CatalogError(f"commit_drive needs exactly one drives row, got {drive.num_rows}")
    drive_id = drive.column("drive_id")[0].as_py()
    delete_drive_rows(con, drive_id)
    for table in DRIVE_TABLES:
        if table.name in rows:
            _insert(con, table.name, rows[table.name])
    schemas = rows.get("schemas")
    if schemas is not None and schemas.num_rows:
        con.register("_incoming_schemas", schemas)
        try:
            con.execute(
                "INSERT INTO schemas BY NAME SELECT DISTINCT ON (schema_sha256) * "
                "FROM _incoming_schemas WHERE schema_sha256 NOT IN "
                "(SELECT schema_sha256 FROM schemas)"
            )
        finally:
            con.unregister("_incoming_schemas")


def drive_fingerprint(con: duckdb.DuckDBPyConnection, drive_id: str) -> str | None:
    row = con.execute("SELECT fingerprint FROM drives WHERE drive_id = ?", [drive_id]).fetchone()
    return None if row is None else str(row[0])
