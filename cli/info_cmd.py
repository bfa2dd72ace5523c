"""``drivecat info PATH``: a recording, a drive folder or a store, at a glance."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from drivecat.cli.common import echo_json, json_option
from drivecat.cli.main import drivecat

if TYPE_CHECKING:
    from drivecat.catalog.info import CatalogInfo
    from drivecat.ingest.info import RecordingInfo


@drivecat.command("info")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@json_option
def info(path: Path, as_json: bool) -> None:
    """Summarize a recording, a drive folder or a store.

    For an MCAP file, a ROS 1 bag or a ROS 2 bag folder: what `mcap info` gives (topics,
    schemas, message counts and rates, time span, compression, attachments, metadata).
    For a store (a folder with catalog.duckdb) or one of its drive folders: drives, devices
    and versions, hours, segments by tag, quality problems. For any other folder: each
    recording in it.

    \b
    Examples:
      drivecat info sample_logs/tiny/rec_0000.mcap
      drivecat info /data/drivecat
      drivecat info /data/drivecat/drives/veh042_2026-06-15T173000Z --json
    """
    from drivecat.catalog import info as catalog_info
    from drivecat.catalog.query import json_safe
    from drivecat.ingest.info import recording_info

    if path.is_dir() and catalog_info.is_store(path):
        summary: Any = catalog_info.store_info(path)
    elif path.is_dir() and catalog_info.is_drive_folder(path):
        summary = catalog_info.drive_info(path)
    elif path.is_file() or (path / "metadata.yaml").is_file():
        summary = recording_info(path)
    else:
        found = _recordings(path)
        if not found:
            raise click.UsageError(
                f"{path}: no store, drive folder or recording (.mcap, .bag, ROS 2 bag) here"
            )
        recordings = [recording_info(p) for p in found]
        if as_json:
            echo_json(json_safe([r.as_dict() for r in recordings]))
        else:
            click.echo("\n\n".join(_recording_text(r) for r in recordings))
        return
    if as_json:
        echo_json(json_safe(summary.as_dict()))
    elif summary.__class__.__name__ == "CatalogInfo":
        click.echo(_catalog_text(summary))
    else:
        click.echo(_recording_text(summary))


def _recordings(folder: Path) -> list[Path]:
    files = [p for p in sorted(folder.iterdir()) if p.suffix in (".mcap", ".bag") and p.is_file()]
    bags = [p for p in sorted(folder.iterdir()) if (p / "metadata.yaml").is_file()]
    return files + bags


def _time(ns: int | None) -> str:
    if ns is None:
        return "-"
    at = datetime.fromtimestamp(ns / 1e9, tz=UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" + f" ({ns})"


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _recording_text(r: RecordingInfo) -> str:
    how = "indexed" if r.indexed else "not indexed"
    lines = [
        f"recording:   {r.path} ({r.format}, {_size(r.bytes)}, {how})",
        f"library:     {r.library or '-'}",
        f"profile:     {r.profile or '-'}",
        f"messages:    {r.message_count:,}",
        f"start:       {_time(r.start_ns)}",
        f"end:         {_time(r.end_ns)}",
        f"duration:    {'-' if r.duration_s is None else f'{r.duration_s:.3f} s'}",
        "compression: " + (", ".join(f"{k}: {v} chunks" for k, v in r.compression.items()) or "-"),
    ]
    if r.note:
        lines.append(f"note:        {r.note}")
    lines.append(f"channels ({len(r.topics)}):")
    wide = max((len(t.topic) for t in r.topics), default=0)
    for t in r.topics:
        rate = "" if t.rate_hz is None else f" {t.rate_hz:8.2f} Hz"
        head = f"  {t.topic:<{wide}} {t.message_count:>8,} msgs{rate:>12}"
        schema = (
            f"{t.schema_name or '(no schema)'} [{t.schema_encoding or '-'}/{t.message_encoding}]"
        )
        # an 80-column terminal: the schema goes on its own line rather than wrapping
        if len(head) + 2 + len(schema) <= 80:
            lines.append(f"{head}  {schema}")
        else:
            lines += [head, f"      {schema}"]
    lines.append(f"attachments ({len(r.attachments)}):")
    lines += [f"  {a.name} ({a.media_type}, {_size(a.bytes)})" for a in r.attachments]
    lines.append(f"metadata ({len(r.metadata)}):")
    for name, values in r.metadata.items():
        lines.append(f"  {name}:")
        for key, value in values.items():
            first, *more = str(value).splitlines() or [""]
            lines.append(f"    {key}: {first}" + (f" ... ({len(more)} more lines)" if more else ""))
    return "\n".join(lines)


def _counts(values: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in values.items()) or "-"


def _catalog_text(c: CatalogInfo) -> str:
    lines = [
        f"{c.kind}:{' ' * (10 - len(c.kind))}{c.path}",
        f"drives:    {c.drives} ({_counts(c.status)})",
        f"devices:   {_counts(c.devices)}",
        f"versions:  {_counts(c.versions)}",
        f"hours:     {c.hours:.3f} ({c.first_start or '-'} to {c.last_end or '-'})",
        f"messages:  {c.messages:,} ({_size(c.bytes)})",
        f"segments:  {c.segments}",
    ]
    for tag, values in c.tags.items():
        lines.append(f"  {tag}: {_counts(values)}")
    lines.append(f"  with pedestrians: {c.pedestrian_segments}")
    lines.append(f"quality:   {_counts(c.quality) if c.quality else 'no problems recorded'}")
    return "\n".join(lines)
