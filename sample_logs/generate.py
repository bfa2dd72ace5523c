"""Write a synthetic drive the way a car's recorder would, with its ground truth.

``python -m sample_logs.generate --out DIR [--seconds N] [--seed S] [--variant V ...]
[--split-every SECONDS] [--lidar-points N] [--crf N]`` or ``generate(out, ...)`` writes
into DIR:

- ``rec_0000.mcap``, ``rec_0001.mcap``, ...: all topics mixed in log-time order, protobuf
  (and one JSON topic), zstd chunks, statistics, chunk and message indexes; a new file every
  ``split_every`` seconds of log time; a ``device`` metadata record in each, and a
  ``calibration.json`` attachment in the first;
- ``truth.json``: the ground truth (see ``sample_logs.truth``) and ``intersections.geojson``;
- with ``sidecar``: ``camera_rear.h264`` and ``drive.json``.

Every message's ``log_time`` is its capture time plus a small deterministic latency;
``publish_time`` is the capture time; ``sequence`` counts per topic over the whole drive.
The same options give the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import io
import json
import sys
from queue import Queue
from threading import Thread
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np
from foxglove_schemas_protobuf.CompressedVideo_pb2 import CompressedVideo
from foxglove_schemas_protobuf.LocationFix_pb2 import LocationFix
from foxglove_schemas_protobuf.PointCloud_pb2 import PointCloud
from mcap.reader import make_reader
from mcap.records import Channel, Message
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType, Writer
from mcap_protobuf.schema import build_file_descriptor_set

from sample_logs.camera import H264Encoder, render_frame
from sample_logs.lidar import make_sweep, pointcloud_message
from sample_logs.truth import TruthCollector
from sample_logs.world import World
from schemas.messages import FrameTime, Object, ObjectList, State

WIDTH, HEIGHT = 640, 360
CHUNK_SIZE = 1024 * 1024
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


class _Out(NamedTuple):
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


def generate(
    out: Path,
    seconds: float = 60,
    seed: int = 0,
    variants: Sequence[str] = (),
    split_every: float = 30,
    lidar_points: int = 30000,
    crf: int = 28,
) -> Path:
    """Write one drive into ``out`` (created if missing) and return ``out``.

    ValueError for an unknown variant, a non-positive duration or split, or negative points.
    Files of an earlier drive in ``out`` with the same names are overwritten.
    """
    try:
        chosen = frozenset(Variant(v) for v in variants)
    except ValueError as err:
        raise ValueError(f"generate: {err}; known: {[v.value for v in Variant]}") from None
    if seconds <= 0 or split_every <= 0 or lidar_points < 0:
        raise ValueError(f"generate: bad seconds={seconds}, split_every={split_every} or points")
    opts = Options(float(seconds), seed, chosen, float(split_every), lidar_points, crf)
    out.mkdir(parents=True, exist_ok=True)
    world = World(seed, opts.seconds, night=Variant.NIGHT in chosen)
    truth = TruthCollector()
    streams = _streams(world, opts, truth, out)
    recorder = _Recorder(out, world, int(opts.split_every * 1e9), truth, _calibration(opts))
    for msg in heapq.merge(*streams):
        recorder.write(msg)
    files = recorder.close()
    cut = _truncate(files[-1], len(files) - 1, opts, truth) if Variant.TRUNCATED in chosen else None
    if Variant.SIDECAR in chosen:
        _write_json(out / "drive.json", _drive_json(world))
    points = world.intersections()
    _write_json(out / "intersections.geojson", _geojson(points))
    body = truth.build(points)
    doc: dict[str, Any] = {
        "generator": {
            "seed": seed,
            "seconds": opts.seconds,
            "variants": sorted(v.value for v in chosen),
            "split_every": opts.split_every,
            "lidar_points": lidar_points,
            "crf": crf,
        },
        "drive_id": world.drive_id,
        "device": world.identity.as_metadata(),
        "city": world.city.name,
        **body,
        "files": _files_truth(out, files, truth, chosen),
    }
    if cut is not None:
        doc["truncated"] = cut
    _write_json(out / "truth.json", doc)
    return out


# ---------------------------------------------------------------------------- streams


def _streams(world: World, opts: Options, truth: TruthCollector, out: Path) -> list[Iterator[_Out]]:
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
            streams.append(_prefetch(_rear(world, opts, clock, order, truth, out / REAR_FILE)))
        elif sensor.topic == FRONT_TOPIC:
            streams.append(_prefetch(_front(world, opts, clock, order, sensor.topic)))
        else:
            streams.append(makers[sensor.topic](world, opts, clock, order, sensor.topic))
    return streams


def _prefetch(messages: Iterator[_Out], depth: int = 16) -> Iterator[_Out]:
    """Run a camera stream in a thread: x264 and numpy release the GIL, so rendering and
    encoding overlap with the other sensors. The messages and their order do not change."""
    queue: Queue[_Out | BaseException | None] = Queue(maxsize=depth)

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


def _imu(world: World, opts: Options, clock: Clock, order: int, topic: str) -> Iterator[_Out]:
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
        yield _Out(log, order, cap, topic, "drivecat.Imu", data.encode())


def _state(world: World, opts: Options, clock: Clock, order: int, topic: str) -> Iterator[_Out]:
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
        yield _Out(log, order, cap, topic, State.DESCRIPTOR.full_name, msg.SerializeToString())


def _gps(world: World, opts: Options, clock: Clock, order: int, topic: str) -> Iterator[_Out]:
    for cap, log in clock:
        ego = world.ego(_rel(world, cap))
        msg = LocationFix(frame_id="gps", latitude=ego.lat, longitude=ego.lon)
        msg.altitude = world.city.altitude_m
        msg.position_covariance.extend([0.0004, 0, 0, 0, 0.0004, 0, 0, 0, 0.0016])
        msg.position_covariance_type = LocationFix.PositionCovarianceType.DIAGONAL_KNOWN
        msg.timestamp.FromNanoseconds(cap)
        yield _Out(
            log, order, cap, topic, LocationFix.DESCRIPTOR.full_name, msg.SerializeToString()
        )


def _objects(world: World, opts: Options, clock: Clock, order: int, topic: str) -> Iterator[_Out]:
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
        yield _Out(log, order, cap, topic, ObjectList.DESCRIPTOR.full_name, msg.SerializeToString())


def _lidar(world: World, opts: Options, clock: Clock, order: int, topic: str) -> Iterator[_Out]:
    for k, (cap, log) in enumerate(clock):
        t = _rel(world, cap)
        ego = world.ego(t)
        objects = [(o.object_class, o.x, o.y) for o in world.objects(t, ego, max_range=80.0)]
        rng = np.random.default_rng([opts.seed, 6, k])
        points = make_sweep(rng, objects, opts.lidar_points, world.buildings(ego))
        msg = pointcloud_message(points, cap, "lidar_top")
        yield _Out(log, order, cap, topic, PointCloud.DESCRIPTOR.full_name, msg.SerializeToString())


def _front(world: World, opts: Options, clock: Clock, order: int, topic: str) -> Iterator[_Out]:
    encoder = H264Encoder(WIDTH, HEIGHT, 15, 30, crf=opts.crf)
    for k, (cap, log) in enumerate(clock):
        unit, _ = encoder.encode(render_frame(k, world.view(_rel(world, cap)), WIDTH, HEIGHT))
        msg = CompressedVideo(frame_id="camera_front", data=unit, format="h264")
        msg.timestamp.FromNanoseconds(cap)
        yield _Out(
            log, order, cap, topic, CompressedVideo.DESCRIPTOR.full_name, msg.SerializeToString()
        )
    if encoder.flush():
        raise RuntimeError("H264Encoder held frames back; one access unit per frame is required")


def _rear(
    world: World, opts: Options, clock: Clock, order: int, truth: TruthCollector, path: Path
) -> Iterator[_Out]:
    """Rear camera: access units go to the side-car file, frame times to the recording."""
    encoder = H264Encoder(WIDTH, HEIGHT, 10, 20, crf=opts.crf)
    with path.open("wb") as sidecar:
        for k, (cap, log) in enumerate(clock):
            view = world.view(_rel(world, cap), facing_rear=True)
            unit, _ = encoder.encode(render_frame(k, view, WIDTH, HEIGHT))
            sidecar.write(unit)
            truth.add_sidecar_frame(REAR_TOPIC, REAR_FILE, cap, unit)
            msg = FrameTime(frame_index=k)
            msg.timestamp.FromNanoseconds(cap)
            topic = REAR_TOPIC + "/frame_times"
            yield _Out(
                log, order, cap, topic, FrameTime.DESCRIPTOR.full_name, msg.SerializeToString()
            )
        if encoder.flush():
            raise RuntimeError(
                "H264Encoder held frames back; one access unit per frame is required"
            )


# ---------------------------------------------------------------------------- recording


_PROTO_CLASSES: dict[str, Any] = {
    cls.DESCRIPTOR.full_name: cls
    for cls in (CompressedVideo, LocationFix, PointCloud, State, ObjectList, FrameTime)
}


def _schema_record(name: str) -> tuple[str, bytes, str]:
    """(schema encoding, schema data, message encoding) of a schema name."""
    if name == "drivecat.Imu":
        return "jsonschema", json.dumps(IMU_SCHEMA, sort_keys=True).encode(), "json"
    fds = build_file_descriptor_set(_PROTO_CLASSES[name])
    return "protobuf", fds.SerializeToString(), "protobuf"


class _Recorder:
    """Rotates MCAP files every ``split_ns`` of log time from the first message, like a recorder."""

    def __init__(
        self, out: Path, world: World, split_ns: int, truth: TruthCollector, calibration: bytes
    ) -> None:
        self.out, self.world, self.split_ns, self.truth = out, world, split_ns, truth
        self.calibration = calibration
        self.files: list[Path] = []
        self.start_ns: int | None = None
        self.writer: Writer | None = None
        self.stream: IO[bytes] | None = None
        self.channels: dict[str, int] = {}
        self.sequence: dict[str, int] = {}
        self.window = -1
        self.schemas: dict[str, tuple[str, bytes, str]] = {}

    def write(self, m: _Out) -> None:
        if self.start_ns is None:
            self.start_ns = m.log_time_ns
        window = (m.log_time_ns - self.start_ns) // self.split_ns
        if self.writer is None or window != self.window:
            self._open(m.log_time_ns)
            self.window = window
        assert self.writer is not None
        if m.topic not in self.channels:
            if m.schema not in self.schemas:
                self.schemas[m.schema] = _schema_record(m.schema)
            enc, data, msg_enc = self.schemas[m.schema]
            schema_id = self.writer.register_schema(m.schema, enc, data)
            self.channels[m.topic] = self.writer.register_channel(m.topic, msg_enc, schema_id)
        seq = self.sequence.get(m.topic, 0)
        self.sequence[m.topic] = seq + 1
        self.writer.add_message(
            self.channels[m.topic], m.log_time_ns, m.data, m.publish_time_ns, seq
        )
        encoding = self.schemas[m.schema][2]
        self.truth.add_message(
            len(self.files) - 1, m.topic, m.schema, encoding, m.log_time_ns, m.data
        )

    def _open(self, log_time_ns: int) -> None:
        self._finish()
        path = self.out / f"rec_{len(self.files):04d}.mcap"
        self.files.append(path)
        self.stream = path.open("wb")
        self.writer = Writer(self.stream, chunk_size=CHUNK_SIZE, compression=CompressionType.ZSTD)
        self.writer.start(profile="", library="drivecat sample_logs")
        self.writer.add_metadata("device", self.world.identity.as_metadata())
        if len(self.files) == 1:
            self.writer.add_attachment(
                log_time_ns, log_time_ns, "calibration.json", "application/json", self.calibration
            )
        self.channels = {}

    def _finish(self) -> None:
        if self.writer is not None and self.stream is not None:
            self.writer.finish()
            self.stream.close()
        self.writer, self.stream = None, None

    def close(self) -> list[Path]:
        self._finish()
        return self.files


def _truncate(path: Path, file_idx: int, opts: Options, truth: TruthCollector) -> dict[str, Any]:
    """Cut ``path`` partway through its last chunk; tell truth what a reader can still recover."""
    data = path.read_bytes()
    summary = make_reader(io.BytesIO(data)).get_summary()
    if summary is None or not summary.chunk_indexes:
        raise RuntimeError(f"{path.name}: no chunk index to truncate by")
    chunks = sorted(summary.chunk_indexes, key=lambda c: c.chunk_start_offset)
    last = chunks[-1]
    rng = np.random.default_rng([opts.seed, 8])
    cut = last.chunk_start_offset + int(last.chunk_length * rng.uniform(0.3, 0.7))
    topics: dict[int, str] = {}
    recoverable: dict[str, int] = {}
    kept = 0
    for chunk in chunks[:-1]:  # every chunk before the last ends before the cut
        raw = data[chunk.chunk_start_offset : chunk.chunk_start_offset + chunk.chunk_length]
        for rec in StreamReader(io.BytesIO(raw), skip_magic=True).records:
            if isinstance(rec, Channel):
                topics[rec.id] = rec.topic
            elif isinstance(rec, Message):
                topic = topics.get(rec.channel_id) or summary.channels[rec.channel_id].topic
                recoverable[topic] = recoverable.get(topic, 0) + 1
                kept += 1
    written = truth.counts(file_idx)
    truth.truncate(file_idx, kept)
    if truth.counts(file_idx) != dict(sorted(recoverable.items())):
        raise RuntimeError(f"{path.name}: chunk contents disagree with the write order")
    path.write_bytes(data[:cut])
    return {
        "file": path.name,
        "original_bytes": len(data),
        "cut_offset": cut,
        "complete_chunks": len(chunks) - 1,
        "written": written,
        "recoverable": {t: recoverable.get(t, 0) for t in written},
        "lost": {t: n - recoverable.get(t, 0) for t, n in written.items()},
    }


# ---------------------------------------------------------------------------- side files


def _calibration(opts: Options) -> bytes:
    # A pinhole with a 90 degree horizontal field of view, as camera.render_frame draws.
    camera = {
        "width": WIDTH,
        "height": HEIGHT,
        "fx": WIDTH / 2,
        "fy": WIDTH / 2,
        "cx": WIDTH / 2,
        "cy": HEIGHT / 2,
    }
    cal: dict[str, Any] = {
        "frame": "base_link: x forward, y left, z up, metres, at the ground below the lidar",
        "cameras": {"camera_front": {**camera, "translation": [1.5, 0.0, 1.5], "yaw_deg": 0.0}},
        "lidars": {"lidar_top": {"translation": [0.0, 0.0, 1.8], "rotation_xyzw": [0, 0, 0, 1]}},
    }
    if Variant.SIDECAR in opts.variants:
        cal["cameras"]["camera_rear"] = {
            **camera,
            "translation": [-1.0, 0.0, 1.4],
            "yaw_deg": 180.0,
        }
    return json.dumps(cal, indent=1, sort_keys=True).encode()


def _drive_json(world: World) -> dict[str, Any]:
    return {
        "drive_id": world.drive_id,
        **world.identity.as_metadata(),
        "videos": [
            {
                "file": REAR_FILE,
                "topic": REAR_TOPIC,
                "timestamps_topic": REAR_TOPIC + "/frame_times",
            }
        ],
    }


def _geojson(points: Sequence[tuple[float, float]]) -> dict[str, Any]:
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {},
        }
        for lat, lon in points
    ]
    return {"type": "FeatureCollection", "features": features}


def _files_truth(
    out: Path, files: list[Path], truth: TruthCollector, variants: frozenset[Variant]
) -> list[Any]:
    rows = []
    extra = [out / REAR_FILE, out / "drive.json"] if Variant.SIDECAR in variants else []
    for i, path in enumerate([*files, *extra]):
        data = path.read_bytes()
        row: dict[str, Any] = {
            "name": path.name,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        if i < len(files):
            row["message_count"] = sum(truth.counts(i).values())
            row["truncated"] = Variant.TRUNCATED in variants and i == len(files) - 1
        rows.append(row)
    return rows


def _write_json(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc, indent=1) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sample_logs.generate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write the drive into")
    parser.add_argument("--seconds", type=float, default=60.0, help="drive length (default 60)")
    parser.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    parser.add_argument(
        "--variant", action="append", default=[], choices=[v.value for v in Variant]
    )
    parser.add_argument(
        "--split-every", type=float, default=30.0, help="seconds per file (default 30)"
    )
    parser.add_argument(
        "--lidar-points", type=int, default=30000, help="points per sweep (default 30000)"
    )
    parser.add_argument(
        "--crf", type=int, default=28, help="x264 quality, higher is smaller (default 28)"
    )
    args = parser.parse_args(argv)
    try:
        out = generate(
            args.out,
            args.seconds,
            args.seed,
            args.variant,
            args.split_every,
            args.lidar_points,
            args.crf,
        )
    except ValueError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
