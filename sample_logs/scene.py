"""The street scene a synthetic camera sees: road, facades, road users, rain and snow.

``render_scene`` draws a ``View`` as a pinhole camera would see it (90 degree horizontal
field of view, level, 1.5 m above the road); ``sample_logs.camera.render_frame`` checks the
view and stamps the frame barcode on top.

The scene is built from a label image (what each pixel shows, and how far away it is) and one
palette lookup; lighting, weather and distance fog are folded into the palette, which is
why a 640x360 frame renders in 2 to 3 ms. Frame-independent layouts are cached per size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np

WEATHERS = ("clear", "rain", "snow", "fog")
TIMES_OF_DAY = ("day", "dawn_dusk", "night")

# Scenery scrolls by this much per frame when the view does not say how far the car drove.
_DEFAULT_M_PER_FRAME = 0.6
_NEAREST_M = 1.0  # objects closer than this (along the optical axis) are not drawn


@dataclass(frozen=True)
class View:
    """What one camera sees at one frame.

    Object positions are in the ego frame, metres: x forward, y left. A front camera draws
    objects with x > 1 m; a rear camera (``facing_rear``) draws those with x < -1 m,
    mirrored as it looks backwards. ``odometer_m`` (distance driven) scrolls lane dashes
    and facades; None means 0.6 m per frame.
    """

    weather: str  # "clear" | "rain" | "snow" | "fog"
    time_of_day: str  # "day" | "dawn_dusk" | "night"
    pedestrians: tuple[tuple[float, float], ...] = ()
    cyclists: tuple[tuple[float, float], ...] = ()
    vehicles: tuple[tuple[float, float], ...] = ()
    facing_rear: bool = False
    headlights: bool = False
    odometer_m: float | None = None


def render_scene(frame_idx: int, view: View, width: int, height: int) -> np.ndarray:
    """RGB uint8 (height, width, 3): the street as ``view`` shows it at frame ``frame_idx``.

    Deterministic: rain and snow are seeded from frame_idx. The view and size are not
    checked here; ``render_frame`` checks them first.
    """
    geo = _geometry(width, height)
    lamps = view.headlights and not view.facing_rear and view.time_of_day != "day"
    lk = _look(view.weather, view.time_of_day, lamps)
    odometer = view.odometer_m if view.odometer_m is not None else frame_idx * _DEFAULT_M_PER_FRAME
    if view.facing_rear:
        odometer = -odometer  # behind the car the scenery recedes
    image = np.take(_palette(lk), _scene_labels(geo, odometer, view.time_of_day == "night"), axis=0)
    _draw_objects(image, geo, lk, view)
    rng = np.random.default_rng(frame_idx)
    if view.weather == "rain":
        _draw_rain(image, rng)
    elif view.weather == "snow":
        _draw_snow(image, rng)
    return image


# ---------------------------------------------------------------------------- scene

CAMERA_HEIGHT_M = 1.5
_HALF_FOV_RAD = math.radians(45.0)
_ROAD_HALF_M = 7.0  # two lanes each way
_LANE_M = 3.5
_MARK_HALF_M = 0.08
_FACADE_M = 10.0  # facades line the street this far either side of the camera
_FACADE_MAX_M = 150.0
_BLOCK_M = 24.0
_CROSS_STREET_EVERY = 6  # every sixth block is a gap: a cross street
_FLOOR_M = 3.2
_WINDOW_M = 2.5
_DASH_PERIOD_M, _DASH_ON_M = 9.0, 3.0

# Label ids. Every label but the sky is offset by 32 x its depth band, so that one palette
# lookup applies distance fog as well as colour.
_SKY_SHADES = 16  # labels 0..15: sky from zenith to horizon
_ROAD, _SIDEWALK, _WHITE, _YELLOW, _WINDOW, _WINDOW_LIT, _FACADE = 16, 17, 18, 19, 20, 21, 22
_BASE_RGB = (
    (0.33, 0.33, 0.35),  # road
    (0.55, 0.54, 0.50),  # sidewalk
    (0.90, 0.90, 0.88),  # white marking
    (0.85, 0.70, 0.15),  # yellow marking
    (0.20, 0.25, 0.30),  # window
    (0.20, 0.25, 0.30),  # lit window (emissive at night)
    (0.60, 0.42, 0.33),  # facades: brick, stone, blue-grey, concrete
    (0.72, 0.68, 0.60),
    (0.45, 0.50, 0.56),
    (0.56, 0.56, 0.52),
)
_BAND_STRIDE = 32
_BAND_EDGES_M = np.array([4.0, 8.0, 14.0, 22.0, 35.0, 55.0, 90.0])
_BAND_DEPTH_M = np.array([3.0, 6.0, 11.0, 18.0, 28.0, 45.0, 70.0, 200.0])


@dataclass(frozen=True)
class _Geometry:
    """What never changes for one image size: the pinhole model and per-pixel layouts.

    Facade arrays cover only the rows a facade can reach (``facade_rows``), which is
    where most of the per-frame work is."""

    focal_px: float
    cx: float
    cy: float  # the horizon: the camera is level
    horizon_row: int  # first row that shows the ground
    base: np.ndarray  # (H, W) uint8: sky and ground labels with depth bands, dashes as road
    ground_x: np.ndarray  # (ground rows,) distance to the ground seen in each row, m
    dashes: np.ndarray  # (ground rows, W) bool: where the dashed lane lines run
    dash_labels: np.ndarray  # (ground rows, 1) uint8: a white marking at each row's depth
    facade_x: np.ndarray  # (W,) distance of the facade seen in each column, inf if none
    facade_side: np.ndarray  # (W,) int64: 0 left, 1 right
    facade_bottom: np.ndarray  # (W,) first row below the facade
    facade_band: np.ndarray  # (W,) uint8 depth-band label offset
    facade_rows: int  # no facade reaches below this row
    window_rows: np.ndarray  # (facade_rows, W) bool: at window height on the column's facade
    odd_storey: np.ndarray  # (facade_rows, W) bool: on an odd storey of the column's facade
    rows: np.ndarray  # (facade_rows, 1) row indices


@lru_cache(maxsize=8)
def _geometry(width: int, height: int) -> _Geometry:
    focal = width / 2 / math.tan(_HALF_FOV_RAD)
    cx, cy = width / 2, height / 2
    horizon_row = math.floor(cy - 0.5) + 1
    below = np.arange(horizon_row, height) + 0.5 - cy  # pixel centres under the horizon
    across = np.arange(width) + 0.5 - cx
    ground_x = focal * CAMERA_HEIGHT_M / below
    ground_band = _band_offset(ground_x)[:, None]
    lateral = np.abs(across[None, :] * CAMERA_HEIGHT_M / below[:, None])
    base = np.empty((height, width), dtype=np.uint8)
    sky = np.minimum((np.arange(horizon_row) + 0.5) / cy * _SKY_SHADES, _SKY_SHADES - 1)
    base[:horizon_row] = sky.astype(np.uint8)[:, None]
    ground = base[horizon_row:]
    ground[:] = _ROAD
    ground[(lateral > _ROAD_HALF_M) & (lateral < _FACADE_M)] = _SIDEWALK
    ground[np.abs(lateral - (_ROAD_HALF_M - 0.2)) < _MARK_HALF_M] = _WHITE
    ground[np.abs(lateral - 0.12) < _MARK_HALF_M * 0.75] = _YELLOW
    ground += ground_band
    with np.errstate(divide="ignore"):
        facade_x = focal * _FACADE_M / np.abs(across)
    facade_x[facade_x > _FACADE_MAX_M] = np.inf
    finite_x = np.where(np.isfinite(facade_x), facade_x, 1.0)
    bottom = np.where(
        np.isfinite(facade_x), np.ceil(cy + focal * CAMERA_HEIGHT_M / finite_x - 0.5), 0
    ).astype(np.int64)
    facade_rows = min(int(bottom.max()), height)
    rows = np.arange(facade_rows)[:, None]
    height_m = CAMERA_HEIGHT_M + (cy - rows - 0.5) * finite_x[None, :] / focal
    storey = np.floor(height_m / _FLOOR_M)
    in_storey = height_m / _FLOOR_M - storey
    return _Geometry(
        focal_px=focal,
        cx=cx,
        cy=cy,
        horizon_row=horizon_row,
        base=base,
        ground_x=ground_x,
        dashes=np.abs(lateral - _LANE_M) < _MARK_HALF_M,
        dash_labels=ground_band + _WHITE,
        facade_x=facade_x,
        facade_side=(across > 0).astype(np.int64),
        facade_bottom=bottom,
        facade_band=_band_offset(facade_x),
        facade_rows=facade_rows,
        window_rows=(in_storey > 0.35) & (in_storey < 0.8) & (height_m > 1.0),
        odd_storey=storey % 2 == 1,
        rows=rows,
    )


def _band_offset(depth_m: np.ndarray) -> np.ndarray:
    return (np.searchsorted(_BAND_EDGES_M, depth_m) * _BAND_STRIDE).astype(np.uint8)


def _hash(values: np.ndarray) -> np.ndarray:
    """A cheap deterministic integer hash (golden-ratio multiply), non-negative int64."""
    mixed = values.astype(np.int64).view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    return (mixed >> np.uint64(33)).astype(np.int64)


def _scene_labels(geo: _Geometry, odometer_m: float, night: bool) -> np.ndarray:
    """(H, W) uint8 labels (with depth bands) of the static street after driving odometer_m."""
    labels = geo.base.copy()
    dash_on = (geo.ground_x + odometer_m) % _DASH_PERIOD_M < _DASH_ON_M
    np.copyto(labels[geo.horizon_row :], geo.dash_labels, where=geo.dashes & dash_on[:, None])

    finite = np.isfinite(geo.facade_x)
    along = np.where(finite, geo.facade_x + odometer_m, 0.0)
    block = np.floor(along / _BLOCK_M).astype(np.int64)
    code = _hash(block * 2 + geo.facade_side)
    present = finite & (block % _CROSS_STREET_EVERY != 0)
    storeys = 2 + code % 7
    top_edge = geo.cy - geo.focal_px * (storeys * _FLOOR_M - CAMERA_HEIGHT_M) / np.where(
        finite, geo.facade_x, 1.0
    )
    top = np.where(present, np.ceil(top_edge - 0.5), geo.facade_rows).astype(np.int64)
    on_facade = (geo.rows >= top) & (geo.rows < geo.facade_bottom)
    in_window = along / _WINDOW_M - np.floor(along / _WINDOW_M)
    window_cols = (in_window > 0.3) & (in_window < 0.75)
    material = (_FACADE + code % 4 + geo.facade_band).astype(np.uint8)
    window: np.ndarray = (_WINDOW + geo.facade_band).astype(np.uint8)
    if night:  # some windows lit, chosen per window column and storey parity
        lit = _hash(np.floor(along / _WINDOW_M).astype(np.int64)) % 4
        glow = window + np.uint8(_WINDOW_LIT - _WINDOW)
        window = np.where(geo.odd_storey, np.where(lit == 1, glow, window),
                          np.where(lit == 0, glow, window))  # fmt: skip
    facade = np.where(geo.window_rows & window_cols, window, material)
    np.copyto(labels[: geo.facade_rows], facade, where=on_facade)
    return labels


@dataclass(frozen=True)
class _Look:
    """Light, sky and fog for one weather and time of day. Colours are linear 0..1 RGB."""

    light: tuple[float, float, float]
    sky_top: tuple[float, float, float]
    sky_horizon: tuple[float, float, float]
    fog_rgb: tuple[float, float, float]
    fog_per_m: float
    fog_floor: float  # fog veils even the nearest surface this much: low contrast
    headlights: bool
    snow: bool
    night: bool


_TIME_LOOKS = {
    "day": ((1.0, 1.0, 1.0), (0.25, 0.45, 0.85), (0.72, 0.82, 0.95)),
    "dawn_dusk": ((0.85, 0.65, 0.5), (0.22, 0.2, 0.42), (0.98, 0.6, 0.32)),
    "night": ((0.22, 0.24, 0.32), (0.01, 0.01, 0.04), (0.06, 0.06, 0.12)),
}
# weather: (light factor, overcast grey or None, fog per metre, fog floor)
_WEATHER_LOOKS = {
    "clear": (1.0, None, 1 / 800, 0.0),
    "rain": (0.6, (0.55, 0.57, 0.6), 1 / 150, 0.0),
    "snow": (0.9, (0.85, 0.86, 0.9), 1 / 120, 0.0),
    "fog": (0.8, (0.72, 0.73, 0.75), 1 / 28, 0.2),
}


@lru_cache(maxsize=32)
def _look(weather: str, time_of_day: str, headlights: bool) -> _Look:
    light, top, horizon = (np.asarray(c) for c in _TIME_LOOKS[time_of_day])
    factor, overcast, fog_per_m, fog_floor = _WEATHER_LOOKS[weather]
    if overcast is not None:
        grey = np.asarray(overcast) * light.mean()
        top, horizon = top * 0.15 + grey * 0.85, horizon * 0.15 + grey * 0.95  # pale horizon
    if weather == "fog":
        top = horizon = np.asarray(overcast) * light.mean()

    def rgb(c: np.ndarray) -> tuple[float, float, float]:
        return (float(c[0]), float(c[1]), float(c[2]))

    return _Look(
        light=rgb(light * factor),
        sky_top=rgb(top),
        sky_horizon=rgb(horizon),
        fog_rgb=rgb(horizon),
        fog_per_m=fog_per_m,
        fog_floor=fog_floor,
        headlights=headlights,
        snow=weather == "snow",
        night=time_of_day == "night",
    )


def _shade(lk: _Look, rgb: np.ndarray, depth_m: np.ndarray | float) -> np.ndarray:
    """Surface colour rgb (..., 3) seen at depth_m (...): lit, headlit, then fogged."""
    depth = np.asarray(depth_m, dtype=np.float64)[..., None]
    colour = rgb * np.asarray(lk.light)
    if lk.headlights:
        colour = colour + rgb * 0.9 * np.exp(-depth / 15.0)
    veil = 1.0 - (1.0 - lk.fog_floor) * np.exp(-depth * lk.fog_per_m)
    return colour * (1.0 - veil) + np.asarray(lk.fog_rgb) * veil


@lru_cache(maxsize=32)
def _palette(lk: _Look) -> np.ndarray:
    """(256, 3) uint8 colour of every label id, depth bands included."""
    colours = np.zeros((256, 3))
    t = (np.arange(_SKY_SHADES) / (_SKY_SHADES - 1))[:, None] ** 2
    colours[:_SKY_SHADES] = np.asarray(lk.sky_top) * (1 - t) + np.asarray(lk.sky_horizon) * t
    base = np.asarray(_BASE_RGB)
    if lk.snow:
        base[_ROAD - _ROAD] = (0.55, 0.55, 0.58)
        base[_SIDEWALK - _ROAD] = (0.92, 0.92, 0.95)
    for band, depth in enumerate(_BAND_DEPTH_M):
        first = band * _BAND_STRIDE + _ROAD
        colours[first : first + len(base)] = _shade(lk, base, np.full(len(base), depth))
        if lk.night:  # lit windows glow whatever the light
            veil = 1.0 - (1.0 - lk.fog_floor) * math.exp(-depth * lk.fog_per_m)
            glow = np.asarray((0.95, 0.8, 0.45)) * (1 - veil) + np.asarray(lk.fog_rgb) * veil
            colours[band * _BAND_STRIDE + _WINDOW_LIT] = glow
    return np.clip(colours * 255.0 + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------- objects


class _Sprite(NamedTuple):
    depth_m: float  # along the optical axis
    lateral_m: float  # to the camera's left
    kind: str
    nth: int  # position in the view's tuple: picks a colour


class _Part(NamedTuple):
    """A shape of an object seen from behind, metres: centre offset to the right, half width,
    bottom and top height above the road, and a colour name."""

    ellipse: bool
    offset_m: float
    half_w_m: float
    z0_m: float
    z1_m: float
    colour: str


_PARTS = {
    "pedestrian": (
        _Part(False, -0.1, 0.12, 0.0, 0.85, "dark"),  # legs
        _Part(False, 0.1, 0.12, 0.0, 0.85, "dark"),
        _Part(False, 0.0, 0.25, 0.8, 1.45, "clothes"),
        _Part(True, 0.0, 0.12, 1.45, 1.72, "skin"),
    ),
    "cyclist": (
        _Part(True, 0.0, 0.06, 0.0, 0.7, "tyre"),  # rear wheel, edge-on
        _Part(False, 0.0, 0.22, 0.65, 0.95, "dark"),
        _Part(False, 0.0, 0.25, 0.95, 1.55, "clothes"),
        _Part(True, 0.0, 0.15, 1.55, 1.85, "helmet"),
    ),
    "vehicle": (
        _Part(False, 0.0, 0.9, 0.25, 0.95, "body"),
        _Part(False, 0.0, 0.75, 0.95, 1.45, "glass"),
        _Part(False, 0.0, 0.8, 0.0, 0.3, "tyre"),
        _Part(False, -0.7, 0.15, 0.7, 0.9, "lamp"),
        _Part(False, 0.7, 0.15, 0.7, 0.9, "lamp"),
    ),
}
_FIXED_RGB = {
    "dark": (0.2, 0.2, 0.25),
    "skin": (0.85, 0.65, 0.5),
    "tyre": (0.05, 0.05, 0.05),
    "helmet": (0.95, 0.95, 0.2),
    "glass": (0.12, 0.14, 0.18),
}
_CLOTHES = ((0.8, 0.2, 0.2), (0.2, 0.3, 0.7), (0.25, 0.25, 0.25), (0.9, 0.75, 0.2))
_BODIES = ((0.75, 0.75, 0.78), (0.1, 0.1, 0.12), (0.6, 0.1, 0.1), (0.15, 0.3, 0.55))


def _sprites(view: View) -> list[_Sprite]:
    sign = -1.0 if view.facing_rear else 1.0
    sprites = [
        _Sprite(sign * x, sign * y, kind, i)
        for kind, points in (
            ("pedestrian", view.pedestrians),
            ("cyclist", view.cyclists),
            ("vehicle", view.vehicles),
        )
        for i, (x, y) in enumerate(points)
        if sign * x > _NEAREST_M
    ]
    return sorted(sprites, reverse=True)  # painter's order: far first, near ones cover them


def _draw_objects(image: np.ndarray, geo: _Geometry, lk: _Look, view: View) -> None:
    # Lamps face the camera: tail lights ahead of a front camera, headlights behind the car.
    lamp = (1.0, 0.95, 0.8) if view.facing_rear else (0.9, 0.05, 0.05)
    lamps_glow = view.time_of_day != "day"
    for sprite in _sprites(view):
        scale = geo.focal_px / sprite.depth_m  # pixels per metre at this depth
        centre_u = geo.cx - sprite.lateral_m * scale
        ground_v = geo.cy + CAMERA_HEIGHT_M * scale
        named = {
            **_FIXED_RGB,
            "clothes": _CLOTHES[sprite.nth % len(_CLOTHES)],
            "body": _BODIES[sprite.nth % len(_BODIES)],
            "lamp": lamp,
        }
        parts = _PARTS[sprite.kind]
        base = np.asarray([named[part.colour] for part in parts])
        lit = _shade(lk, base, sprite.depth_m)
        glows = np.asarray([lamps_glow and part.colour == "lamp" for part in parts])
        colours = np.clip(np.where(glows[:, None], base, lit) * 255.0 + 0.5, 0, 255)
        for part, colour in zip(parts, colours.astype(np.uint8), strict=True):
            left = centre_u + (part.offset_m - part.half_w_m) * scale
            right = centre_u + (part.offset_m + part.half_w_m) * scale
            top, bottom = ground_v - part.z1_m * scale, ground_v - part.z0_m * scale
            _fill(image, (left, top, right, bottom), colour, part.ellipse)


def _fill(
    image: np.ndarray, box: tuple[float, float, float, float], rgb: np.ndarray, ellipse: bool
) -> None:
    """Paint a rectangle (or the ellipse inscribed in it) given in float pixel coordinates
    (left, top, right, bottom); at least one pixel, clipped to the image."""
    left, top, right, bottom = box
    h, w = image.shape[:2]
    u0, u1 = max(round(left), 0), min(max(round(right), round(left) + 1), w)
    v0, v1 = max(round(top), 0), min(max(round(bottom), round(top) + 1), h)
    if u0 >= u1 or v0 >= v1:
        return
    if not ellipse:
        image[v0:v1, u0:u1] = rgb
        return
    rows, cols = np.ogrid[v0:v1, u0:u1]
    ry, rx = max((bottom - top) / 2, 0.5), max((right - left) / 2, 0.5)
    dv, du = (rows + 0.5 - (top + bottom) / 2) / ry, (cols + 0.5 - (left + right) / 2) / rx
    image[v0:v1, u0:u1][dv**2 + du**2 <= 1.0] = rgb


# ---------------------------------------------------------------------------- weather


def _draw_rain(image: np.ndarray, rng: np.random.Generator) -> None:
    h, w = image.shape[:2]
    n, steps = max(w * h // 1200, 1), 12
    start_u = rng.uniform(0, w, n)[:, None]
    start_v = rng.uniform(0, h, n)[:, None]
    length = rng.uniform(0.02, 0.05, n)[:, None] * h
    t = np.linspace(0.0, 1.0, steps)[None, :]
    rows = np.clip((start_v + t * length).astype(np.intp), 0, h - 1)
    cols = np.clip((start_u + t * length * 0.15).astype(np.intp), 0, w - 1)
    streak = image[rows, cols].astype(np.uint16)
    image[rows, cols] = ((streak + 190) // 2).astype(np.uint8)


def _draw_snow(image: np.ndarray, rng: np.random.Generator) -> None:
    h, w = image.shape[:2]
    n = max(w * h // 600, 1)
    rows = rng.integers(0, h - 1, n)[:, None] + np.array([0, 0, 1, 1])[None, :]
    cols = rng.integers(0, w - 1, n)[:, None] + np.array([0, 1, 0, 1])[None, :]
    image[rows, cols] = 245
