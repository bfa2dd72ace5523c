"""catalog.export against the generator's truth and the input recordings, read independently.

Expected values come from truth.json (segments, video frame capture times) and from reading
the original recordings with the mcap library; never from the exporter's own output.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import open3d as o3d
import pyarrow.parquet as pq
import pytest
from foxglove_schemas_protobuf.PointCloud_pb2 import PointCloud
from mcap.reader import make_reader
from mcap.records import Channel, Schema
from mcap.writer import Writer

from drivecat.catalog import db, exporters
from drivecat.catalog import export as ex
from drivecat.catalog.errors import CatalogError
from drivecat.catalog.export import ExportOptions, NothingToExport, export
from drivecat.catalog.store_read import Decoders, detections_of, points_of
from drivecat.ingest.config import Config
from drivecat.ingest.run import IngestOptions, ingest_drive
from drivecat.schemas.messages import Object, ObjectClass, ObjectList
from sample_logs.camera import read_barcode
from sample_logs.lidar import pointcloud_message, points_from_message
from sample_logs.ros2 import MSGDEFS
from sample_logs.ros2 import convert as to_ros2

FRONT = "/camera/front/video"
REAR = "/camera/rear/video"
LIDAR = "/lidar/top/points"
OBJECTS = "/perception/objects"


def _ingest(drive: Path, store: Path) -> str:
    config = Config(tags={"intersection": {"map": str(drive / "intersections.geojson")}})
    result = ingest_drive(drive, IngestOptions(store=store, config=config))
    assert result.status == "ingested", result.error
    assert result.drive_id is not None
    return result.drive_id


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, small_drive: Path, sidecar_drive: Path) -> Path:
    path = tmp_path_factory.mktemp("export_store")
    _ingest(small_drive, path)
    _ingest(sidecar_drive, path)
    return path


def _truth(drive: Path) -> dict[str, Any]:
    truth: dict[str, Any] = json.loads((drive / "truth.json").read_text())
    return truth


def _recorded(drive: Path, topic: str | None = None) -> list[tuple[str, int, bytes]]:
    """(topic, log_time, data) of every message of the input recordings."""
    out = []
    for path in sorted(drive.glob("rec_*.mcap")):
        with path.open("rb") as f:
            for _, channel, message in make_reader(f).iter_messages(topics=topic):
                out.append((channel.topic, message.log_time, message.data))
    return out


def _nearest(frames: list[dict[str, Any]], t_ns: int) -> tuple[int, int]:
    """(index, dt_ns) of the frame whose capture time is nearest t; a tie goes earlier."""
    best = min(frames, key=lambda f: (abs(f["capture_ns"] - t_ns), f["capture_ns"]))
    return best["index"], best["capture_ns"] - t_ns


def _sweeps(drive: Path, windows: list[tuple[int, int]]) -> list[tuple[int, bytes]]:
    """(capture time, data) of the lidar sweeps whose log time is in one of the windows."""
    out = []
    for _, log_time, data in _recorded(drive, LIDAR):
        if any(lo <= log_time < hi for lo, hi in windows):
            out.append((PointCloud.FromString(data).timestamp.ToNanoseconds(), data))
    return out


def _fraction(drive_id: str) -> float:
    return int(hashlib.sha256(drive_id.encode()).hexdigest()[:16], 16) / 2**64


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------- dataset


def test_dataset_export_matches_truth(store: Path, small_drive: Path, tmp_path: Path) -> None:
    truth = _truth(small_drive)
    drive_id = truth["drive_id"]
    weather = truth["segments"][-1]["weather"]
    windows = [(s["start_ns"], s["end_ns"]) for s in truth["segments"] if s["weather"] == weather]
    where = f"weather = '{weather}' AND drive_id = '{drive_id}'"
    out = tmp_path / "ds"
    result = export(store, ExportOptions(where, "dataset", out, image_workers=0))

    frames = truth["videos"][FRONT]["frames"]
    sweeps = _sweeps(small_drive, windows)
    kept = [(t, d) for t, d in sweeps if abs(_nearest(frames, t)[1]) <= 50_000_000]
    assert len(sweeps) >= 90  # a 10 s segment of a 10 Hz lidar
    assert result.sample_count == len(kept)
    assert result.dropped == {"no_frame": 0, "dt_over_max": len(sweeps) - len(kept)}

    table = pq.read_table(out / "samples.parquet")
    assert table.column_names[:9] == [
        "sample_id", "drive_id", "seg_idx", "split", "reference_topic", "reference_time_ns",
        "pointcloud_path", "label_path", "frames",
    ]  # fmt: skip
    assert {"weather", "at_intersection", "pedestrian_count", "time_of_day"} <= set(
        table.column_names
    )
    rows = {r["reference_time_ns"]: r for r in table.to_pylist()}
    assert sorted(rows) == sorted(t for t, _ in kept)
    expected_split = "train" if _fraction(drive_id) < 0.8 else "val"
    for t, data in kept:
        row = rows[t]
        assert row["weather"] == weather and row["split"] == expected_split
        index, dt = _nearest(frames, t)
        [frame] = row["frames"]
        assert (frame["topic"], frame["frame_idx"], frame["dt_ns"]) == (FRONT, index, dt)
        picture = export_dataset_image(out / frame["path"])
        assert read_barcode(picture) == index
        cloud = o3d.t.io.read_point_cloud(out / row["pointcloud_path"])
        assert cloud.point.positions.shape[0] == truth["generator"]["lidar_points"]
        points = points_from_message(PointCloud.FromString(data))
        np.testing.assert_array_equal(cloud.point.positions.numpy(), points[:, :3])
        np.testing.assert_array_equal(cloud.point.intensity.numpy()[:, 0], points[:, 3])


def export_dataset_image(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def test_dataset_labels_and_lineage(store: Path, small_drive: Path, tmp_path: Path) -> None:
    truth = _truth(small_drive)
    drive_id = truth["drive_id"]
    segment = truth["segments"][1]
    where = f"seg_idx = 1 AND drive_id = '{drive_id}'"
    out = tmp_path / "ds"
    export(store, ExportOptions(where, "dataset", out, max_dt_ms=1000))

    detections = []
    for _, _, data in _recorded(small_drive, OBJECTS):
        msg = ObjectList.FromString(data)
        detections.append((msg.timestamp.ToNanoseconds(), msg))
    table = pq.read_table(out / "samples.parquet").to_pylist()
    assert len(table) == len(_sweeps(small_drive, [(segment["start_ns"], segment["end_ns"])]))
    for row in table[::17]:
        label = json.loads((out / row["label_path"]).read_text())
        assert label["sample_id"] == row["sample_id"]
        assert label["segment"]["weather"] == segment["weather"]
        assert label["segment"]["pedestrian_count"] == segment["pedestrian_count"]
        assert label["segment"]["at_intersection"] == segment["at_intersection"]
        t = row["reference_time_ns"]
        stamp, msg = min(detections, key=lambda d: (abs(d[0] - t), d[0]))
        got = label["detections"]
        assert (got["topic"], got["time_ns"], got["dt_ns"]) == (OBJECTS, stamp, stamp - t)
        assert [(o["track_id"], o["x"], o["confidence"]) for o in got["objects"]] == [
            (o.track_id, o.x, pytest.approx(o.confidence)) for o in msg.objects
        ]
        assert all(o["class"] in {"PEDESTRIAN", "CYCLIST", "VEHICLE", "ANIMAL", "OTHER"}
                   for o in got["objects"])  # fmt: skip

    lineage = json.loads((out / "lineage.json").read_text())
    assert lineage["query"]["where"] == where
    assert lineage["store"] == str(store) and lineage["catalog"] == str(store / "catalog.duckdb")
    assert lineage["tool"]["version"] and lineage["created_at"]
    assert lineage["counts"]["samples"] == len(table)
    sources = {s["path"]: s["sha256"] for s in lineage["sources"]}
    topics = {s["topic"] for s in lineage["sources"]}
    assert topics == {LIDAR, FRONT, OBJECTS}
    for path, sha in sources.items():
        assert _sha256(store / path) == sha
    [drive] = lineage["drives"]
    inputs = {i["path"]: i["sha256"] for i in drive["inputs"]}
    assert inputs == {f["name"]: f["sha256"] for f in truth["files"]}

    con = db.connect(store, read_only=True)
    try:
        row = con.execute(
            "SELECT format, out, sample_count, query, lineage FROM exports WHERE out = ?",
            [str(out)],
        ).fetchone()
        overlapping = con.execute(
            "SELECT path FROM files WHERE topic = ? AND drive_id = ? AND start_ns < ? "
            "AND end_ns > ?",
            [LIDAR, drive_id, segment["end_ns"], segment["start_ns"]],
        ).fetchall()
    finally:
        con.close()
    assert {p for (p,) in overlapping} <= set(sources)
    assert row is not None and row[:4] == ("dataset", str(out), len(table), where)
    assert json.loads(row[4])["export_id"] == lineage["export_id"]


def test_two_cameras_drop_by_dt_with_an_image_worker(
    store: Path, sidecar_drive: Path, tmp_path: Path
) -> None:
    truth = _truth(sidecar_drive)
    segment = truth["segments"][1]
    where = f"seg_idx = 1 AND drive_id = '{truth['drive_id']}'"
    options = ExportOptions(where, "dataset", tmp_path / "ds", max_dt_ms=25, image_workers=1)
    result = export(store, options)

    sweeps = _sweeps(sidecar_drive, [(segment["start_ns"], segment["end_ns"])])
    cams = {c: truth["videos"][c]["frames"] for c in (FRONT, REAR)}
    kept = [
        t for t, _ in sweeps if all(abs(_nearest(f, t)[1]) <= 25_000_000 for f in cams.values())
    ]
    assert 0 < len(kept) < len(sweeps)
    assert result.sample_count == len(kept)
    assert result.dropped["dt_over_max"] == len(sweeps) - len(kept)
    table = pq.read_table(tmp_path / "ds" / "samples.parquet").to_pylist()
    for row in table[::9]:
        assert {f["topic"] for f in row["frames"]} == {FRONT, REAR}
        for f in row["frames"]:
            index, _ = _nearest(cams[f["topic"]], row["reference_time_ns"])
            assert read_barcode(export_dataset_image(tmp_path / "ds" / f["path"])) == index


def test_a_failure_mid_export_leaves_nothing(
    store: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The disk fills up at the fifth label file.
    calls = {"n": 0}
    real = Path.write_text

    def flaky(self: Path, *args: Any, **kwargs: Any) -> int:
        if self.suffix == ".json" and "labels" in self.parts:
            calls["n"] += 1
            if calls["n"] == 5:
                raise OSError(28, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", flaky)
    out = tmp_path / "ds"
    # One line for the user, naming the folder and the reason (catalog.export).
    with pytest.raises(CatalogError, match=r"\.ds\.tmp-\w+: cannot write the export: No space"):
        export(store, ExportOptions("seg_idx = 2", "dataset", out, image_workers=0))
    assert list(tmp_path.iterdir()) == []
    con = db.connect(store, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM exports WHERE out = ?", [str(out)]).fetchone() == (
            0,
        )
    finally:
        con.close()


# ---------------------------------------------------------------------------- mcap


def test_mcap_export_counts_match_the_recordings(
    store: Path, small_drive: Path, sidecar_drive: Path, tmp_path: Path
) -> None:
    out = tmp_path / "mcap"
    result = export(store, ExportOptions("seg_idx >= 1", "mcap", out))
    files = sorted(out.glob("*.mcap"))
    assert len(files) == 2 and result.ranges == 2
    for drive in (small_drive, sidecar_drive):
        truth = _truth(drive)
        lo, hi = truth["segments"][1]["start_ns"], truth["segments"][-1]["end_ns"]
        expected: dict[str, int] = {}
        for topic, log_time, _ in _recorded(drive):
            if lo <= log_time < hi:
                expected[topic] = expected.get(topic, 0) + 1
        for topic, video in truth["videos"].items():
            if truth["topics"][topic].get("sidecar"):
                expected[topic] = sum(lo <= f["log_time_ns"] < hi for f in video["frames"])
        [path] = [f for f in files if f.name.startswith(truth["drive_id"])]
        counts: dict[str, int] = {}
        last = 0
        with path.open("rb") as f:
            reader = make_reader(f)
            summary = reader.get_summary()
            assert summary is not None
            assert all(c.schema_id in summary.schemas for c in summary.channels.values())
            device = {m.name: m.metadata for m in reader.iter_metadata()}["device"]
            assert device == truth["device"]
            for _, channel, message in reader.iter_messages(log_time_order=False):
                counts[channel.topic] = counts.get(channel.topic, 0) + 1
                assert message.log_time >= last  # written in log-time order
                last = message.log_time
        assert counts == expected


def test_mcap_topics_subset_and_latched(tmp_path: Path) -> None:
    drive = tmp_path / "drive"
    drive.mkdir()
    t0 = 1_700_000_000_000_000_000
    schema = b'{"type": "object"}'
    with (drive / "rec.mcap").open("wb") as f:
        w = Writer(f)
        w.start()
        sid = w.register_schema("Blob", "jsonschema", schema)
        fast = w.register_channel("/fast", "json", sid)
        static = w.register_channel("/tf_static", "json", sid)
        w.add_message(static, t0, b'{"frame": "base_link"}', t0)
        for k in range(250):  # 25 s at 10 Hz
            t = t0 + 1_000_000 + k * 100_000_000
            w.add_message(fast, t, json.dumps({"k": k}).encode(), t)
        w.finish()
    store = tmp_path / "store"
    assert ingest_drive(drive, IngestOptions(store=store)).status == "ingested"
    for latched in (False, True):
        out = tmp_path / f"out_{latched}"
        export(store, ExportOptions("seg_idx = 1", "mcap", out, with_latched=latched))
        [path] = out.glob("*.mcap")
        with path.open("rb") as f:
            got = [(c.topic, m.log_time) for _, c, m in make_reader(f).iter_messages()]
        fast_times = [t for topic, t in got if topic == "/fast"]
        assert len(fast_times) == 100  # [t0 + 10 s, t0 + 20 s) at 10 Hz
        assert [t for topic, t in got if topic == "/tf_static"] == ([t0] if latched else [])
    only = tmp_path / "only"
    export(store, ExportOptions("true", "mcap", only, topics=("/tf_static",)))
    [path] = only.glob("*.mcap")
    with path.open("rb") as f:
        assert [c.topic for _, c, _ in make_reader(f).iter_messages()] == ["/tf_static"]
    with pytest.raises(CatalogError, match="/nope"):
        export(store, ExportOptions("true", "mcap", tmp_path / "x", topics=("/nope",)))


# ---------------------------------------------------------------------------- errors, out


def test_errors_and_out_rules(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(CatalogError, match="wether") as bad:
        export(store, ExportOptions("wether = 'rain'", "mcap", out))
    assert bad.value.exit_code == 2
    with pytest.raises(NothingToExport) as nothing:
        export(store, ExportOptions("seg_idx > 1000", "mcap", out))
    assert nothing.value.exit_code == 1
    gps = ExportOptions("true", "dataset", out, reference_topic="/gps/fix")
    with pytest.raises(CatalogError, match="role 'gps', not lidar or image"):
        export(store, gps)
    cam = ExportOptions("true", "dataset", out, camera_topics=("/camera/top",))
    with pytest.raises(CatalogError, match="/camera/top"):
        export(store, cam)
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(CatalogError, match="not empty"):
        export(store, ExportOptions("seg_idx = 0", "mcap", out))
    assert (out / "keep.txt").read_text() == "mine"
    # --force replaces only a previous export of this store, never someone's folder
    with pytest.raises(CatalogError, match="replaces only an export"):
        export(store, ExportOptions("seg_idx = 0", "mcap", out, force=True))
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    (out / "keep.txt").unlink()
    first = export(store, ExportOptions("seg_idx = 0", "mcap", out))
    second = export(store, ExportOptions("seg_idx = 0", "mcap", out, force=True))
    assert len(list(out.glob("*.mcap"))) == 2
    marker = json.loads((out / ".drivecat-export").read_text())
    assert marker["export_id"] == second.export_id != first.export_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folders left


# ---------------------------------------------------------------------------- pure parts


def test_split_parsing_and_buckets() -> None:
    assert ex.parse_split("train=0.8,val=0.2") == (("train", 0.8), ("val", 0.2))
    for bad in ("train=0.8", "train=0.8,val=0.3", "train=x,val=1", "=1", "a=0.5,a=0.5"):
        with pytest.raises(CatalogError):
            ex.parse_split(bad)
    split = ex.parse_split("train=0.7,val=0.2,test=0.1")
    ids = [f"veh{i:03d}_2026-01-01T000000Z" for i in range(400)]
    got = [ex.split_of(i, split) for i in ids]
    assert got == [ex.split_of(i, split) for i in ids]  # deterministic
    for drive_id, name in zip(ids, got, strict=True):
        x = _fraction(drive_id)
        assert name == ("train" if x < 0.7 else "val" if x < 0.9 else "test")
    assert 0.6 < got.count("train") / len(got) < 0.8


def test_ros2_point_clouds_and_detections_decode_like_protobuf() -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(37, 4)).astype(np.float32)
    fox = pointcloud_message(points, 123)
    objects = ObjectList(
        objects=[Object(track_id=7, object_class=ObjectClass.PEDESTRIAN, x=3.5, y=-1.0, z=0.2)]
    )
    objects.objects[0].confidence = 0.75
    objects.timestamp.FromNanoseconds(5_000_000_123)
    decoders = Decoders()
    # Both ROS 2 schemas get id 1, as in two store files: one decoder must not serve both.
    name, cdr = to_ros2(ObjectList.DESCRIPTOR.full_name, objects.SerializeToString())
    schema = Schema(id=1, name=name, encoding="ros2msg", data=MSGDEFS[name].encode())
    channel = Channel(id=1, topic="/objects", message_encoding="cdr", schema_id=1, metadata={})
    assert detections_of(decoders, schema, channel, cdr, Path("x")) == (
        5_000_000_123,
        [{"track_id": 7, "class": "PEDESTRIAN", "x": 3.5, "y": -1.0, "z": 0.2,
          "confidence": 0.75}],
    )  # fmt: skip
    name, cdr = to_ros2("foxglove.PointCloud", fox.SerializeToString())
    schema = Schema(id=1, name=name, encoding="ros2msg", data=MSGDEFS[name].encode())
    channel = Channel(id=1, topic="/lidar", message_encoding="cdr", schema_id=1, metadata={})
    np.testing.assert_array_equal(points_of(decoders, schema, channel, cdr, Path("x")), points)
    proto = Schema(id=1, name="foxglove.PointCloud", encoding="protobuf", data=b"")
    channel = Channel(id=1, topic="/lidar", message_encoding="protobuf", schema_id=1, metadata={})
    got = points_of(decoders, proto, channel, fox.SerializeToString(), Path("x"))
    np.testing.assert_array_equal(got, points)


def test_merge_ranges_joins_adjacent_segments_only() -> None:
    def seg(drive: str, k: int) -> ex.SegmentRow:
        return ex.SegmentRow(drive, k, k * 10, k * 10 + 10, {})

    ranges = ex.merge_ranges([seg("a", 0), seg("a", 1), seg("a", 3), seg("b", 4)])
    assert [(r.drive_id, r.start_ns, r.end_ns) for r in ranges] == [
        ("a", 0, 20),
        ("a", 30, 40),
        ("b", 40, 50),
    ]


# ---------------------------------------------------------------------------- the format table


def write_range_list(con, store, ranges, options, folder, progress=None):  # type: ignore[no-untyped-def]
    """A format added by one row in catalog.exporters.EXPORTERS: each range as a JSON line."""
    lines = [json.dumps([r.drive_id, r.start_ns, r.end_ns]) for r in ranges]
    (folder / "ranges.jsonl").write_text("\n".join(lines) + "\n")
    return ex.Written(sample_count=len(ranges), outputs=[{"path": "ranges.jsonl"}])


def test_a_format_is_one_row_in_the_table(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = exporters.ExportFormatEntry("ranges", "ranges", f"{__name__}:write_range_list")
    monkeypatch.setitem(exporters.EXPORTERS, "ranges", entry)
    out = tmp_path / "ranges"
    result = export(store, ExportOptions("seg_idx = 1", "ranges", out))
    con = db.connect(store, read_only=True)
    try:
        want = con.execute(
            "SELECT drive_id, start_ns, end_ns FROM segments WHERE seg_idx = 1 ORDER BY drive_id"
        ).fetchall()
        (fmt,) = con.execute(
            "SELECT format FROM exports WHERE export_id = ?", [result.export_id]
        ).fetchone()
    finally:
        con.close()
    lines = (out / "ranges.jsonl").read_text().splitlines()
    assert [tuple(json.loads(line)) for line in lines] == want
    assert fmt == "ranges" and result.sample_count == len(want)
    lineage = json.loads((out / "lineage.json").read_text())
    assert lineage["format"] == "ranges" and lineage["counts"]["ranges"] == len(want)


def test_an_unknown_format_names_the_table(store: Path, tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"'tar'.*one of mcap, dataset"):
        export(store, ExportOptions("true", "tar", tmp_path / "x"))
    assert not (tmp_path / "x").exists()
