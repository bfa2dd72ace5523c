"""`ingest run` end to end, checked against the generated drives' ground truth.

Every check reads the store back with the mcap library (not our reader) and compares it
with the inputs read the same way, or with ``truth.json``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from drivecat.cli.main import drivecat
from drivecat.ingest.config import Config
from drivecat.ingest.identity import DeviceIdentity
from drivecat.ingest.run import IngestOptions, ingest_drive
from drivecat.naming import topic_slug
from tests.ingest.helpers import message_keys, query, store_files, summary_of


def _truth(drive: Path) -> dict[str, Any]:
    return json.loads((drive / "truth.json").read_text())


def _label_ns(label: str) -> int:
    """``20260615T173000Z`` or ``20260615T173000.500000000Z`` -> ns since the epoch."""
    whole, _, frac = label.rstrip("Z").partition(".")
    seconds = datetime.strptime(whole, "%Y%m%dT%H%M%S").replace(tzinfo=UTC).timestamp()
    return int(seconds) * 1_000_000_000 + int(frac or 0)


def name_range(path: Path) -> tuple[int, int]:
    """The ``[start, end)`` a store file's name promises."""
    start, end = path.stem.split("_")
    return _label_ns(start), _label_ns(end)


@pytest.fixture(scope="module")
def ingested(small_drive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("store")
    options = IngestOptions(store=store, config=Config(chunk_seconds=10))
    result = ingest_drive(small_drive, options)
    assert result.status == "ingested"
    assert result.drive_id == _truth(small_drive)["drive_id"]
    return store


def test_every_message_is_stored_byte_for_byte(small_drive: Path, ingested: Path) -> None:
    truth = _truth(small_drive)
    inputs = message_keys(sorted(small_drive.glob("*.mcap")))
    stored = message_keys(store_files(ingested, truth["drive_id"]))
    assert stored == inputs
    per_topic: dict[str, int] = {}
    for (topic, *_), n in stored.items():
        per_topic[topic] = per_topic.get(topic, 0) + n
    assert per_topic == {t: v["message_count"] for t, v in truth["topics"].items()}


def test_files_are_per_topic_rotated_and_self_contained(small_drive: Path, ingested: Path) -> None:
    truth = _truth(small_drive)
    files = store_files(ingested, truth["drive_id"])
    chunk_ns = 10 * 1_000_000_000
    by_topic: dict[str, int] = {}
    for path in files:
        summary, _header, metadata = summary_of(path)
        assert summary is not None and summary.statistics is not None
        assert summary.chunk_indexes, f"{path} has no chunk index"
        assert all(ci.message_index_offsets for ci in summary.chunk_indexes)
        topics = {c.topic for c in summary.channels.values()}
        assert len(topics) == 1
        topic = topics.pop()
        by_topic[topic] = by_topic.get(topic, 0) + 1
        assert all(c.schema_id in summary.schemas for c in summary.channels.values())
        device = {m.name: m.metadata for m in metadata}["device"]
        assert device == truth["device"]
        stats = summary.statistics
        start_ns, end_ns = name_range(path)
        assert start_ns <= stats.message_start_time and stats.message_end_time < end_ns
        if truth["topics"][topic]["role"] != "video":
            # one window of the clock: [k * chunk, (k + 1) * chunk)
            assert start_ns % chunk_ns == 0 and end_ns - start_ns == chunk_ns
    assert set(by_topic) == set(truth["topics"])
    assert all(n >= 3 for n in by_topic.values()), by_topic  # 30 s in 10 s windows


def test_catalog_tables_agree_with_truth(small_drive: Path, ingested: Path) -> None:
    truth = _truth(small_drive)
    drive_id = truth["drive_id"]
    rows = query(ingested, "SELECT topic, role, message_count FROM topics ORDER BY topic")
    assert {r[0]: r[2] for r in rows} == {t: v["message_count"] for t, v in truth["topics"].items()}
    expected_roles = {t: v["role"] for t, v in truth["topics"].items()}
    assert {r[0]: r[1] for r in rows} == expected_roles
    (drive,) = query(
        ingested,
        "SELECT device_id, device_version, vehicle_id, operator, status, start_ns FROM drives",
    )
    device = truth["device"]
    assert drive[:4] == (
        device["device_id"],
        device["device_version"],
        device["vehicle_id"],
        device["operator"],
    )
    assert drive[4] == "complete" and drive[5] == truth["start_ns"]
    files = query(ingested, f"SELECT path, sha256 FROM files WHERE drive_id = '{drive_id}'")
    assert len(files) == len(store_files(ingested, drive_id))
    for path, sha in files:
        assert hashlib.sha256((ingested / path).read_bytes()).hexdigest() == sha
    schemas = query(ingested, "SELECT count(*) FROM schemas")[0][0]
    assert schemas == len({v["schema_name"] for v in truth["topics"].values()})


def test_rerun_is_a_no_op_and_force_replaces(small_drive: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    options = IngestOptions(store=store)
    first = ingest_drive(small_drive, options)
    files_before = sorted(p.relative_to(store) for p in store.rglob("*.mcap"))
    again = ingest_drive(small_drive, options)
    assert again.status == "unchanged" and again.drive_id == first.drive_id
    forced = ingest_drive(small_drive, IngestOptions(store=store, force=True))
    assert forced.status == "replaced"
    assert sorted(p.relative_to(store) for p in store.rglob("*.mcap")) == files_before
    assert query(store, "SELECT count(*) FROM drives")[0][0] == 1
    assert not [p for p in (store / "drives").iterdir() if p.name.startswith(".")]


def test_catalog_rebuilds_from_manifests(small_drive: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest_drive(small_drive, IngestOptions(store=store))
    tables = ("drives", "topics", "files", "schemas", "segments", "frames", "sensor_index")
    before = {t: query(store, f"SELECT count(*) FROM {t}")[0][0] for t in tables}
    (store / "catalog.duckdb").unlink()
    result = CliRunner().invoke(drivecat, ["catalog", "rebuild", "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert {t: query(store, f"SELECT count(*) FROM {t}")[0][0] for t in tables} == before


def test_sidecar_video_is_repackaged_at_its_frame_times(
    sidecar_drive: Path, tmp_path: Path
) -> None:
    truth = _truth(sidecar_drive)
    store = tmp_path / "store"
    result = ingest_drive(sidecar_drive, IngestOptions(store=store))
    frames = truth["videos"]["/camera/rear/video"]["frames"]
    rows = query(
        store,
        "SELECT frame_idx, log_time_ns, capture_ns, is_keyframe FROM frames "
        "WHERE topic = '/camera/rear/video' ORDER BY frame_idx",
    )
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (f["index"], f["capture_ns"], f["capture_ns"], f["keyframe"]) for f in frames
    ]
    assert not query(store, "SELECT * FROM quality WHERE kind = 'frame_count_mismatch'")
    stored = message_keys(store_files(store, str(result.drive_id)))
    assert sum(n for k, n in stored.items() if k[0] == "/camera/rear/video") == len(frames)


def test_frame_count_mismatch_is_reported_not_shifted(sidecar_drive: Path, tmp_path: Path) -> None:
    truth = _truth(sidecar_drive)
    drive = tmp_path / "drive"
    shutil.copytree(sidecar_drive, drive)
    video = drive / "camera_rear.h264"
    data = video.read_bytes()
    video.write_bytes(data[: len(data) * 2 // 3])  # the camera's file lost its last third
    store = tmp_path / "store"
    ingest_drive(drive, IngestOptions(store=store))
    (row,) = query(store, "SELECT detail FROM quality WHERE kind = 'frame_count_mismatch'")
    assert "frame times" in row[0]
    times = query(
        store,
        "SELECT frame_idx, log_time_ns FROM frames WHERE topic = '/camera/rear/video' "
        "ORDER BY frame_idx",
    )
    expected = {
        f["index"]: f["capture_ns"] for f in truth["videos"]["/camera/rear/video"]["frames"]
    }
    assert 0 < len(times) < len(expected)
    assert all(expected[idx] == t for idx, t in times)


def test_truncated_recording_is_recovered(truncated_drive: Path, tmp_path: Path) -> None:
    truth = _truth(truncated_drive)
    store = tmp_path / "store"
    result = CliRunner().invoke(
        drivecat, ["ingest", "run", str(truncated_drive), "--store", str(store)]
    )
    assert result.exit_code == 0, result.output
    assert "truncated" in result.output
    (status,) = query(store, "SELECT status FROM drives")[0]
    assert status == "recovered"
    assert query(store, "SELECT count(*) FROM quality WHERE kind = 'truncated'")[0][0] == 1
    stored = message_keys(store_files(store, truth["drive_id"]))
    counts: dict[str, int] = {}
    for (topic, *_), n in stored.items():
        counts[topic] = counts.get(topic, 0) + n
    cut = truth["truncated"]
    intact = [f for f in sorted(truncated_drive.glob("*.mcap")) if f.name != cut["file"]]
    intact_counts: dict[str, int] = {}
    for (topic, *_), n in message_keys(intact).items():
        intact_counts[topic] = intact_counts.get(topic, 0) + n
    for topic, recoverable in cut["recoverable"].items():
        assert counts.get(topic, 0) >= intact_counts.get(topic, 0) + recoverable, topic


def test_a_bad_drive_fails_alone(small_drive: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.mcap").write_bytes(b"this is not an mcap file at all")
    store = tmp_path / "store"
    result = CliRunner().invoke(
        drivecat, ["ingest", "run", str(bad), str(small_drive), "--store", str(store), "--json"]
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert [r["status"] for r in report] == ["failed", "ingested"]
    assert "broken.mcap" in report[0]["error"] and "\n" not in report[0]["error"]
    assert query(store, "SELECT count(*) FROM drives")[0][0] == 1


def test_device_identity_precedence(small_drive: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    flags = DeviceIdentity(device_version="9.9.9")
    result = ingest_drive(small_drive, IngestOptions(store=store, device=flags))
    (row,) = query(store, "SELECT device_id, device_version FROM drives")
    assert row == (_truth(small_drive)["device"]["device_id"], "9.9.9")
    assert result.drive_id is not None
    metadata = summary_of(store_files(store, result.drive_id)[0])[2]
    assert {m.name: m.metadata for m in metadata}["device"]["device_version"] == "9.9.9"


def test_every_video_file_decodes_from_its_first_message(small_drive: Path, ingested: Path) -> None:
    """Each rotated video file, decoded on its own by a fresh PyAV decoder from its first
    message, gives one picture per message: no file starts mid-GOP."""
    import av
    from mcap.reader import make_reader
    from mcap_protobuf.decoder import DecoderFactory

    truth = _truth(small_drive)
    videos = [t for t, v in truth["topics"].items() if v["role"] == "video"]
    checked = 0
    for topic in videos:
        files = sorted((ingested / "drives" / truth["drive_id"] / topic_slug(topic)).glob("*.mcap"))
        assert len(files) >= 3  # 30 s in 10 s windows
        for path in files:
            decoder = av.CodecContext.create("h264", "r")
            messages = pictures = 0
            with open(path, "rb") as f:
                reader = make_reader(f, decoder_factories=[DecoderFactory()])
                for _, _, _, msg in reader.iter_decoded_messages():
                    messages += 1
                    pictures += len(decoder.decode(av.Packet(bytes(msg.data))))
            pictures += len(decoder.decode(None))
            assert pictures == messages, path.name
            checked += 1
    assert checked >= 3


def test_compression_follows_what_zstd_saves(small_drive: Path, ingested: Path) -> None:
    """Topics that zstd shrinks a lot are stored compressed, and ones it cannot shrink
    (H.264) are not, whatever their first message looks like (the first perception list
    or vehicle state is a few bytes that zstd makes bigger)."""
    import zstandard
    from mcap.reader import make_reader

    truth = _truth(small_drive)
    payload: dict[str, list[bytes]] = {}
    for path in sorted(small_drive.glob("*.mcap")):
        with open(path, "rb") as f:
            for _, channel, message in make_reader(f).iter_messages():
                payload.setdefault(channel.topic, []).append(message.data)
    compressor = zstandard.ZstdCompressor(level=1)
    checked = 0
    for topic, datas in payload.items():
        whole = b"".join(datas)
        saved = 1 - len(compressor.compress(whole)) / len(whole)
        if 0.05 <= saved <= 0.2:
            continue  # near the line either choice is fair
        folder = ingested / "drives" / truth["drive_id"] / topic_slug(topic)
        for path in folder.glob("*.mcap"):
            with open(path, "rb") as f:
                summary = make_reader(f).get_summary()
            assert summary is not None
            kinds = {ci.compression for ci in summary.chunk_indexes}
            assert kinds == ({"zstd"} if saved > 0.2 else {""}), (topic, saved)
        checked += 1
    assert checked >= 4
