"""Video: Annex-B access units, and side-car video files read as Annex-B access units.

A side-car video (``.h264``/``.h265`` raw Annex-B, or ``.mp4``/``.mov``) holds frames but no
usable times: a raw stream has none, and a container's own clock is not the recorder's.
:func:`iter_sidecar_units` yields its access units in Annex B; ``ingest.sidecar`` pairs them
with the times of the recording's ``FrameTime`` channel during the pass.

The NAL parsing itself lives in :mod:`ingest.nal` and is re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import av

from drivecat.ingest.errors import IngestError
from drivecat.ingest.nal import AccessUnit, Codec, codec_from_format, parse_access_unit

__all__ = [
    "SIDECAR_SUFFIXES",
    "AccessUnit",
    "Codec",
    "codec_from_format",
    "iter_sidecar_units",
    "parse_access_unit",
    "sidecar_codec",
]

_RAW_SUFFIXES = {
    ".h264": Codec.H264,
    ".264": Codec.H264,
    ".h265": Codec.H265,
    ".265": Codec.H265,
    ".hevc": Codec.H265,
}
_CONTAINER_SUFFIXES = frozenset({".mp4", ".mov"})
SIDECAR_SUFFIXES = frozenset(_RAW_SUFFIXES) | _CONTAINER_SUFFIXES
"""File suffixes (lower case) that :func:`iter_sidecar_units` reads."""

_TO_ANNEXB = {Codec.H264: "h264_mp4toannexb", Codec.H265: "hevc_mp4toannexb"}
_READ_SIZE = 1 << 20
_PROBE_PACKETS = 64  # packets to decode at most to see an MP4's first frame


def sidecar_codec(path: Path) -> Codec:
    """The codec of a side-car video: from the suffix for raw streams, from the stream for MP4.

    Raises :class:`IngestError` naming the file for an unknown suffix, a container that cannot
    be opened, one without a video stream, or a video codec other than H.264/H.265.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in _RAW_SUFFIXES:
        return _RAW_SUFFIXES[suffix]
    if suffix not in _CONTAINER_SUFFIXES:
        raise IngestError(
            f"{path}: not a side-car video (expected one of {', '.join(sorted(SIDECAR_SUFFIXES))})"
        )
    container = _open_container(path)
    with container:
        return _container_codec(path, container)


def iter_sidecar_units(path: Path) -> Iterator[bytes]:
    """The access units of a side-car video, in decode order, as Annex-B bytes.

    Raw ``.h264``/``.h265`` streams are split with FFmpeg's parser. MP4/MOV video packets are
    demuxed and converted from length-prefixed AVCC/HVCC to Annex B by FFmpeg's
    ``*_mp4toannexb`` filter, which also puts SPS/PPS (and VPS) in band before each keyframe.
    Nothing is decoded, except an H.264 MP4's first frame, once, to see whether the SPS needs
    the container's crop (see :func:`_container_crop`). Only the first video stream of a
    container is read. An empty raw file gives no units.
    Raises :class:`IngestError` naming the file when it cannot be read or a unit is not
    Annex B (a file of garbage, for one).
    """
    path = Path(path)
    codec = sidecar_codec(path)
    units = _raw_units(path, codec) if path.suffix.lower() in _RAW_SUFFIXES else _mp4_units(path)
    for unit in units:
        try:
            parse_access_unit(unit, codec)
        except IngestError as err:
            raise IngestError(f"{path}: not {codec.value} Annex-B video: {err}") from None
        yield unit


def _raw_units(path: Path, codec: Codec) -> Iterator[bytes]:
    parser = av.CodecContext.create(codec.ffmpeg_name, "r")
    try:
        with open(path, "rb") as f:
            while block := f.read(_READ_SIZE):
                for packet in parser.parse(block):
                    yield bytes(packet)
        for packet in parser.parse(None):  # flushes the last access unit
            yield bytes(packet)
    except (OSError, av.FFmpegError) as err:
        raise IngestError(f"{path}: cannot read video: {err}") from None


def _mp4_units(path: Path) -> Iterator[bytes]:
    container = _open_container(path)
    with container:
        codec = _container_codec(path, container)
        stream = container.streams.video[0]
        try:
            to_annexb = _annexb_filter(path, codec, stream)
            for packet in container.demux(stream):
                if packet.size == 0:  # demux ends with an empty flush packet
                    continue
                for out in to_annexb.filter(packet):
                    yield bytes(out)
            for out in to_annexb.filter(None):
                yield bytes(out)
        except (OSError, av.FFmpegError) as err:
            raise IngestError(f"{path}: cannot read video: {err}") from None


def _annexb_filter(path: Path, codec: Codec, stream: av.VideoStream) -> av.BitStreamFilterContext:
    """The bitstream filter from a container's packets to Annex B that decodes the same way."""
    name = _TO_ANNEXB[codec]
    crop = _container_crop(path) if codec is Codec.H264 else None
    if crop is not None:
        try:
            return av.BitStreamFilterContext(
                f"{name},h264_metadata=crop_right={crop[0]}:crop_bottom={crop[1]}", stream
            )
        except av.FFmpegError:
            pass  # a crop the SPS cannot express (an odd width, say): keep the coded size
    return av.BitStreamFilterContext(name, stream)


def _container_crop(path: Path) -> tuple[int, int] | None:
    """(crop_right, crop_bottom) for the SPS, so a bare decoder outputs the container's size.

    FFmpeg's H.264 decoder, when it knows the container's width and height, crops a picture
    whose SPS has no cropping of its own down to them: GoPro MP4s declare 854x480 while their
    SPS codes 864x480. An Annex-B stream carries no container size, so the crop has to go into
    its SPS, or every player of the repackaged messages shows the padding. The first frame is
    decoded both ways to find out; None when the sizes agree or it does not decode.
    """
    with _open_container(path) as container:
        stream = container.streams.video[0]
        muxed = stream.codec_context  # knows the container's size
        bare = av.CodecContext.create("h264", "r")
        to_annexb = av.BitStreamFilterContext("h264_mp4toannexb", stream)
        muxed_frames: list[av.VideoFrame] = []
        bare_frames: list[av.VideoFrame] = []
        try:
            for packet in islice(container.demux(stream), _PROBE_PACKETS):
                if packet.size == 0:
                    continue
                muxed_frames += muxed.decode(packet)  # before the filter takes the packet's data
                for unit in to_annexb.filter(packet):
                    bare_frames += bare.decode(unit)
                if muxed_frames and bare_frames:
                    break
            else:
                muxed_frames += muxed.decode(None)
                bare_frames += bare.decode(None)
        except av.FFmpegError:
            return None
    if not (muxed_frames and bare_frames):
        return None
    want, got = muxed_frames[0], bare_frames[0]
    if (want.width, want.height) == (got.width, got.height):
        return None
    crop = (bare.coded_width - want.width, bare.coded_height - want.height)
    return crop if min(crop) >= 0 else None


def _open_container(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), "r")
    except (OSError, av.FFmpegError) as err:
        raise IngestError(f"{path}: cannot open video: {err}") from None


def _container_codec(path: Path, container: av.container.InputContainer) -> Codec:
    if not container.streams.video:
        raise IngestError(f"{path}: no video stream")
    name = container.streams.video[0].codec_context.name
    for codec in Codec:
        if name == codec.ffmpeg_name:
            return codec
    raise IngestError(f"{path}: video codec {name} is not H.264 or H.265")
