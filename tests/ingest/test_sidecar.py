"""Side-car frames paired with their frame times by index, as the times stream past."""

from __future__ import annotations

from pathlib import Path

import pytest
from foxglove_schemas_protobuf.CompressedVideo_pb2 import CompressedVideo

from drivecat.ingest.drive import VideoInput
from drivecat.ingest.sidecar import SidecarFeeder
from drivecat.ingest.sources import Channel, RawMessage
from drivecat.ingest.split import Position
from drivecat.schemas.messages import FrameTime
from tests.ingest.test_video import X264_NO_B, encode

T0 = 1_781_544_600_123_456_789
FRAME_NS = 33_333_333


@pytest.fixture
def raw_h264(tmp_path: Path) -> tuple[Path, list[bytes]]:
    packets = [p.data for p in encode("libx264", X264_NO_B, n=10)]
    path = tmp_path / "front.h264"
    path.write_bytes(b"".join(packets))
    return path, packets


def _feed(path: Path, indices: list[int]) -> tuple[list[RawMessage], SidecarFeeder, list]:
    out: list[RawMessage] = []
    video = VideoInput(path, "/cam/video", "/cam/video/frame_times")
    feeder = SidecarFeeder(video, out.append)
    times_channel = Channel("/cam/video/frame_times", "protobuf", None, {})
    for i in indices:
        stamp = FrameTime(frame_index=i)
        stamp.timestamp.FromNanoseconds(T0 + i * FRAME_NS)
        message = RawMessage(times_channel, T0 + i * FRAME_NS + 5_000_000, 0, 0, b"")
        feeder.on_frame_time(message, Position("x", 0), stamp)
    return out, feeder, feeder.finish()


@pytest.mark.parametrize(
    ("indices", "paired", "mismatch"),
    [
        (list(range(10)), list(range(10)), False),
        (list(range(15)), list(range(10)), True),  # more times than frames
        (list(range(6)), list(range(6)), True),  # fewer times than frames
        ([0, 1, 2, 4, 5, 6, 7, 8, 9], [0, 1, 2, 4, 5, 6, 7, 8, 9], True),  # frame 3 has no time
        ([0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9], list(range(10)), True),  # a repeated time
    ],
    ids=["equal", "more-times", "fewer-times", "gap", "repeat"],
)
def test_frames_keep_their_own_times(
    raw_h264: tuple[Path, list[bytes]], indices: list[int], paired: list[int], mismatch: bool
) -> None:
    path, packets = raw_h264
    out, _feeder, quality = _feed(path, indices)
    assert [m.log_time_ns for m in out] == [T0 + i * FRAME_NS for i in paired]
    for message, index in zip(out, paired, strict=True):
        video = CompressedVideo.FromString(message.data)
        assert video.data == packets[index]  # frame i carries time i: never shifted
        assert video.timestamp.ToNanoseconds() == message.log_time_ns
        assert video.format == "h264"
    assert bool(quality) == mismatch
    if quality:
        assert quality[0].kind == "frame_count_mismatch" and "front.h264" in quality[0].detail
