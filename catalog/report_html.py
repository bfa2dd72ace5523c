"""The report page: sections of tables and plotly figures in one HTML string.

Plotly's JavaScript is inlined once in the head, every figure is a div with its own script,
and thumbnails are data URIs, so the file opens from disk with no network. The map's
post-render script marks each drawn cell shape (an SVG group) with ``data-h3-cell``, read
back from the figure plotly drew, so a browser test can check the shapes against the
catalog's cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from drivecat import __version__
from drivecat.catalog import report_charts
from drivecat.catalog.coverage import Coverage
from drivecat.catalog.drift import Drift
from drivecat.catalog.report import ReportOptions, Thumbnail, escape, png_data_uri

_MAX_TABLE_ROWS = 400
_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"scale": 2}}

# Runs after plotly drew the map: each trace group gets the H3 cell its trace was built for.
_MARK_CELLS = """
var gd = document.getElementById('{plot_id}');
function markCells() {
  gd.querySelectorAll('.scatterlayer .trace').forEach(function (g) {
    var cd = g.__data__, t = cd && cd[0] && cd[0].trace;
    if (t && t.meta && t.meta.h3) { g.setAttribute('data-h3-cell', t.meta.h3); }
  });
  gd.setAttribute('data-cells-drawn',
    gd.querySelectorAll('[data-h3-cell]').length.toString());
}
markCells();
gd.on('plotly_afterplot', markCells);
"""

_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 0;
       color: #1d1d1f; background: #f6f7f9; }
header { background: #1f2a44; color: white; padding: 18px 32px; }
header h1 { margin: 0 0 4px 0; font-size: 22px; }
header p { margin: 0; opacity: 0.8; font-size: 13px; }
nav { padding: 8px 32px; background: #e9ecf2; font-size: 13px; }
nav a { margin-right: 14px; color: #1f4e9c; text-decoration: none; }
section { background: white; margin: 18px 32px; padding: 16px 22px; border-radius: 8px;
          box-shadow: 0 1px 3px rgba(0,0,0,0.08); }
section h2 { margin: 0 0 6px 0; font-size: 18px; }
p.note { color: #555; font-size: 13px; margin: 4px 0 10px 0; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e5e5e5; text-align: left; }
th { background: #f0f2f5; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.gap td { background: #fde2e2; color: #8a1c1c; }
tr.flag td { background: #fff1d6; }
.scroll { max-height: 420px; overflow: auto; display: inline-block; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; }
.badge.bad { background: #d62728; color: white; }
.badge.ok { background: #2ca02c; color: white; }
.thumbs { display: flex; flex-wrap: wrap; gap: 14px; }
figure { margin: 0; background: #fafafa; padding: 8px; border: 1px solid #e5e5e5;
         border-radius: 6px; }
figure img { display: block; }
figcaption { font-size: 12px; margin-top: 6px; max-width: 320px; line-height: 1.4; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fill, minmax(430px, 1fr)); gap: 8px; }
"""


def _figure(fig: go.Figure, div_id: str, post_script: str | None = None) -> str:
    return str(
        fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=div_id,
            config=_CONFIG,
            post_script=post_script,
        )
    )


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str], row_class: Any = None) -> str:
    if not rows:
        return "<p class='note'>None.</p>"
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = []
    for row in rows[:_MAX_TABLE_ROWS]:
        cls = row_class(row) if row_class else ""
        cells = "".join(_td(row.get(c)) for c in columns)
        body.append(f"<tr class='{cls}'>{cells}</tr>")
    more = len(rows) - _MAX_TABLE_ROWS
    tail = f"<p class='note'>{more} more rows not shown.</p>" if more > 0 else ""
    return f"<div class='scroll'><table><tr>{head}</tr>{''.join(body)}</table></div>{tail}"


def _td(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return f"<td>{escape(value if value is not None else '')}</td>"
    if isinstance(value, float):
        return f"<td class='num'>{value:.4g}</td>"
    if isinstance(value, int):
        return f"<td class='num'>{value}</td>"
    if isinstance(value, datetime):
        return f"<td>{escape(value.isoformat(timespec='seconds'))}</td>"
    return f"<td>{escape(value)}</td>"


def _map_section(cells: Sequence[report_charts.CellRow], resolution: int, color_by: str) -> str:
    note = (
        f"{len(cells)} H3 cells at resolution {resolution}, each drawn from its own boundary "
        f"and coloured by {escape(color_by)}. Hover a cell for its id and hours; drag to zoom, "
        "double-click to zoom out. No basemap: nothing is fetched."
    )
    if not cells:
        return f"<section id='map'><h2>Where</h2><p class='note'>{note}</p></section>"
    fig = report_charts.cell_map(cells, color_by)
    return (
        f"<section id='map'><h2>Where: the cells driven</h2><p class='note'>{note}</p>"
        f"{_figure(fig, 'h3-map', _MARK_CELLS)}</section>"
    )


def _coverage_section(matrix: Coverage, min_hours: float) -> str:
    dims = list(matrix.dimensions)
    records = matrix.rows.to_pylist()
    cols = [c for c in matrix.rows.column_names]
    gaps = matrix.gaps
    rule = f"under {min_hours} h" if min_hours > 0 else "no segment at all"
    parts = [
        "<section id='coverage'><h2>Coverage</h2>",
        f"<p class='note'>Hours and segments for every combination of {escape(', '.join(dims))}"
        f", including the combinations nobody drove. <b>{gaps}</b> of {len(records)} "
        f"combinations are gaps ({escape(rule)}), shaded red.</p>",
    ]
    if len(dims) >= 2:
        x_dim, y_dim = dims[0], dims[1]
        xs = list(dict.fromkeys(r[cols[0]] for r in records))
        ys = list(dict.fromkeys(r[cols[1]] for r in records))
        summed: dict[tuple[str, str], list[float]] = {}
        for r in records:
            acc = summed.setdefault((r[cols[0]], r[cols[1]]), [0.0, 0])
            acc[0] += r["hours"]
            acc[1] += r["segments"]
        heat = [(x, y, h, int(n)) for (x, y), (h, n) in summed.items()]
        fig = report_charts.coverage_heatmap(heat, xs, ys)
        fig.update_xaxes(title_text=x_dim)
        fig.update_yaxes(title_text=y_dim)
        parts.append(_figure(fig, "coverage-heatmap"))
    parts.append(_table(records, cols, lambda r: "gap" if r["gap"] else ""))
    parts.append("</section>")
    return "".join(parts)


def _timeline_section(drives: Sequence[report_charts.DriveSpan]) -> str:
    head = "<section id='timeline'><h2>Drives over time</h2>"
    if not drives:
        return head + "<p class='note'>No drive.</p></section>"
    fig = report_charts.timeline(drives)
    note = (
        f"{len(drives)} drives, one row per device, coloured by device version "
        "(hover a mark for the drive, its length and status)."
    )
    return f"{head}<p class='note'>{note}</p>{_figure(fig, 'timeline-chart')}</section>"


def _drift_section(compared: Drift) -> str:
    flagged = compared.flagged
    badge = (
        f"<span class='badge bad'>{len(flagged)} drifted</span>"
        if flagged
        else "<span class='badge ok'>no drift</span>"
    )
    note = (
        f"Baseline <code>{escape(compared.baseline)}</code> ({compared.segments['baseline']} "
        f"segments, {compared.drives['baseline']} drives) against current "
        f"<code>{escape(compared.current)}</code> ({compared.segments['current']} segments, "
        f"{compared.drives['current']} drives). Flagged when PSI > {compared.psi_threshold} "
        f"or Jensen-Shannon > {compared.js_threshold}, and the chi-square p-value < "
        f"{compared.alpha}. Topic statistics count one value per drive."
    )
    rows = [
        {
            "what": c.name,
            "metric": c.metric,
            "PSI": c.psi,
            "JS": c.js,
            "p": c.p_value,
            "baseline median": c.baseline_median,
            "current median": c.current_median,
            "drift": c.flagged,
        }
        for c in sorted(compared.compared, key=lambda c: (not c.flagged, c.kind, c.name))
    ]
    charts = [
        _figure(
            report_charts.distributions(f"{c.name} · {c.metric}", c.bins, c.baseline, c.current),
            f"drift-{i}",
        )
        for i, c in enumerate(compared.compared)
        if c.flagged or c.kind == "tag"
    ]
    schema_rows = [
        {
            "topic": s.topic,
            "baseline": ", ".join(f"{n} {h[:12]}" for h, n in s.baseline.items()),
            "current": ", ".join(f"{n} {h[:12]}" for h, n in s.current.items()),
            "drift": s.flagged,
        }
        for s in compared.schemas
    ]
    notes = "".join(f"<p class='note'>{escape(n)}</p>" for n in compared.notes)
    return (
        f"<section id='drift'><h2>Drift {badge}</h2><p class='note'>{note}</p>{notes}"
        + _table(rows, list(rows[0]) if rows else [], lambda r: "flag" if r["drift"] else "")
        + f"<div class='grid2'>{''.join(charts)}</div>"
        + "<h3>Schema versions per topic</h3>"
        + _table(
            schema_rows,
            ["topic", "baseline", "current", "drift"],
            lambda r: "flag" if r["drift"] else "",
        )
        + "</section>"
    )


def _thumbs_section(thumbs: Sequence[Thumbnail]) -> str:
    head = (
        "<section id='frames'><h2>Frames from the least-covered conditions</h2>"
        "<p class='note'>The exact frame nearest the middle of a segment, decoded through the "
        "frame index.</p>"
    )
    if not thumbs:
        return head + "<p class='note'>No video frame in these segments.</p></section>"
    figures = "".join(
        f"<figure><img src='{png_data_uri(t.png)}' width='320' alt='{escape(t.condition)}'>"
        f"<figcaption><b>{escape(t.condition)}</b><br>{escape(t.drive_id)}<br>"
        f"{escape(t.topic)} at {escape(t.time_iso)}</figcaption></figure>"
        for t in thumbs
    )
    return f"{head}<div class='thumbs'>{figures}</div></section>"


def page(
    opts: ReportOptions,
    matrix: Coverage,
    cells: Sequence[report_charts.CellRow],
    resolution: int,
    drives: Sequence[report_charts.DriveSpan],
    quality: Sequence[dict[str, Any]],
    schemas: Sequence[dict[str, Any]],
    compared: Drift | None,
    thumbs: Sequence[Thumbnail],
) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    segments = sum(r["segments"] for r in matrix.rows.to_pylist())
    hours = sum(r["hours"] for r in matrix.rows.to_pylist())
    links = ["map", "coverage", "timeline", *(["drift"] if compared else []), "quality", "frames"]
    sections = [
        _map_section(cells, resolution, opts.color_by),
        _coverage_section(matrix, opts.min_hours),
        _timeline_section(drives),
        _drift_section(compared) if compared else "",
        "<section id='quality'><h2>Quality problems per device version</h2>"
        + _table(quality, ["device_version", "kind", "rows", "count", "drives", "example"])
        + "<h3>Schema changes per device version</h3><p class='note'>Topics whose schema "
        "differs across device versions.</p>"
        + _table(
            schemas,
            ["topic", "device_version", "schema_name", "schema_sha256", "drives", "first_seen"],
        )
        + "</section>",
        _thumbs_section(thumbs),
    ]
    nav = "".join(f"<a href='#{s}'>{s}</a>" for s in links)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>drivecat report</title>
<style>{_CSS}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<header><h1>drivecat report</h1>
<p>{segments} segments, {hours:.2f} h, {len(drives)} drives · segments where
<code>{escape(opts.where)}</code> · drivecat {escape(__version__)} · {now}</p></header>
<nav>{nav}</nav>
{"".join(sections)}
</body></html>
"""
