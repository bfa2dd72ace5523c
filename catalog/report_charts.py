"""The report's charts, drawn by plotly (its JavaScript is inlined once by ``catalog.report``).

Each function takes plain rows and returns a ``plotly.graph_objects.Figure``; nothing here
reads the catalog. Plotly comes with drivecat already (open3d's viewer depends on it), draws
offline from one inlined script, and gives the page hover, zoom and pan for free.

The map draws each H3 cell from its own boundary (``h3.cell_to_boundary``) as one filled
trace on plain lon/lat axes: no basemap, no tiles, nothing fetched. Each trace carries its
cell's id in ``meta.h3`` so the page can mark the drawn shapes with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import h3
import plotly.graph_objects as go
from plotly.colors import qualitative, sample_colorscale
from plotly.subplots import make_subplots

COLORSCALE = "Viridis"
_FONT = {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 13}


@dataclass(frozen=True)
class CellRow:
    cell: str  # H3 hex string
    hours: float
    segments: int
    label: str | None = None  # the majority value of the tag the map is coloured by


def _layout(fig: go.Figure, height: int, **extra: Any) -> go.Figure:
    fig.update_layout(
        height=height,
        margin={"l": 60, "r": 30, "t": 30, "b": 50},
        font=_FONT,
        plot_bgcolor="white",
        paper_bgcolor="white",
        **extra,
    )
    return fig


#: Cells further apart than this (km) are drawn in separate panels: a fleet in two cities
#: on one map would be two dots.
CLUSTER_KM = 80.0
MAX_PANELS = 6


def clusters(cells: Sequence[CellRow]) -> list[list[CellRow]]:
    """Cells grouped by place: each joins the first group whose first cell is within
    :data:`CLUSTER_KM`; groups ordered by hours, most first."""
    groups: list[tuple[tuple[float, float], list[CellRow]]] = []
    for c in cells:
        here = h3.cell_to_latlng(c.cell)
        for anchor, members in groups:
            if h3.great_circle_distance(anchor, here, unit="km") <= CLUSTER_KM:
                members.append(c)
                break
        else:
            groups.append((here, [c]))
    return sorted((m for _, m in groups), key=lambda m: -sum(c.hours for c in m))


def cell_map(cells: Sequence[CellRow], color_by: str = "hours") -> go.Figure:
    """Filled H3 cells on lon/lat axes with a true aspect, one panel per place (at most
    :data:`MAX_PANELS`, the most-driven); coloured by hours (a scale) or by the majority
    label of a tag (a legend)."""
    groups = clusters(cells)[:MAX_PANELS]
    cols = min(len(groups), 3) or 1
    rows = math.ceil(len(groups) / cols) or 1
    titles = [
        f"{len(g)} cell{'s' if len(g) > 1 else ''} near {h3.cell_to_latlng(g[0].cell)[0]:.3f}, "
        f"{h3.cell_to_latlng(g[0].cell)[1]:.3f}"
        for g in groups
    ]
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=titles,
        horizontal_spacing=0.08,
        vertical_spacing=0.12,
    )
    top = max((c.hours for c in cells), default=0.0) or 1.0
    labels = sorted({c.label or "unknown" for c in cells})
    palette = {label: qualitative.Safe[i % len(qualitative.Safe)] for i, label in enumerate(labels)}
    shown: set[str] = set()
    for i, group in enumerate(groups):
        row, col = i // cols + 1, i % cols + 1
        lats: list[float] = []
        for c in group:
            ring = h3.cell_to_boundary(c.cell)
            lat = [p[0] for p in ring] + [ring[0][0]]
            lon = [p[1] for p in ring] + [ring[0][1]]
            lats += lat
            if color_by == "hours":
                color = sample_colorscale(COLORSCALE, [c.hours / top])[0]
                name, legend = c.cell, False
            else:
                name = c.label or "unknown"
                color, legend = palette[name], name not in shown
                shown.add(name)
            fig.add_trace(
                go.Scatter(
                    x=lon,
                    y=lat,
                    mode="lines",
                    fill="toself",
                    fillcolor=color,
                    line={"color": "rgba(40,40,40,0.6)", "width": 0.6},
                    name=name,
                    legendgroup=name,
                    showlegend=legend,
                    meta={"h3": c.cell},
                    hoveron="fills",
                    hoverinfo="text",
                    text=f"{c.cell}<br>{c.hours:.4f} h, {c.segments} segments"
                    + (f"<br>{color_by}: {c.label}" if color_by != "hours" else ""),
                ),
                row=row,
                col=col,
            )
        mid = (min(lats) + max(lats)) / 2
        axis = "x" if i == 0 else f"x{i + 1}"
        fig.update_xaxes(
            showgrid=True,
            gridcolor="#eee",
            zeroline=False,
            tickformat=".4f",
            nticks=4,
            row=row,
            col=col,
        )
        fig.update_yaxes(
            showgrid=True,
            gridcolor="#eee",
            zeroline=False,
            tickformat=".4f",
            scaleanchor=axis,
            scaleratio=1 / max(math.cos(math.radians(mid)), 0.01),
            row=row,
            col=col,
        )
    if color_by == "hours" and cells:
        fig.add_trace(  # an invisible marker that carries the colour bar
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                showlegend=False,
                hoverinfo="skip",
                marker={
                    "colorscale": COLORSCALE,
                    "cmin": 0,
                    "cmax": top,
                    "color": [0],
                    "showscale": True,
                    "colorbar": {"title": {"text": "hours"}},
                },
            ),
            row=1,
            col=1,
        )
    _layout(fig, 120 + 380 * rows, hovermode="closest", legend={"title": {"text": color_by}})
    fig.update_layout(margin={"t": 70})  # room for the panel titles under the mode bar
    return fig


def coverage_heatmap(
    rows: Sequence[tuple[str, str, float, int]], x_labels: Sequence[str], y_labels: Sequence[str]
) -> go.Figure:
    """Hours by two conditions, (x label, y label, hours, segments) rows; an empty
    combination is written ``gap`` on its square."""
    hours = {(x, y): (h, n) for x, y, h, n in rows}
    z = [[hours.get((x, y), (0.0, 0))[0] for x in x_labels] for y in y_labels]
    text = [
        [
            "gap" if hours.get((x, y), (0.0, 0))[1] == 0 else f"{hours[(x, y)][0]:.3g} h"
            for x in x_labels
        ]
        for y in y_labels
    ]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(x_labels),
            y=list(y_labels),
            text=text,
            texttemplate="%{text}",
            colorscale=[[0, "#fde2e2"], [1e-9, "#eef5ff"], [1, "#1f4e9c"]],
            colorbar={"title": {"text": "hours"}},
            hovertemplate="%{x} / %{y}: %{text}<extra></extra>",
            xgap=2,
            ygap=2,
        )
    )
    return _layout(fig, 120 + 60 * len(y_labels))


@dataclass(frozen=True)
class DriveSpan:
    drive_id: str
    device: str
    version: str
    start_iso: str
    duration_ms: float
    status: str


def timeline(drives: Sequence[DriveSpan]) -> go.Figure:
    """Drives as marks in time, a row per device, coloured by device version (a drive of
    minutes is a dot at a year's scale, so each is a marker, its length in the hover)."""
    fig = go.Figure()
    versions = sorted({d.version for d in drives})
    for i, version in enumerate(versions):
        mine = [d for d in drives if d.version == version]
        fig.add_trace(
            go.Scatter(
                x=[d.start_iso for d in mine],
                y=[d.device for d in mine],
                mode="markers",
                name=version,
                marker={
                    "color": qualitative.Safe[i % len(qualitative.Safe)],
                    "size": 11,
                    "symbol": "diamond",
                    "line": {"width": 0.5, "color": "#333"},
                },
                customdata=[
                    [d.drive_id, f"{d.duration_ms / 60000:.1f} min", d.status] for d in mine
                ],
                hovertemplate="%{customdata[0]}<br>%{x}<br>%{customdata[1]}, "
                "%{customdata[2]}<br>version " + version + "<extra></extra>",
            )
        )
    fig.update_xaxes(type="date", showgrid=True, gridcolor="#eee")
    fig.update_yaxes(title_text="device", categoryorder="category descending", gridcolor="#eee")
    rows = len({d.device for d in drives})
    return _layout(fig, 160 + 26 * rows, legend={"title": {"text": "device version"}})


def distributions(
    title: str, bins: Sequence[str], baseline: Sequence[float], current: Sequence[float]
) -> go.Figure:
    """The two sides' shares over the same bins, side by side."""
    fig = go.Figure()
    for name, counts, color in (
        ("baseline", baseline, "#7f7f7f"),
        ("current", current, "#d62728"),
    ):
        total = sum(counts) or 1.0
        fig.add_trace(
            go.Bar(
                x=list(bins),
                y=[c / total for c in counts],
                name=name,
                marker_color=color,
                customdata=list(counts),
                hovertemplate="%{x}: %{y:.0%} (%{customdata})<extra>" + name + "</extra>",
            )
        )
    fig.update_yaxes(tickformat=".0%", title_text="share", gridcolor="#eee")
    fig.update_xaxes(type="category")
    return _layout(fig, 260, barmode="group", title={"text": title, "x": 0.01, "font": _FONT})
