"""Coverage: hours and segments for every combination of conditions, the empty ones too.

``coverage(store, by=["weather", "time_of_day"], where="device_version LIKE '5.%'")`` counts
the matching segments by each combination of the conditions' labels (see
``catalog.conditions``). Every combination of the domains is a row, so a combination that no
segment has is a row with 0 segments and 0 hours: the fleet's gaps. A row is a ``gap`` when
it has no segment or fewer hours than ``min_hours``.

Hours are the segments' own durations (``end_ns - start_ns``), summed. The domain of a
label the catalog holds beyond the fixed domain (a device version, an H3 cell) is what the
whole catalog holds, not just the matching segments: a cell driven last month and not this
month is a gap of this month. Everything runs in DuckDB, in two scans of ``segments``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from drivecat.catalog import conditions, sandbox
from drivecat.catalog.conditions import Dimension
from drivecat.catalog.errors import CatalogError
from drivecat.catalog.reading import sandboxed

#: More combinations than this is a question no table answers; narrow --by instead.
MAX_COMBINATIONS = 200_000


@dataclass(frozen=True)
class Coverage:
    """One row per combination: the dimensions' labels, then ``segments``, ``drives``,
    ``hours`` and ``gap``; ordered by each dimension's domain order."""

    dimensions: tuple[str, ...]
    rows: pa.Table
    min_hours: float
    h3_resolution: int | None

    @property
    def gaps(self) -> int:
        return sum(1 for g in self.rows.column("gap").to_pylist() if g)


def coverage(
    store: Path,
    by: Sequence[str] = ("weather", "time_of_day"),
    where: str = "true",
    min_hours: float = 0.0,
    h3_resolution: int | None = None,
) -> Coverage:
    """Count the segments matching ``where`` by every combination of ``by``.

    CatalogError for an unknown condition, a ``where`` that is not one SQL expression, a
    negative ``min_hours``, or more than :data:`MAX_COMBINATIONS` combinations.
    """
    dims = conditions.parse(by, h3_resolution)
    sandbox.one_expression(where)
    if not min_hours >= 0 or math.isinf(min_hours):
        raise CatalogError(f"--min-hours {min_hours}: must be a number >= 0")
    with sandboxed(store) as con:
        domains = domains_of(con, dims, h3_resolution)
        combos = math.prod(len(d) for d in domains)
        if combos > MAX_COMBINATIONS:
            raise CatalogError(
                f"--by {','.join(d.name for d in dims)}: {combos} combinations (more than "
                f"{MAX_COMBINATIONS}); name fewer conditions or a coarser --h3-resolution"
            )
        rows = con.sql(coverage_sql(dims, domains, where, min_hours, h3_resolution)).arrow()
    table = rows.read_all() if isinstance(rows, pa.RecordBatchReader) else rows
    return Coverage(tuple(d.name for d in dims), table, min_hours, h3_resolution)


def domains_of(
    con: duckdb.DuckDBPyConnection, dims: Sequence[Dimension], h3_resolution: int | None
) -> list[list[str]]:
    """Each dimension's labels: its fixed domain, then what the whole catalog holds beyond
    it in text order (one scan of ``segments``)."""
    lists = ", ".join(f"list(DISTINCT {d.expr})" for d in dims)
    found = con.execute(f"SELECT {lists} FROM {conditions.source_sql('true', h3_resolution)}")
    row = found.fetchall()[0]
    out = []
    for dim, seen in zip(dims, row, strict=True):
        extra = sorted(v for v in (seen or []) if v not in dim.domain)
        if dim.numeric or dim.name in ("weather", "time_of_day"):
            extra = [v for v in extra if v != conditions.UNKNOWN] + (
                [conditions.UNKNOWN]
                if conditions.UNKNOWN in extra and conditions.UNKNOWN not in dim.domain
                else []
            )
        out.append([*dim.domain, *extra])
    return out


def coverage_sql(
    dims: Sequence[Dimension],
    domains: Sequence[Sequence[str]],
    where: str,
    min_hours: float,
    h3_resolution: int | None,
) -> str:
    """The coverage query: the domains' cross product LEFT JOIN the grouped counts."""
    cols = [d.column for d in dims]
    labels = ", ".join(f"{d.expr} AS {d.column}" for d in dims)
    grid = " CROSS JOIN ".join(
        conditions.values_sql(c, list(v)) for c, v in zip(cols, domains, strict=True)
    )
    order = ", ".join(f"_o_{c}" for c in cols)
    return f"""
    WITH counts AS (
        SELECT {labels}, count(*) AS segments, count(DISTINCT drive_id) AS drives,
               coalesce(sum(end_ns - start_ns), 0) / 3.6e12 AS hours
        FROM {conditions.source_sql(where, h3_resolution)} GROUP BY ALL
    )
    SELECT {", ".join(f"g.{c}" for c in cols)},
           coalesce(segments, 0)::BIGINT AS segments, coalesce(drives, 0)::BIGINT AS drives,
           round(coalesce(hours, 0.0), 6) AS hours,
           coalesce(segments, 0) = 0 OR coalesce(hours, 0.0) < {float(min_hours)!r} AS gap
    FROM (SELECT * FROM {grid}) g LEFT JOIN counts USING ({", ".join(cols)})
    ORDER BY {order}
    """
