"""The synthetic lidar: point counts, object clusters, occlusion, and the PointCloud message."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from foxglove_schemas_protobuf.PackedElementField_pb2 import PackedElementField
from foxglove_schemas_protobuf.PointCloud_pb2 import PointCloud

from drivecat.schemas.messages import ObjectClass
from sample_logs.lidar import make_sweep, pointcloud_message, points_from_message

GROUND_Z = -1.8  # the lidar is 1.8 m above the road


def horizontal_distance(points: np.ndarray, x: float, y: float) -> np.ndarray:
    return np.hypot(points[:, 0] - x, points[:, 1] - y)


@pytest.mark.parametrize("n_points", [0, 1, 7, 100, 30000, 65536])
@pytest.mark.parametrize("scene", ["empty", "busy"])
def test_count_and_dtype_are_exact(n_points: int, scene: str) -> None:
    objects = [] if scene == "empty" else [(c, 5.0 + 4 * c, (-1) ** c * 2.0) for c in range(6)]
    buildings = [] if scene == "empty" else [(5.0, 40.0, 9.0, 30.0), (-30.0, -5.0, -30.0, -9.0)]
    points = make_sweep(np.random.default_rng(0), objects, n_points, buildings)
    assert points.shape == (n_points, 4)
    assert points.dtype == np.float32
    assert np.isfinite(points).all()


def test_pedestrian_is_a_cluster_of_its_size() -> None:
    pedestrian = int(ObjectClass.Value("PEDESTRIAN"))
    points = make_sweep(np.random.default_rng(1), [(pedestrian, 10.0, 2.0)])
    above_ground = points[:, 2] > GROUND_Z + 0.1
    near = horizontal_distance(points, 10.0, 2.0) < 0.5
    cluster = points[above_ground & near]
    assert len(cluster) >= 20
    assert cluster[:, 2].max() <= GROUND_Z + 1.8  # 1.7 m tall, plus noise
    assert cluster[:, 2].max() >= GROUND_Z + 1.3  # the beams reach its shoulders
    # Nothing else stands above the road.
    assert not (above_ground & ~near).any()
    # The near face is towards the sensor: the points lie on the side facing the origin.
    assert cluster[:, 0].mean() < 10.0 and cluster[:, 1].mean() < 2.0


def test_vehicle_cluster_fits_a_car() -> None:
    vehicle = int(ObjectClass.Value("VEHICLE"))
    points = make_sweep(np.random.default_rng(2), [(vehicle, 15.0, -4.0)])
    body = points[points[:, 2] > GROUND_Z + 0.1]
    assert len(body) >= 50
    # 4.5 m long, 1.8 m wide, 1.5 m tall, centred at (15, -4); 0.1 m for the range noise
    assert body[:, 0].min() >= 15.0 - 2.25 - 0.1 and body[:, 0].max() <= 15.0 + 2.25 + 0.1
    assert body[:, 1].min() >= -4.0 - 0.9 - 0.1 and body[:, 1].max() <= -4.0 + 0.9 + 0.1
    assert body[:, 2].max() <= GROUND_Z + 1.5 + 0.1
    # the rear (x = 12.75) and the left side (y = -3.1) face the sensor
    assert (np.abs(body[:, 0] - 12.75) < 0.1).sum() > 10
    assert (np.abs(body[:, 1] + 3.1) < 0.1).sum() > 10


def test_nearer_objects_get_more_points() -> None:
    pedestrian = int(ObjectClass.Value("PEDESTRIAN"))
    points = make_sweep(np.random.default_rng(3), [(pedestrian, 8.0, 0.0), (pedestrian, 30.0, 0.0)])
    above = points[:, 2] > GROUND_Z + 0.1
    near = (above & (horizontal_distance(points, 8.0, 0.0) < 0.5)).sum()
    far = (above & (horizontal_distance(points, 30.0, 0.0) < 0.5)).sum()
    assert far >= 4 and near > 5 * far


def test_ground_fills_the_rest_within_range() -> None:
    points = make_sweep(np.random.default_rng(4), [])
    assert np.abs(points[:, 2] - GROUND_Z).max() < 0.1
    reach = np.hypot(points[:, 0], points[:, 1])
    assert reach.max() <= 80.5 and reach.min() > 2.0
    # every direction is covered: a spinning sensor
    azimuth = np.arctan2(points[:, 1], points[:, 0])
    assert np.histogram(azimuth, bins=36, range=(-math.pi, math.pi))[0].min() > 500
    # intensity is a reflectivity in 0..1
    assert points[:, 3].min() >= 0.0 and points[:, 3].max() <= 1.0


def test_objects_out_of_range_leave_no_points() -> None:
    points = make_sweep(np.random.default_rng(5), [(3, 120.0, 0.0)])
    assert (points[:, 2] > GROUND_Z + 0.1).sum() == 0


def test_a_wall_hides_the_ground_behind_it() -> None:
    wall = (20.0, 22.0, -5.0, 5.0)
    points = make_sweep(np.random.default_rng(6), [], buildings=[wall])
    on_wall = points[points[:, 2] > GROUND_Z + 0.1]
    assert len(on_wall) > 500
    assert np.abs(on_wall[:, 0] - 20.0).max() < 0.1  # the face towards the sensor
    assert on_wall[:, 2].max() <= GROUND_Z + 10.1  # walls are 10 m tall
    ground = points[points[:, 2] <= GROUND_Z + 0.1]
    in_shadow = (ground[:, 0] > 22.5) & (np.abs(ground[:, 1]) < ground[:, 0] * 4.5 / 22.0)
    assert not in_shadow.any()
    # ...but not the ground beside it
    beside = (ground[:, 0] > 30.0) & (np.abs(ground[:, 1]) > ground[:, 0] * 6.0 / 20.0)
    assert beside.sum() > 100


@pytest.mark.parametrize("centre_y", [0.5, -0.5], ids=["centre-left", "centre-right"])
def test_a_wall_behind_the_car_across_the_azimuth_seam(centre_y: float) -> None:
    wall = (-22.0, -20.0, centre_y - 5.0, centre_y + 5.0)  # straddles azimuth +-pi
    points = make_sweep(np.random.default_rng(7), [], buildings=[wall])
    ground = points[points[:, 2] <= GROUND_Z + 0.1]
    slope = np.abs(ground[:, 1] - centre_y * -ground[:, 0] / 21.0) / -ground[:, 0]
    in_shadow = (ground[:, 0] < -22.5) & (slope < 4.5 / 22.0)
    assert not in_shadow.any()
    assert (points[:, 2] > GROUND_Z + 0.1).sum() > 500


def test_same_seed_same_sweep() -> None:
    args = ([(1, 10.0, 2.0), (3, -15.0, 3.0)], 5000, [(5.0, 30.0, 9.0, 20.0)])
    first = make_sweep(np.random.default_rng(11), *args)
    again = make_sweep(np.random.default_rng(11), *args)
    other = make_sweep(np.random.default_rng(12), *args)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_bad_input_raises() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="object class"):
        make_sweep(rng, [(9, 10.0, 0.0)])
    with pytest.raises(ValueError, match="building"):
        make_sweep(rng, [], buildings=[(10.0, 5.0, 0.0, 1.0)])
    with pytest.raises(ValueError, match="n_points"):
        make_sweep(rng, [], n_points=-1)


def test_message_round_trip() -> None:
    points = make_sweep(np.random.default_rng(8), [(1, 10.0, 2.0)], n_points=2000)
    timestamp_ns = 1_781_526_600_123_456_789
    wire = pointcloud_message(points, timestamp_ns, frame_id="lidar_top").SerializeToString()
    msg = PointCloud.FromString(wire)
    assert (msg.timestamp.seconds, msg.timestamp.nanos) == divmod(timestamp_ns, 10**9)
    assert msg.frame_id == "lidar_top"
    assert msg.point_stride == 16
    assert [(f.name, f.offset, f.type) for f in msg.fields] == [
        (name, offset, PackedElementField.FLOAT32)
        for name, offset in (("x", 0), ("y", 4), ("z", 8), ("intensity", 12))
    ]
    pose = msg.pose
    assert (pose.position.x, pose.position.y, pose.position.z) == (0.0, 0.0, 0.0)
    assert (pose.orientation.x, pose.orientation.y, pose.orientation.z) == (0.0, 0.0, 0.0)
    assert pose.orientation.w == 1.0
    assert len(msg.data) == 16 * 2000
    # the bytes are little-endian float32 x, y, z, intensity, read here without the module
    raw = np.frombuffer(msg.data, dtype="<f4").reshape(-1, 4)
    assert np.array_equal(raw, points)
    assert np.array_equal(points_from_message(msg), points)


def test_points_from_message_reads_other_layouts() -> None:
    """A float64 cloud with padding and no intensity, as another tool might write it."""
    expected = np.array([[1.5, -2.0, 0.25], [10.0, 20.0, -1.75]])
    layout = np.dtype({"names": ["z", "x", "y"], "formats": ["<f8"] * 3,
                       "offsets": [0, 8, 16], "itemsize": 32})  # fmt: skip
    records = np.zeros(2, dtype=layout)
    records["x"], records["y"], records["z"] = expected.T
    msg = PointCloud(point_stride=32, data=records.tobytes())
    for name, offset in (("z", 0), ("x", 8), ("y", 16)):
        msg.fields.add(name=name, offset=offset, type=PackedElementField.FLOAT64)
    points = points_from_message(msg)
    assert points.dtype == np.float32
    assert np.array_equal(points[:, :3], expected.astype(np.float32))
    assert np.array_equal(points[:, 3], [0.0, 0.0])


def test_points_from_message_rejects_broken_messages() -> None:
    msg = pointcloud_message(np.zeros((3, 4), dtype=np.float32), 0)
    msg.data = msg.data[:-1]
    with pytest.raises(ValueError, match="stride"):
        points_from_message(msg)
    del msg.fields[0]
    with pytest.raises(ValueError, match="x, y, z"):
        points_from_message(msg)


def test_sweep_is_fast() -> None:
    rng = np.random.default_rng(9)
    objects = [(1 + i % 5, 5.0 + 3 * i, (-1) ** i * 3.0) for i in range(20)]
    buildings = [(x, x + 20.0, side * 9.0, side * 25.0) for x in (-40.0, -15.0, 10.0, 35.0)
                 for side in (1, -1)]  # fmt: skip
    buildings = [(x0, x1, min(y0, y1), max(y0, y1)) for x0, x1, y0, y1 in buildings]
    start = time.process_time()
    for _ in range(20):
        make_sweep(rng, objects, 30000, buildings)
    sweep_ms = (time.process_time() - start) / 20 * 1000
    assert sweep_ms < 40, sweep_ms  # loose: catches Python loops over points, not a busy box
