"""What one pass over a drive hands to the catalog: ``PassResult``, a frozen record.

The pass (``ingest.passes.DrivePass``) returns it; ``ingest.run_rows`` turns it into the
catalog rows and the manifest once the drive has a name. Nothing reads the pass object from
outside. Times are ``log_time`` nanoseconds; ``end_ns`` is exclusive (the last log time
plus one, or ``start_ns`` for a drive without messages).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drivecat.ingest.identity import DeviceIdentity
from drivecat.ingest.side_records import KeptAttachment, KeptMetadata
from drivecat.ingest.source_types import Schema
from drivecat.ingest.split import OutputFile
from drivecat.types import DriveStatus, QualityKind, Role


@dataclass(frozen=True)
class QualityRow:
    """One detected problem: a ``quality`` row without its drive. ``topic`` is "" for a
    problem of an input file rather than of a topic."""

    topic: str
    kind: QualityKind
    start_ns: int | None  # None: no time to point at (a drive with no message)
    end_ns: int | None
    count: int
    detail: str


@dataclass(frozen=True)
class PassTopic:
    """One topic as the pass saw it: its channel's schema and encoding, its statistics."""

    topic: str
    role: Role
    schema: Schema | None
    encoding: str
    message_count: int
    bytes: int
    rate_hz: float | None
    start_ns: int | None
    end_ns: int  # the topic's last log time (inclusive)
    slug: str | None  # its folder in the drive, None when it has no file


@dataclass(frozen=True)
class PassResult:
    """Everything the catalog needs from one pass, in catalog order.

    ``frames``, ``sensor_rows`` and ``segments`` are rows keyed by their table's columns,
    without ``drive_id`` (and, for ``frames`` and ``sensor_rows``, with ``file`` relative
    to the drive's folder): the drive is named only after the pass.
    """

    identity: DeviceIdentity
    start_ns: int | None  # None for a drive with no message
    end_ns: int | None  # exclusive
    message_count: int
    status: DriveStatus
    lost_messages: int | None  # 0 when nothing was lost; None when losses are uncounted
    lost_bytes: int  # input bytes lost, to truncation or damage
    lost_detail: str  # one line per truncated input, "" when none
    topics: tuple[PassTopic, ...]  # sorted by topic
    files: tuple[OutputFile, ...]  # sorted by path
    slugs: Mapping[str, str]  # topic -> its folder in the drive
    frames: tuple[Mapping[str, Any], ...]
    sensor_rows: tuple[Mapping[str, Any], ...]
    quality: tuple[QualityRow, ...]
    segments: tuple[Mapping[str, Any], ...]
    warnings: tuple[str, ...]
    attachments: tuple[KeptAttachment, ...] = ()  # stored in the drive's folder, in order
    metadata: tuple[KeptMetadata, ...] = ()  # every metadata record of the inputs, in order

    @property
    def recovered(self) -> bool:
        return self.status is DriveStatus.RECOVERED


__all__ = ["PassResult", "PassTopic", "QualityRow"]
