"""Annex-B access units of H.264 and H.265: what each one holds, read from a few header bytes.

The ingest pass calls :func:`parse_access_unit` on every video message, so it never decodes
and never walks the payload in Python: start codes are found with ``bytes.find``, and only
the NAL unit headers and the first bytes of each slice header are read. Emulation-prevention
bytes are removed from those few bytes only.

References: ITU-T H.264 7.3.1 (NAL unit), 7.3.3 (slice header), 7.4.3 (slice_type);
ITU-T H.265 7.3.1 (NAL unit), 7.3.2.3 (PPS), 7.3.6.1 (slice segment header), 7.4.7.1.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivecat.ingest.errors import IngestError
from drivecat.types import Codec

START_CODE = b"\x00\x00\x01"

# Raw bytes of a slice header to unescape and read. The fields we need fit in 45 bits for an
# 8K picture (H.264 first_mb_in_slice < 2**18, slice_type <= 9); 24 bytes leave room for
# several emulation-prevention bytes.
_PEEK = 24

_H264_SLICE_HEADER_NALS = frozenset({1, 2})  # non-IDR slice, data partition A
_H264_IDR = 5
_H264_SPS, _H264_PPS = 7, 8
_H264_B, _H264_SLICE_TYPES = 1, 10  # slice_type % 5 == 1 is B; 0..9 are defined

_H265_IRAP = range(16, 22)  # BLA_W_LP .. CRA_NUT; 22 and 23 are reserved IRAP types
_H265_NO_OUTPUT_FLAG = range(16, 24)  # slice headers of these types carry no_output_of_prior_pics
_H265_SLICE_NALS = frozenset(range(0, 10)) | frozenset(_H265_IRAP)
_H265_VPS, _H265_SPS, _H265_PPS = 32, 33, 34
_H265_B, _H265_SLICE_TYPES = 0, 3  # slice_type 0 = B, 1 = P, 2 = I


@dataclass(frozen=True)
class AccessUnit:
    """What one Annex-B access unit holds, as far as its NAL and slice headers tell.

    ``nal_types`` lists every NAL unit type in stream order. ``is_keyframe``: H.264 holds an
    IDR slice (type 5); H.265 holds an IRAP slice (types 16-21). ``has_parameter_sets``:
    H.264 holds SPS (7) and PPS (8); H.265 holds VPS (32), SPS (33) and PPS (34).
    ``has_b_slice``: some slice header says slice_type B (see :func:`parse_access_unit`).
    """

    nal_types: tuple[int, ...]
    is_keyframe: bool
    has_parameter_sets: bool
    has_b_slice: bool


def codec_from_format(fmt: str) -> Codec | None:
    """The codec named by ``foxglove.CompressedVideo.format``, or None if it is not one we parse.

    "h264" and "h265" (any case; "hevc" is taken as H.265) give a codec; "vp9", "av1" and
    anything else give None.
    """
    name = fmt.strip().lower()
    if name == "h264":
        return Codec.H264
    if name in ("h265", "hevc"):
        return Codec.H265
    return None


def parse_access_unit(data: bytes, codec: Codec) -> AccessUnit:
    """Parse the Annex-B bytes of one access unit.

    ``data`` must start with a start code (0x000001, after any number of zero bytes). Raises
    :class:`IngestError` (naming only the reason: the caller knows the file) when it is empty,
    holds no start code, has non-zero bytes before the first start code (length-prefixed
    AVCC/HVCC data, as stored in MP4), or has no NAL unit after its start codes.
    Length-prefixed data whose first length happens to read as a start code is not detected.

    B slices: H.264 reads first_mb_in_slice and slice_type of every non-IDR slice. H.265 reads
    slice_type of the first slice segment of each picture only: later segments need
    slice_segment_address, whose width comes from the SPS picture size, and encoders give the
    segments of one picture one slice type in practice. H.265 slice headers may carry
    num_extra_slice_header_bits from the PPS; it is read from a PPS in the same access unit,
    and taken as 0 (what single-layer encoders such as x265 write) when there is none.
    """
    spans = _nal_spans(data)
    if codec is Codec.H264:
        return _parse_h264(data, spans)
    return _parse_h265(data, spans)


def _nal_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each NAL unit, header included, start code and leading zeros excluded."""
    if not data:
        raise IngestError("empty access unit")
    pos = data.find(START_CODE)
    if pos < 0:
        raise IngestError("no Annex-B start code in access unit (length-prefixed AVCC/HVCC?)")
    if data.count(0, 0, pos) != pos:
        raise IngestError(
            "access unit does not start with an Annex-B start code (length-prefixed AVCC/HVCC?)"
        )
    spans = []
    while pos >= 0:
        start = pos + 3
        pos = data.find(START_CODE, start)
        end = len(data) if pos < 0 else pos
        if end > start:
            spans.append((start, end))
    if not spans:
        raise IngestError("access unit has start codes but no NAL unit")
    return spans


def _parse_h264(data: bytes, spans: list[tuple[int, int]]) -> AccessUnit:
    types = tuple(data[start] & 0x1F for start, _ in spans)
    has_b = False
    for (start, end), nal_type in zip(spans, types, strict=True):
        if (
            nal_type in _H264_SLICE_HEADER_NALS
            and _h264_slice_type(data, start + 1, end) == _H264_B
        ):
            has_b = True
            break
    present = set(types)
    return AccessUnit(
        nal_types=types,
        is_keyframe=_H264_IDR in present,
        has_parameter_sets=_H264_SPS in present and _H264_PPS in present,
        has_b_slice=has_b,
    )


def _h264_slice_type(data: bytes, start: int, end: int) -> int | None:
    """slice_type % 5 of the slice header at ``start`` (past the NAL header); None if unreadable."""
    bits, width = _rbsp_bits(data, start, end)
    first_mb = _ue(bits, width, 0)
    if first_mb is None:
        return None
    slice_type = _ue(bits, width, first_mb[1])
    if slice_type is None or slice_type[0] >= _H264_SLICE_TYPES:
        return None
    return slice_type[0] % 5


def _parse_h265(data: bytes, spans: list[tuple[int, int]]) -> AccessUnit:
    types = tuple((data[start] >> 1) & 0x3F for start, _ in spans)
    extra_bits: dict[int, int] = {}  # pps id -> num_extra_slice_header_bits
    has_b = False
    for (start, end), nal_type in zip(spans, types, strict=True):
        if nal_type == _H265_PPS:
            pps = _h265_pps_extra_bits(data, start + 2, end)
            if pps is not None:
                extra_bits[pps[0]] = pps[1]
        elif nal_type in _H265_SLICE_NALS and not has_b:
            has_b = _h265_slice_type(data, start + 2, end, nal_type, extra_bits) == _H265_B
    present = set(types)
    return AccessUnit(
        nal_types=types,
        is_keyframe=any(t in _H265_IRAP for t in types),
        has_parameter_sets=_H265_VPS in present and _H265_SPS in present and _H265_PPS in present,
        has_b_slice=has_b,
    )


def _h265_pps_extra_bits(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """(pps_pic_parameter_set_id, num_extra_slice_header_bits) of a PPS; None if unreadable."""
    bits, width = _rbsp_bits(data, start, end)
    pps_id = _ue(bits, width, 0)
    if pps_id is None:
        return None
    sps_id = _ue(bits, width, pps_id[1])
    if sps_id is None:
        return None
    # dependent_slice_segments_enabled_flag and output_flag_present_flag come first
    extra = _u(bits, width, sps_id[1] + 2, 3)
    return None if extra is None else (pps_id[0], extra)


def _h265_slice_type(
    data: bytes, start: int, end: int, nal_type: int, extra_bits: dict[int, int]
) -> int | None:
    """slice_type of a picture's first slice segment; None if unreadable or not the first."""
    bits, width = _rbsp_bits(data, start, end)
    first_in_pic = _u(bits, width, 0, 1)
    if not first_in_pic:
        return None
    pos = 2 if nal_type in _H265_NO_OUTPUT_FLAG else 1
    pps_id = _ue(bits, width, pos)
    if pps_id is None:
        return None
    slice_type = _ue(bits, width, pps_id[1] + extra_bits.get(pps_id[0], 0))
    if slice_type is None or slice_type[0] >= _H265_SLICE_TYPES:
        return None
    return slice_type[0]


def _rbsp_bits(data: bytes, start: int, end: int) -> tuple[int, int]:
    """The first bytes of a NAL payload, unescaped, as (big-endian integer, width in bits)."""
    raw = data[start : min(end, start + _PEEK)]
    # Non-overlapping left-to-right replacement is exactly the spec's removal of
    # emulation_prevention_three_byte: scanning resumes after each removed 0x03.
    rbsp = raw.replace(b"\x00\x00\x03", b"\x00\x00")
    return int.from_bytes(rbsp, "big"), 8 * len(rbsp)


def _u(bits: int, width: int, pos: int, n: int) -> int | None:
    """u(n) at bit ``pos``; None past the end."""
    if pos + n > width:
        return None
    return (bits >> (width - pos - n)) & ((1 << n) - 1)


def _ue(bits: int, width: int, pos: int) -> tuple[int, int] | None:
    """ue(v) (unsigned Exp-Golomb) at bit ``pos``: (value, next bit position); None past the end."""
    rest = width - pos
    if rest <= 0:
        return None
    tail = bits & ((1 << rest) - 1)
    if not tail:
        return None
    zeros = rest - tail.bit_length()
    end = pos + 2 * zeros + 1
    if end > width:
        return None
    return (tail >> (width - end)) - 1, end
