"""The synthetic camera: scene geometry, barcodes through lossy H.264, keyframe layout."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sample_logs.camera import (
    H264Encoder,
    View,
    decode_annexb,
    draw_barcode,
    read_barcode,
    render_frame,
)

WIDTH, HEIGHT, FPS, GOP, N_FRAMES = 640, 360, 15, 30, 60
# The pinhole the brief specifies, worked out here independently of the code:
# 90 degree horizontal FOV -> focal length = half the width; level camera 1.5 m up.
FOCAL = WIDTH / 2
CX, CY = WIDTH / 2, HEIGHT / 2
CAMERA_HEIGHT = 1.5


def project(x: float, y: float, z: float) -> tuple[int, int]:
    """(column, row) of an ego-frame point (x forward, y left, z above the road)."""
    return round(CX - FOCAL * y / x), round(CY + FOCAL * (CAMERA_HEIGHT - z) / x)


def nal_types(unit: bytes) -> list[int]:
    """NAL unit types of an Annex-B access unit (start codes 00 00 01 / 00 00 00 01)."""
    types, i = [], 0
    while (i := unit.find(b"\x00\x00\x01", i)) >= 0:
        types.append(unit[i + 3] & 0x1F)
        i += 3
    return types


def moving_views() -> list[View]:
    """Views with objects moving and the weather changing, so that frames differ."""
    weathers = ("clear", "rain", "snow", "fog")
    return [
        View(
            weather=weathers[(i // 15) % 4],
            time_of_day=("day", "dawn_dusk", "night")[(i // 20) % 3],
            pedestrians=((12.0 - 0.1 * i, 2.0), (20.0, -4.0 + 0.1 * i)),
            cyclists=((15.0 + 0.2 * i, 4.0),),
            vehicles=((25.0 - 0.3 * i, -1.8),),
            headlights=i >= 40,
        )
        for i in range(N_FRAMES)
    ]


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return [render_frame(i, view) for i, view in enumerate(moving_views())]


@pytest.fixture(scope="module")
def encoded(frames: list[np.ndarray]) -> list[tuple[bytes, bool]]:
    encoder = H264Encoder(WIDTH, HEIGHT, FPS, GOP, crf=28)
    units = [encoder.encode(frame) for frame in frames]
    assert encoder.flush() == []
    return units


def test_every_barcode_reads_back_after_h264(encoded: list[tuple[bytes, bool]]) -> None:
    decoded = list(decode_annexb(unit for unit, _ in encoded))
    assert len(decoded) == N_FRAMES
    assert all(image.shape == (HEIGHT, WIDTH, 3) for image in decoded)
    assert [read_barcode(image) for image in decoded] == list(range(N_FRAMES))


def test_barcodes_survive_crf_35(frames: list[np.ndarray]) -> None:
    encoder = H264Encoder(WIDTH, HEIGHT, FPS, GOP, crf=35)
    units = [encoder.encode(frame)[0] for frame in frames] + [u for u, _ in encoder.flush()]
    decoded = list(decode_annexb(units))
    assert [read_barcode(image) for image in decoded] == list(range(N_FRAMES))


def test_keyframes_are_idr_with_headers_every_gop(encoded: list[tuple[bytes, bool]]) -> None:
    keyframes = [i for i, (_, key) in enumerate(encoded) if key]
    assert keyframes == list(range(0, N_FRAMES, GOP))
    for i, (unit, key) in enumerate(encoded):
        assert unit.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")), f"frame {i} not Annex B"
        types = set(nal_types(unit))
        if key:
            assert {5, 7, 8} <= types, f"keyframe {i}: NAL types {types}"
        else:
            assert 1 in types and 5 not in types, f"frame {i}: NAL types {types}"


def test_short_gop_places_keyframes_exactly() -> None:
    encoder = H264Encoder(320, 180, 10, 7)
    units = [encoder.encode(render_frame(i, View("clear", "day"), 320, 180)) for i in range(22)]
    assert [i for i, (unit, _) in enumerate(units) if 5 in nal_types(unit)] == [0, 7, 14, 21]
    assert [i for i, (_, key) in enumerate(units) if key] == [0, 7, 14, 21]
    assert [read_barcode(f) for f in decode_annexb(u for u, _ in units)] == list(range(22))


def test_encoder_rejects_wrong_frame_size() -> None:
    encoder = H264Encoder(320, 180, 10, 7)
    with pytest.raises(ValueError, match="H264Encoder"):
        encoder.encode(np.zeros((360, 640, 3), dtype=np.uint8))


@settings(max_examples=200, deadline=None)
@given(
    frame_idx=st.integers(0, 2**24 - 1),
    size=st.sampled_from([(160, 64), (320, 180), (640, 360), (1280, 720), (642, 361)]),
    seed=st.integers(0, 2**32 - 1),
)
def test_barcode_round_trip_on_any_background(
    frame_idx: int, size: tuple[int, int], seed: int
) -> None:
    width, height = size
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    draw_barcode(image, frame_idx)
    assert read_barcode(image) == frame_idx


def test_barcode_is_drawn_only_in_the_top_band() -> None:
    image = np.full((HEIGHT, WIDTH, 3), 77, dtype=np.uint8)
    draw_barcode(image, 123456)
    assert np.all(image[32:] == 77)
    assert not np.all(image[:32] == 77)


@pytest.mark.parametrize(
    "image",
    [
        np.full((HEIGHT, WIDTH, 3), 128, dtype=np.uint8),
        np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8),
        np.full((HEIGHT, WIDTH, 3), 255, dtype=np.uint8),
        np.random.default_rng(1).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8),
        np.tile((np.arange(WIDTH) // 16 % 2 * 255).astype(np.uint8)[None, :, None], (HEIGHT, 1, 3)),
        np.zeros((20, 20, 3), dtype=np.uint8),
    ],
    ids=["grey", "black", "white", "noise", "stripes", "tiny"],
)
def test_read_barcode_is_none_without_a_barcode(image: np.ndarray) -> None:
    assert read_barcode(image) is None


def test_scene_without_band_reads_none() -> None:
    image = render_frame(5, View("clear", "day", vehicles=((8.0, 0.0),)))
    image[:32] = image[200:232]  # cover the band with road
    assert read_barcode(image) is None


def test_a_flipped_cell_fails_the_checksum() -> None:
    image = np.full((HEIGHT, WIDTH, 3), 128, dtype=np.uint8)
    draw_barcode(image, 0xABCDEF)
    cell = WIDTH // 40  # the band is 40 cells: 5 start, 24 data, 8 checksum, 3 end
    for index in (5, 17, 28, 29, 36):  # data and checksum cells
        flipped = image.copy()
        flipped[:32, index * cell : (index + 1) * cell] ^= 255
        assert read_barcode(flipped) is None, index


def test_draw_barcode_rejects_out_of_range_numbers() -> None:
    image = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="frame index"):
        draw_barcode(image, 2**24)
    with pytest.raises(ValueError, match="frame index"):
        draw_barcode(image, -1)


def changed(view: View, frame_idx: int = 3) -> np.ndarray:
    """Pixels where the view differs from the same frame with no objects."""
    empty = View(view.weather, view.time_of_day, facing_rear=view.facing_rear)
    return np.any(render_frame(frame_idx, view) != render_frame(frame_idx, empty), axis=2)


def test_pedestrian_is_drawn_where_the_pinhole_puts_it() -> None:
    mask = changed(View("clear", "day", pedestrians=((10.0, 2.0),)))
    rows, cols = np.nonzero(mask)
    left, _ = project(10.0, 2.0 + 0.25, 1.0)
    right, _ = project(10.0, 2.0 - 0.25, 1.0)
    _, top = project(10.0, 2.0, 1.72)
    _, bottom = project(10.0, 2.0, 0.0)
    # 0.5 m wide, 1.7 m tall, standing on the road at (10, 2): allow a pixel of rounding
    assert left - 1 <= cols.min() and cols.max() <= right + 1
    assert top - 1 <= rows.min() and rows.max() <= bottom + 1
    assert rows.max() >= bottom - 2 and rows.min() <= top + 2
    assert mask[project(10.0, 2.0, 1.1)[::-1]]


def test_objects_scale_with_inverse_distance() -> None:
    near = changed(View("clear", "day", vehicles=((8.0, 0.0),))).sum()
    far = changed(View("clear", "day", vehicles=((16.0, 0.0),))).sum()
    assert 3.0 < near / far < 5.0  # area goes as 1 / distance squared


@pytest.mark.parametrize("kind", ["pedestrians", "cyclists", "vehicles"])
def test_only_objects_in_front_of_the_camera_are_drawn(kind: str) -> None:
    behind = {kind: ((-10.0, 2.0), (0.5, 0.0))}
    assert not changed(View("clear", "day", **behind)).any()  # type: ignore[arg-type]
    assert changed(View("clear", "day", **{kind: ((10.0, 2.0),)})).any()  # type: ignore[arg-type]


def test_rear_camera_sees_behind_mirrored() -> None:
    front = changed(View("clear", "day", pedestrians=((10.0, 2.0),)))
    rear = changed(View("clear", "day", pedestrians=((-10.0, -2.0),), facing_rear=True))
    assert rear.any() and np.array_equal(front, rear)
    assert not changed(View("clear", "day", pedestrians=((10.0, 2.0),), facing_rear=True)).any()


def test_rendering_is_deterministic_and_noise_follows_the_frame() -> None:
    view = View("rain", "day", pedestrians=((10.0, 1.0),))
    assert np.array_equal(render_frame(7, view), render_frame(7, view))
    below_band = slice(32, None)
    streaks_7 = render_frame(7, View("rain", "day", odometer_m=0.0))[below_band]
    streaks_8 = render_frame(8, View("rain", "day", odometer_m=0.0))[below_band]
    assert not np.array_equal(streaks_7, streaks_8)
    still_7 = render_frame(7, View("clear", "day", odometer_m=0.0))[below_band]
    still_8 = render_frame(8, View("clear", "day", odometer_m=0.0))[below_band]
    assert np.array_equal(still_7, still_8)


def test_light_and_weather_look_different() -> None:
    def scene(weather: str, time_of_day: str) -> np.ndarray:
        return render_frame(0, View(weather, time_of_day))[32:].astype(float)

    day, dusk, night = (scene("clear", t) for t in ("day", "dawn_dusk", "night"))
    assert night.mean() < 0.4 * dusk.mean() and dusk.mean() < day.mean()
    sky = (slice(0, 20), slice(WIDTH // 2 - 20, WIDTH // 2 + 20))  # just under the band
    near_horizon = (slice(130, 145), slice(WIDTH // 2 - 5, WIDTH // 2 + 5))
    assert day[sky][..., 2].mean() > day[sky][..., 0].mean()  # blue sky
    assert dusk[near_horizon][..., 0].mean() > dusk[near_horizon][..., 2].mean()  # orange

    def saturation(image: np.ndarray) -> float:
        return float((image.max(axis=2) - image.min(axis=2)).mean())

    assert saturation(scene("fog", "day")) < 0.3 * saturation(day)  # fog is grey

    def vehicle_contrast(weather: str) -> float:
        view = View(weather, "day", vehicles=((20.0, 0.0),))
        with_car, without = render_frame(0, view), render_frame(0, View(weather, "day"))
        return float(np.abs(with_car.astype(float) - without)[changed(view, 0)].mean())

    assert vehicle_contrast("fog") < 0.5 * vehicle_contrast("clear")  # fog veils objects
    assert scene("rain", "day").mean() < day.mean()
    assert (scene("snow", "day") >= 240).all(axis=2).sum() > 500  # flakes


def test_render_rejects_bad_views() -> None:
    with pytest.raises(ValueError, match="weather"):
        render_frame(0, View("hail", "day"))
    with pytest.raises(ValueError, match="time of day"):
        render_frame(0, View("clear", "noon"))
    with pytest.raises(ValueError, match="size"):
        render_frame(0, View("clear", "day"), width=100, height=50)


def test_render_and_encode_are_fast() -> None:
    view = moving_views()[10]
    start = time.process_time()
    images = [render_frame(i, view) for i in range(30)]
    render_ms = (time.process_time() - start) / 30 * 1000
    encoder = H264Encoder(WIDTH, HEIGHT, FPS, GOP)
    start = time.process_time()
    for image in images:
        encoder.encode(image)
    encode_ms = (time.process_time() - start) / 30 * 1000
    # Loose bounds that catch per-pixel Python loops, not a busy machine; the measured
    # numbers are in the report (about 2-3 ms to render, 4-5 ms to encode).
    assert render_ms < 20, render_ms
    assert encode_ms < 60, encode_ms
