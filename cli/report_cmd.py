"""``catalog coverage``, ``catalog drift`` and ``catalog report``."""

from __future__ import annotations

from pathlib import Path

import click

from drivecat.cli.common import echo_json, json_option, store_option
from drivecat.cli.main import catalog_group
from drivecat.types import CONDITION_TAGS


def _names(value: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in value.split(",") if n.strip())


@catalog_group.command("coverage")
@store_option
@click.option(
    "--by",
    default="weather,time_of_day,at_intersection,pedestrians",
    show_default=True,
    help="Conditions, comma-separated: weather, time_of_day, at_intersection, pedestrians "
    "(count bins), pedestrians_within_5m, speed (m/s bins), device_version, h3, tag:<name>.",
)
@click.option("--where", default="true", help="A SQL condition on segments columns.")
@click.option(
    "--min-hours", type=float, default=0.0, help="Flag combinations with fewer hours as gaps."
)
@click.option(
    "--h3-resolution",
    type=int,
    default=None,
    help="Also count by H3 cell at this resolution (0-9).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
def coverage_cmd(
    store: Path,
    by: str,
    where: str,
    min_hours: float,
    h3_resolution: int | None,
    fmt: str,
    out: Path | None,
) -> None:
    """Hours and segments for every combination of conditions, the empty ones included.

    A combination with no segment (or under --min-hours) is a gap: gap = true.

    \b
    Examples:
      catalog coverage --by weather,time_of_day --min-hours 1
      catalog coverage --by weather,pedestrians --where "device_version LIKE '5.%'" --format csv
      catalog coverage --by time_of_day --h3-resolution 7 --format json
    """
    from drivecat.catalog.coverage import coverage
    from drivecat.cli.catalog_cmd import emit

    result = coverage(store, _names(by), where, min_hours, h3_resolution)
    emit(result.rows, fmt, out)


@catalog_group.command("drift")
@store_option
@click.option(
    "--baseline",
    required=True,
    help="The baseline segments: a SQL condition, or export:ID (the segments that export read).",
)
@click.option("--current", required=True, help="The current segments: a SQL condition.")
@click.option(
    "--threshold", type=float, default=0.25, show_default=True, help="PSI above which it drifted."
)
@click.option(
    "--js-threshold",
    type=float,
    default=0.2,
    show_default=True,
    help="Jensen-Shannon distance above which it drifted.",
)
@click.option(
    "--alpha",
    type=float,
    default=0.01,
    show_default=True,
    help="A distance counts only when the chi-square p-value is under this.",
)
@click.option(
    "--sweeps",
    type=int,
    default=2,
    show_default=True,
    help="Lidar sweeps read per drive for points per sweep (0: none).",
)
@click.option("--all", "show_all", is_flag=True, help="List every comparison, not just drifts.")
@json_option
def drift_cmd(
    store: Path,
    baseline: str,
    current: str,
    threshold: float,
    js_threshold: float,
    alpha: float,
    sweeps: int,
    show_all: bool,
    as_json: bool,
) -> None:
    """Compare two sets of segments: tags, topic statistics, schemas. Exit 1 on drift.

    \b
    Examples:
      catalog drift --baseline "device_version = '4.2.1'" --current "device_version = '5.0.0'"
      catalog drift --baseline export:20260615T173000Z-1a2b \\
          --current "start_time > now() - INTERVAL 7 DAY" --json
    """
    from drivecat.catalog.drift import drift

    result = drift(store, baseline, current, threshold, js_threshold, alpha, sweeps)
    if as_json:
        echo_json(result.as_dict())
    else:
        click.echo(
            f"baseline: {result.segments['baseline']} segments in {result.drives['baseline']} "
            f"drives; current: {result.segments['current']} segments in "
            f"{result.drives['current']} drives"
        )
        for c in result.compared:
            if not (c.flagged or show_all):
                continue
            medians = (
                f"  median {c.baseline_median:.4g} -> {c.current_median:.4g}"
                if c.baseline_median is not None and c.current_median is not None
                else ""
            )
            mark = "DRIFT" if c.flagged else "ok   "
            click.echo(
                f"{mark} {c.kind:5} {c.name} {c.metric}: PSI {c.psi:.3f}, JS {c.js:.3f}, "
                f"p {c.p_value:.2g}{medians}"
            )
        for s in result.schemas:
            if s.flagged or show_all:
                new = sorted(set(s.current) - set(s.baseline))
                mark = "DRIFT" if s.flagged else "ok   "
                click.echo(
                    f"{mark} schema {s.topic}: {len(s.baseline)} version(s) in the baseline, "
                    f"{len(s.current)} current"
                    + (f", new: {', '.join(h[:12] for h in new)}" if new else "")
                )
        for note in result.notes:
            click.echo(f"note: {note}")
        flagged = result.flagged
        click.echo(f"{len(flagged)} drifted" if flagged else "no drift")
    if result.flagged:
        raise click.exceptions.Exit(1)


@catalog_group.command("report")
@store_option
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The HTML file to write.",
)
@click.option("--where", default="true", help="The segments the report is about (SQL).")
@click.option("--baseline", default=None, help="Add a drift section against this baseline.")
@click.option(
    "--by",
    default=",".join(CONDITION_TAGS),
    show_default=True,
    help="Conditions of the coverage matrix (the first two make its heat map).",
)
@click.option(
    "--color-by",
    default="hours",
    show_default=True,
    help="Colour the map's cells by hours or by a condition (weather, time_of_day, ...).",
)
@click.option("--h3-resolution", type=int, default=9, show_default=True, help="Map resolution.")
@click.option("--min-hours", type=float, default=0.0, help="Coverage under this is a gap.")
@click.option("--thumbnails", type=int, default=4, show_default=True, help="Frames to show.")
@json_option
def report_cmd(
    store: Path,
    out: Path,
    where: str,
    baseline: str | None,
    by: str,
    color_by: str,
    h3_resolution: int,
    min_hours: float,
    thumbnails: int,
    as_json: bool,
) -> None:
    """Write one self-contained HTML page: map, coverage, timeline, drift, quality, frames.

    It opens from disk with no network.

    \b
    Examples:
      catalog report --out report.html
      catalog report --out v5.html --where "device_version = '5.0.0'" \\
          --baseline "device_version = '4.2.1'" --color-by weather
    """
    from drivecat.catalog.report import ReportOptions, write_report

    opts = ReportOptions(
        where, baseline, _names(by), h3_resolution, color_by, min_hours, max(thumbnails, 0)
    )
    summary = write_report(store, out, opts)
    if as_json:
        echo_json(summary)
    else:
        click.echo(
            f"wrote {out}: {len(summary['cells'])} cells, {summary['gaps']} of "
            f"{summary['combinations']} combinations are gaps, {summary['drives']} drives, "
            f"{summary['thumbnails']} frames"
        )
