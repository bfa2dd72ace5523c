"""Frame rows for video topics and index rows for lidar and image topics, built in the pass.

Video access units are parsed from their NAL headers only (``ingest.video``); nothing is
decoded. ``keyframe_idx`` is the frame decoding must start from to rebuild a frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drivecat.ingest.errors import IngestError
from drivecat.ingest.pass_result import QualityRow
from drivecat.ingest.split import Position
from drivecat.ingest.video import Codec, codec_from_format, parse_access_unit
from drivecat.types import QualityKind


def opens_a_file(fmt: str, data: bytes) -> bool:
    """Whether a video message can be the first of a store file: a keyframe that carries
    its parameter sets in band (H.264 IDR with SPS/PPS, H.265 IRAP with VPS/SPS/PPS), so a
    fresh decoder reads the file from its first message. Parses NAL headers only."""
    codec = codec_from_format(fmt)
    if codec is None:
        return False
    try:
        au = parse_access_unit(data, codec)
    except IngestError:
        return False
    return au.is_keyframe and au.has_parameter_sets


@dataclass
class FrameIndexer:
    """Builds the ``frames`` rows of one video topic, and its quality problems."""

    drive_id: str
    topic: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    _keyframe_idx: int | None = None
    _last_capture: int | None = None
    _problems: dict[QualityKind, list[Any]] = field(default_factory=dict)

    def _problem(self, kind: QualityKind, t_ns: int, detail: str) -> None:
        entry = self._problems.get(kind)
        if entry is None:
            self._problems[kind] = [t_ns, t_ns, 1, detail]
        else:
            entry[1] = t_ns
            entry[2] += 1

    def add(
        self, log_time_ns: int, capture_ns: int | None, fmt: str, data: bytes, position: Position
    ) -> None:
        codec = codec_from_format(fmt)
        idx = len(self.rows)
        if codec is None:
            self._problem(
                QualityKind.UNSUPPORTED_CODEC, log_time_ns, f"video format {fmt!r} is not indexed"
            )
            return
        try:
            au = parse_access_unit(data, codec)
        except IngestError as err:  # one bad message is a quality problem, not a failed drive
            self._problem(QualityKind.UNPARSABLE_FRAME, log_time_ns, str(err))
            return
        if au.is_keyframe:
            if not au.has_parameter_sets:
                names = "VPS/SPS/PPS" if codec is Codec.H265 else "SPS/PPS"
                self._problem(
                    QualityKind.KEYFRAME_WITHOUT_SPS,
                    log_time_ns,
                    f"keyframe has no in-band {names}",
                )
            self._keyframe_idx = idx
        elif self._keyframe_idx is None:
            self._problem(
                QualityKind.NO_KEYFRAME,
                log_time_ns,
                "frames before the first keyframe cannot be decoded",
            )
        if au.has_b_slice:
            self._problem(
                QualityKind.B_FRAMES,
                log_time_ns,
                "B-frames: decode order differs from display order",
            )
        time_ns = capture_ns if capture_ns is not None else log_time_ns
        if self._last_capture is not None and time_ns <= self._last_capture:
            self._problem(
                QualityKind.FRAME_TIME_BACKWARDS, log_time_ns, "frame times do not increase"
            )
        self._last_capture = time_ns
        self.rows.append(
            {
                "drive_id": self.drive_id,
                "topic": self.topic,
                "frame_idx": idx,
                "log_time_ns": log_time_ns,
                "capture_ns": capture_ns,
                "is_keyframe": au.is_keyframe,
                "keyframe_idx": self._keyframe_idx,
                "file": position.file,
                "message_idx": position.message_idx,
                "bytes": len(data),
                "codec": codec.value,
            }
        )

    def quality(self) -> list[QualityRow]:
        return [
            QualityRow(self.topic, kind, start, end, count, detail)
            for kind, (start, end, count, detail) in self._problems.items()
        ]
