"""``catalog export``: the segments a SQL condition selects, as MCAP files or a dataset."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from drivecat.cli.common import (
    LazyChoice,
    LazyHelpOption,
    echo_json,
    json_option,
    quiet_option,
    store_option,
)
from drivecat.cli.main import catalog_group

if TYPE_CHECKING:
    from drivecat.catalog.export import ExportProgress, ExportResult

# drivecat.catalog.export (duckdb, pyarrow, and PyAV and open3d behind it) is imported inside
# the command: no other command pays for it. The table of formats (catalog.exporters) is
# light: it imports an exporter only when its format is used. --split's default is spelled
# out in its help for the same reason; a test holds it equal to catalog.export.DEFAULT_SPLIT.
SPLIT_HELP_DEFAULT = "train=0.8,val=0.2"


def _format_names() -> list[str]:
    from drivecat.catalog.exporters import formats

    return list(formats())


def _format_help() -> str:
    from drivecat.catalog.exporters import EXPORTERS

    return "; ".join(f"{name}: {entry.summary}" for name, entry in EXPORTERS.items()) + "."


def _image_values() -> list[str]:
    from drivecat.catalog.export import ImageFormat

    return [f.value for f in ImageFormat]


def _topics(values: tuple[str, ...]) -> tuple[str, ...]:
    """Repeated options and comma-separated lists both work: ``--topics a,b --topics c``."""
    return tuple(t.strip() for v in values for t in v.split(",") if t.strip())


@contextmanager
def _progress(enabled: bool) -> Iterator[ExportProgress | None]:
    """A progress bar on a terminal; nothing under --json or when stderr is not a TTY."""
    from drivecat.cli.progress import shows_progress, stderr_console

    if not shows_progress(enabled):
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=stderr_console(),  # type: ignore[arg-type]
        transient=True,
    ) as bar:
        task = bar.add_task("exporting", total=None)

        def update(done: int, total: int, unit: str) -> None:
            bar.update(task, completed=done, total=total, description=f"exporting {unit}")

        yield update


def _summary(result: ExportResult) -> str:
    from drivecat.catalog.exporters import format_entry

    unit = format_entry(result.format).unit
    dropped = {k: v for k, v in result.dropped.items() if v}
    extra = (
        f", dropped {sum(dropped.values())} ({', '.join(f'{k} {v}' for k, v in dropped.items())})"
    )
    return (
        f"exported {result.sample_count} {unit} from {result.ranges} time ranges"
        f"{extra if dropped else ''} to {result.out} in {result.seconds:.1f} s"
    )


@catalog_group.command("export")
@store_option
@click.option("--where", required=True, help="A SQL condition on segments columns.")
@click.option(
    "--format",
    "fmt",
    type=LazyChoice(_format_names),
    required=True,
    cls=LazyHelpOption,
    help_text=_format_help,
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to create (it must not exist, or be empty, unless --force).",
)
@click.option("--topics", multiple=True, help="mcap: topics to carry (default: all).")
@click.option("--reference-topic", help="dataset: one sample per message (default: lidar).")
@click.option("--camera-topics", multiple=True, help="dataset: cameras (default: all video).")
@click.option(
    "--max-dt-ms",
    type=click.FloatRange(min=0),
    default=50.0,
    show_default=True,
    help="dataset: drop a sample whose nearest frame is further away than this.",
)
@click.option(
    "--voxel",
    type=click.FloatRange(min=0, min_open=True),
    help="dataset: downsample point clouds to this voxel size, metres.",
)
@click.option(
    "--split",
    "split_text",
    help=f"dataset: buckets by a hash of drive_id.  [default: {SPLIT_HELP_DEFAULT}]",
)
@click.option("--with-latched", is_flag=True, help="mcap: add the last message of slow topics.")
@click.option(
    "--image-format",
    type=LazyChoice(_image_values),
    default="png",
    show_default=True,
    help="dataset: PNG is lossless.",
)
@click.option(
    "--image-workers",
    type=click.IntRange(min=0),
    help="dataset: image encoding processes (default: auto).",
)
@click.option("--force", is_flag=True, help="Replace a non-empty --out.")
@json_option
@quiet_option
def export_cmd(
    store: Path,
    where: str,
    fmt: str,
    out: Path,
    topics: tuple[str, ...],
    reference_topic: str | None,
    camera_topics: tuple[str, ...],
    max_dt_ms: float,
    voxel: float | None,
    split_text: str | None,
    with_latched: bool,
    image_format: str,
    image_workers: int | None,
    force: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Export the segments a SQL condition selects, as MCAP files or a training dataset.

    Adjacent matching segments of a drive form one time range. The export is written to a
    temporary folder beside --out, renamed when complete, and recorded in the `exports`
    table; lineage.json lists the query, the tool version and every source file with its
    sha256. Exit status: 0 done, 1 no segment matches, 2 bad SQL or options.

    \b
    Examples:
      catalog export --where "weather = 'rain' AND at_intersection" \\
          --format dataset --out ./rain_xings --split train=0.8,val=0.2
      catalog export --where "pedestrian_count >= 3" --format mcap --out ./peds \\
          --topics /camera/front/video,/lidar/top/points --with-latched
    """
    from drivecat.catalog.export import (
        DEFAULT_SPLIT,
        ExportOptions,
        ImageFormat,
        export,
        parse_split,
    )

    options = ExportOptions(
        where=where,
        format=fmt,
        out=out,
        topics=_topics(topics),
        reference_topic=reference_topic,
        camera_topics=_topics(camera_topics),
        max_dt_ms=max_dt_ms,
        voxel_m=voxel,
        split=DEFAULT_SPLIT if split_text is None else parse_split(split_text),
        with_latched=with_latched,
        image_format=ImageFormat(image_format),
        image_workers=image_workers,
        force=force,
    )
    with _progress(not (as_json or quiet)) as progress:
        result = export(store, options, progress)
    if as_json:
        echo_json(result.as_dict())
    else:
        click.echo(_summary(result))
