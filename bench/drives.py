"""Drives for the ingest bench that the generator does not make: each a shape of real data.

- ``lidar_heavy``: one lidar topic about 90% of the bytes (a 64-beam sweep, 10 Hz, points
  quantized to the sensor's 4 mm range step and 8-bit intensity, so it compresses like a
  real sensor, not like random floats), with IMU, GPS and odometry beside it;
- ``many_topics``: about 200 topics of small ROS 1 messages at 10 to 100 Hz, as a real ROS
  system records (``/tf`` at 100 Hz, ``/diagnostics``, per-module status and outputs), in
  one MCAP file with ``ros1`` encoding, or the same messages as a ROS 1 bag
  (``many_topics_bag``).

Written with the mcap library and rosbags only, with a fixed seed; each is made once into
its folder and reused (``<folder>.done`` beside it says the folder is complete).
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from foxglove_schemas_protobuf.PointCloud_pb2 import PointCloud
from mcap.well_known import SchemaEncoding
from mcap.writer import CompressionType, Writer
from mcap_protobuf.schema import build_file_descriptor_set

START_NS = 1_780_000_000_000_000_000
_STRING_MD5 = "992ce8a1687cec8c8bd883ec73ca41d1"  # std_msgs/String


def _marker(out: Path) -> Path:
    return out.parent / f"{out.name}.done"  # beside the drive: not one of its inputs


def _cached(out: Path) -> bool:
    if _marker(out).exists():
        return True
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    return False


def _done(out: Path) -> None:
    _marker(out).write_text("")


def _sweep(rng: np.random.Generator, k: int, beams: int, columns: int) -> bytes:
    """One sweep as foxglove.PointCloud data: x, y, z float32 and intensity uint8 per point,
    ranges from a street-like scene (ground, walls at 8 to 30 m, some objects) plus noise,
    quantized to 4 mm."""
    azimuth = np.linspace(0, 2 * np.pi, columns, endpoint=False)[None, :]
    elevation = np.linspace(-0.4, 0.05, beams)[:, None]
    walls = 8.0 + 22.0 * (0.5 + 0.5 * np.sin(3 * azimuth + 0.02 * k)) ** 2
    ground = np.where(elevation < -0.02, 1.9 / np.maximum(-np.sin(elevation), 1e-3), np.inf)
    ranges = np.minimum(walls, ground) + rng.normal(0, 0.02, (beams, columns))
    ranges = np.clip(np.round(ranges / 0.004) * 0.004, 0.5, 120.0)
    x = (ranges * np.cos(elevation) * np.cos(azimuth)).astype(np.float32)
    y = (ranges * np.cos(elevation) * np.sin(azimuth)).astype(np.float32)
    z = (ranges * np.sin(elevation)).astype(np.float32)
    intensity = np.clip(40 + 30 * np.cos(azimuth * 5) + rng.normal(0, 8, x.shape), 0, 255)
    points = np.zeros(x.size, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("i", "u1")])
    points["x"], points["y"], points["z"] = x.ravel(), y.ravel(), z.ravel()
    points["i"] = intensity.astype(np.uint8).ravel()
    return points.tobytes()


def lidar_heavy(out: Path, seconds: int, seed: int = 5) -> Path:
    """The lidar-heavy drive in ``out`` (one MCAP file per minute, as a recorder splits)."""
    if _cached(out):
        return out
    rng = np.random.default_rng(seed)
    minute_steps = 600  # lidar sweeps per file: a minute at 10 Hz
    cloud_data = build_file_descriptor_set(PointCloud).SerializeToString()
    for first in range(0, seconds * 10, minute_steps):
        with open(out / f"rec_{first // minute_steps:04d}.mcap", "wb") as f:
            writer = Writer(f, compression=CompressionType.ZSTD)
            writer.start(library="bench")
            cloud_schema = writer.register_schema("foxglove.PointCloud", "protobuf", cloud_data)
            json_schema = writer.register_schema("Reading", SchemaEncoding.JSONSchema, b"{}")
            lidar = writer.register_channel("/lidar/top/points", "protobuf", cloud_schema)
            small = {t: writer.register_channel(t, "json", json_schema) for t in _LIDAR_SIDE}
            for k in range(first, min(first + minute_steps, seconds * 10)):
                t = START_NS + k * 100_000_000
                cloud = PointCloud(point_stride=13, data=_sweep(rng, k, 64, 1024))
                cloud.timestamp.FromNanoseconds(t)
                cloud.frame_id = "lidar"
                for name, offset, kind in (("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("i", 12, 1)):
                    field = cloud.fields.add()
                    field.name, field.offset, field.type = name, offset, kind
                writer.add_message(lidar, t, cloud.SerializeToString(), t)
                for j in range(10):  # IMU and odometry at 100 Hz, GPS at 10 Hz: small JSON
                    ti = t + j * 10_000_000
                    ax, ay = rng.normal(0, 0.3, 2)
                    imu = b'{"ax": %.4f, "ay": %.4f, "az": 9.81}' % (ax, ay)
                    writer.add_message(small["/imu"], ti, imu, ti)
                    odom = b'{"v": %.3f}' % (10 + rng.normal())
                    writer.add_message(small["/odom"], ti + 1, odom, ti + 1)
                fix = b'{"lat": 37.77, "lon": -122.42}'
                writer.add_message(small["/gps"], t + 2, fix, t + 2)
            writer.finish()
    _done(out)
    return out


_LIDAR_SIDE = ("/imu", "/odom", "/gps")


def _topics(count: int) -> list[tuple[str, int, int]]:
    """(topic, rate in Hz, typical message bytes) of the many-topic drive."""
    topics = [("/tf", 100, 420), ("/diagnostics", 10, 900), ("/rosout", 20, 160)]
    rates = (10, 20, 25, 50, 100)
    for i in range(count - len(topics)):
        module = f"/module_{i // 4:02d}"
        kind = ("status", "output", "debug", "heartbeat")[i % 4]
        topics.append((f"{module}/{kind}", rates[i % len(rates)], 40 + (i * 37) % 300))
    return topics


def _many_messages(seconds: int, count: int, seed: int) -> Iterator[tuple[str, int, bytes]]:
    """(topic, log time, ROS 1 std_msgs/String bytes) in time order."""
    rng = np.random.default_rng(seed)
    topics = _topics(count)
    period = {topic: 1_000_000_000 // rate for topic, rate, _ in topics}
    size = {topic: n for topic, _, n in topics}
    phase = {topic: int(rng.integers(0, period[topic])) for topic, _, _ in topics}
    words = [b"ok", b"warn", b"value", b"frame", b"pose", b"latency", b"count"]
    end = seconds * 1_000_000_000
    for tick in range(0, end, 10_000_000):  # a 100 Hz tick: every topic due in it
        for topic, _, _ in topics:
            p, first = period[topic], phase[topic]
            k = (tick - first + p - 1) // p if tick > first else 0
            t = first + k * p
            if tick <= t < tick + 10_000_000 and t < end:
                text = b" ".join(words[(k + j) % len(words)] for j in range(size[topic] // 6))
                text += b" %d" % k
                yield topic, START_NS + t, struct.pack("<I", len(text)) + text


def many_topics(out: Path, seconds: int, count: int = 200, seed: int = 6) -> Path:
    """The many-topic drive as one MCAP file (ros1 encoding, zstd chunks of 1 MiB)."""
    if _cached(out):
        return out
    with open(out / "rec.mcap", "wb") as f:
        writer = Writer(f, compression=CompressionType.ZSTD)
        writer.start(profile="ros1", library="bench")
        schema = writer.register_schema("std_msgs/String", "ros1msg", b"string data")
        ids = {
            topic: writer.register_channel(topic, "ros1", schema, {"md5sum": _STRING_MD5})
            for topic, _, _ in _topics(count)
        }
        for topic, t, data in _many_messages(seconds, count, seed):
            writer.add_message(ids[topic], t, data, t)
        writer.finish()
    _done(out)
    return out


def many_topics_bag(
    out: Path, seconds: int, count: int = 200, seed: int = 6, compression: str = ""
) -> Path:
    """The same messages as :func:`many_topics`, as a ROS 1 bag (chunks uncompressed, or
    ``compression`` "bz2" or "lz4", as ``rosbag record`` can write them)."""
    from rosbags.rosbag1 import Writer as BagWriter

    if _cached(out):
        return out
    bag = BagWriter(out / "rec.bag")
    if compression:
        bag.set_compression(BagWriter.CompressionFormat[compression.upper()])
    with bag:
        conns = {
            topic: bag.add_connection(
                topic, "std_msgs/msg/String", msgdef="string data", md5sum=_STRING_MD5
            )
            for topic, _, _ in _topics(count)
        }
        for topic, t, data in _many_messages(seconds, count, seed):
            bag.write(conns[topic], t, data)
    _done(out)
    return out
