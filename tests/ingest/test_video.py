"""Side-car video: splitting raw streams and MP4s into Annex-B access units, and repackaging
them as CompressedVideo messages paired with recorded frame times.

Ground truth: the encoder's packets (for files written here), FFmpeg's demuxer and decoder
(for the real files under ../shared/data/real/video), and the frame times given.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import av
import numpy as np
import pytest
from av.video.codeccontext import VideoCodecContext

from drivecat.ingest import video
from drivecat.ingest.errors import IngestError
from drivecat.ingest.video import (
    Codec,
    iter_sidecar_units,
    parse_access_unit,
    sidecar_codec,
)
from tests.ingest.test_nal import X264_B, X264_NO_B, X265_B, encode, needs_x265

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "video"  # ../shared
GOPRO = REAL / "gopro_karma.mp4"
ISAAC = REAL / "isaac_compressed.h264"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="real side-car samples not present")


def decode_all(decoder: str, annexb: bytes) -> list[av.VideoFrame]:
    """Every frame of an Annex-B stream, through a fresh parser and decoder."""
    ctx = cast(VideoCodecContext, av.CodecContext.create(decoder, "r"))
    ctx.thread_type = "AUTO"
    frames = []
    for packet in ctx.parse(annexb) + ctx.parse(None):
        frames += ctx.decode(packet)
    return frames + ctx.decode(None)


def has_start_code(unit: bytes) -> bool:
    return unit.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01"))


# --- raw Annex-B files --------------------------------------------------------------------


@pytest.mark.parametrize("read_size", [1 << 20, 997], ids=["1MiB-reads", "997B-reads"])
@pytest.mark.parametrize(
    ("encoder", "options", "suffix"),
    [
        ("libx264", X264_NO_B, ".h264"),
        ("libx264", X264_B, ".264"),
        pytest.param("libx265", X265_B, ".h265", marks=needs_x265),
    ],
    ids=["h264", "h264-bframes", "h265-bframes"],
)
def test_raw_stream_splits_into_encoder_packets(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    encoder: str,
    options: dict[str, str],
    suffix: str,
    read_size: int,
) -> None:
    monkeypatch.setattr(video, "_READ_SIZE", read_size)
    packets = [p.data for p in encode(encoder, options)]
    path = tmp_path / f"camera{suffix}"
    path.write_bytes(b"".join(packets))
    assert list(iter_sidecar_units(path)) == packets


@needs_real
def test_isaac_raw_stream() -> None:
    units = list(iter_sidecar_units(ISAAC))
    with av.open(str(ISAAC)) as container:
        expected = sum(1 for _ in container.decode(video=0))
    assert len(units) == expected
    assert b"".join(units) == ISAAC.read_bytes()
    # the units, handed to a decoder one by one, give one frame each
    ctx = av.CodecContext.create("h264", "r")
    frames = [f for unit in units for f in ctx.decode(av.Packet(unit))] + ctx.decode(None)
    assert len(frames) == len(units)
    first = parse_access_unit(units[0], Codec.H264)
    assert first.is_keyframe and first.has_parameter_sets


def test_empty_raw_file_has_no_units(tmp_path: Path) -> None:
    path = tmp_path / "empty.h264"
    path.write_bytes(b"")
    assert list(iter_sidecar_units(path)) == []


# --- containers -----------------------------------------------------------------------------


@needs_real
def test_gopro_mp4_becomes_annexb() -> None:
    units = list(iter_sidecar_units(GOPRO))
    with av.open(str(GOPRO)) as container:
        stream = container.streams.video[0]
        sync_samples = [p.is_keyframe for p in container.demux(stream) if p.size]
    assert len(units) == len(sync_samples) == 362
    assert all(has_start_code(u) for u in units)
    parsed = [parse_access_unit(u, Codec.H264) for u in units]
    assert [p.is_keyframe for p in parsed] == sync_samples
    assert all(p.has_parameter_sets for p in parsed if p.is_keyframe)
    # The SPS codes 864x480; the MP4 says 854x480, and FFmpeg crops to that when it decodes the
    # MP4. The Annex-B units must decode to the same pictures without the container.
    frames = decode_all("h264", b"".join(units))
    assert len(frames) == 362
    assert {(f.width, f.height) for f in frames} == {(854, 480)}
    with av.open(str(GOPRO)) as container:
        for mine, theirs in zip(frames[:16], container.decode(video=0), strict=False):
            assert np.array_equal(mine.to_ndarray(format="gray"), theirs.to_ndarray(format="gray"))
    assert sidecar_codec(GOPRO) is Codec.H264


def write_mp4(path: Path, encoder: str, n: int, options: dict[str, str]) -> None:
    with av.open(str(path), "w") as out:
        stream = cast(av.VideoStream, out.add_stream(encoder, rate=30))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = dict[str, object](options)
        rng = np.random.default_rng(3)
        for _ in range(n):
            pixels = rng.integers(0, 256, (48, 64, 3), np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        out.mux(stream.encode(None))


@needs_x265
def test_h265_mp4_becomes_annexb(tmp_path: Path) -> None:
    path = tmp_path / "camera.mov"
    gop = "keyint=10:min-keyint=10:scenecut=0:log-level=none"
    write_mp4(path, "libx265", 25, {"x265-params": gop})
    units = list(iter_sidecar_units(path))
    assert sidecar_codec(path) is Codec.H265
    assert len(units) == 25 and all(has_start_code(u) for u in units)
    with av.open(str(path)) as container:
        sync_samples = [p.is_keyframe for p in container.demux(video=0) if p.size]
    parsed = [parse_access_unit(u, Codec.H265) for u in units]
    assert [p.is_keyframe for p in parsed] == sync_samples
    assert sum(sync_samples) == 3  # keyint=10: the pictures shown at 0, 10 and 20
    assert all(p.has_parameter_sets for p in parsed if p.is_keyframe)
    assert len(decode_all("hevc", b"".join(units))) == 25


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["garbage.h264", "garbage.h265", "garbage.mp4"])
def test_garbage_is_an_error_naming_the_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(5).bytes(100_000).replace(b"\x00", b"\x07"))
    with pytest.raises(IngestError, match=name):
        list(iter_sidecar_units(path))


def test_bad_side_car_files(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"missing\.h264: cannot read"):
        list(iter_sidecar_units(tmp_path / "missing.h264"))
    with pytest.raises(IngestError, match=r"missing\.mp4: cannot open"):
        sidecar_codec(tmp_path / "missing.mp4")
    with pytest.raises(IngestError, match=r"clip\.avi: not a side-car video"):
        sidecar_codec(tmp_path / "clip.avi")
    mpeg4 = tmp_path / "mpeg4.mp4"
    write_mp4(mpeg4, "mpeg4", 3, {})
    with pytest.raises(IngestError, match=r"mpeg4\.mp4: video codec mpeg4 is not H\.264"):
        list(iter_sidecar_units(mpeg4))


def test_truncated_mp4_is_an_error_naming_the_file(tmp_path: Path) -> None:
    whole = tmp_path / "whole.mp4"
    write_mp4(whole, "libx264", 10, {"tune": "zerolatency"})
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # the moov atom is written last: it is gone
    with pytest.raises(IngestError, match=r"cut\.mp4"):
        list(iter_sidecar_units(cut))
