"""SQL from users runs where it can read the catalog and nothing else.

``catalog query``, ``catalog segments --where`` and ``catalog export --where`` run SQL that
someone typed. DuckDB can write files (``COPY ... TO``, ``EXPORT DATABASE``), attach other
databases, read any local file, change its own settings and install extensions. None of
that belongs in a query of the catalog, so connections that run user SQL are locked down:
external access off (no file or network I/O but the catalog's own file) and the
configuration locked (so the SQL cannot turn it back on). Reading other local files, such
as the published Parquet, is an explicit opt-in: ``allow_read`` names the directories.

A ``--where`` must be one expression: it is placed inside ``WHERE (...)``, and the whole
statement must parse as exactly one SELECT, so ``1=1); COPY ...; SELECT 1 WHERE (1`` is
refused before it runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from drivecat.catalog.errors import CatalogError


def lock_down(con: duckdb.DuckDBPyConnection, allow_read: Sequence[Path] = ()) -> None:
    """Turn off DuckDB's file, network and extension access on ``con``, for good.

    Functions and macros must be registered before: nothing can be changed after this.
    ``allow_read`` directories stay readable (DuckDB's ``allowed_directories``).
    """
    if allow_read:
        dirs = [str(Path(d).absolute()) for d in allow_read]
        con.execute("SET allowed_directories = ?", [dirs])
    for setting in (
        "SET autoinstall_known_extensions = false",
        "SET autoload_known_extensions = false",
        "SET enable_external_access = false",
        "SET lock_configuration = true",
    ):
        con.execute(setting)


def one_expression(where: str, option: str = "--where") -> str:
    """``where`` when it is one SQL expression over the segments, else CatalogError.

    The check is DuckDB's own parser: ``SELECT * FROM segments WHERE (<where>)`` must be a
    single SELECT statement.
    """
    if not where.strip():
        raise CatalogError(f"{option}: empty expression")
    sql = f"SELECT * FROM segments WHERE ({where})"
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CatalogError(f"{option} {where!r}: {first}") from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise CatalogError(
            f"{option} {where!r}: must be one SQL expression over the segments columns, "
            "not several statements"
        )
    return where
