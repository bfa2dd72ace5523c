"""Write a synthetic drive the way a car's recorder would, with its ground truth.

``python -m sample_logs.generate --out DIR [--seconds N] [--seed S] [--variant V ...]
[--split-every SECONDS] [--lidar-points N] [--crf N]`` or ``generate(out, ...)`` writes
into DIR:

- ``rec_0000.mcap``, ``rec_0001.mcap``, ...: all topics mixed in log-time order, protobuf
  and one JSON topic (or all ROS 2 CDR with the ``ros2`` variant, see ``sample_logs.ros2``),
  zstd chunks, statistics, chunk and message indexes; a new file every
  ``split_every`` seconds of log time; a ``device`` metadata record in each, and a
  ``calibration.json`` attachment in the first;
- ``truth.json``: the ground truth (see ``sample_logs.truth``) and ``intersections.geojson``;
- ``boxes.json``: the true 2D box of every road user in every camera frame
  (``sample_logs.boxes``);
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
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

import numpy as np
from mcap.reader import make_reader
from mcap.records import Channel, Chunk, Message
from mcap.stream_reader import StreamReader, breakup_chunk
from mcap.writer import CompressionType, Writer

from sample_logs import ros2 as ros2_format
from sample_logs.boxes import BOXES_FILE, write_boxes
from sample_logs.sensors import (
    HEIGHT,
    REAR_FILE,
    REAR_TOPIC,
    WIDTH,
    Options,
    Out,
    Variant,
    schema_record,
    streams,
)
from sample_logs.truth import TruthCollector
from sample_logs.world import Conditions, World

CHUNK_SIZE = 1024 * 1024
_SIDE_FILES = (REAR_FILE, "drive.json", "truth.json", "intersections.geojson", BOXES_FILE)


def generate(
    out: Path,
    seconds: float = 60,
    seed: int = 0,
    variants: Sequence[str] = (),
    split_every: float = 30,
    lidar_points: int = 30000,
    crf: int = 28,
    conditions: Conditions | None = None,
) -> Path:
    """Write one drive into ``out`` (created if missing) and return ``out``.

    ``conditions`` forces the light, weather or device version instead of drawing them from
    the seed (see ``sample_logs.fleet``).

    ValueError for an unknown variant, a non-positive duration or split, or negative points.
    The files of an earlier generated drive in ``out`` are removed first; others are kept.
    """
    known = [v.value for v in Variant]
    unknown = [v for v in variants if v not in known]
    if unknown:
        raise ValueError(f"generate: unknown variant {unknown[0]!r}; known: {known}")
    chosen = frozenset(Variant(v) for v in variants)
    if seconds <= 0 or split_every <= 0 or lidar_points < 0:
        raise ValueError(f"generate: bad seconds={seconds}, split_every={split_every} or points")
    opts = Options(float(seconds), seed, chosen, float(split_every), lidar_points, crf)
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob("rec_*.mcap"), *(out / n for n in _SIDE_FILES)]:
        stale.unlink(missing_ok=True)
    world = World(seed, opts.seconds, night=Variant.NIGHT in chosen, conditions=conditions)
    truth = TruthCollector()
    topics = streams(world, opts, truth, out)
    split_ns = int(opts.split_every * 1e9)
    ros2 = Variant.ROS2 in chosen
    recorder = _Recorder(out, world, split_ns, truth, _calibration(opts), ros2)
    for msg in heapq.merge(*topics):
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
            **({"conditions": asdict(conditions)} if conditions is not None else {}),
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
    write_boxes(out / BOXES_FILE, world, body["videos"], WIDTH, HEIGHT, frozenset({REAR_TOPIC}))
    return out


# ---------------------------------------------------------------------------- recording


class _Recorder:
    """Rotates MCAP files every ``split_ns`` of log time from the first message, like a recorder."""

    def __init__(
        self,
        out: Path,
        world: World,
        split_ns: int,
        truth: TruthCollector,
        calibration: bytes,
        ros2: bool,
    ) -> None:
        self.out, self.world, self.split_ns, self.truth = out, world, split_ns, truth
        self.calibration = calibration
        self.ros2 = ros2
        self.files: list[Path] = []
        self.start_ns: int | None = None
        self.writer: Writer | None = None
        self.stream: IO[bytes] | None = None
        self.channels: dict[str, int] = {}
        self.sequence: dict[str, int] = {}
        self.window = -1
        self.schemas: dict[str, tuple[str, bytes, str]] = {}

    def write(self, m: Out) -> None:
        if self.start_ns is None:
            self.start_ns = m.log_time_ns
        window = (m.log_time_ns - self.start_ns) // self.split_ns
        if self.writer is None or window != self.window:
            self._open(m.log_time_ns)
            self.window = window
        assert self.writer is not None
        schema, data, written_as = m.schema, m.data, None
        if self.ros2:
            schema, data = ros2_format.convert(m.schema, m.data)
            written_as = (schema, "cdr")
        if m.topic not in self.channels:
            if schema not in self.schemas:
                self.schemas[schema] = self._schema_record(schema)
            enc, schema_data, msg_enc = self.schemas[schema]
            schema_id = self.writer.register_schema(schema, enc, schema_data)
            self.channels[m.topic] = self.writer.register_channel(m.topic, msg_enc, schema_id)
        seq = self.sequence.get(m.topic, 0)
        self.sequence[m.topic] = seq + 1
        self.writer.add_message(self.channels[m.topic], m.log_time_ns, data, m.publish_time_ns, seq)
        encoding = schema_record(m.schema)[2]
        self.truth.add_message(
            len(self.files) - 1, m.topic, m.schema, encoding, m.log_time_ns, m.data, written_as
        )

    def _schema_record(self, name: str) -> tuple[str, bytes, str]:
        if self.ros2:
            return "ros2msg", ros2_format.MSGDEFS[name].encode(), "cdr"
        return schema_record(name)

    def _open(self, log_time_ns: int) -> None:
        self._finish()
        path = self.out / f"rec_{len(self.files):04d}.mcap"
        self.files.append(path)
        self.stream = path.open("wb")
        self.writer = Writer(self.stream, chunk_size=CHUNK_SIZE, compression=CompressionType.ZSTD)
        self.writer.start(profile="ros2" if self.ros2 else "", library="drivecat sample_logs")
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
    for index in chunks[:-1]:  # every chunk before the last ends before the cut
        raw = data[index.chunk_start_offset : index.chunk_start_offset + index.chunk_length]
        chunk = next(iter(StreamReader(io.BytesIO(raw), skip_magic=True, emit_chunks=True).records))
        if not isinstance(chunk, Chunk):
            raise RuntimeError(f"{path.name}: no chunk at offset {index.chunk_start_offset}")
        for rec in breakup_chunk(chunk):
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
        # The renderer (sample_logs.scene) draws from the ego origin, 1.5 m above the road,
        # facing forward or back: the calibration must say the same, or projections miss.
        "cameras": {"camera_front": {**camera, "translation": [0.0, 0.0, 1.5], "yaw_deg": 0.0}},
        "lidars": {"lidar_top": {"translation": [0.0, 0.0, 1.8], "rotation_xyzw": [0, 0, 0, 1]}},
    }
    if Variant.SIDECAR in opts.variants:
        cal["cameras"]["camera_rear"] = {
            **camera,
            "translation": [0.0, 0.0, 1.5],
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
        with path.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        row: dict[str, Any] = {"name": path.name, "bytes": path.stat().st_size, "sha256": digest}
        if i < len(files):
            row["message_count"] = sum(truth.counts(i).values())
            row["truncated"] = Variant.TRUNCATED in variants and i == len(files) - 1
        rows.append(row)
    return rows


def _write_json(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc, indent=1) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sample_logs.generate",
        description=__doc__.split("\n")[0],
        epilog="example: python -m sample_logs.generate --out /tmp/drive --seconds 30 "
        "--variant sidecar --lidar-points 2000",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write the drive into")
    parser.add_argument("--seconds", type=float, default=60.0, help="drive length (default 60)")
    parser.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        choices=[v.value for v in Variant],
        help="repeatable: sidecar (rear camera .h264 + drive.json), night, truncated, ros2",
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
