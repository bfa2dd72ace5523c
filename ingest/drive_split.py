"""Recordings far apart in time are separate drives.

An offload folder may hold recordings of several days (ten bags over 49 days): ingesting
them as one drive gives one drive of hundreds of thousands of segments, with positions
interpolated across the weeks between. Recordings whose time spans are more than
``drive_gap_seconds`` apart (default 1800) go to separate drives instead; recordings that
overlap or follow each other closely (a recorder splitting by size or time) stay one drive.

A recording's span is read from its index alone (the MCAP summary, the ROS bag's index or
``metadata.yaml``); nothing is decoded. When a span cannot be read that way (a truncated
or unindexed MCAP, an empty recording), the folder is left as one drive: the split needs
every recording's place in time.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from drivecat.ingest.drive import DriveInputs, part_of

Span = tuple[int, int]  # first and last log_time, ns


def recording_span(path: Path) -> Span | None:
    """(first, last) log time of a recording from its index; None if not known that way."""
    try:
        if path.is_dir():
            return _rosbag_span(path, ros2=True)
        if path.suffix.lower() == ".bag":
            return _rosbag_span(path, ros2=False)
        if path.suffix.lower() == ".mcap":
            return _mcap_span(path)
    except Exception:  # any reader's failure: the pass reports it; here it only means "unknown"
        return None
    return None


def _mcap_span(path: Path) -> Span | None:
    from mcap.reader import make_reader

    with open(path, "rb") as f:
        summary = make_reader(f).get_summary()
    if summary is None:
        return None
    stats = summary.statistics
    if stats is not None and stats.message_count:
        return stats.message_start_time, stats.message_end_time
    if summary.chunk_indexes:
        starts = [ci.message_start_time for ci in summary.chunk_indexes]
        ends = [ci.message_end_time for ci in summary.chunk_indexes]
        return min(starts), max(ends)
    return None


def _rosbag_span(path: Path, *, ros2: bool) -> Span | None:
    if ros2:
        from rosbags.rosbag2 import Reader as Ros2Reader

        with Ros2Reader(path) as reader2:
            count, start, end = reader2.message_count, reader2.start_time, reader2.end_time
    else:
        from rosbags.rosbag1 import Reader as Ros1Reader

        with Ros1Reader(path) as reader1:
            count, start, end = reader1.message_count, reader1.start_time, reader1.end_time
    return (start, end) if count else None


def group_by_time(spans: Sequence[tuple[Path, Span]], gap_ns: int) -> list[list[Path]]:
    """Recordings in time order, cut wherever the next one starts more than ``gap_ns``
    after every earlier one has ended."""
    groups: list[list[Path]] = []
    end: int | None = None
    for path, (first, last) in sorted(spans, key=lambda item: (item[1][0], item[0])):
        if end is None or first - end > gap_ns:
            groups.append([])
            end = last
        groups[-1].append(path)
        end = max(end, last)
    return groups


def split_by_time(inputs: DriveInputs, gap_ns: int) -> list[DriveInputs]:
    """``inputs`` as one drive, or as several when its recordings are over ``gap_ns`` apart
    (in time order; the first keeps the side-car videos, every one ``drive.json``)."""
    if len(inputs.recordings) < 2:
        return [inputs]
    spans = [(path, recording_span(path)) for path in inputs.recordings]
    known = [(path, span) for path, span in spans if span is not None]
    if len(known) < len(spans):
        return [inputs]
    groups = group_by_time(known, gap_ns)
    if len(groups) == 1:
        return [inputs]
    return [part_of(inputs, group, videos=k == 0) for k, group in enumerate(groups)]


__all__ = ["group_by_time", "recording_span", "split_by_time"]
