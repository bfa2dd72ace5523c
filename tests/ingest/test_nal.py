"""NAL parsing against real encoder output (libx264, libx265) and hand-built bitstreams.

Ground truth: the encoder's own keyframe flags, the picture types a decoder reports, and
access units assembled here from headers and Exp-Golomb fields written by this file.
"""

from __future__ import annotations

import fractions
from dataclasses import dataclass
from typing import cast

import av
import numpy as np
import pytest
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType
from hypothesis import given, settings
from hypothesis import strategies as st

from drivecat.ingest.errors import IngestError
from drivecat.ingest.nal import Codec, codec_from_format, parse_access_unit

WIDTH, HEIGHT = 128, 96
GOP = "keyint=30:min-keyint=30:scenecut=0"
X264_NO_B = {"tune": "zerolatency", "x264-params": f"repeat-headers=1:{GOP}"}
X264_B = {"x264-params": f"repeat-headers=1:{GOP}:bframes=2"}
X265_NO_B = {"tune": "zerolatency", "x265-params": f"repeat-headers=1:{GOP}:log-level=none"}
X265_B = {"x265-params": f"repeat-headers=1:{GOP}:bframes=2:log-level=none"}

needs_x265 = pytest.mark.skipif(
    "libx265" not in av.codecs_available, reason="this PyAV build has no libx265 encoder"
)


@dataclass(frozen=True)
class Encoded:
    data: bytes
    is_keyframe: bool
    pts: int


def encode(encoder: str, options: dict[str, str], n: int = 60) -> list[Encoded]:
    """n frames of a textured picture panning diagonally, as Annex-B packets in decode order."""
    ctx = cast(VideoCodecContext, av.CodecContext.create(encoder, "w"))
    ctx.width, ctx.height, ctx.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    ctx.time_base = fractions.Fraction(1, 30)
    ctx.options = options
    texture = np.random.default_rng(7).integers(0, 256, (HEIGHT + n, WIDTH + n, 3), np.uint8)
    packets = []
    for i in range(n):
        frame = av.VideoFrame.from_ndarray(
            np.ascontiguousarray(texture[i : i + HEIGHT, i : i + WIDTH]), format="rgb24"
        )
        frame.pts = i
        packets += ctx.encode(frame)
    packets += ctx.encode(None)
    return [Encoded(bytes(p), p.is_keyframe, int(p.pts or 0)) for p in packets]


def picture_types(decoder: str, packets: list[Encoded]) -> dict[int, int]:
    """Picture type of every frame, by pts, as a decoder reports it."""
    ctx = cast(VideoCodecContext, av.CodecContext.create(decoder, "r"))
    frames = []
    for p in packets:
        packet = av.Packet(p.data)
        packet.pts = p.pts
        frames += ctx.decode(packet)
    frames += ctx.decode(None)
    return {f.pts: f.pict_type for f in frames if f.pts is not None}


# --- real encoder output ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoder", "options", "codec"),
    [
        ("libx264", X264_NO_B, Codec.H264),
        pytest.param("libx265", X265_NO_B, Codec.H265, marks=needs_x265),
    ],
    ids=["h264", "h265"],
)
def test_keyframes_match_encoder(encoder: str, options: dict[str, str], codec: Codec) -> None:
    packets = encode(encoder, options)
    units = [parse_access_unit(p.data, codec) for p in packets]
    assert len(units) == 60
    assert [u.is_keyframe for u in units] == [p.is_keyframe for p in packets]
    # keyint=30 without scene cuts: exactly frames 0 and 30 are keyframes
    assert [i for i, u in enumerate(units) if u.is_keyframe] == [0, 30]
    assert all(u.has_parameter_sets for u in units if u.is_keyframe)
    assert not any(u.has_parameter_sets for u in units if not u.is_keyframe)
    assert not any(u.has_b_slice for u in units)


@pytest.mark.parametrize(
    ("encoder", "options", "codec", "decoder"),
    [
        ("libx264", X264_B, Codec.H264, "h264"),
        ("libx264", X264_NO_B, Codec.H264, "h264"),
        pytest.param("libx265", X265_B, Codec.H265, "hevc", marks=needs_x265),
        pytest.param("libx265", X265_NO_B, Codec.H265, "hevc", marks=needs_x265),
    ],
    ids=["h264-bframes", "h264-ip", "h265-bframes", "h265-ip"],
)
def test_b_slices_match_decoder(
    encoder: str, options: dict[str, str], codec: Codec, decoder: str
) -> None:
    packets = encode(encoder, options)
    types = picture_types(decoder, packets)
    expected = [types[p.pts] == PictureType.B for p in packets]
    assert [parse_access_unit(p.data, codec).has_b_slice for p in packets] == expected
    if "bframes" in options.get("x264-params", "") + options.get("x265-params", ""):
        assert 0 < sum(expected) < len(expected)
    else:
        assert not any(expected)


def test_x264_nal_types() -> None:
    first = parse_access_unit(encode("libx264", X264_NO_B, n=2)[0].data, Codec.H264)
    # repeat-headers: SPS, PPS, then the SEI with x264's settings, then the IDR slice
    assert first.nal_types == (7, 8, 6, 5)


# --- hand-built access units ------------------------------------------------------------


def escape(payload: bytes) -> bytes:
    """Insert emulation_prevention_three_byte as H.264 7.4.1 requires."""
    out = bytearray()
    zeros = 0
    for byte in payload:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    if out and out[-1] == 0:
        out.append(3)
    return bytes(out)


def bits_to_bytes(bits: str) -> bytes:
    """A bit string closed with rbsp_trailing_bits (a 1, then zeros to a byte boundary)."""
    bits += "1"
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


def ue(value: int) -> str:
    code = bin(value + 1)[2:]
    return "0" * (len(code) - 1) + code


def u(value: int, n: int) -> str:
    return format(value, f"0{n}b") if n else ""


def assemble(nals: list[bytes], long_codes: list[bool]) -> bytes:
    """Annex-B bytes of escaped NAL units, each after a 4-byte or a 3-byte start code."""
    return b"".join(
        (b"\x00\x00\x00\x01" if long else b"\x00\x00\x01") + nal
        for nal, long in zip(nals, long_codes, strict=True)
    )


payloads = st.binary(max_size=40)
h264_headers = st.tuples(st.integers(0, 3), st.integers(1, 31))  # nal_ref_idc, nal_unit_type
h265_headers = st.tuples(st.integers(0, 63), st.integers(0, 63), st.integers(1, 7))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(h264_headers, payloads, st.booleans()), min_size=1, max_size=8),
    st.integers(0, 3),
)
def test_h264_nal_types_round_trip(
    nals: list[tuple[tuple[int, int], bytes, bool]], leading_zeros: int
) -> None:
    data = b"\x00" * leading_zeros + assemble(
        [bytes([ref << 5 | t]) + escape(p) for (ref, t), p, _ in nals], [lg for *_, lg in nals]
    )
    types = tuple(t for (_, t), _, _ in nals)
    unit = parse_access_unit(data, Codec.H264)
    assert unit.nal_types == types
    assert unit.is_keyframe == (5 in types)
    assert unit.has_parameter_sets == (7 in types and 8 in types)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(h265_headers, payloads, st.booleans()), min_size=1, max_size=8))
def test_h265_nal_types_round_trip(nals: list[tuple[tuple[int, int, int], bytes, bool]]) -> None:
    headers = [
        bytes([t << 1 | layer >> 5, (layer & 31) << 3 | tid]) for (t, layer, tid), _, _ in nals
    ]
    data = assemble(
        [h + escape(p) for h, (_, p, _) in zip(headers, nals, strict=True)], [lg for *_, lg in nals]
    )
    types = tuple(t for (t, _, _), _, _ in nals)
    unit = parse_access_unit(data, Codec.H265)
    assert unit.nal_types == types
    assert unit.is_keyframe == any(16 <= t <= 21 for t in types)
    assert unit.has_parameter_sets == all(t in types for t in (32, 33, 34))


# (nal_unit_type, first_mb_in_slice, slice_type, payload bits)
h264_slices = st.tuples(
    st.sampled_from([1, 2, 5]),
    st.one_of(st.integers(0, 3), st.integers(0, 1 << 17), st.integers(0, 1 << 24)),
    st.integers(0, 9),
    st.text("01", max_size=64),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(h264_slices, min_size=1, max_size=4))
def test_h264_b_slice_from_slice_header(slices: list[tuple[int, int, int, str]]) -> None:
    # an IDR slice may only be I or SI (H.264 7.4.3)
    slices = [(t, mb, (2, 4, 7, 9)[s % 4] if t == 5 else s, rest) for t, mb, s, rest in slices]
    nals = [
        bytes([0x60 | t]) + escape(bits_to_bytes(ue(mb) + ue(s) + rest))
        for t, mb, s, rest in slices
    ]
    unit = parse_access_unit(assemble(nals, [False] * len(nals)), Codec.H264)
    assert unit.has_b_slice == any(s % 5 == 1 for _, _, s, _ in slices)


# One access unit: maybe a PPS (pps id, num_extra_slice_header_bits), then slice segments
# (nal_unit_type, first_slice_segment_in_pic_flag, pps id, slice_type, payload bits).
h265_pps = st.none() | st.tuples(st.integers(0, 63), st.integers(0, 2))
h265_slices = st.tuples(
    st.sampled_from([*range(10), *range(16, 22)]),
    st.booleans(),
    st.integers(0, 63),
    st.integers(0, 2),
    st.text("01", max_size=64),
)


@settings(max_examples=300, deadline=None)
@given(h265_pps, st.lists(h265_slices, min_size=1, max_size=4))
def test_h265_b_slice_from_slice_header(
    pps: tuple[int, int] | None, slices: list[tuple[int, bool, int, int, str]]
) -> None:
    nals = []
    extra_bits = {}
    if pps is not None:
        pps_id, extra = pps
        extra_bits[pps_id] = extra
        body = ue(pps_id) + ue(0) + "0" + "0" + u(extra, 3) + "1011"
        nals.append(bytes([34 << 1, 1]) + escape(bits_to_bytes(body)))
    expected = False
    for t, first, pps_id, slice_type, rest in slices:
        if 16 <= t <= 21:  # IRAP pictures of the base layer hold I slices only
            slice_type = 2
        no_output = "0" if 16 <= t <= 23 else ""
        extra = extra_bits.get(pps_id, 0)
        if first:
            body = "1" + no_output + ue(pps_id) + "1" * extra + ue(slice_type) + rest
            expected |= slice_type == 0
        else:  # later segments are skipped: their fields are not even well formed here
            body = "0" + no_output + ue(pps_id) + rest
        nals.append(bytes([t << 1, 1]) + escape(bits_to_bytes(body)))
    unit = parse_access_unit(assemble(nals, [True] * len(nals)), Codec.H265)
    assert unit.has_b_slice == expected


@pytest.mark.parametrize("slice_type", range(10))
def test_emulation_prevention_is_removed_before_reading_fields(slice_type: int) -> None:
    # first_mb_in_slice = 2**22 - 1 is 22 zero bits, a 1 and 22 more zero bits: two
    # zero bytes are followed by 0x02, which forces an 0x03 in front of it; slice_type lies
    # after it. (Real pictures have fewer than 2**18 macroblocks; the syntax allows more.)
    escaped = escape(bits_to_bytes(ue((1 << 22) - 1) + ue(slice_type)))
    assert b"\x00\x00\x03" in escaped
    unit = parse_access_unit(b"\x00\x00\x01\x41" + escaped, Codec.H264)
    assert unit.has_b_slice == (slice_type % 5 == 1)


# --- bad input -----------------------------------------------------------------------------


def test_length_prefixed_data_is_rejected() -> None:
    packet = encode("libx264", X264_NO_B, n=1)[0].data
    nals = [n.lstrip(b"\x00") for n in packet.split(b"\x00\x00\x01") if n.strip(b"\x00")]
    avcc = b"".join(len(n).to_bytes(4, "big") + n for n in nals)
    with pytest.raises(IngestError, match="start code"):
        parse_access_unit(avcc, Codec.H264)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x65\x88\x84\x00", b"\x00\x00\x01", b"\x00\x00\x00\x01\x00\x00\x01"],
    ids=["empty", "no-start-code", "start-code-only", "start-codes-only"],
)
def test_malformed_access_units_are_rejected(data: bytes) -> None:
    with pytest.raises(IngestError):
        parse_access_unit(data, Codec.H264)


def test_truncated_slice_header_is_not_a_b_slice() -> None:
    unit = parse_access_unit(b"\x00\x00\x01\x41\x00", Codec.H264)
    assert unit.nal_types == (1,)
    assert not unit.has_b_slice


@pytest.mark.parametrize(
    ("fmt", "codec"),
    [
        ("h264", Codec.H264),
        ("H264", Codec.H264),
        ("h265", Codec.H265),
        ("HEVC", Codec.H265),
        ("vp9", None),
        ("av1", None),
        ("", None),
        ("jpeg", None),
    ],
)
def test_codec_from_format(fmt: str, codec: Codec | None) -> None:
    assert codec_from_format(fmt) is codec
