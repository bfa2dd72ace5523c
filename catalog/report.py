"""``catalog report``: one self-contained HTML page of what the fleet covers and how it drifts.

``write_report(store, out, where=..., baseline=...)`` writes one HTML file that opens with
no network: plotly's JavaScript and every thumbnail are inside it. Sections, in order:
the map of the H3 cells driven (each cell drawn from its own boundary, coloured by hours
or by a tag), the coverage matrix with its gaps, drives on a timeline per device and device
version, drift against a baseline (when one is given), quality problems and schema changes
per device version, and for the least-covered conditions a few exact frames decoded
through the frame index, each naming its drive, topic and time.

``where`` selects the segments the page is about (coverage, map, drift's current side);
the timeline, quality and schema sections are of the drives that hold them.
"""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from drivecat.catalog import conditions, report_charts, sandbox
from drivecat.catalog.coverage import Coverage, coverage
from drivecat.catalog.drift import drift
from drivecat.catalog.errors import CatalogError
from drivecat.catalog.reading import sandboxed
from drivecat.types import CONDITION_TAGS

#: A map of more cells than this is drawn at coarser resolutions until it fits.
MAX_CELLS = 1500
THUMB_WIDTH = 320


@dataclass(frozen=True)
class ReportOptions:
    where: str = "true"
    baseline: str | None = None
    by: tuple[str, ...] = CONDITION_TAGS
    h3_resolution: int = 9
    color_by: str = "hours"  # or a condition name: weather, time_of_day, ...
    min_hours: float = 0.0
    thumbnails: int = 4


@dataclass(frozen=True)
class Thumbnail:
    drive_id: str
    topic: str
    time_iso: str
    condition: str
    png: bytes


def write_report(store: Path, out: Path, options: ReportOptions | None = None) -> dict[str, Any]:
    """Write the report to ``out`` (atomically); a summary of what it holds.

    CatalogError for a bad ``where`` or baseline, a ``color_by`` that is not a condition,
    or an ``out`` that cannot be written.
    """
    opts = options or ReportOptions()
    sandbox.one_expression(opts.where)
    if opts.color_by != "hours" and opts.color_by not in conditions.DIMENSIONS:
        known = ", ".join(["hours", *conditions.DIMENSIONS])
        raise CatalogError(f"--color-by {opts.color_by!r}: not a condition; known: {known}")
    matrix = coverage(store, opts.by, opts.where, opts.min_hours)
    with sandboxed(store) as con:
        cells, resolution = _cells(con, opts)
        drives = _drives(con, opts.where)
        quality = _rows(con, _QUALITY_SQL.format(where=opts.where))
        schemas = _rows(con, _SCHEMAS_SQL.format(where=opts.where))
    compared = drift(store, opts.baseline, opts.where) if opts.baseline else None
    thumbs = thumbnails(store, matrix, opts) if opts.thumbnails else []
    from drivecat.catalog import report_html  # it imports this module's helpers

    page = report_html.page(
        opts, matrix, cells, resolution, drives, quality, schemas, compared, thumbs
    )
    out = Path(out)
    tmp = out.with_name(f".{out.name}.partial")
    try:
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, out)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise CatalogError(f"{out}: cannot write the report: {err.strerror}") from None
    return {
        "out": str(out),
        "cells": [c.cell for c in cells],
        "h3_resolution": resolution,
        "combinations": matrix.rows.num_rows,
        "gaps": matrix.gaps,
        "drives": len(drives),
        "thumbnails": len(thumbs),
        "drift_flagged": compared.flagged if compared else None,
    }


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    result = con.execute(sql)
    names = [d[0] for d in result.description or []]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


_QUALITY_SQL = """
SELECT d.device_version, q.kind, count(*) AS rows, sum(q.count) AS count,
       count(DISTINCT q.drive_id) AS drives, any_value(q.detail) AS example
FROM quality q JOIN drives d USING (drive_id)
WHERE q.drive_id IN (SELECT drive_id FROM segments WHERE ({where}))
GROUP BY ALL ORDER BY 1, 2
"""

_SCHEMAS_SQL = """
SELECT topic, device_version, schema_name, schema_sha256, drives, first_seen, last_seen
FROM schema_drift WHERE topic_changed AND topic IN (
  SELECT topic FROM topics WHERE drive_id IN (SELECT drive_id FROM segments WHERE ({where})))
ORDER BY topic, first_seen
"""


def _cells(
    con: duckdb.DuckDBPyConnection, opts: ReportOptions
) -> tuple[list[report_charts.CellRow], int]:
    """The driven cells at the finest resolution <= the asked one that has at most
    :data:`MAX_CELLS` cells, with hours, segments and the majority ``color_by`` label."""
    label = (
        conditions.DIMENSIONS[opts.color_by].expr if opts.color_by != "hours" else "NULL::VARCHAR"
    )
    base = (
        f"SELECT h3_cell, (end_ns - start_ns) AS dur, {label} AS label FROM segments "
        f"WHERE ({opts.where}) AND h3_cell IS NOT NULL"
    )
    resolution = min(max(opts.h3_resolution, 0), 9)
    while True:
        rows = con.execute(
            f"""
            WITH s AS ({base}),
            cells AS (SELECT DISTINCT h3_cell FROM s),
            parent AS (SELECT h3_cell,
                         h3_cell_to_string(h3_cell_to_parent(h3_cell, {resolution})) AS cell
                       FROM cells)
            SELECT cell, sum(dur) / 3.6e12 AS hours, count(*) AS segments, mode(label)
            FROM s JOIN parent USING (h3_cell) GROUP BY cell ORDER BY cell
            """
        ).fetchall()
        if len(rows) <= MAX_CELLS or resolution == 0:
            break
        resolution -= 1
    cells = [report_charts.CellRow(c, float(h or 0), int(n), lab) for c, h, n, lab in rows]
    return cells, resolution


def _drives(con: duckdb.DuckDBPyConnection, where: str) -> list[report_charts.DriveSpan]:
    rows = con.execute(
        "SELECT drive_id, coalesce(device_id, 'unknown'), coalesce(device_version, 'unknown'), "
        "start_ns, coalesce(end_ns - start_ns, 0) / 1e6, status FROM drives "
        f"WHERE drive_id IN (SELECT drive_id FROM segments WHERE ({where})) "
        "AND start_ns IS NOT NULL ORDER BY start_ns"
    ).fetchall()
    return [
        report_charts.DriveSpan(d, dev, ver, _iso(int(ns)), float(ms), str(st))
        for d, dev, ver, ns, ms, st in rows
    ]


def _iso(t_ns: int) -> str:
    stamp = datetime.fromtimestamp(t_ns // 1_000_000_000, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{t_ns % 1_000_000_000 // 1_000_000:03d}Z"


def thumbnails(store: Path, matrix: Coverage, opts: ReportOptions) -> list[Thumbnail]:
    """Exact frames for the least-covered combinations that have any segment: for each, the
    frame nearest the middle of its first segment, on a video topic of that drive."""
    from drivecat.catalog import frames

    dims = [conditions.DIMENSIONS[n] for n in matrix.dimensions if n in conditions.DIMENSIONS]
    records = [r for r in matrix.rows.to_pylist() if r["segments"] > 0]
    records.sort(key=lambda r: (r["hours"], [r[d.column] for d in dims]))
    out: list[Thumbnail] = []
    with sandboxed(store) as con:
        for record in records:
            if len(out) >= opts.thumbnails:
                break
            match = " AND ".join(f"({d.expr}) = {_lit(record[d.column])}" for d in dims)
            found = con.execute(
                "SELECT s.drive_id, (s.start_ns + s.end_ns) // 2, min(f.topic) "
                "FROM segments s JOIN frames f ON f.drive_id = s.drive_id "
                f"WHERE ({opts.where}) AND {match or 'true'} "
                "GROUP BY ALL ORDER BY min(s.start_ns), s.drive_id LIMIT 1"
            ).fetchall()
            if not found:
                continue
            drive_id, t_ns, topic = found[0]
            try:
                result = frames.frame_at(store, drive_id, topic, int(t_ns), con=con)
            except CatalogError:
                continue  # a frame that cannot be decoded is left out, not the page
            label = ", ".join(f"{d.name}={record[d.column]}" for d in dims)
            when = _iso(int(result.row.time_ns))
            out.append(Thumbnail(drive_id, topic, when, label, _png(result.image)))
    return out


def _lit(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _png(image: Any) -> bytes:
    """A thumbnail THUMB_WIDTH wide as PNG bytes (PyAV scales and encodes)."""
    import av
    import numpy as np

    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    height = max(2, round(image.shape[0] * THUMB_WIDTH / image.shape[1]))
    small = frame.reformat(width=THUMB_WIDTH, height=height)
    ctx = av.CodecContext.create("png", "w")
    ctx.width, ctx.height, ctx.pix_fmt = THUMB_WIDTH, height, "rgb24"  # type: ignore[attr-defined]
    return b"".join(bytes(p) for p in [*ctx.encode(small), *ctx.encode(None)])  # type: ignore[attr-defined]


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def escape(value: object) -> str:
    return html.escape("" if value is None else str(value))
