"""The sensors of a sample drive: when each one fires, and the bytes of its messages.

Each topic is a stream of ``Out`` records sorted by ``log_time_ns``; ``streams`` returns one
per topic and the recorder merges them. Capture times are on a fixed rate from a small
start offset (all topics start within the first 100 ms); ``log_time`` adds a per-message
latency drawn from the topic's range, small enough that a topic's log times stay in order.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from queue import Queue
from threading import Thread
from typing import Any, NamedTuple

import numpy as np
from foxglove_schemas_protobuf.CompressedVideo_pb2 import CompressedVideo
from foxglove_schemas_protobuf.LocationFix_pb2 import LocationFix
from foxglove_schemas_protobuf.PointCloud_pb2 import PointCloud
from mcap_protobuf.schema import build_file_descriptor_set

# A data definition generated from schemas/proto, not logic of the code under test.
from drivecat.schemas.messages import FrameTime, Object, ObjectList, State
from sample_logs.camera import H264Encoder, render_frame
from sample_logs.lidar import make_sweep, pointcloud_message
from sample_logs.truth import TruthCollector
from sample_logs.world import World

WIDTH, HEIGHT = 640, 360
FRONT_TOPIC = "/camera/front/video"
REAR_TOPIC = "/camera/rear/video"
REAR_FILE = "camera_rear.h264"
IMU_SCHEMA = {
    "title": "drivecat.Imu",
    "type": "object",
    "properties": {
        "timestamp": {
            "type": "object",
            "properties": {"sec": {"type": "integer"}, "nsec": {"type": "integer"}},
        },
        "linear_acceleration": {"type": "array", "items": {"type": "number"}},
        "angular_velocity": {"type": "array", "items": {"type": "number"}},
    },
}


class Variant(StrEnum):
    SIDECAR = "sidecar"  # rear camera as a raw .h264 file plus a frame-times topic
    NIGHT = "night"  # a start time at night
    TRUNCATED = "truncated"  # the last file cut as by a recorder crash
    ROS2 = "ros2"  # ROS 2 CDR messages with ros2msg schemas instead of protobuf and JSON


@dataclass(frozen=True)
class Options:
    seconds: float
    seed: int
    variants: frozenset[Variant]
    split_every: float
    lidar_points: int
    crf: int


class _Sensor(NamedTuple):
    topic: str
    hz: float
    latency_ms: tuple[float, float]


class Out(NamedTuple):
    """One message ready to write; merge order is (log_time_ns, order)."""

    log_time_ns: int
    order: int
    publish_time_ns: int
    topic: str
    schema: str
    data: bytes


SENSORS = (
    _Sensor("/imu/data", 200.0, (0.5, 2.5)),
    _Sensor("/vehicle/state", 20.0, (1.0, 5.0)),
    _Sensor("/gps/fix", 10.0, (3.0, 8.0)),
    _Sensor("/lidar/top/points", 10.0, (8.0, 20.0)),
    _Sensor(FRONT_TOPIC, 15.0, (12.0, 25.0)),
    _Sensor("/perception/objects", 10.0, (40.0, 70.0)),
    _Sensor(REAR_TOPIC + "/frame_times", 10.0, (1.0, 3.0)),
)


def streams(world: World, opts: Options, truth: TruthCollector, out: Path) -> list[Iterator[Out]]:
    makers = {
        "/imu/data": _imu,
        "/vehicle/state": _state,
        "/gps/fix": _gps,
        "/lidar/top/points": _lidar,
        FRONT_TOPIC: _front,
        "/perception/objects": _objects,
    }
    streams = []
    for order, sensor in enumerate(SENSORS):
        rng = np.random.default_rng([opts.seed, 3, order])
        offset_ms = (
            rng.uniform(40.0, 60.0) if sensor.topic.startswith(REAR_TOPIC) else rng.uniform(0, 25)
        )
        # The rear camera stops early so its frames are never the drive's first or last message.
        end_s = opts.seconds - (0.2 if sensor.topic.startswith(REAR_TOPIC) else 0.0)
        times = _capture_times(world.origin_ns, offset_ms, sensor.hz, end_s)
        lat = rng.uniform(*sensor.latency_ms, size=len(times)) * 1e6
        clock = [(c, c + int(x)) for c, x in zip(times, lat, strict=True)]
        if sensor.topic.startswith(REAR_TOPIC):
            if Variant.SIDECAR not in opts.variants:
                continue
            truth.add_sidecar(REAR_TOPIC, REAR_FILE)
            streams.append(_prefetch(_rear(world, opts, clock, order, truth, out / REAR_FILE)))
        elif sensor.topic == FRONT_TOPIC:
            streams.append(_prefetch(_front(world, opts, clock, order, sensor.topic)))
        else:
            streams.append(makers[sensor.topic](world, opts, clock, order, sensor.topic))
    return streams


def _prefetch(messages: Iterator[Out], depth: int = 16) -> Iterator[Out]:
    """Run a camera stream in a thread: x264 and numpy release the GIL, so rendering and
    encoding overlap with the other sensors. The messages and their order do not change."""
    queue: Queue[Out | BaseException | None] = Queue(maxsize=depth)

    def work() -> None:
        try:
            for m in messages:
                queue.put(m)
            queue.put(None)
        except BaseException as err:  # handed to the consumer, raised there
            queue.put(err)

    Thread(target=work, daemon=True).start()
    while (item := queue.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item


def _capture_times(origin_ns: int, offset_ms: float, hz: float, end_s: float) -> list[int]:
    first = origin_ns + int(offset_ms * 1e6)
    n = int((end_s * 1e9 - offset_ms * 1e6) * hz / 1e9) + 1
    times = [first + round(k * 1e9 / hz) for k in range(n)]
    return [t for t in times if t - origin_ns < end_s * 1e9]


Clock = list[tuple[int, int]]  # (capture_ns, log_time_ns) per message


def _rel(world: World, capture_ns: int) -> float:
    return (capture_ns - world.origin_ns) / 1e9


def _imu(world: World, opts: Options, clock: Clock, order: int, topic: str) -> Iterator[Out]:
    """200 Hz JSON: body-frame acceleration (m/s^2) and angular velocity (rad/s), with noise."""
    noise = np.random.default_rng([opts.seed, 4]).normal(0, 0.02, size=(len(clock), 6))
    for (cap, log), n in zip(clock, noise.tolist(), strict=True):
        ego = world.ego(_rel(world, cap))
        acc = (ego.accel + n[0], ego.speed * ego.yaw_rate + n[1], 9.80665 + n[2])
        gyro = (n[3] * 0.1, n[4] * 0.1, ego.yaw_rate + n[5] * 0.1)
        data = (
            f'{{"timestamp":{{"sec":{cap // 1_000_000_000},"nsec":{cap % 1_000_000_000}}},'
            f'"linear_acceleration":[{acc[0]:.4f},{acc[1]:.4f},{acc[2]:.4f}],'
            f'"angular_velocity":[{gyro[0]:.5f},{gyro[1]:.5f},{gyro[2]:.5f}]}}'
        )
        yield Out(log, order, cap, topic, "drivecat.Imu", data.encode())


def _state(world: World, opts: Options, clock: Clock, order: int, topic: str) -> Iterator[Out]:
    for cap, log in clock:
        t = _rel(world, cap)
        ego, sig = world.ego(t), world.signals(t)
        msg = State(
            speed_mps=round(ego.speed, 3),
            yaw_rate=round(ego.yaw_rate, 4),
            wipers=sig.wipers,  # type: ignore[arg-type]
            rain_intensity=sig.rain_intensity,
            fog_lights=sig.fog_lights,
            headlights=sig.headlights,
            outside_temp_c=sig.outside_temp_c,
        )
        msg.timestamp.FromNanoseconds(cap)
        yield Out(log, order, cap, topic, State.DESCRIPTOR.full_name, msg.SerializeToString())


def _gps(world: World, opts: Options, clock: Clock, order: int, topic: str) -> Iterator[Out]:
    for cap, log in clock:
        ego = world.ego(_rel(world, cap))
        msg = LocationFix(frame_id="gps", latitude=ego.lat, longitude=ego.lon)
        msg.altitude = world.city.altitude_m
        msg.position_covariance.extend([0.0004, 0, 0, 0, 0.0004, 0, 0, 0, 0.0016])
        msg.position_covariance_type = LocationFix.PositionCovarianceType.DIAGONAL_KNOWN
        msg.timestamp.FromNanoseconds(cap)
        yield Out(log, order, cap, topic, LocationFix.DESCRIPTOR.full_name, msg.SerializeToString())


def _objects(world: World, opts: Options, clock: Clock, order: int, topic: str) -> Iterator[Out]:
    """On-device detections: true positions with range-dependent noise, a few dropouts."""
    for k, (cap, log) in enumerate(clock):
        rng = np.random.default_rng([opts.seed, 5, k])
        t = _rel(world, cap)
        msg = ObjectList(frame_id="base_link")
        msg.timestamp.FromNanoseconds(cap)
        for seen in world.objects(t, world.ego(t)):
            rng_m = float(np.hypot(seen.x, seen.y))
            sigma = 0.03 + 0.002 * rng_m
            nx, ny, drop, c = rng.normal(0, sigma), rng.normal(0, sigma), rng.random(), rng.normal()
            if drop < 0.03:
                continue
            conf = float(np.clip(0.95 - rng_m / 150 + 0.03 * c, 0.3, 0.99))
            msg.objects.append(
                Object(
                    track_id=seen.track_id,
                    object_class=seen.object_class,  # type: ignore[arg-type]
                    x=round(seen.x + nx, 3),
                    y=round(seen.y + ny, 3),
                    z=seen.z,
                    confidence=round(conf, 3),
                )
            )
        yield Out(log, order, cap, topic, ObjectList.DESCRIPTOR.full_name, msg.SerializeToString())


def _lidar(world: World, opts: Options, clock: Clock, order: int, topic: str) -> Iterator[Out]:
    for k, (cap, log) in enumerate(clock):
        t = _rel(world, cap)
        ego = world.ego(t)
        objects = [(o.object_class, o.x, o.y) for o in world.objects(t, ego, max_range=80.0)]
        rng = np.random.default_rng([opts.seed, 6, k])
        points = make_sweep(rng, objects, opts.lidar_points, world.buildings(ego))
        msg = pointcloud_message(points, cap, "lidar_top")
        yield Out(log, order, cap, topic, PointCloud.DESCRIPTOR.full_name, msg.SerializeToString())


def _front(world: World, opts: Options, clock: Clock, order: int, topic: str) -> Iterator[Out]:
    encoder = H264Encoder(WIDTH, HEIGHT, 15, 30, crf=opts.crf)
    for k, (cap, log) in enumerate(clock):
        unit, _ = encoder.encode(render_frame(k, world.view(_rel(world, cap)), WIDTH, HEIGHT))
        msg = CompressedVideo(frame_id="camera_front", data=unit, format="h264")
        msg.timestamp.FromNanoseconds(cap)
        yield Out(
            log, order, cap, topic, CompressedVideo.DESCRIPTOR.full_name, msg.SerializeToString()
        )
    if encoder.flush():
        raise RuntimeError("H264Encoder held frames back; one access unit per frame is required")


def _rear(
    world: World, opts: Options, clock: Clock, order: int, truth: TruthCollector, path: Path
) -> Iterator[Out]:
    """Rear camera: access units go to the side-car file, frame times to the recording."""
    encoder = H264Encoder(WIDTH, HEIGHT, 10, 20, crf=opts.crf)
    with path.open("wb") as sidecar:
        for k, (cap, log) in enumerate(clock):
            view = world.view(_rel(world, cap), facing_rear=True)
            unit, _ = encoder.encode(render_frame(k, view, WIDTH, HEIGHT))
            sidecar.write(unit)
            truth.add_sidecar_frame(REAR_TOPIC, cap, unit)
            msg = FrameTime(frame_index=k)
            msg.timestamp.FromNanoseconds(cap)
            topic = REAR_TOPIC + "/frame_times"
            yield Out(
                log, order, cap, topic, FrameTime.DESCRIPTOR.full_name, msg.SerializeToString()
            )
        if encoder.flush():
            raise RuntimeError(
                "H264Encoder held frames back; one access unit per frame is required"
            )


_PROTO_CLASSES: dict[str, Any] = {
    cls.DESCRIPTOR.full_name: cls
    for cls in (CompressedVideo, LocationFix, PointCloud, State, ObjectList, FrameTime)
}


@functools.cache
def schema_record(name: str) -> tuple[str, bytes, str]:
    """(schema encoding, schema data, message encoding) of a schema name."""
    if name == "drivecat.Imu":
        return "jsonschema", json.dumps(IMU_SCHEMA, sort_keys=True).encode(), "json"
    fds = build_file_descriptor_set(_PROTO_CLASSES[name])
    return "protobuf", fds.SerializeToString(), "protobuf"
