"""The synthetic camera of the sample drive generator: frames with a barcode, H.264 in and out.

``render_frame`` draws a plausible street scene as a pinhole camera would see it (90 degree
horizontal field of view, level, 1.5 m above the road) and stamps the frame number into a
barcode band at the top. The barcode is the ground truth that video tests read back after
lossy encoding, so a frame can be identified without trusting any timestamp or index.

The scene itself (``View``, and how it is drawn) is ``sample_logs.scene``; its public names
are importable from here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fractions import Fraction
from typing import cast

import av
import numpy as np

from sample_logs.scene import CAMERA_HEIGHT_M, TIMES_OF_DAY, WEATHERS, View, render_scene

# Barcode layout, in cells of equal width across the band. Markers calibrate black and
# white and reject images that carry no barcode; CRC-8 rejects misread data.
_START = (1, 0, 1, 1, 0)
_END = (0, 1, 1)
_DATA_BITS = 24
_CRC_BITS = 8
_N_CELLS = len(_START) + _DATA_BITS + _CRC_BITS + len(_END)
_MAX_FRAME = (1 << _DATA_BITS) - 1
_MIN_CONTRAST = 80.0  # grey levels between the white and black markers
_BAND_GREY = 128

MIN_WIDTH = 4 * _N_CELLS
MIN_HEIGHT = 64


def render_frame(frame_idx: int, view: View, width: int = 640, height: int = 360) -> np.ndarray:
    """RGB uint8 (height, width, 3): a plausible road scene with the frame's barcode.

    Deterministic: the same frame_idx and view give the same pixels (rain and snow are
    seeded from frame_idx). Raises ValueError for an unknown weather or time of day, a
    frame_idx outside [0, 2**24), or an image smaller than 160x64.
    """
    if view.weather not in WEATHERS:
        raise ValueError(f"render_frame: unknown weather {view.weather!r}")
    if view.time_of_day not in TIMES_OF_DAY:
        raise ValueError(f"render_frame: unknown time of day {view.time_of_day!r}")
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        raise ValueError(
            f"render_frame: image size {width}x{height} is under {MIN_WIDTH}x{MIN_HEIGHT}"
        )
    image = render_scene(frame_idx, view, width, height)
    draw_barcode(image, frame_idx)
    return image


# ---------------------------------------------------------------------------- barcode


def _crc8(value: int) -> int:
    """CRC-8 (polynomial 0x07) of the three big-endian bytes of value, xor 0x55 so that
    frame 0 does not encode as all black."""
    crc = 0
    for byte in value.to_bytes(3, "big"):
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc ^ 0x55


def _bits(value: int, n: int) -> list[int]:
    return [(value >> (n - 1 - i)) & 1 for i in range(n)]


def _band_layout(width: int, height: int) -> tuple[int, int, int]:
    """(band height, cell width, left edge of the first cell) for an image size."""
    cell = width // _N_CELLS
    return min(32, height // 8), cell, (width - cell * _N_CELLS) // 2


def draw_barcode(image: np.ndarray, frame_idx: int) -> None:
    """Stamp frame_idx into a band across the top of an RGB uint8 image, in place.

    The band (32 px tall at 360 rows and above) draws its own grey background, so it does
    not depend on the scene. Raises ValueError for frame_idx outside [0, 2**24) or an image
    narrower than 160 or shorter than 64 pixels.
    """
    if not 0 <= frame_idx <= _MAX_FRAME:
        raise ValueError(f"draw_barcode: frame index {frame_idx} outside [0, {_MAX_FRAME}]")
    h, w = image.shape[:2]
    if w < MIN_WIDTH or h < MIN_HEIGHT:
        raise ValueError(f"draw_barcode: image {w}x{h} smaller than {MIN_WIDTH}x{MIN_HEIGHT}")
    band, cell, left = _band_layout(w, h)
    cells = [*_START, *_bits(frame_idx, _DATA_BITS), *_bits(_crc8(frame_idx), _CRC_BITS), *_END]
    row = np.repeat(np.asarray(cells, dtype=np.uint8) * 255, cell)
    image[:band] = _BAND_GREY
    image[:band, left : left + row.size] = row[None, :, None] if image.ndim == 3 else row


def read_barcode(image: np.ndarray) -> int | None:
    """The frame index stamped by draw_barcode, or None when there is no readable barcode.

    Reads the centre of every cell (RGB or grey image, any size draw_barcode accepts) and
    thresholds it between the marker cells. None when the markers are missing, the contrast
    is too low, a cell is ambiguous, or the checksum fails: a misread never yields a number.
    """
    if image.ndim not in (2, 3) or image.shape[0] < MIN_HEIGHT or image.shape[1] < MIN_WIDTH:
        return None
    h, w = image.shape[:2]
    band, cell, left = _band_layout(w, h)
    strip = image[band // 4 : band - band // 4, left : left + cell * _N_CELLS]
    grey = strip.mean(axis=2) if strip.ndim == 3 else strip.astype(np.float64)
    inner = grey.reshape(grey.shape[0], _N_CELLS, cell)[:, :, cell // 4 : cell - cell // 4]
    means = inner.mean(axis=(0, 2))
    spread = inner.std(axis=(0, 2))
    markers = np.asarray([*_START, *([-1] * (_DATA_BITS + _CRC_BITS)), *_END])
    white, black = means[markers == 1], means[markers == 0]
    contrast = float(white.mean() - black.mean())
    if contrast < _MIN_CONTRAST or white.min() <= black.max():
        return None
    threshold = (white.mean() + black.mean()) / 2
    if np.any(np.abs(means - threshold) < 0.25 * contrast) or np.any(spread > 0.25 * contrast):
        return None
    bits = (means > threshold).astype(int)
    if np.any(bits[markers >= 0] != markers[markers >= 0]):
        return None
    data = bits[len(_START) : len(_START) + _DATA_BITS]
    crc = bits[len(_START) + _DATA_BITS : len(_START) + _DATA_BITS + _CRC_BITS]
    value = int("".join(map(str, data)), 2)
    if int("".join(map(str, crc)), 2) != _crc8(value):
        return None
    return value


# ---------------------------------------------------------------------------- H.264


class H264Encoder:
    """libx264 through PyAV (tune=zerolatency: no B-frames; repeat-headers=1), Annex B out.

    Every ``gop``-th frame (0, gop, 2*gop, ...) is an IDR access unit carrying SPS and PPS;
    there are no other keyframes (scene-cut detection is off). Frames are RGB uint8 of the
    size given here; yuv420p needs an even width and height (ValueError otherwise).
    """

    def __init__(self, width: int, height: int, fps: int, gop: int, crf: int = 28) -> None:
        if width % 2 or height % 2 or width <= 0 or height <= 0:
            raise ValueError(f"H264Encoder: size {width}x{height} must be positive and even")
        if fps <= 0 or gop <= 0:
            raise ValueError(f"H264Encoder: fps {fps} and gop {gop} must be positive")
        ctx = av.CodecContext.create("libx264", "w")
        ctx.width, ctx.height = width, height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = Fraction(1, fps)
        ctx.framerate = Fraction(fps, 1)
        ctx.gop_size = gop
        # One thread: x264's output depends on its thread count, and the same seed must give
        # the same bytes on every machine.
        ctx.thread_count = 1
        ctx.options = {
            "tune": "zerolatency",
            "preset": "veryfast",
            "crf": str(crf),
            "x264-params": (
                f"repeat-headers=1:keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:open-gop=0"
                ":threads=1"
            ),
        }
        self._ctx = ctx
        self._size = (height, width)
        self._count = 0
        self._flushed = False

    def encode(self, rgb: np.ndarray) -> tuple[bytes, bool]:
        """One Annex-B access unit for this frame, and whether it is a keyframe (IDR)."""
        if self._flushed:
            raise ValueError("H264Encoder: encode after flush")
        if rgb.shape != (*self._size, 3) or rgb.dtype != np.uint8:
            raise ValueError(
                f"H264Encoder: frame {rgb.shape} {rgb.dtype} is not ({self._size[0]}, "
                f"{self._size[1]}, 3) uint8"
            )
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self._count
        self._count += 1
        packets = self._ctx.encode(frame)
        if len(packets) != 1:
            # zerolatency has no lookahead; anything else would break one-unit-per-frame.
            raise RuntimeError(f"H264Encoder: {len(packets)} packets for frame {frame.pts}")
        return bytes(packets[0]), bool(packets[0].is_keyframe)

    def flush(self) -> list[tuple[bytes, bool]]:
        """Drain the encoder (normally nothing is left with zerolatency); encode() is then over."""
        if self._flushed:
            return []
        self._flushed = True
        return [(bytes(p), bool(p.is_keyframe)) for p in self._ctx.encode(None)]


def decode_annexb(units: Iterable[bytes], codec: str = "h264") -> Iterator[np.ndarray]:
    """Decode Annex-B access units with PyAV into RGB uint8 frames, in order.

    For tests and tools. Units before the first keyframe yield nothing (the decoder drops
    them); a corrupt unit raises av's error.
    """
    ctx = cast(av.VideoCodecContext, av.CodecContext.create(codec, "r"))
    for unit in units:
        for frame in ctx.decode(av.Packet(unit)):
            yield frame.to_ndarray(format="rgb24")
    for frame in ctx.decode(None):
        yield frame.to_ndarray(format="rgb24")


__all__ = [
    "CAMERA_HEIGHT_M",
    "MIN_HEIGHT",
    "MIN_WIDTH",
    "TIMES_OF_DAY",
    "WEATHERS",
    "H264Encoder",
    "View",
    "decode_annexb",
    "draw_barcode",
    "read_barcode",
    "render_frame",
]
