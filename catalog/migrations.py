"""Catalog versions, and the steps that bring an older catalog to the current version.

The version is an integer kept in ``catalog_meta`` under the key ``schema_version``. Every
release before migrations existed wrote "1" there (or, earlier still, nothing at all): a
catalog without a version is version 1. A fresh catalog is created straight from
``tables.py`` at :func:`latest`; an older one is brought to it by running, in order, every
step of :data:`MIGRATIONS` it has not had yet. The caller (``db.connect``) runs them in one
transaction, so a step that fails leaves the catalog at its old version.

To change the catalog's tables:
1. change ``tables.py`` (add tables or columns at the end; never rename or drop one);
2. append a :class:`Migration` below whose ``version`` is the next integer, with the SQL
   that turns a catalog of the previous version into the new one. Write the SQL out in full
   and never derive it from ``tables.py``: ``tables.py`` only describes the latest version,
   and an old step must keep doing exactly what it did when it was written.
``tests/catalog/test_migrations.py`` checks that a migrated catalog has the same tables and
columns as a fresh one, so a step that forgets something fails there.

Rows kept in the drive folders (``catalog/<table>.parquet``) are not migrated: ``catalog
rebuild`` reads them with the current tables' defaults for missing columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from drivecat import __version__
from drivecat.catalog.align import STORED_ALIGN_MACRO
from drivecat.catalog.errors import CatalogError

#: The version of every catalog written before versions were checked.
FIRST_VERSION = 1
VERSION_KEY = "schema_version"

META_DDL = "CREATE TABLE IF NOT EXISTS catalog_meta (key VARCHAR PRIMARY KEY, value VARCHAR)"


@dataclass(frozen=True)
class Migration:
    """One step: run ``statements`` on a catalog of ``version - 1`` to get ``version``."""

    version: int
    summary: str
    statements: tuple[str, ...]

    def apply(self, con: duckdb.DuckDBPyConnection) -> None:
        for statement in self.statements:
            con.execute(statement)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        2,
        "add the attachments and labels tables",
        (
            """CREATE TABLE attachments (
              drive_id VARCHAR NOT NULL,
              name VARCHAR NOT NULL,
              kind VARCHAR NOT NULL,
              media_type VARCHAR,
              log_time_ns BIGINT,
              create_time_ns BIGINT,
              log_time TIMESTAMPTZ,
              create_time TIMESTAMPTZ,
              bytes BIGINT,
              sha256 VARCHAR,
              path VARCHAR,
              metadata MAP(VARCHAR, VARCHAR)
            )""",
            """CREATE TABLE labels (
              dataset VARCHAR NOT NULL,
              sample_id VARCHAR NOT NULL,
              frame VARCHAR,
              labeler VARCHAR NOT NULL,
              class VARCHAR,
              box DOUBLE[4],
              attributes VARCHAR,
              imported_at TIMESTAMPTZ
            )""",
        ),
    ),
    Migration(
        3,
        "labels: drive_id, topic, frame_idx, time_ns, seg_idx of the labeled image; tag",
        (
            "ALTER TABLE labels ADD COLUMN drive_id VARCHAR",
            "ALTER TABLE labels ADD COLUMN topic VARCHAR",
            "ALTER TABLE labels ADD COLUMN frame_idx BIGINT",
            "ALTER TABLE labels ADD COLUMN time_ns BIGINT",
            "ALTER TABLE labels ADD COLUMN seg_idx INTEGER",
            "ALTER TABLE labels ADD COLUMN tag VARCHAR",
        ),
    ),
    Migration(
        4,
        "store the align() table macro in the catalog, for plain DuckDB",
        (
            # The macro's text is align.py's: every write open stores it again anyway
            # (db.connect), so this step only has to make the first one.
            STORED_ALIGN_MACRO,
        ),
    ),
)


def latest() -> int:
    """The version this drivecat writes: the last step's, or 1 before there were steps."""
    return MIGRATIONS[-1].version if MIGRATIONS else FIRST_VERSION


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() "
        "WHERE database_name = current_database() AND schema_name = 'main'"
    ).fetchall()
    return {str(r[0]) for r in rows}


def read_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """The catalog's version; None when the database is empty (a catalog not made yet).

    Raises CatalogError when the database holds tables but is not a drivecat catalog, or
    when the recorded version is not an integer.
    """
    tables = _tables(con)
    if not tables:
        return None
    if "catalog_meta" not in tables:
        if "drives" not in tables:
            raise CatalogError("this is a DuckDB database, but not a drivecat catalog")
        return FIRST_VERSION
    # fetchall, not fetchone: DuckDB refuses other work on a connection with a half-read result
    rows = con.execute("SELECT value FROM catalog_meta WHERE key = ?", [VERSION_KEY]).fetchall()
    row = rows[0] if rows else None
    if row is None or row[0] is None:
        return FIRST_VERSION
    try:
        return int(str(row[0]).strip())
    except ValueError:
        raise CatalogError(f"unreadable catalog version {row[0]!r} in catalog_meta") from None


def write_version(con: duckdb.DuckDBPyConnection, version: int) -> None:
    con.execute(META_DDL)
    con.execute(
        "INSERT INTO catalog_meta VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [VERSION_KEY, str(version)],
    )


def check_supported(version: int) -> None:
    """Refuse a catalog written by a newer drivecat: its tables may mean things we don't know."""
    if version > latest():
        raise CatalogError(
            f"the catalog was written by a newer drivecat (catalog version {version} > "
            f"{latest()}, the newest drivecat {__version__} knows): upgrade drivecat"
        )


def pending(version: int) -> tuple[Migration, ...]:
    return tuple(m for m in MIGRATIONS if m.version > version)


def upgrade(con: duckdb.DuckDBPyConnection, version: int) -> int:
    """Run every step after ``version`` and record the new version; return it.

    Call it inside a transaction: on error nothing of the steps before must remain. A
    failing step raises CatalogError naming the step and DuckDB's one-line reason.
    """
    target = latest()
    if version >= target:
        return version
    for step in pending(version):
        try:
            step.apply(con)
        except duckdb.Error as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CatalogError(
                f"cannot upgrade the catalog from version {version} to {target}: step to "
                f"version {step.version} ({step.summary}) failed: {reason}"
            ) from None
    write_version(con, target)
    return target
