"""Output files written by worker processes (``--jobs``), each a share of the windows.

Drives here are small, so the size threshold is lowered to force the workers. Checked
against the generated drive's truth and the inputs as the mcap library reads them, and
against the same drive ingested with ``--jobs 1``: the same files, byte for byte, and the
same catalog rows.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcap.reader import make_reader

import drivecat.ingest.parallel
import drivecat.ingest.passes
import drivecat.ingest.pieces
import drivecat.ingest.run
from drivecat.ingest.config import Config
from drivecat.ingest.errors import IngestError
from drivecat.ingest.mcap_source import McapSource
from drivecat.ingest.run import IngestOptions, ingest_drive
from tests.ingest.conftest import REAL
from tests.ingest.helpers import message_keys, query, store_files

# Every table, ordered, without what differs between two runs by design.
_TABLES = {
    "drives": "SELECT * EXCLUDE (ingested_at) FROM drives ORDER BY ALL",
    "files": "SELECT * FROM files ORDER BY ALL",
    "topics": "SELECT * FROM topics ORDER BY ALL",
    "segments": "SELECT * FROM segments ORDER BY ALL",
    "frames": "SELECT * FROM frames ORDER BY ALL",
    "sensor_index": "SELECT * FROM sensor_index ORDER BY ALL",
    "quality": "SELECT * FROM quality ORDER BY ALL",
}


@pytest.fixture
def jobs_given(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Force the workers for any drive; collect the job of each one started."""
    monkeypatch.setattr(drivecat.ingest.passes, "PARALLEL_MIN_BYTES", 0)
    given: list[Any] = []
    real = drivecat.ingest.parallel.Worker.__init__

    def spy(self: drivecat.ingest.parallel.Worker, job: Any) -> None:
        given.append(job)
        real(self, job)

    monkeypatch.setattr(drivecat.ingest.parallel.Worker, "__init__", spy)
    return given


def _same_stores(one: Path, two: Path) -> None:
    stores = (one, two)
    for table, sql in _TABLES.items():
        assert query(one, sql) == query(two, sql), table
    (drive_id,) = query(one, "SELECT drive_id FROM drives")[0]
    a, b = store_files(one, drive_id), store_files(two, drive_id)
    assert [p.relative_to(one) for p in a] == [p.relative_to(two) for p in b]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=True))
    paths = [s / "drives" / drive_id / "manifest.json" for s in stores]
    manifests = [json.loads(p.read_text()) for p in paths]
    for manifest in manifests:  # ingested_at, and the drives rows that hold it, differ
        del manifest["ingested_at"], manifest["catalog"]["drives"]["sha256"]
    assert manifests[0] == manifests[1]


@pytest.mark.parametrize("jobs", [2, 3])
def test_workers_write_the_files_one_process_writes(
    small_drive: Path, tmp_path: Path, jobs_given: list[Any], jobs: int
) -> None:
    truth = json.loads((small_drive / "truth.json").read_text())
    roles = {t: v["role"] for t, v in truth["topics"].items()}
    config = Config(chunk_seconds=5)  # a 30 s drive: 7 windows to share
    many = IngestOptions(store=tmp_path / "many", config=config, jobs=jobs)
    assert ingest_drive(small_drive, many).status == "ingested"
    assert len(jobs_given) == jobs
    # lidar (a sensor index) and the IMU (role other) need nothing else of the pass, so
    # the workers write them; video, GPS, perception and vehicle state feed the frame
    # index and taggers, and come to the pass whole. Each output file of those topics is
    # one worker's, and so is each window of the pass's own messages.
    remote = {t for t, r in roles.items() if r in ("lidar", "other")}
    assert all(j.remote == remote for j in jobs_given)
    units = [(t, w) for j in jobs_given for t, ws in j.units.items() for w in ws]
    assert len(units) == len(set(units)) and {t for t, _ in units} == remote
    windows = [w for j in jobs_given for w in j.local]
    assert len(windows) == len(set(windows)) and len(windows) >= 7
    assert sorted(windows) == list(range(min(windows), max(windows) + 1))

    stored = message_keys(store_files(many.store, truth["drive_id"]))
    assert stored == message_keys(sorted(small_drive.glob("*.mcap")))
    # every sensor index row points at its message in a file a worker wrote
    rows = query(many.store, "SELECT file, message_idx, log_time_ns FROM sensor_index")
    assert rows
    by_file: dict[str, list[int]] = {}
    for file, _idx, _log in rows:
        if file not in by_file:
            with open(many.store / file, "rb") as f:
                by_file[file] = [m.log_time for _s, _c, m in make_reader(f).iter_messages()]
    assert all(by_file[file][idx] == log for file, idx, log in rows)

    one = IngestOptions(store=tmp_path / "one", config=config, jobs=1)
    assert ingest_drive(small_drive, one).status == "ingested"
    assert len(jobs_given) == jobs  # no worker for --jobs 1
    _same_stores(one.store, many.store)


def _extra_recording(small_drive: Path, out: Path, outlier: bool) -> None:
    """A recording that overlaps both of the drive's: a JSON topic, an unknown encoding, a
    point cloud under a name that says nothing of its role, and a slow topic whose sample
    spans windows; plus, if ``outlier``, a clock outlier at log time 1."""
    from mcap.writer import CompressionType, Writer

    with open(sorted(small_drive.glob("*.mcap"))[0], "rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        assert summary is not None and summary.statistics is not None
        start = summary.statistics.message_start_time
        cloud_schema = next(s for s in summary.schemas.values() if s.name == "foxglove.PointCloud")
        clouds = [m.data for _s, c, m in reader.iter_messages() if c.schema_id == cloud_schema.id]
    with open(out, "wb") as f:
        # small chunks, some uncompressed: many chunks straddle the windows
        writer = Writer(f, chunk_size=20_000, compression=CompressionType.NONE)
        writer.start()
        json_schema = writer.register_schema("aux.Reading", "jsonschema", b'{"type":"object"}')
        blob_schema = writer.register_schema("aux.Blob", "", b"")
        cloud = writer.register_schema(cloud_schema.name, cloud_schema.encoding, cloud_schema.data)
        a = writer.register_channel("/aux/a", "json", json_schema)
        b = writer.register_channel("/aux/b", "cbor", blob_schema)
        c = writer.register_channel("/aux/c", "protobuf", cloud)
        slow = writer.register_channel("/aux/slow", "json", json_schema)
        if outlier:
            writer.add_message(slow, 1, b'{"boot": 1}', 1, 0)  # before any clock sync
        step = 50_000_000  # 20 Hz over 25 s: across both recordings of the drive
        for i in range(500):
            t = start + 1_000_000 + i * step
            writer.add_message(a, t, json.dumps({"i": i}).encode(), t, i)
            writer.add_message(b, t + 1, bytes([i % 256]) * 7, t + 1, i)
            writer.add_message(a, t, b'{"same": "time"}', t, i)  # equal log times
            if i % 10 == 0:
                writer.add_message(c, t + 2, clouds[(i // 10) % len(clouds)], t + 2, i)
            if i % 40 == 0:
                writer.add_message(slow, t + 3, b'{"slow": "' + b"x" * (i % 7) + b'"}', t + 3, i)
        writer.finish()


@pytest.mark.parametrize("outlier", [False, True])
def test_overlapping_recordings_odd_topics_and_small_chunks_split_alike(
    small_drive: Path, tmp_path: Path, jobs_given: list[Any], outlier: bool
) -> None:
    drive = tmp_path / "drive"
    drive.mkdir()
    for f in sorted(small_drive.glob("*.mcap")):
        (drive / f.name).write_bytes(f.read_bytes())
    _extra_recording(small_drive, drive / "aux.mcap", outlier)
    inputs = sorted(drive.glob("*.mcap"))
    config = Config(chunk_seconds=3)
    two = IngestOptions(store=tmp_path / "two", config=config, jobs=2)
    assert ingest_drive(drive, two).status == "ingested"
    if outlier:  # a clock outlier is judged on the whole stream: one process reads it
        assert jobs_given == []
        assert query(two.store, "SELECT count FROM quality WHERE kind = 'clock_outlier'") == [(1,)]
    else:
        assert {"/aux/a", "/aux/b", "/aux/c", "/aux/slow"} <= jobs_given[0].remote
    assert query(two.store, "SELECT count FROM quality WHERE kind = 'unknown_encoding'") == [(500,)]
    (drive_id,) = query(two.store, "SELECT drive_id FROM drives")[0]
    assert message_keys(store_files(two.store, drive_id)) == message_keys(inputs)
    one = IngestOptions(store=tmp_path / "one", config=config, jobs=1)
    assert ingest_drive(drive, one).status == "ingested"
    _same_stores(one.store, two.store)


def test_a_rerun_stops_early_and_leaves_nothing(
    small_drive: Path, tmp_path: Path, jobs_given: list[Any]
) -> None:
    options = IngestOptions(store=tmp_path / "store", jobs=2)
    assert ingest_drive(small_drive, options).status == "ingested"
    assert ingest_drive(small_drive, options).status == "unchanged"
    assert not list((tmp_path / "store" / "drives").glob(".tmp-*"))


def test_a_dead_worker_fails_the_drive_cleanly(
    small_drive: Path, tmp_path: Path, jobs_given: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    died = [
        sys.executable,
        "-c",
        "import sys; print('out of memory', file=sys.stderr); sys.exit(3)",
    ]
    monkeypatch.setattr(drivecat.ingest.parallel, "WORKER_COMMAND", died)
    with pytest.raises(IngestError, match=r"exit code 3: out of memory"):
        ingest_drive(small_drive, IngestOptions(store=tmp_path / "store", jobs=2))
    assert query(tmp_path / "store", "SELECT count(*) FROM drives") == [(0,)]
    assert list((tmp_path / "store" / "drives").iterdir()) == []


def test_unindexed_inputs_stay_in_one_process(
    truncated_drive: Path, tmp_path: Path, jobs_given: list[Any]
) -> None:
    options = IngestOptions(store=tmp_path / "store", jobs=2)
    assert ingest_drive(truncated_drive, options).status == "ingested"
    assert jobs_given == []
    assert query(options.store, "SELECT status FROM drives") == [("recovered",)]


def test_the_worker_module_runs_as_a_script() -> None:
    # started without a job, a worker says how it is run and exits 2
    done = subprocess.run(drivecat.ingest.parallel.WORKER_COMMAND, capture_output=True, check=False)
    assert done.returncode == 2, done.stderr
    assert b"usage: python -m drivecat.ingest.parallel JOB" in done.stderr


def test_a_worker_that_cannot_start_leaves_no_job_file(
    small_drive: Path, tmp_path: Path, jobs_given: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the second worker cannot start: the first is killed, the pass stays in one process,
    # and the first one's job file (which it may not have read yet) is not installed
    real = subprocess.Popen
    started: list[Any] = []

    def second_fails(*args: Any, **kwargs: Any) -> Any:
        if started:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        started.append(real(["sleep", "30"], **kwargs))
        return started[-1]

    monkeypatch.setattr(drivecat.ingest.parallel.subprocess, "Popen", second_fails)
    options = IngestOptions(store=tmp_path / "store", jobs=2)
    assert ingest_drive(small_drive, options).status == "ingested"
    assert len(jobs_given) == 2 and len(started) == 1
    left = [p.name for p in (options.store / "drives").rglob(".*") if p.name != ".lock"]
    assert left == []
    assert query(options.store, "SELECT count(*) FROM drives") == [(1,)]


def _real_inputs() -> list[Path]:
    """Real recordings the workers can read: the ROS 1 bags, the ROS 2 bags in sqlite3, and
    in MCAP storage with an index, and every
    conformance file whose summary has its chunk index and channels (read by that index)."""
    found = [
        p
        for p in sorted((REAL / "ros2").glob("*_mcap"))
        if all(McapSource(f).indexed for f in p.glob("*.mcap"))  # a summary with its channels
    ]
    found.extend(
        p for p in sorted((REAL / "ros2").iterdir()) if p.is_dir() and "_mcap" not in p.name
    )
    # (but the GPS-only bag: its one topic feeds the taggers, so the pass reads it itself)
    found.extend(p for p in sorted((REAL / "ros1").glob("*.bag")) if "gps_sample" not in p.name)
    for variant in ("TenMessages", "OneMessage"):
        found.extend(
            p
            for p in sorted((REAL / "mcap-conformance" / variant).glob("*.mcap"))
            if all(f"-{flag}-" in f"{p.stem}-" for flag in ("chx", "rch", "sum"))
            and "-pad" not in p.stem
        )
    return found


@pytest.mark.skipif(not REAL.exists(), reason="../shared/data/real is absent")
@pytest.mark.parametrize("recording", _real_inputs() if REAL.exists() else [], ids=lambda p: p.name)
def test_real_recordings_split_alike_by_workers(
    recording: Path, tmp_path: Path, jobs_given: list[Any]
) -> None:
    drive = recording
    if recording.is_file():  # one file is one drive: give it a folder of its own
        drive = tmp_path / "drive"
        drive.mkdir()
        (drive / recording.name).write_bytes(recording.read_bytes())
    two = IngestOptions(store=tmp_path / "two", jobs=2)
    assert ingest_drive(drive, two).status == "ingested"
    assert jobs_given, "the workers read it"
    one = IngestOptions(store=tmp_path / "one", jobs=1)
    assert ingest_drive(drive, one).status == "ingested"
    _same_stores(one.store, two.store)


def _misstated(source: Path, out: Path) -> None:
    """``source`` with its first chunk index entry saying the chunk ends 1 ns after its
    last message (and no summary CRC, which the edit would break)."""
    data = bytearray(source.read_bytes())
    footer = len(data) - 8 - 29  # footer record: opcode, length, summary start, offset, crc
    summary_start = struct.unpack_from("<Q", data, footer + 9)[0]
    struct.pack_into("<I", data, footer + 25, 0)
    pos = summary_start
    while data[pos] != 0x08:  # the first ChunkIndex record
        pos += 9 + struct.unpack_from("<Q", data, pos + 1)[0]
    end = struct.unpack_from("<Q", data, pos + 17)[0]  # after start time: the end time
    struct.pack_into("<Q", data, pos + 17, end + 1)
    out.write_bytes(bytes(data))


def test_a_chunk_index_that_misstates_times_sends_the_drive_to_one_process(
    small_drive: Path, tmp_path: Path, jobs_given: list[Any]
) -> None:
    drive = tmp_path / "drive"
    drive.mkdir()
    for f in sorted(small_drive.glob("*.mcap")):
        _misstated(f, drive / f.name)
    config = Config(chunk_seconds=5)
    two = IngestOptions(store=tmp_path / "two", config=config, jobs=2)
    assert ingest_drive(drive, two).status == "ingested"
    assert jobs_given, "the workers started, and found the index wrong"
    one = IngestOptions(store=tmp_path / "one", config=config, jobs=1)
    assert ingest_drive(drive, one).status == "ingested"
    _same_stores(one.store, two.store)
    assert not [
        p for p in (two.store / "drives").rglob(".*") if p.name.startswith((".spool", ".job"))
    ]


def test_a_piece_over_many_windows_is_read_for_any_window_it_holds() -> None:
    # one chunk may span more windows than a worker holds (chunk_seconds 1 against a
    # drive_gap_seconds of hours): a window in its middle still needs it read
    touches = drivecat.ingest.parallel._touches
    piece = drivecat.ingest.pieces.Piece(0, 0, 20_000, 10, {1: 2})
    middle = {"/a": {15_000}}
    assert touches(piece, {1: "/a"}, middle, set(), frozenset({"/a"}), 0, 20_000)
    assert not touches(piece, {1: "/a"}, {"/a": {20_001}}, set(), frozenset({"/a"}), 0, 20_000)
    assert touches(piece, {1: "/b"}, {}, {3, 19_999}, frozenset({"/a"}), 0, 20_000)


class _FakeSource:
    """Pieces and channels as an index states them (what ``plan`` reads of a source)."""

    def __init__(self, pieces: list[drivecat.ingest.pieces.Piece], topics: dict[int, str]):
        self._pieces, self._topics = pieces, topics

    def pieces(self) -> list[drivecat.ingest.pieces.Piece]:
        return self._pieces

    def channel_topics(self) -> dict[int, str]:
        return self._topics


def _pieces(
    seconds: int, per_second: dict[int, tuple[int, int]], compression: str = ""
) -> list[drivecat.ingest.pieces.Piece]:
    """One piece a second from t = 40 s: channel -> (messages a second, give or take a
    tenth, and bytes each)."""
    import random

    rng = random.Random(seconds)
    pieces = []
    for s in range(seconds):
        counts = {
            cid: max(1, round(n * rng.uniform(0.9, 1.1))) for cid, (n, _) in per_second.items()
        }
        pieces.append(
            drivecat.ingest.pieces.Piece(
                offset=s,
                start_ns=(40 + s) * 10**9,
                end_ns=(40 + s) * 10**9 + 999_000_000,
                size=sum(per_second[cid][1] * n for cid, n in counts.items()),
                counts=counts,
                compression=compression,
            )
        )
    return pieces


def test_message_sizes_fit_the_pieces_without_negative_sizes() -> None:
    # More channels than pieces, and channels that always come together: plain least
    # squares gave negative sizes there, which cut to 0 had put the sum far off.
    import random

    rng = random.Random(5)
    truth = {cid: rng.choice([40, 200, 1500, 60_000]) for cid in range(60)}
    Piece = drivecat.ingest.pieces.Piece
    pieces = []
    for k in range(25):
        counts = {cid: rng.randint(0, 30) for cid in truth}
        counts[1] = counts[0]  # 0 and 1 always come together
        size = sum(truth[cid] * n for cid, n in counts.items())
        pieces.append(Piece(offset=k, start_ns=k, end_ns=k, size=size, counts=counts))
    fit = drivecat.ingest.parallel._message_sizes(pieces)
    assert min(fit.values()) >= 0
    fitted = [sum(fit[cid] * n for cid, n in p.counts.items()) for p in pieces]
    assert sum(fitted) == pytest.approx(sum(p.size for p in pieces), rel=0.01)
    assert fitted == pytest.approx([p.size for p in pieces], rel=0.1)
    # a system the pieces determine: the sizes themselves
    few = {0: 100, 1: 5000, 2: 20}
    pieces = [
        Piece(offset=k, start_ns=k, end_ns=k, size=sum(few[c] * n for c, n in counts.items()),
              counts=counts)
        for k, counts in enumerate(
            [{0: 10, 1: 1, 2: 50}, {0: 3, 1: 4, 2: 10}, {0: 7, 1: 0, 2: 90}, {0: 1, 1: 2, 2: 5}]
        )
    ]  # fmt: skip
    fit = drivecat.ingest.parallel._message_sizes(pieces)
    assert fit == pytest.approx(few, rel=0.01)


def test_workers_are_used_only_where_they_pay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(drivecat.ingest.parallel.os, "sched_getaffinity", lambda _: {0, 1})
    plan = drivecat.ingest.parallel.plan
    chunk_ns = 60 * 10**9
    # a short drive of large messages: two windows, one lidar file each, compressed chunks
    # shared with small topics: one process (with its threads) is as fast
    lidar = _FakeSource(
        _pieces(60, {1: (10, 850_000), 2: (100, 100), 3: (10, 200)}, "zstd"),
        {1: "/lidar", 2: "/imu", 3: "/gps"},
    )
    fit = drivecat.ingest.parallel._message_sizes(lidar.pieces())
    assert fit == pytest.approx({1: 850_000, 2: 100, 3: 200}, rel=1e-6)
    assert not plan([lidar], chunk_ns, frozenset({"/lidar", "/imu"}), 2).pays
    # the same drive three times as long, and many topics of small messages: workers
    longer = _FakeSource(_pieces(180, {1: (10, 850_000), 2: (100, 100)}, "zstd"), lidar._topics)
    assert plan([longer], chunk_ns, frozenset({"/lidar", "/imu"}), 2).pays
    many = {cid: (rng_rate, 120) for cid, rng_rate in enumerate([10, 50, 100] * 60)}
    small = _FakeSource(_pieces(60, many), {cid: f"/t{cid}" for cid in many})
    found = plan([small], chunk_ns, frozenset(f"/t{cid}" for cid in many), 2)
    assert found.pays
    loads = [sum(share.values()) for share in found.shares]
    assert max(loads) < 1.1 * min(loads)


def test_the_default_jobs_weigh_the_plan_a_given_number_does_not(
    small_drive: Path, tmp_path: Path, jobs_given: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drivecat.ingest.parallel, "_PAYS", 0.0)  # workers never pay
    monkeypatch.setattr(drivecat.ingest.run.os, "sched_getaffinity", lambda _: {0, 1})
    default = IngestOptions(store=tmp_path / "default")
    assert ingest_drive(small_drive, default).status == "ingested"
    assert jobs_given == [], "the default --jobs stays in one process where workers do not pay"
    given = IngestOptions(store=tmp_path / "given", jobs=2)
    assert ingest_drive(small_drive, given).status == "ingested"
    assert len(jobs_given) == 2, "--jobs 2 is what the user asked for"
    _same_stores(default.store, given.store)
