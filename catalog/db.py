"""Open and create the DuckDB catalog, and commit one drive's rows in one transaction.

The catalog lives at ``<store>/catalog.duckdb``. Every connection this project opens goes
through :func:`connect`, which creates the tables on first use and registers the H3 SQL
functions. A drive's rows are written by :func:`commit_drive` in a single transaction:
a crash before the commit leaves no trace of the drive in the catalog.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from drivecat.catalog import h3sql
from drivecat.catalog.align import register_macros
from drivecat.catalog.errors import CatalogError
from drivecat.catalog.tables import ALL_TABLES, BY_NAME, DRIVE_TABLES, DRIVES

CATALOG_NAME = "catalog.duckdb"
SCHEMA_VERSION = "1"

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


def catalog_path(store: Path) -> Path:
    return Path(store) / CATALOG_NAME


def _create(con: duckdb.DuckDBPyConnection) -> None:
    """Create whatever is missing, in one transaction: a process killed while creating the
    catalog leaves every table or none."""
    with transaction(con):
        con.execute(
            "CREATE TABLE IF NOT EXISTS catalog_meta (key VARCHAR PRIMARY KEY, value VARCHAR)"
        )
        for table in ALL_TABLES:
            con.execute(table.ddl())
        for statement in (*_INDEXES, *_VIEWS):
            con.execute(statement)
        con.execute(
            "INSERT INTO catalog_meta VALUES ('schema_version', ?) ON CONFLICT DO NOTHING",
            [SCHEMA_VERSION],
        )


def connect(store: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the store's catalog; create it (and the store folder) unless ``read_only``.

    Raises CatalogError when a read-only catalog does not exist or cannot be opened.
    """
    path = catalog_path(store)
    if read_only and not path.exists():
        raise CatalogError(f"{path}: no catalog here (run `ingest run ... --store {store}` first)")
    try:
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(path), read_only=read_only)
    except (duckdb.Error, OSError) as err:
        raise CatalogError(f"{path}: cannot open the catalog: {err}") from None
    if not read_only:
        _create(con)
    h3sql.register(con)
    register_macros(con)
    return con


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
    drive = rows[DRIVES.name]
    if drive.num_rows != 1:
        raise CatalogError(f"commit_drive needs exactly one drives row, got {drive.num_rows}")
    drive_id = drive.column("drive_id")[0].as_py()
    with transaction(con):
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
