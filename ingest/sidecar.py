"""Side-car video in the pass: each frame time that arrives releases the matching frame.

A raw ``.h264``/``.h265`` stream has no timestamps; an ``.mp4``'s clock is not the
vehicle's. The recording's frame-times topic (``drivecat.vehicle.FrameTime``) gives each
frame's capture time by frame index. As each FrameTime message passes in the stream, the
frame with that index is repackaged as a ``foxglove.CompressedVideo`` message whose
``log_time`` is that capture time, and fed back into the pass like any recorded message.

Frames are paired with times by index, never by position: when the counts disagree the
unpaired ones are dropped and reported as ``frame_count_mismatch``, never shifted. A
side-car of zero bytes is an ``empty_sidecar`` quality row and a warning instead.

A side-car may not go to a topic that a recording already carries: two cameras would share
one frame index, and the recorded camera's frames would be decoded as part of the other's
stream. ``check_topic`` refuses that (ingest.passes calls it for every recorded channel).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from foxglove_schemas_protobuf.CompressedVideo_pb2 import CompressedVideo

from drivecat.ingest.decode import stamp_ns
from drivecat.ingest.drive import VideoInput
from drivecat.ingest.errors import IngestError
from drivecat.ingest.pass_result import QualityRow
from drivecat.ingest.sources import Channel, RawMessage, Schema
from drivecat.ingest.split import Position
from drivecat.ingest.video import iter_sidecar_units, sidecar_codec
from drivecat.schemas.decoding import value_of
from drivecat.schemas.protobuf import file_descriptor_set
from drivecat.types import QualityKind

_VIDEO_SCHEMA = Schema(
    name="foxglove.CompressedVideo",
    encoding="protobuf",
    data=file_descriptor_set(CompressedVideo.DESCRIPTOR),
)


def check_topic(video: VideoInput, drive_json: Path, topic: str, recording: str) -> None:
    """IngestError naming ``drive_json`` (or the video file, without one) and the topic when
    ``recording`` (a name for messages) records ``topic``, the one ``video`` goes to."""
    if topic != video.topic:
        return
    where = drive_json if drive_json.is_file() else video.file
    raise IngestError(
        f"{where}: side-car {video.file.name} maps to topic {video.topic}, which "
        f"{recording} already records; give the video a topic of its own"
    )


class SidecarFeeder:
    """Turns one side-car file plus its frame-times topic into CompressedVideo messages."""

    def __init__(self, video: VideoInput, emit: Callable[[RawMessage], None]) -> None:
        self.video = video
        self.emit = emit
        self.empty = video.file.stat().st_size == 0
        self.codec = sidecar_codec(video.file)
        self.channel = Channel(video.topic, "protobuf", _VIDEO_SCHEMA, {})
        self.frame_id = video.topic.strip("/").replace("/", "_") or "camera"
        self._units: Iterator[bytes] | None = None
        self._next_index = 0
        self.frames_paired = 0
        self.stamps = 0
        self.unmatched_stamps = 0
        self.skipped_frames = 0
        self.first_ns: int | None = None
        self.last_ns = 0
        self.warnings: list[str] = []

    def _next_unit(self) -> bytes | None:
        if self._units is None:
            self._units = iter_sidecar_units(self.video.file)
        unit = next(self._units, None)
        if unit is not None:
            self._next_index += 1
        return unit

    def on_frame_time(self, message: RawMessage, position: Position, decoded: Any) -> None:
        if decoded is None:
            return
        index = value_of(decoded, "frame_index")
        t_ns = stamp_ns(decoded)
        if index is None or t_ns is None:
            return
        self.stamps += 1
        if self.empty:
            self.unmatched_stamps += 1
            return
        index = int(index)
        if index < self._next_index:  # a repeated or out-of-order time: its frame is gone
            self.unmatched_stamps += 1
            return
        while self._next_index < index:
            if self._next_unit() is None:
                self.unmatched_stamps += 1
                return
            self.skipped_frames += 1
        unit = self._next_unit()
        if unit is None:
            self.unmatched_stamps += 1
            return
        if self.first_ns is None:
            self.first_ns = t_ns
        self.last_ns = max(self.last_ns, t_ns)
        data = CompressedVideo(frame_id=self.frame_id, data=unit, format=self.codec.value)
        data.timestamp.FromNanoseconds(t_ns)
        self.frames_paired += 1
        self.emit(
            RawMessage(self.channel, t_ns, t_ns, self.frames_paired, data.SerializeToString())
        )

    def finish(self) -> list[QualityRow]:
        """Count the frames no time reached; report any disagreement between the counts."""
        if self.empty:
            return self._empty()
        leftover = 0
        while self._next_unit() is not None:
            leftover += 1
        frames = self.frames_paired + self.skipped_frames + leftover
        if frames == self.frames_paired and self.stamps == self.frames_paired:
            return []
        name = self.video.file.name
        detail = (
            f"{name}: {frames} frames, {self.stamps} frame times on {self.video.timestamps_topic}; "
            f"{self.frames_paired} paired by index, "
            f"{frames - self.frames_paired} frames and {self.unmatched_stamps} times left unpaired"
        )
        if self.stamps == 0:
            self.warnings.append(
                f"{name}: no frame times on {self.video.timestamps_topic}; video not ingested"
            )
        start = self.first_ns or 0
        return [
            QualityRow(
                self.video.topic,
                QualityKind.FRAME_COUNT_MISMATCH,
                start,
                self.last_ns,
                abs(frames - self.stamps),
                detail,
            )
        ]

    def _empty(self) -> list[QualityRow]:
        name = self.video.file.name
        times = self.video.timestamps_topic
        self.warnings.append(f"{name}: empty file (0 bytes); no video for {self.video.topic}")
        detail = f"{name} is empty: {self.stamps} frame times on {times}, no frame"
        return [
            QualityRow(self.video.topic, QualityKind.EMPTY_SIDECAR, None, None, self.stamps, detail)
        ]
