"""One message that does not decode with its schema, inside an otherwise good recording.

It is stored byte for byte, counted in an ``undecodable`` quality row per topic, warned
about, and skipped by the taggers, the frame index and the sensor index: the drive's tags
come out exactly as for the same drive without it. Checked for protobuf and ROS 2 CDR
recordings (generated, with ground truth), a ROS 1 bag written here with rosbags, and a
``--workers 2`` run on Dask.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from mcap.reader import make_reader
from mcap.writer import Writer
from rosbags.rosbag1 import Reader as Ros1Reader
from rosbags.rosbag1 import Writer as Ros1Writer
from rosbags.typesys import Stores, get_typestore

from drivecat.cli.main import drivecat
from sample_logs.generate import generate
from tests.ingest.helpers import message_keys, query, store_files

#: Bytes that no decoder takes: an unterminated varint for protobuf, a string length of
#: 4 GiB for ROS 1, a buffer too short for its first fields in CDR.
GARBAGE = b"\xff" * 10 + b"\x01"
TAGGED = {
    "/gps/fix": "gps",
    "/perception/objects": "detections",
    "/vehicle/state": "vehicle",
    "/camera/front/video": "video",
    "/lidar/top/points": "lidar",
}
TAG_COLUMNS = (
    "seg_idx, start_ns, end_ns, lat, lon, h3_cell, speed, distance_m, weather, "
    "at_intersection, pedestrian_count, pedestrians_within_5m, time_of_day"
)


def inject(src: Path, dst: Path, topics: list[str]) -> dict[str, int]:
    """Copy the MCAP ``src`` to ``dst`` with the mcap library, adding one GARBAGE message
    on each of ``topics`` 1 ns before its first message past the middle of the recording.
    Schemas, channels, metadata and attachments are kept. Returns topic -> log time."""
    added: dict[str, int] = {}
    with open(src, "rb") as f, open(dst, "wb") as out:
        reader = make_reader(f)
        summary = reader.get_summary()
        assert summary is not None and summary.statistics is not None
        writer = Writer(out)
        writer.start()
        schema_ids = {
            k: writer.register_schema(s.name, s.encoding, s.data)
            for k, s in summary.schemas.items()
        }
        channel_ids = {
            k: writer.register_channel(
                c.topic, c.message_encoding, schema_ids.get(c.schema_id, 0), c.metadata
            )
            for k, c in summary.channels.items()
        }
        for record in reader.iter_metadata():
            writer.add_metadata(record.name, record.metadata)
        for attachment in reader.iter_attachments():
            writer.add_attachment(
                attachment.create_time,
                attachment.log_time,
                attachment.name,
                attachment.media_type,
                attachment.data,
            )
        stats = summary.statistics
        middle = (stats.message_start_time + stats.message_end_time) // 2
        for _schema, channel, message in reader.iter_messages(log_time_order=True):
            if channel.topic in topics and channel.topic not in added and message.log_time > middle:
                t = message.log_time - 1
                writer.add_message(channel_ids[channel.id], t, GARBAGE, t)
                added[channel.topic] = t
            writer.add_message(
                channel_ids[channel.id],
                message.log_time,
                message.data,
                message.publish_time,
                message.sequence,
            )
        writer.finish()
    assert set(added) == set(topics)
    return added


@pytest.fixture(scope="module", params=["protobuf", "ros2"])
def drives(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, dict[str, int]]:
    """A clean generated drive (6 s), and a copy with one garbage message per tagged topic."""
    root = tmp_path_factory.mktemp(f"undecodable_{request.param}")
    variants = ("ros2",) if request.param == "ros2" else ()
    clean = generate(root / "clean", seconds=6, seed=5, variants=variants, lidar_points=200)
    bad = root / "bad"
    bad.mkdir()
    (recording,) = clean.glob("rec_*.mcap")
    added = inject(recording, bad / recording.name, list(TAGGED))
    return clean, bad, added


def _ingest(path: Path, store: Path, *extra: str) -> tuple[Any, list[dict[str, Any]]]:
    result = CliRunner().invoke(
        drivecat, ["ingest", "run", str(path), "--store", str(store), "--json", *extra]
    )
    return result, json.loads(result.stdout) if result.stdout.strip() else []


def test_an_undecodable_message_is_stored_counted_and_skipped(
    drives: tuple[Path, Path, dict[str, int]], tmp_path: Path
) -> None:
    clean, bad, added = drives
    truth = json.loads((clean / "truth.json").read_text())
    drive_id = truth["drive_id"]
    result, (report,) = _ingest(bad, tmp_path / "bad")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert (report["status"], report["drive_status"]) == ("ingested", "complete")
    for topic in TAGGED:
        assert any(w.startswith(f"{topic}: 1 message not decodable") for w in report["warnings"])

    # every message, the garbage too, byte for byte (read back with the mcap library)
    assert message_keys(store_files(tmp_path / "bad", drive_id)) == message_keys(bad.glob("*.mcap"))

    rows = query(
        tmp_path / "bad",
        "SELECT topic, count, start_ns, end_ns FROM quality WHERE kind = 'undecodable'",
    )
    assert sorted(rows) == sorted((t, 1, ns, ns) for t, ns in added.items())

    # indexes: one row per decodable message, as many as the generator wrote
    frames = query(tmp_path / "bad", "SELECT log_time_ns FROM frames ORDER BY frame_idx")
    expected = truth["videos"]["/camera/front/video"]["frames"]
    assert [t for (t,) in frames] == [f["log_time_ns"] for f in expected]
    (sensor,) = query(tmp_path / "bad", "SELECT list(log_time_ns) FROM sensor_index")[0]
    assert len(sensor) == truth["topics"]["/lidar/top/points"]["message_count"]
    assert added["/lidar/top/points"] not in sensor

    # taggers: the garbage changes nothing (it would, decoded as defaults: a fix at 0, 0)
    assert _ingest(clean, tmp_path / "clean")[0].exit_code == 0
    sql = f"SELECT {TAG_COLUMNS} FROM segments ORDER BY seg_idx"
    assert query(tmp_path / "bad", sql) == query(tmp_path / "clean", sql)
    weather = [s["weather"] for s in truth["segments"]]
    assert [w for (w,) in query(tmp_path / "bad", "SELECT weather FROM segments")] == weather


# -- a ROS 1 bag -------------------------------------------------------------------------------

ROS1 = get_typestore(Stores.ROS1_NOETIC)
T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
LAT0, LON0, STEP_DEG = 52.52, 13.40, 1e-5  # a fix every 100 ms, 1e-5 degree north each


def _fix(i: int) -> bytes:
    types = ROS1.types
    t = T0 + i * 100_000_000
    msg = types["sensor_msgs/msg/NavSatFix"](
        header=types["std_msgs/msg/Header"](
            seq=i,
            stamp=types["builtin_interfaces/msg/Time"](sec=t // 10**9, nanosec=t % 10**9),
            frame_id="gps",
        ),
        status=types["sensor_msgs/msg/NavSatStatus"](status=0, service=1),
        latitude=LAT0 + i * STEP_DEG,
        longitude=LON0,
        altitude=30.0,
        position_covariance=np.zeros(9, dtype=np.float64),
        position_covariance_type=0,
    )
    return bytes(ROS1.serialize_ros1(msg, "sensor_msgs/msg/NavSatFix"))


def test_an_undecodable_ros1_message_is_stored_counted_and_skipped(tmp_path: Path) -> None:
    bag = tmp_path / "in" / "gps.bag"
    bag.parent.mkdir()
    garbage_at = T0 + 1_000_000_000 + 50_000_000
    with Ros1Writer(bag) as writer:
        conn = writer.add_connection("/gps/fix", "sensor_msgs/msg/NavSatFix", typestore=ROS1)
        for i in range(31):  # 3 s north at 11.1 m/s
            writer.write(conn, T0 + i * 100_000_000, _fix(i))
            if i == 10:
                writer.write(conn, garbage_at, GARBAGE)
    store = tmp_path / "store"
    result = CliRunner().invoke(
        drivecat,
        ["ingest", "run", str(bag), "--store", str(store), "--drive-id", "r1", "--json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["drive_status"] == "complete"

    with Ros1Reader(bag) as reader:
        recorded = [data for _c, _t, data in reader.messages()]
    stored = []
    for path in store_files(store, "r1"):
        with open(path, "rb") as f:
            stored += [m.data for _s, _c, m in make_reader(f).iter_messages(log_time_order=True)]
    assert stored == recorded and GARBAGE in stored

    assert query(store, "SELECT topic, kind, count, start_ns FROM quality") == [
        ("/gps/fix", "undecodable", 1, garbage_at)
    ]
    # the one segment's position and distance come from the 31 good fixes only
    ((lat, lon, distance),) = query(store, "SELECT lat, lon, distance_m FROM segments")
    end_ns = T0 + 30 * 100_000_000 + 1  # the drive's exclusive end
    mid_ns = (T0 + end_ns) // 2
    assert lat == pytest.approx(LAT0 + STEP_DEG * (mid_ns - T0) / 100_000_000, abs=1e-9)
    assert lon == pytest.approx(LON0)
    north_m = 6_371_008.8 * math.radians(30 * STEP_DEG)
    assert distance == pytest.approx(north_m, rel=1e-6)


# -- Dask workers ---------------------------------------------------------------------------


@pytest.mark.parametrize("drives", ["protobuf"], indirect=True)
def test_workers_ingest_the_drive_with_garbage_and_fail_the_bad_one_alone(
    drives: tuple[Path, Path, dict[str, int]], tmp_path: Path
) -> None:
    pytest.importorskip("dask.distributed")
    _clean, bad, added = drives
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    (hostile / "x.mcap").write_bytes(b"\x89MCAP0\r\n" + b"garbage " * 8)
    store = tmp_path / "store"
    result, report = _ingest(bad, store, str(hostile), "--workers", "2")
    assert result.exit_code == 1, result.output
    by_path = {r["path"]: r for r in report}
    assert by_path[str(bad)]["status"] == "ingested"
    assert by_path[str(hostile)]["status"] == "failed"
    assert "x.mcap" in by_path[str(hostile)]["error"]
    assert "\n" not in by_path[str(hostile)]["error"]
    rows = query(store, "SELECT topic FROM quality WHERE kind = 'undecodable' ORDER BY topic")
    assert [t for (t,) in rows] == sorted(added)
    assert not list((store / "drives").glob(".tmp-*"))
