"""The second process that reads large drives and splits the topics the pass need not see.

Drives here are small, so the size threshold is lowered to force it. Checked against the
generated drive's truth and the inputs as the mcap library reads them, and against the same
drive ingested in one process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcap.reader import make_reader

import drivecat.ingest.offload
import drivecat.ingest.passes
from drivecat.ingest.config import Config
from drivecat.ingest.errors import IngestError
from drivecat.ingest.run import IngestOptions, ingest_drive
from tests.ingest.helpers import message_keys, query, store_files


@pytest.fixture
def offloaded(monkeypatch: pytest.MonkeyPatch) -> list[frozenset[str]]:
    """Force the second process for any drive; collect the topics each one was given."""
    monkeypatch.setattr(drivecat.ingest.passes, "OFFLOAD_MIN_BYTES", 0)
    given: list[frozenset[str]] = []
    real = drivecat.ingest.offload.Offload.start

    def spy(self: drivecat.ingest.offload.Offload, *args: Any, **kwargs: Any) -> None:
        given.append(frozenset(args[0].slugs))  # the job: topics it splits
        real(self, *args, **kwargs)

    monkeypatch.setattr(drivecat.ingest.offload.Offload, "start", spy)
    return given


def test_offloaded_drive_matches_truth_and_the_single_process_store(
    small_drive: Path,
    tmp_path: Path,
    offloaded: list[frozenset[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    truth = json.loads((small_drive / "truth.json").read_text())
    roles = {t: v["role"] for t, v in truth["topics"].items()}
    options = IngestOptions(store=tmp_path / "two", config=Config(chunk_seconds=10))
    assert ingest_drive(small_drive, options).status == "ingested"
    # lidar (a sensor index) and the IMU (role other) need nothing else, so the child
    # takes them; video, GPS, perception and vehicle state feed the frame index and taggers
    assert offloaded == [frozenset(t for t, r in roles.items() if r in ("lidar", "other"))]

    store = options.store
    stored = message_keys(store_files(store, truth["drive_id"]))
    assert stored == message_keys(sorted(small_drive.glob("*.mcap")))
    counts = dict(query(store, "SELECT topic, message_count FROM topics"))
    assert counts == {t: v["message_count"] for t, v in truth["topics"].items()}

    # every lidar message has a sensor index row that points at it
    lidar = next(t for t, r in roles.items() if r == "lidar")
    rows = query(
        store,
        f"SELECT file, message_idx, log_time_ns FROM sensor_index WHERE topic = '{lidar}' "
        "ORDER BY log_time_ns",
    )
    assert len(rows) == truth["topics"][lidar]["message_count"]
    by_file: dict[str, list[int]] = {}
    for file, _idx, _log in rows:
        if file not in by_file:
            with open(store / file, "rb") as f:  # sensor_index.file: relative to the store
                by_file[file] = [m.log_time for _s, _c, m in make_reader(f).iter_messages()]
    assert all(by_file[file][idx] == log for file, idx, log in rows)

    # the same bytes and rows as one process writes
    monkeypatch.setattr(drivecat.ingest.passes, "OFFLOAD_MIN_BYTES", 1 << 62)
    one = IngestOptions(store=tmp_path / "one", config=Config(chunk_seconds=10))
    assert ingest_drive(small_drive, one).status == "ingested"
    assert len(offloaded) == 1
    sql = "SELECT path, sha256 FROM files ORDER BY path"
    assert query(tmp_path / "one", sql) == query(store, sql)
    for table in ("topics", "segments", "frames", "sensor_index", "quality"):
        sql = f"SELECT * FROM {table} ORDER BY ALL"
        assert query(tmp_path / "one", sql) == query(store, sql), table


def test_a_rerun_stops_early_and_leaves_nothing(
    small_drive: Path, tmp_path: Path, offloaded: list[frozenset[str]]
) -> None:
    options = IngestOptions(store=tmp_path / "store")
    assert ingest_drive(small_drive, options).status == "ingested"
    assert ingest_drive(small_drive, options).status == "unchanged"
    assert len(offloaded) == 2
    assert not list((tmp_path / "store" / "drives").glob(".tmp-*"))


def test_a_dead_child_fails_the_drive_cleanly(
    small_drive: Path,
    tmp_path: Path,
    offloaded: list[frozenset[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    died = [
        sys.executable,
        "-c",
        "import sys; print('out of memory', file=sys.stderr); sys.exit(3)",
    ]
    monkeypatch.setattr(drivecat.ingest.offload, "CHILD_COMMAND", died)
    with pytest.raises(IngestError, match=r"exit code 3: out of memory"):
        ingest_drive(small_drive, IngestOptions(store=tmp_path / "store"))
    assert query(tmp_path / "store", "SELECT count(*) FROM drives") == [(0,)]
    assert list((tmp_path / "store" / "drives").iterdir()) == []


@pytest.fixture
def children(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The process id of every second process started (used or not)."""
    started: list[int] = []
    real = subprocess.Popen

    def spy(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = real(*args, **kwargs)
        if args and list(args[0]) == list(drivecat.ingest.offload.CHILD_COMMAND):
            started.append(proc.pid)
        return proc

    monkeypatch.setattr(drivecat.ingest.offload.subprocess, "Popen", spy)
    return started


def gone(pid: int) -> bool:
    """Whether the process has exited and been reaped (a zombie still answers signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_child_started_ahead_and_not_needed_is_stopped(
    truncated_drive: Path,
    tmp_path: Path,
    offloaded: list[frozenset[str]],
    children: list[int],
) -> None:
    # every file is .mcap and the size threshold is 0, so a child starts ahead of time;
    # the cut recording has no index, so the pass reads everything itself
    truth = json.loads((truncated_drive / "truth.json").read_text())
    options = IngestOptions(store=tmp_path / "store")
    assert ingest_drive(truncated_drive, options).status == "ingested"
    assert offloaded == []
    assert len(children) == 1
    assert gone(children[0])  # stopped and reaped
    assert query(options.store, "SELECT status FROM drives") == [("recovered",)]
    counts = dict(query(options.store, "SELECT topic, message_count FROM topics"))
    cut = truth["truncated"]
    intact = [f for f in sorted(truncated_drive.glob("*.mcap")) if f.name != cut["file"]]
    for (topic, *_), n in message_keys(intact).items():
        counts[topic] -= n
    assert all(counts[t] >= n for t, n in cut["recoverable"].items())


def test_a_child_started_ahead_is_stopped_when_the_input_is_bad(
    small_drive: Path,
    tmp_path: Path,
    offloaded: list[frozenset[str]],
    children: list[int],
) -> None:
    drive = tmp_path / "drive"
    drive.mkdir()
    for f in sorted(small_drive.glob("*.mcap")):
        (drive / f.name).write_bytes(f.read_bytes())
    (drive / "rec_0001.mcap").write_bytes(b"not a recording at all")
    with pytest.raises(IngestError, match=r"rec_0001\.mcap"):
        ingest_drive(drive, IngestOptions(store=tmp_path / "store"))
    assert offloaded == []
    assert len(children) == 1
    assert gone(children[0])
    assert list((tmp_path / "store" / "drives").iterdir()) == []


def _extra_recording(small_drive: Path, out: Path) -> None:
    """A recording that overlaps both of the drive's: a JSON topic, an unknown encoding and
    a point cloud, under names that say nothing about their role."""
    from mcap.writer import Writer

    with open(sorted(small_drive.glob("*.mcap"))[0], "rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        assert summary is not None and summary.statistics is not None
        start = summary.statistics.message_start_time
        cloud_schema = next(s for s in summary.schemas.values() if s.name == "foxglove.PointCloud")
        clouds = [m.data for _s, c, m in reader.iter_messages() if c.schema_id == cloud_schema.id][
            :5
        ]
    with open(out, "wb") as f:
        writer = Writer(f)
        writer.start()
        json_schema = writer.register_schema("aux.Reading", "jsonschema", b'{"type":"object"}')
        blob_schema = writer.register_schema("aux.Blob", "", b"")
        cloud = writer.register_schema(cloud_schema.name, cloud_schema.encoding, cloud_schema.data)
        a = writer.register_channel("/aux/a", "json", json_schema)
        b = writer.register_channel("/aux/b", "cbor", blob_schema)
        c = writer.register_channel("/aux/c", "protobuf", cloud)
        step = 50_000_000  # 20 Hz over 25 s: across both recordings of the drive
        for i in range(500):
            t = start + 1_000_000 + i * step
            writer.add_message(a, t, json.dumps({"i": i}).encode(), t, i)
            writer.add_message(b, t + 1, bytes([i % 256]) * 7, t + 1, i)
            if i % 10 == 0:
                writer.add_message(c, t + 2, clouds[(i // 10) % len(clouds)], t + 2, i)
        writer.finish()


def test_overlapping_recordings_and_role_less_topics_split_alike(
    small_drive: Path,
    tmp_path: Path,
    offloaded: list[frozenset[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drive = tmp_path / "drive"
    drive.mkdir()
    for f in sorted(small_drive.glob("*.mcap")):
        (drive / f.name).write_bytes(f.read_bytes())
    _extra_recording(small_drive, drive / "aux.mcap")
    inputs = sorted(drive.glob("*.mcap"))

    two = IngestOptions(store=tmp_path / "two", config=Config(chunk_seconds=10))
    assert ingest_drive(drive, two).status == "ingested"
    # the point cloud is found by its schema; the JSON topic needs nothing else; the
    # unknown encoding stays with the pass, which counts it
    assert "/aux/c" in offloaded[0] and "/aux/a" in offloaded[0]
    assert "/aux/b" not in offloaded[0]
    (drive_id,) = query(two.store, "SELECT drive_id FROM drives")[0]
    assert message_keys(store_files(two.store, drive_id)) == message_keys(inputs)
    assert query(two.store, "SELECT count FROM quality WHERE kind = 'unknown_encoding'") == [(500,)]

    monkeypatch.setattr(drivecat.ingest.passes, "OFFLOAD_MIN_BYTES", 1 << 62)
    one = IngestOptions(store=tmp_path / "one", config=Config(chunk_seconds=10))
    assert ingest_drive(drive, one).status == "ingested"
    assert len(offloaded) == 1
    for table in ("files", "topics", "sensor_index", "quality", "segments"):
        sql = f"SELECT * EXCLUDE (drive_id) FROM {table} ORDER BY ALL"
        if table == "files":
            sql = "SELECT path, sha256, message_count FROM files ORDER BY ALL"
        assert query(one.store, sql) == query(two.store, sql), table
