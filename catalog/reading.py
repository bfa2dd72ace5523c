"""A read-only, locked-down connection for the analyses that take SQL from users.

Coverage, drift and the report put a user's ``--where`` (or a baseline's SQL) inside their
own queries; like ``catalog query`` they run with DuckDB's file, network and extension
access off (``catalog.sandbox``). A DuckDB error becomes a one-line CatalogError.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from drivecat.catalog import db, sandbox
from drivecat.catalog.errors import CatalogError


@contextmanager
def sandboxed(store: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The store's catalog, read-only and locked down, closed on exit."""
    con = db.connect(store, read_only=True)
    try:
        sandbox.lock_down(con)
        yield con
    except duckdb.Error as err:
        text = str(err).strip()
        message = text.splitlines()[0] if text else type(err).__name__
        raise CatalogError(f"{db.catalog_path(store)}: query failed: {message}") from None
    finally:
        con.close()
