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
    # The tags come right after the segment's identity: a narrow terminal shows the
    # columns from the left (cli/render.py), and the tags are what people filter on.
    sql = (
        "SELECT drive_id, seg_idx, start_time, weather, at_intersection, pedestrian_count, "
        "time_of_day, round(speed, 1) AS speed, device_version, h3_h3_to_string(h3_cell) AS h3, "
        "round(lat, 6) AS lat, round(lon, 6) AS lon, pedestrians_within_5m "
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


#: JSON numbers are IEEE doubles in JavaScript and jq: beyond this, integers lose digits
#: (an H3 cell 0x8929b6d3573ffff comes back as ...35740000), so JSON carries them as strings.
JSON_SAFE_INT = 2**53


def h3_columns(schema: pa.Schema) -> set[str]:
    """The columns that hold H3 cells: UBIGINT (or a list of UBIGINT) named ``h3...``.

    ``h3_cell``, ``h3_cells`` and the result of an H3 function in a query
    (``h3_cell_to_parent(h3_cell, 7)``) all qualify; an ``h3_get_resolution`` (INTEGER)
    does not.
    """

    def unsigned64(kind: pa.DataType) -> bool:
        if pa.types.is_list(kind) or pa.types.is_large_list(kind):
            return unsigned64(kind.value_type)
        return bool(pa.types.is_uint64(kind))

    return {f.name for f in schema if f.name.lower().startswith("h3") and unsigned64(f.type)}


def _h3_hex(value: Any) -> Any:
    if isinstance(value, list):
        return [_h3_hex(v) for v in value]
    return None if value is None else format(value, "x")


def json_safe(value: Any) -> Any:
    """``value`` with every integer of magnitude 2**53 or more as its decimal string."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) >= JSON_SAFE_INT:
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def to_records(table: pa.Table, *, for_json: bool = False) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: times as ISO strings, bytes as hex, MAPs as objects, and
    H3 cells (:func:`h3_columns`) as their hexadecimal strings, the H3 convention.

    ``for_json`` also turns every integer of magnitude 2**53 or more (nanosecond times,
    64-bit ids) into its decimal string, which JSON readers keep exactly.
    """
    maps = {f.name for f in table.schema if pa.types.is_map(f.type)}
    cells = h3_columns(table.schema)
    records = []
    for row in table.to_pylist():
        for name in maps:
            if row[name] is not None:  # Arrow hands a MAP over as (key, value) pairs
                row[name] = dict(row[name])
        for name in cells:
            row[name] = _h3_hex(row[name])
        record = {k: _plain(v) for k, v in row.items()}
        records.append(json_safe(record) if for_json else record)
    return records


def to_json(table: pa.Table) -> str:
    """One JSON array of objects (see :func:`to_records` for how values are written)."""
    return json.dumps(to_records(table, for_json=True), indent=2, default=str)


def to_ndjson(table: pa.Table) -> str:
    """One JSON object per line (newline-delimited JSON), values as in :func:`to_json`."""
    return "".join(
        json.dumps(r, default=str, separators=(",", ":")) + "\n"
        for r in to_records(table, for_json=True)
    )


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
