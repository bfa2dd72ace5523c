"""The synthetic lidar of the sample drive generator: one sweep as points, and its message.

The sensor is a 64-beam spinning lidar 1.8 m above the road, beams spread evenly from -25 to
+15 degrees of elevation, range 80 m. Objects and buildings are axis-aligned boxes in the
ego frame (x forward, y left, z up, metres, origin at the lidar). Each box gets points on
the faces that look at the sensor, in proportion to the solid angle it covers; the ground
takes every remaining point, on the rings the downward beams draw, minus whatever a box
hides behind it. Object boxes do not hide each other: the clusters are for checking
positions, not for occlusion studies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from foxglove_schemas_protobuf.PackedElementField_pb2 import PackedElementField
from foxglove_schemas_protobuf.PointCloud_pb2 import PointCloud

LIDAR_HEIGHT_M = 1.8
MAX_RANGE_M = 80.0
BUILDING_HEIGHT_M = 10.0
_N_BEAMS = 64
_ELEVATION_MIN_RAD = math.radians(-25.0)
_ELEVATION_MAX_RAD = math.radians(15.0)
_NOISE_M = 0.02  # range noise, about one standard deviation
_MIN_OBJECT_POINTS = 4  # even a far pedestrian in range leaves a trace
_MAX_BOX_SHARE = 0.6  # boxes never take more of the sweep than this; the ground the rest
_GROUND_INTENSITY = 0.1
_BUILDING_INTENSITY = 0.3
_GROUND_ATTEMPTS = 8

# ObjectClass value -> (length along x, width along y, height, mean intensity); metres, 0..1.
_OBJECT_SHAPES = {
    0: (1.0, 1.0, 1.0, 0.5),  # unknown: as "other"
    1: (0.5, 0.5, 1.7, 0.3),  # pedestrian
    2: (1.8, 0.6, 1.7, 0.4),  # cyclist
    3: (4.5, 1.8, 1.5, 0.7),  # vehicle: plates and paint reflect well
    4: (1.0, 0.4, 0.8, 0.2),  # animal
    5: (1.0, 1.0, 1.0, 0.5),  # other
}
_FIELDS = ("x", "y", "z", "intensity")


class _Box(NamedTuple):
    x_min: float
    x_max: float
    y_min: float
    y_max: float
    z_top: float  # sensor frame; every box stands on the road at -LIDAR_HEIGHT_M
    intensity: float
    min_points: int


class _Face(NamedTuple):
    """A vertical rectangle facing the sensor: a ground segment and the box it belongs to."""

    start: tuple[float, float]
    end: tuple[float, float]
    box: _Box


def make_sweep(
    rng: np.random.Generator,
    objects: Sequence[tuple[int, float, float]],
    n_points: int = 30000,
    buildings: Sequence[tuple[float, float, float, float]] = (),
) -> np.ndarray:
    """float32 (n_points, 4): x, y, z, intensity in the ego/lidar frame (x forward, y left,
    z up, metres; intensity 0..1).

    objects: (object_class, x, y), object_class a drivecat.perception ObjectClass value
    (1 pedestrian, 2 cyclist, 3 vehicle, 4 animal, 5 other; 0 is drawn as other), x, y the
    centre of the object on the road. Pedestrians are 0.5x0.5x1.7 m, cyclists 1.8x0.6x1.7,
    vehicles 4.5x1.8x1.5 (length along x). buildings: boxes (x_min, x_max, y_min, y_max) as
    walls 10 m tall. Ground points (z about -1.8) fill the rest, out to 80 m. Boxes beyond
    80 m or around the sensor get no points. Exactly n_points rows; the same rng state
    gives the same sweep. ValueError for an unknown class, an inverted box or n_points < 0.
    """
    if n_points < 0:
        raise ValueError(f"make_sweep: n_points {n_points} is negative")
    boxes = [_object_box(*obj) for obj in objects] + [_building_box(*b) for b in buildings]
    faces = [face for box in boxes for face in _visible_faces(box)]
    counts = _face_counts(faces, n_points)
    on_boxes = _face_points(rng, faces, counts)
    ground = _ground_points(rng, n_points - len(on_boxes), boxes)
    points = np.concatenate([on_boxes, ground])
    np.clip(points[:, 3], 0.0, 1.0, out=points[:, 3])
    return points


def _object_box(object_class: int, x: float, y: float) -> _Box:
    if object_class not in _OBJECT_SHAPES:
        raise ValueError(f"make_sweep: unknown object class {object_class}")
    length, width, height, intensity = _OBJECT_SHAPES[object_class]
    return _Box(
        x - length / 2,
        x + length / 2,
        y - width / 2,
        y + width / 2,
        height - LIDAR_HEIGHT_M,
        intensity,
        _MIN_OBJECT_POINTS,
    )


def _building_box(x_min: float, x_max: float, y_min: float, y_max: float) -> _Box:
    if x_min >= x_max or y_min >= y_max:
        raise ValueError(f"make_sweep: building box {(x_min, x_max, y_min, y_max)} is empty")
    return _Box(
        x_min, x_max, y_min, y_max, BUILDING_HEIGHT_M - LIDAR_HEIGHT_M, _BUILDING_INTENSITY, 0
    )


def _visible_faces(box: _Box) -> list[_Face]:
    """The (at most two) faces of a box that the sensor at the origin sees."""
    if _distance(box) > MAX_RANGE_M or _contains_origin(box):
        return []
    faces = []
    if box.x_min > 0:  # the sensor sees the side of the box nearer to it
        faces.append(_Face((box.x_min, box.y_min), (box.x_min, box.y_max), box))
    elif box.x_max < 0:
        faces.append(_Face((box.x_max, box.y_min), (box.x_max, box.y_max), box))
    if box.y_min > 0:
        faces.append(_Face((box.x_min, box.y_min), (box.x_max, box.y_min), box))
    elif box.y_max < 0:
        faces.append(_Face((box.x_min, box.y_max), (box.x_max, box.y_max), box))
    return faces


def _distance(box: _Box) -> float:
    """Horizontal distance from the sensor to the nearest point of the box."""
    dx = max(box.x_min, 0.0, -box.x_max)
    dy = max(box.y_min, 0.0, -box.y_max)
    return math.hypot(dx, dy)


def _contains_origin(box: _Box) -> bool:
    return box.x_min <= 0 <= box.x_max and box.y_min <= 0 <= box.y_max


def _face_counts(faces: Sequence[_Face], n_points: int) -> np.ndarray:
    """Points per face: the sweep's angular density times the solid angle the face covers."""
    if not faces:
        return np.zeros(0, dtype=np.int64)
    per_steradian = n_points / (2 * math.pi * (_ELEVATION_MAX_RAD - _ELEVATION_MIN_RAD))
    wanted = np.asarray([per_steradian * _solid_angle(face) for face in faces])
    # Each box's minimum goes to its first visible face.
    floors = np.asarray(
        [
            face.box.min_points if i == 0 or faces[i - 1].box is not face.box else 0
            for i, face in enumerate(faces)
        ]  # fmt: skip
    )
    wanted = np.maximum(wanted, floors)
    budget = _MAX_BOX_SHARE * n_points
    if wanted.sum() > budget:
        wanted *= budget / wanted.sum()
    return np.floor(wanted).astype(np.int64)


def _solid_angle(face: _Face) -> float:
    (x0, y0), (x1, y1) = face.start, face.end
    azimuth_span = abs(math.atan2(x0 * y1 - y0 * x1, x0 * x1 + y0 * y1))
    near = max(_distance(face.box), 0.1)
    low = min(max(math.atan2(-LIDAR_HEIGHT_M, near), _ELEVATION_MIN_RAD), _ELEVATION_MAX_RAD)
    high = min(max(math.atan2(face.box.z_top, near), _ELEVATION_MIN_RAD), _ELEVATION_MAX_RAD)
    return azimuth_span * max(high - low, 0.0)


def _face_points(
    rng: np.random.Generator, faces: Sequence[_Face], counts: np.ndarray
) -> np.ndarray:
    """counts[i] points on faces[i], at heights the beams reach at each point's distance."""
    total = int(counts.sum())
    points = np.empty((total, 4), dtype=np.float32)
    if not total:
        return points
    which = np.repeat(np.arange(len(faces)), counts)
    start, end = (np.asarray([f.start for f in faces], dtype=np.float32)[which],
                  np.asarray([f.end for f in faces], dtype=np.float32)[which])  # fmt: skip
    top = np.asarray([f.box.z_top for f in faces], dtype=np.float32)[which]
    uniform = rng.random((2, total), dtype=np.float32)
    along = start + uniform[0][:, None] * (end - start)
    points[:, :2] = along
    reach = np.hypot(along[:, 0], along[:, 1])
    low = np.maximum(-LIDAR_HEIGHT_M, reach * np.float32(math.tan(_ELEVATION_MIN_RAD)))
    high = np.maximum(np.minimum(top, reach * np.float32(math.tan(_ELEVATION_MAX_RAD))), low)
    points[:, 2] = low + uniform[1] * (high - low)
    points[:, 3] = np.asarray([f.box.intensity for f in faces], dtype=np.float32)[which]
    noise = rng.random((4, total), dtype=np.float32) - np.float32(0.5)
    points[:, :3] += noise[:3].T * np.float32(4 * _NOISE_M)  # uniform: normals cost 5x more
    points[:, 3] += noise[3] * np.float32(0.1)
    return points


def _ground_rings() -> np.ndarray:
    """Radii (m) at which the downward beams meet the road, within range."""
    elevations = np.linspace(_ELEVATION_MIN_RAD, _ELEVATION_MAX_RAD, _N_BEAMS)
    down = elevations[elevations < 0]
    radii = LIDAR_HEIGHT_M / np.tan(-down)
    return radii[radii <= MAX_RANGE_M].astype(np.float32)


_RINGS = _ground_rings()


def _ground_points(rng: np.random.Generator, count: int, boxes: Sequence[_Box]) -> np.ndarray:
    """count ground points, as many on each ring (as a spinning lidar gives), none hidden.

    float32 throughout: it is most of the sweep, and float32 trigonometry is several times
    faster."""
    out = np.empty((0, 4), dtype=np.float32)
    kept = 0.8  # the share of candidates no box hides, learnt after the first attempt
    for attempt in range(_GROUND_ATTEMPTS):
        if len(out) >= count:
            break
        n = int((count - len(out)) / kept * 1.1) + 16
        uniform = rng.random((5, n), dtype=np.float32)
        ring = (uniform[0] * len(_RINGS)).astype(np.intp)
        radius = np.minimum(_RINGS[ring] * (1.0 + 0.01 * (uniform[1] - 0.5)), MAX_RANGE_M)
        # One point per azimuth step, in order, as the head spins: sorted azimuths let
        # _hidden find each box's shadow by bisection.
        azimuth = (np.arange(n, dtype=np.float32) + uniform[2]) * np.float32(
            2 * math.pi / n
        ) - np.float32(math.pi)
        candidates = np.empty((n, 4), dtype=np.float32)
        candidates[:, 0] = radius * np.cos(azimuth)
        candidates[:, 1] = radius * np.sin(azimuth)
        candidates[:, 2] = (uniform[3] - 0.5) * np.float32(4 * _NOISE_M) - LIDAR_HEIGHT_M
        candidates[:, 3] = _GROUND_INTENSITY + 0.1 * (uniform[4] - 0.5)
        # Walls all around can hide every ring: the last attempt then keeps hidden points
        # rather than return fewer than asked for.
        if attempt < _GROUND_ATTEMPTS - 1:
            candidates = np.compress(~_hidden(azimuth, radius, boxes), candidates, axis=0)
            kept = max(len(candidates) / n, 0.02)
        out = np.concatenate([out, candidates])
    # Thin evenly rather than cut the tail, which would leave the last sector empty.
    return out[np.linspace(0, len(out), count, endpoint=False).astype(np.intp)]


def _hidden(azimuth: np.ndarray, radius: np.ndarray, boxes: Sequence[_Box]) -> np.ndarray:
    """Whether a ground point lies behind (or under) a box, as seen from the sensor.

    azimuth sorted ascending in [-pi, pi); a box's shadow is the azimuth interval its
    corners span, beyond its nearest point."""
    hidden = np.zeros(len(azimuth), dtype=bool)
    for box in boxes:
        if _contains_origin(box):
            continue
        centre = math.atan2((box.y_min + box.y_max) / 2, (box.x_min + box.x_max) / 2)
        corners = [(x, y) for x in (box.x_min, box.x_max) for y in (box.y_min, box.y_max)]
        spread = [_wrap(math.atan2(y, x) - centre) for x, y in corners]
        low, high = centre + min(spread), centre + max(spread)
        spans = [(low, high)]
        if low < -math.pi:  # the shadow straddles the azimuth seam behind the car
            spans = [(low + 2 * math.pi, math.pi), (-math.pi, high)]
        elif high > math.pi:
            spans = [(low, math.pi), (-math.pi, high - 2 * math.pi)]
        near = _distance(box)
        for start, end in spans:
            first, last = np.searchsorted(azimuth, (start, end))
            hidden[first:last] |= radius[first:last] > near
    return hidden


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


def pointcloud_message(
    points: np.ndarray, timestamp_ns: int, frame_id: str = "lidar_top"
) -> PointCloud:
    """A foxglove.PointCloud of an (n, 4) x, y, z, intensity array: identity pose, 16-byte
    little-endian float32 points. ValueError if points is not (n, 4)."""
    if points.ndim != 2 or points.shape[1] != 4:
        raise ValueError(f"pointcloud_message: points of shape {points.shape}, not (n, 4)")
    msg = PointCloud(frame_id=frame_id, point_stride=16)
    msg.timestamp.FromNanoseconds(timestamp_ns)
    msg.pose.orientation.w = 1.0
    for i, name in enumerate(_FIELDS):
        msg.fields.add(name=name, offset=4 * i, type=PackedElementField.FLOAT32)
    msg.data = np.ascontiguousarray(points, dtype="<f4").tobytes()
    return msg


def points_from_message(msg: PointCloud) -> np.ndarray:
    """float32 (n, 4) x, y, z, intensity from a foxglove.PointCloud of any stride and field
    layout (FLOAT32 or FLOAT64 fields). Intensity is 0 when the message has none.
    ValueError when x, y or z is missing or the data is not a whole number of points."""
    formats = {PackedElementField.FLOAT32: "<f4", PackedElementField.FLOAT64: "<f8"}
    fields = {f.name: f for f in msg.fields if f.name in _FIELDS and f.type in formats}
    if not {"x", "y", "z"} <= fields.keys():
        raise ValueError(f"points_from_message: no float x, y, z fields in {msg.frame_id!r}")
    stride = msg.point_stride
    if stride <= 0 or len(msg.data) % stride:
        raise ValueError(
            f"points_from_message: {len(msg.data)} bytes is not a multiple of stride {stride}"
        )
    layout = np.dtype(
        {
            "names": list(fields),
            "formats": [formats[f.type] for f in fields.values()],
            "offsets": [f.offset for f in fields.values()],
            "itemsize": stride,
        }
    )
    records = np.frombuffer(msg.data, dtype=layout)
    out = np.zeros((len(records), 4), dtype=np.float32)
    for i, name in enumerate(_FIELDS):
        if name in fields:
            out[:, i] = records[name]
    return out
