"""Run SQL over the catalog, read-only, and render the result for people or programs."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from drivecat.catalog import db, sandbox
from drivecat.catalog.errors import CatalogError


def run_query(
    store: Path,
    sql: str,
    params: list[Any] | None = None,
    allow_read: Sequence[Path] = (),
) -> pa.Table:
    """Run ``sql`` on a read-only, locked-down connection to the store's catalog (see
    ``catalog.sandbox``: no file is written or read but the catalog and ``allow_read``);
    the result as Arrow.

    A DuckDB error becomes a CatalogError with DuckDB's own one-line message.
    """
    con = db.connect(store, read_only=True)
    try:
        sandbox.lock_down(con, allow_read)
        relation = con.sql(sql, params=params) if params else con.sql(sql)
        return relation.to_arrow_table() if relation is not None else pa.table({})
    except duckdb.Error as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CatalogError(f"query failed: {message}") from None
    finally:
        con.close()


DRIVES_SQL = """
SELECT drive_id, device_id, device_version, vehicle_id, operator, start_time,
       round(duration_s, 1) AS duration_s, status, message_count,
       (SELECT count(*) FROM segments s WHERE s.drive_id = d.drive_id) AS segments
FROM drives d ORDER BY start_ns DESC
"""


def segments_sql(where: str, limit: int | None = None) -> str:
    """The segments shortcut: ``where`` is one SQL expression over the ``segments``
    columns (CatalogError otherwise)."""
    sandbox.one_expression(where)
    sql = (
        "SELECT drive_id, seg_idx, start_time, device_version, round(lat, 6) AS lat, "
        "round(lon, 6) AS lon, h3_cell_to_string(h3_cell) AS h3, round(speed, 1) AS speed, "
        "weather, at_intersection, pedestrian_count, pedestrians_within_5m, time_of_day "
        f"FROM segments WHERE ({where}) ORDER BY start_ns, drive_id"
    )
    return sql if limit is None else f"{sql} LIMIT {int(limit)}"


def drift_sql(changed_only: bool = False) -> str:
    where = "WHERE topic_changed" if changed_only else ""
    return f"SELECT * FROM schema_drift {where} ORDER BY topic, first_seen"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_records(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: times as ISO strings, bytes as hex, MAPs as objects."""
    maps = {f.name for f in table.schema if pa.types.is_map(f.type)}
    records = []
    for row in table.to_pylist():
        for name in maps:
            if row[name] is not None:  # Arrow hands a MAP over as (key, value) pairs
                row[name] = dict(row[name])
        records.append({k: _plain(v) for k, v in row.items()})
    return records


def to_json(table: pa.Table) -> str:
    return json.dumps(to_records(table), indent=2, default=str)


def to_csv(table: pa.Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in to_records(table):
        writer.writerow(
            json.dumps(v) if isinstance(v, dict | list) else ("" if v is None else v)
            for v in row.values()
        )
    return out.getvalue()
