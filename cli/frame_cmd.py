"""``catalog frame``: the exact video frame at a time, as a PNG."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from drivecat.cli.common import LazyChoice, echo_json, json_option, store_option
from drivecat.cli.main import catalog_group

if TYPE_CHECKING:
    from drivecat.catalog.frames import FrameResult

# drivecat.catalog.frames (duckdb, numpy, PyAV) is imported inside the command: no other
# command pays for it.

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# An ISO 8601 time split around its fraction of a second, which may carry nanoseconds
# (datetime keeps microseconds only).
_ISO = re.compile(
    r"(?P<base>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?)"
    r"(?:[.,](?P<frac>\d+))?"
    r"(?P<tz>[Zz]|[+-]\d{2}(?::?\d{2})?)?"
)


def parse_time_ns(text: str) -> int:
    """Nanoseconds since the Unix epoch from an integer, or from ISO 8601 with up to nine
    fractional digits; a time without a zone is UTC. ValueError for anything else."""
    text = text.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    match = _ISO.fullmatch(text)
    if match is None:
        when = datetime.fromisoformat(text)  # a date alone, say; ValueError otherwise
        frac_ns = 0
    else:
        frac = match["frac"] or ""
        if len(frac) > 9:
            raise ValueError(f"{text!r} is finer than a nanosecond")
        tz = match["tz"] or ""
        when = datetime.fromisoformat(match["base"] + ("+00:00" if tz in ("Z", "z") else tz))
        frac_ns = int(frac.ljust(9, "0")) if frac else 0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - _EPOCH
    return (
        (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000 + frac_ns
    )


def _iso(t_ns: int) -> str:
    seconds, nanos = divmod(t_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


class _Time(click.ParamType):
    name = "NS|ISO8601"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_time_ns(str(value))
        except ValueError:
            self.fail(
                f"{value!r} is neither nanoseconds since the epoch nor an ISO 8601 time",
                param,
                ctx,
            )


def _mode_values() -> list[str]:
    from drivecat.catalog.frames import Mode

    return [m.value for m in Mode]


def _summary(result: FrameResult, t_ns: int, out: Path, mode: str) -> dict[str, object]:
    row = result.row
    height, width = result.image.shape[:2]
    return {
        "drive_id": row.drive_id,
        "topic": row.topic,
        "mode": mode,
        "requested_ns": t_ns,
        "frame_idx": row.frame_idx,
        "frame_time_ns": row.time_ns,
        "frame_time": _iso(row.time_ns),
        "dt_ns": row.time_ns - t_ns,
        "log_time_ns": row.log_time_ns,
        "capture_ns": row.capture_ns,
        "is_keyframe": row.is_keyframe,
        "keyframe_idx": row.keyframe_idx,
        "decoded": result.decoded,
        "width": width,
        "height": height,
        "out": str(out),
    }


@catalog_group.command("frame")
@store_option
@click.option("--drive", "drive_id", required=True, help="The drive's id (drives.drive_id).")
@click.option("--topic", required=True, help="The video topic, e.g. /camera/front/video.")
@click.option(
    "--time",
    "t_ns",
    type=_Time(),
    required=True,
    help="Nanoseconds since the Unix epoch, or ISO 8601 (no zone means UTC).",
)
@click.option(
    "--mode",
    type=LazyChoice(_mode_values),
    default="nearest",
    show_default=True,
    help="nearest: the closest frame (a tie goes to the earlier); before: the last at or before.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The PNG file to write.",
)
@json_option
def frame(
    store: Path, drive_id: str, topic: str, t_ns: int, mode: str, out: Path, as_json: bool
) -> None:
    """Write the exact video frame at a time as a PNG.

    The frame is found by a binary search on every frame's own time (capture time, else
    log time) and decoded from its keyframe; dt is the frame's time minus --time.

    \b
    Examples:
      catalog frame --drive veh042_2026-06-15T173000Z --topic /camera/front/video \\
          --time 2026-06-15T17:31:07.250Z --out frame.png
      catalog frame --drive veh042_2026-06-15T173000Z --topic /camera/front/video \\
          --time 1781544667250000000 --mode before --out frame.png --json
    """
    from drivecat.catalog.frames import save_frame_at

    result = save_frame_at(store, drive_id, topic, t_ns, out, mode)
    if as_json:
        echo_json(_summary(result, t_ns, out, mode))
        return
    click.echo(_line(result, t_ns, out))


def _line(result: FrameResult, t_ns: int, out: Path) -> str:
    row = result.row
    dt_ms = (row.time_ns - t_ns) / 1e6
    return (
        f"frame {row.frame_idx} of {row.topic} at {_iso(row.time_ns)} ({row.time_ns} ns), "
        f"dt {dt_ms:+.3f} ms -> {out}"
    )
