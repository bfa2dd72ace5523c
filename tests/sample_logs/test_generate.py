"""The generator writes what a recorder would, byte-for-byte reproducibly.

Everything is read back with the mcap library and PyAV, never through the generator.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import av
import pytest
from google.protobuf.descriptor_pb2 import FileDescriptorSet
from mcap.decoder import DecoderFactory as BaseDecoderFactory
from mcap.exceptions import McapError
from mcap.reader import make_reader
from mcap.records import Channel, Footer, Message, Schema
from mcap.stream_reader import StreamReader
from mcap_protobuf.decoder import DecoderFactory
from mcap_ros2.decoder import DecoderFactory as Ros2DecoderFactory

from sample_logs.camera import read_barcode
from sample_logs.generate import generate

MAGIC = b"\x89MCAP0\r\n"
SCHEMAS = {
    "/camera/front/video": ("foxglove.CompressedVideo", "protobuf", "protobuf"),
    "/lidar/top/points": ("foxglove.PointCloud", "protobuf", "protobuf"),
    "/gps/fix": ("foxglove.LocationFix", "protobuf", "protobuf"),
    "/perception/objects": ("drivecat.perception.ObjectList", "protobuf", "protobuf"),
    "/vehicle/state": ("drivecat.vehicle.State", "protobuf", "protobuf"),
    "/imu/data": ("drivecat.Imu", "jsonschema", "json"),
}
RATES_HZ = {
    "/camera/front/video": 15,
    "/lidar/top/points": 10,
    "/gps/fix": 10,
    "/perception/objects": 10,
    "/vehicle/state": 20,
    "/imu/data": 200,
}


class JsonDecoderFactory(BaseDecoderFactory):
    def decoder_for(self, message_encoding: str, schema: Schema | None) -> Any:
        return json.loads if message_encoding == "json" else None


class Read(NamedTuple):
    file: str
    topic: str
    schema: Schema
    channel: Channel
    message: Message
    decoded: Any


def recordings(folder: Path) -> list[Path]:
    return sorted(folder.glob("rec_*.mcap"))


def read_messages(folder: Path) -> list[Read]:
    """Every readable message of a drive, files in name order, decoded; a cut file is read
    record by record until the cut (its complete chunks)."""
    out: list[Read] = []
    for path in recordings(folder):
        # mcap_protobuf caches decoders by schema id, and ids restart in every file.
        factories = [DecoderFactory(), Ros2DecoderFactory(), JsonDecoderFactory()]
        for schema, channel, message in _raw(path):
            decoder = next(
                d
                for f in factories
                if (d := f.decoder_for(channel.message_encoding, schema)) is not None
            )
            out.append(
                Read(path.name, channel.topic, schema, channel, message, decoder(message.data))
            )
    return out


def _raw(path: Path) -> Iterator[tuple[Schema, Channel, Message]]:
    data = path.read_bytes()
    if data.endswith(MAGIC):
        for schema, channel, message in make_reader(io.BytesIO(data)).iter_messages():
            assert schema is not None, channel.topic
            yield schema, channel, message
        return
    schemas: dict[int, Schema] = {}
    channels: dict[int, Channel] = {}
    try:
        for rec in StreamReader(io.BytesIO(data)).records:
            if isinstance(rec, Schema):
                schemas[rec.id] = rec
            elif isinstance(rec, Channel):
                channels[rec.id] = rec
            elif isinstance(rec, Message):
                ch = channels[rec.channel_id]
                yield schemas[ch.schema_id], ch, rec
    except (McapError, EOFError, ValueError):
        return


def truth(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "truth.json").read_text())


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


# ---------------------------------------------------------------------------- tests


def test_same_seed_gives_same_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    args: dict[str, Any] = {"seconds": 3, "lidar_points": 100, "split_every": 2}
    args["variants"] = ("sidecar", "truncated")
    a = digests(generate(tmp_path / "a", seed=5, **args))
    b = digests(generate(tmp_path / "b", seed=5, **args))
    c = digests(generate(tmp_path / "c", seed=6, **args))
    assert {"rec_0000.mcap", "rec_0001.mcap", "camera_rear.h264", "truth.json"} <= a.keys()
    assert a == b
    for name in ("rec_0000.mcap", "camera_rear.h264", "truth.json", "intersections.geojson"):
        assert a[name] != c[name], name


def test_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="variant"):
        generate(tmp_path, seconds=1, variants=("bogus",))
    with pytest.raises(ValueError):
        generate(tmp_path, seconds=0)


def test_recordings_are_complete_indexed_mcaps(small_drive: Path) -> None:
    files = recordings(small_drive)
    assert [p.name for p in files] == ["rec_0000.mcap", "rec_0001.mcap"]
    for i, path in enumerate(files):
        with path.open("rb") as f:
            reader = make_reader(f, decoder_factories=[DecoderFactory(), JsonDecoderFactory()])
            summary = reader.get_summary()
            assert summary is not None and summary.statistics is not None
            assert summary.chunk_indexes and all(
                c.compression == "zstd" for c in summary.chunk_indexes
            )
            assert all(c.message_index_offsets for c in summary.chunk_indexes)
            n = sum(1 for _ in reader.iter_decoded_messages())
            assert n == summary.statistics.message_count > 0
            meta = list(reader.iter_metadata())
            assert [m.name for m in meta] == ["device"]
            assert set(meta[0].metadata) == {
                "device_id",
                "device_version",
                "vehicle_id",
                "operator",
            }
            assert meta[0].metadata == truth(small_drive)["device"]
            attachments = list(reader.iter_attachments())
            if i == 0:
                assert [a.name for a in attachments] == ["calibration.json"]
                calibration = json.loads(attachments[0].data)
                assert calibration["cameras"]["camera_front"]["width"] == 640
                assert "lidar_top" in calibration["lidars"]
            else:
                assert attachments == []
            for ch in summary.channels.values():
                schema = summary.schemas[ch.schema_id]
                assert (schema.name, schema.encoding, ch.message_encoding) == SCHEMAS[ch.topic]


def test_protobuf_schemas_are_self_contained(small_drive: Path) -> None:
    with recordings(small_drive)[0].open("rb") as f:
        summary = make_reader(f).get_summary()
    assert summary is not None
    for schema in summary.schemas.values():
        if schema.encoding != "protobuf":
            assert json.loads(schema.data)["type"] == "object"
            continue
        fds = FileDescriptorSet.FromString(schema.data)
        names = {f.name for f in fds.file}
        for f in fds.file:
            assert set(f.dependency) <= names, f"{schema.name}: {f.name} misses a dependency"
        package, _, message = schema.name.rpartition(".")
        assert any(
            f.package == package and message in {m.name for m in f.message_type} for f in fds.file
        )


def test_timestamps_sequences_rates_and_rotation(small_drive: Path) -> None:
    msgs = read_messages(small_drive)
    doc = truth(small_drive)
    start = min(m.message.log_time for m in msgs)
    assert start == doc["start_ns"]
    assert max(m.message.log_time for m in msgs) + 1 == doc["end_ns"]
    by_topic: dict[str, list[Read]] = {}
    for m in msgs:
        by_topic.setdefault(m.topic, []).append(m)
    assert by_topic.keys() == SCHEMAS.keys()
    for topic, items in by_topic.items():
        assert [m.message.sequence for m in items] == list(range(len(items))), topic
        assert items[0].message.log_time - start < 100_000_000, topic
        assert abs(len(items) - 30 * RATES_HZ[topic]) <= 1, topic
        for m in items:
            latency = m.message.log_time - m.message.publish_time
            assert 0 < latency < 100_000_000, topic
            stamp = m.decoded["timestamp"] if topic == "/imu/data" else None
            if stamp is None:
                ts = m.decoded.timestamp
                assert ts.seconds * 10**9 + ts.nanos == m.message.publish_time, topic
            else:
                assert stamp["sec"] * 10**9 + stamp["nsec"] == m.message.publish_time
    for name in ("rec_0000.mcap", "rec_0001.mcap"):
        times = [m.message.log_time for m in msgs if m.file == name]
        assert times == sorted(times)
        window = {(t - start) // 20_000_000_000 for t in times}
        assert window == {int(name[4:8])}, name


def test_front_camera_barcodes_and_keyframes(small_drive: Path) -> None:
    msgs = [m for m in read_messages(small_drive) if m.topic == "/camera/front/video"]
    frames_truth = truth(small_drive)["videos"]["/camera/front/video"]["frames"]
    assert len(frames_truth) == len(msgs) == 450
    codec = av.CodecContext.create("h264", "r")
    decoded = []
    for m in msgs:
        assert m.decoded.format == "h264"
        decoded += codec.decode(av.Packet(m.decoded.data))
    decoded += codec.decode(None)
    assert len(decoded) == len(msgs)
    assert [read_barcode(f.to_ndarray(format="rgb24")) for f in decoded] == list(range(len(msgs)))
    assert [f.key_frame for f in decoded] == [f["keyframe"] for f in frames_truth]
    assert [i for i, f in enumerate(frames_truth) if f["keyframe"]] == list(range(0, 450, 30))
    for m, f in zip(msgs, frames_truth, strict=True):
        ts = m.decoded.timestamp
        assert f["capture_ns"] == ts.seconds * 10**9 + ts.nanos
        assert f["log_time_ns"] == m.message.log_time


def test_sidecar_video_frame_times_and_drive_json(sidecar_drive: Path) -> None:
    doc = truth(sidecar_drive)
    drive = json.loads((sidecar_drive / "drive.json").read_text())
    assert drive["drive_id"] == doc["drive_id"] == f"{drive['device_id']}_{drive['drive_id'][7:]}"
    assert drive["videos"] == [
        {
            "file": "camera_rear.h264",
            "topic": "/camera/rear/video",
            "timestamps_topic": "/camera/rear/video/frame_times",
        }
    ]
    times = [m for m in read_messages(sidecar_drive) if m.topic == "/camera/rear/video/frame_times"]
    assert times[0].schema.name == "drivecat.vehicle.FrameTime"
    container = av.open(str(sidecar_drive / "camera_rear.h264"), format="h264")
    frames = [
        (read_barcode(f.to_ndarray(format="rgb24")), f.key_frame) for f in container.decode(video=0)
    ]
    container.close()
    assert (
        [b for b, _ in frames] == [m.decoded.frame_index for m in times] == list(range(len(times)))
    )
    assert 190 <= len(frames) <= 200
    rear = doc["videos"]["/camera/rear/video"]["frames"]
    assert [k for _, k in frames] == [f["keyframe"] for f in rear]
    assert [i for i, (_, k) in enumerate(frames) if k] == list(range(0, len(frames), 20))
    for m, f in zip(times, rear, strict=True):
        ts = m.decoded.timestamp
        assert f["capture_ns"] == f["log_time_ns"] == ts.seconds * 10**9 + ts.nanos
    assert doc["topics"]["/camera/rear/video"]["message_count"] == len(frames)
    assert all(s["time_of_day"] == "night" for s in doc["seconds"])


def test_truncated_file_has_no_footer_and_recoverable_counts(truncated_drive: Path) -> None:
    doc = truth(truncated_drive)
    cut = doc["truncated"]
    files = recordings(truncated_drive)
    assert [p.name for p in files] == ["rec_0000.mcap", "rec_0001.mcap"] and cut[
        "file"
    ] == "rec_0001.mcap"
    intact, damaged = files[0].read_bytes(), files[1].read_bytes()
    assert intact.endswith(MAGIC) and not damaged.endswith(MAGIC)
    assert len(damaged) == cut["cut_offset"] < cut["original_bytes"]
    records = []
    with pytest.raises((McapError, EOFError, ValueError)):  # the cut chunk cannot be read
        for rec in StreamReader(io.BytesIO(damaged)).records:
            records.append(rec)
    assert not any(isinstance(r, Footer) for r in records)
    channels = {r.id: r.topic for r in records if isinstance(r, Channel)}
    counts = Counter(channels[r.channel_id] for r in records if isinstance(r, Message))
    assert dict(counts) == {t: n for t, n in cut["recoverable"].items() if n}
    for topic, written in cut["written"].items():
        assert written == cut["recoverable"][topic] + cut["lost"][topic]
        assert written >= 9 * RATES_HZ[topic]  # about 10 s of each topic went into the file
    assert 0 < sum(cut["lost"].values()) < sum(cut["written"].values()) / 2
    readable = Counter(m.topic for m in read_messages(truncated_drive))
    assert {t: e["message_count"] for t, e in doc["topics"].items()} == dict(readable)
