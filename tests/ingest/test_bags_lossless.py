"""ROS bags lose nothing, and say so when they must.

What the store holds is read back with the mcap library's reader and compared, per topic,
byte for byte and by log time, with an independent reader of the input: rosbags for ROS 1,
Python's sqlite3 for ROS 2 ``.db3`` files (rosbags' folder reader drops topics whose QoS
strings disagree), the mcap library for ROS 2 MCAP storage; counts are checked against the
counts ``metadata.yaml`` declares. Truncated bags are cut from the real ones; small bags
are written here with rosbags' writers.
"""

from __future__ import annotations

import functools
import shutil
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from mcap.reader import make_reader
from rosbags.rosbag1 import Reader as Ros1Reader
from rosbags.rosbag1 import Writer as Ros1Writer
from rosbags.rosbag2 import Reader as Ros2Reader
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer as Ros2Writer
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode
from rosbags.typesys import Stores, get_typestore
from ruamel.yaml import YAML

from drivecat.cli.main import drivecat
from drivecat.ingest.declared import declared_counts, shortfall
from drivecat.ingest.ros1_scan import BagFormatError, normalize_topic, parse_fields
from drivecat.ingest.run import IngestOptions, ingest_drive
from tests.ingest.conftest import REAL, REAL_BAGS
from tests.ingest.helpers import query

Messages = dict[str, list[tuple[int, bytes]]]  # topic -> sorted (log time, bytes)


def stored(store: Path, drive_id: str) -> Messages:
    """Every message of the drive, read back from its store files by the mcap library."""
    out: defaultdict[str, list[tuple[int, bytes]]] = defaultdict(list)
    for (path,) in query(store, f"SELECT path FROM files WHERE drive_id = '{drive_id}'"):
        with open(store / path, "rb") as f:
            for _, channel, message in make_reader(f).iter_messages():
                out[channel.topic].append((message.log_time, message.data))
    return {t: sorted(v) for t, v in out.items()}


def ros1_messages(bag: Path) -> Messages:
    out: defaultdict[str, list[tuple[int, bytes]]] = defaultdict(list)
    with Ros1Reader(bag) as reader:
        for conn, t, data in reader.messages():
            out[conn.topic].append((t, bytes(data)))
    return {t: sorted(v) for t, v in out.items()}


def db3_messages(folder: Path) -> Messages:
    """Straight from the ``.db3`` tables, whatever ``metadata.yaml`` says."""
    out: defaultdict[str, list[tuple[int, bytes]]] = defaultdict(list)
    for db3 in sorted(folder.glob("*.db3")):
        # immutable: a WAL-mode database opened only read-only still gets -shm/-wal files
        con = sqlite3.connect(f"file:{db3}?mode=ro&immutable=1", uri=True)
        try:
            rows = con.execute(
                "SELECT topics.name, messages.timestamp, messages.data "
                "FROM messages JOIN topics ON topics.id = messages.topic_id"
            ).fetchall()
        finally:
            con.close()
        for topic, t, data in rows:
            out[topic].append((t, bytes(data)))
    return {t: sorted(v) for t, v in out.items()}


def mcap_messages(folder: Path) -> Messages:
    out: defaultdict[str, list[tuple[int, bytes]]] = defaultdict(list)
    for path in sorted(folder.glob("*.mcap")):
        with open(path, "rb") as f:
            for _, channel, message in make_reader(f).iter_messages():
                out[channel.topic].append((message.log_time, message.data))
    return {t: sorted(v) for t, v in out.items()}


def declared(folder: Path) -> dict[str, int]:
    """Non-zero counts of ``topics_with_message_count``, read with ruamel."""
    info = YAML(typ="safe").load((folder / "metadata.yaml").read_text())
    entries = info["rosbag2_bagfile_information"]["topics_with_message_count"]
    return {e["topic_metadata"]["name"]: e["message_count"] for e in entries if e["message_count"]}


def drive_row(store: Path, drive_id: str) -> tuple[Any, ...]:
    return query(
        store,
        "SELECT status, message_count, lost_messages, lost_bytes, start_ns, end_ns, "
        f"start_time FROM drives WHERE drive_id = '{drive_id}'",
    )[0]


# -- every real bag ------------------------------------------------------------------------


@pytest.mark.parametrize("bag", REAL_BAGS, ids=[p.name for p in REAL_BAGS])
def test_real_bag_is_stored_byte_for_byte(
    bag: Path, real_ingest: tuple[Path, list[dict[str, Any]]]
) -> None:
    store, report = real_ingest
    drive_id = report[REAL_BAGS.index(bag)]["drive_id"]
    got = stored(store, drive_id)
    if bag.suffix == ".bag":
        want = ros1_messages(bag)
    elif list(bag.glob("*.db3")):
        want = db3_messages(bag)
    else:
        want = mcap_messages(bag)
    assert want, "the independent reader found nothing: the test would prove nothing"
    assert got.keys() == want.keys()
    for topic in want:
        assert got[topic] == want[topic], topic
    if bag.is_dir():
        assert {t: len(v) for t, v in got.items()} == declared(bag)
    status, count, lost, lost_bytes, start_ns, *_ = drive_row(store, drive_id)
    assert (status, count, lost, lost_bytes) == (
        "complete",
        sum(map(len, want.values())),
        0,
        0,
    )
    assert start_ns == min(t for v in want.values() for t, _ in v)


def test_talker_bag_with_other_qos_strings_is_read_whole(
    real_ingest: tuple[Path, list[dict[str, Any]]],
) -> None:
    """The README's case: rosbags' folder reader yields nothing for these topics."""
    bag = REAL / "ros2" / "rosbag2_talker_sqlite3"
    with Ros2Reader(bag) as reader:
        assert sum(1 for _ in reader.messages()) == 0  # what drivecat used to store
    store, report = real_ingest
    drive_id = report[REAL_BAGS.index(bag)]["drive_id"]
    assert {t: len(v) for t, v in stored(store, drive_id).items()} == {"/topic": 10, "/rosout": 10}


def test_service_event_definitions_are_kept(
    real_ingest: tuple[Path, list[dict[str, Any]]],
) -> None:
    """The sqlite3 bag's service-event schema is the full definition rosbag2 wrote into
    the MCAP copy of the same recording."""
    copy = REAL / "ros2" / "rosbag2_service_events_mcap" / "bag_with_topics_and_service_events.mcap"
    with open(copy, "rb") as f:
        summary = make_reader(f).get_summary()
    assert summary is not None
    want = {(s.name, s.encoding, s.data) for s in summary.schemas.values() if "/srv/" in s.name}
    assert want and all(len(data) == 524 for *_, data in want)
    store, report = real_ingest
    sqlite_bag = REAL / "ros2" / "rosbag2_service_events_sqlite3"
    drive_id = report[REAL_BAGS.index(sqlite_bag)]["drive_id"]
    got = set()
    for (path,) in query(store, f"SELECT path FROM files WHERE drive_id = '{drive_id}'"):
        with open(store / path, "rb") as f:
            s = make_reader(f).get_summary()
        assert s is not None
        got |= {(x.name, x.encoding, x.data) for x in s.schemas.values() if "/srv/" in x.name}
    assert got == want


# -- truncated ROS 1 bags ------------------------------------------------------------------


@functools.cache  # read once per bag, whatever the cut
def _chunks_and_messages(
    bag: Path,
) -> tuple[list[tuple[int, int]], list[tuple[int, str, int, bytes]]]:
    """From rosbags' reading of the intact bag: each chunk record's (start, end) in the
    file, and each message as (its chunk's start, topic, log time, bytes)."""
    chunks: list[tuple[int, int]] = []
    messages = []
    with Ros1Reader(bag) as reader:
        for pos, chunk in sorted(reader.chunks.items()):
            chunks.append((pos, chunk.datapos + chunk.datasize))
        for conn in reader.connections:
            entries = reader.indexes[conn.id]
            for entry, (_, t, data) in zip(entries, reader.messages([conn]), strict=True):
                assert entry.time == t
                messages.append((entry.chunk_pos, conn.topic, t, bytes(data)))
    return chunks, messages


CUTS = [
    ("robot_localization_test1.bag", "inside-chunk-5"),
    ("robot_localization_test1.bag", "inside-index"),
    ("robot_localization_test1.bag", "after-header"),
    ("event_camera_test_events_1.bag", "inside-chunk-2"),
    ("sail_il_2022-04-10-16-15-52.bag", "inside-chunk-1"),
]


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real is not here")
@pytest.mark.parametrize(("name", "where"), CUTS, ids=[f"{n}-{w}" for n, w in CUTS])
def test_truncated_ros1_bag_keeps_every_complete_chunk(
    name: str, where: str, tmp_path: Path
) -> None:
    bag = REAL / "ros1" / name
    chunks, messages = _chunks_and_messages(bag)
    size = bag.stat().st_size
    if where == "inside-index":
        cut = size - 10  # the chunk-info records close the file
    elif where == "after-header":
        cut = chunks[0][0]
    else:
        start, end = chunks[int(where.rsplit("-", 1)[1]) - 1]
        cut = (start + end) // 2
    (tmp_path / "in").mkdir()
    cut_bag = tmp_path / "in" / name
    cut_bag.write_bytes(bag.read_bytes()[:cut])

    complete = {start for start, end in chunks if end <= cut}
    want: defaultdict[str, list[tuple[int, bytes]]] = defaultdict(list)
    for chunk_pos, topic, t, data in messages:
        if chunk_pos in complete:
            want[topic].append((t, data))

    store = tmp_path / "store"
    result = CliRunner().invoke(drivecat, ["ingest", "run", str(cut_bag), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "truncated input recovered" in result.output
    drive_id = query(store, "SELECT drive_id FROM drives")[0][0]
    assert stored(store, drive_id) == {t: sorted(v) for t, v in want.items()}

    status, count, lost, lost_bytes, start_ns, end_ns, start_time = drive_row(store, drive_id)
    assert status == "recovered"
    assert count == sum(map(len, want.values()))
    if where == "inside-index":
        assert lost == 0  # every chunk is there: only part of the index is lost
        assert 0 < lost_bytes < size - chunks[-1][1]
    else:
        assert lost is None  # how many messages the cut chunk held is in the lost index
        # what follows each complete chunk (its index data records) is read too
        assert lost_bytes == cut - min(start for start, end in chunks if end > cut)
    if where == "after-header":
        assert (start_ns, end_ns, start_time) == (None, None, None)
    kinds = query(store, "SELECT kind FROM quality WHERE kind = 'truncated'")
    assert kinds == [("truncated",)]


def test_scanner_rejects_malformed_header_fields() -> None:
    assert parse_fields(b"\x04\x00\x00\x00op=\x05\x03\x00\x00\x00a==") == {
        "op": b"\x05",
        "a": b"=",
    }
    with pytest.raises(BagFormatError):
        parse_fields(b"\x09\x00\x00\x00op=\x05")  # longer than the header
    with pytest.raises(BagFormatError):
        parse_fields(b"\x02\x00\x00\x00op")  # no '='
    assert normalize_topic("//a//b/") == "/a/b" and normalize_topic("a") == "a"


# -- small ROS 2 bags written here -------------------------------------------------------

STORE = get_typestore(Stores.ROS2_HUMBLE)


def _string(text: str) -> bytes:
    msg = STORE.types["std_msgs/msg/String"](data=text)
    return bytes(STORE.serialize_cdr(msg, "std_msgs/msg/String"))


def _write_ros2(folder: Path, n: int, compression: CompressionMode | None = None) -> None:
    """Two String topics, n messages each, 10 ms apart, in sqlite3 storage."""
    writer = Ros2Writer(folder, version=8, storage_plugin=StoragePlugin.SQLITE3)
    if compression is not None:
        writer.set_compression(compression, CompressionFormat.ZSTD)
    with writer:
        conns = [
            writer.add_connection(t, "std_msgs/msg/String", typestore=STORE) for t in ("/a", "/b")
        ]
        for i in range(n):
            for k, conn in enumerate(conns):
                writer.write(
                    conn, 1_700_000_000_000_000_000 + i * 10_000_000 + k, _string(f"{k}:{i}")
                )


def _set_qos(folder: Path, topic: str, qos: str) -> None:
    yaml = YAML()
    path = folder / "metadata.yaml"
    doc = yaml.load(path.read_text())
    for entry in doc["rosbag2_bagfile_information"]["topics_with_message_count"]:
        if entry["topic_metadata"]["name"] == topic:
            entry["topic_metadata"]["offered_qos_profiles"] = qos
    with path.open("w") as f:
        yaml.dump(doc, f)


def test_qos_mismatch_loses_nothing(tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    _write_ros2(bag, 5)
    qos = (
        "- history: 1\n  depth: 7\n  reliability: 2\n  durability: 2\n"
        "  deadline:\n    sec: 1\n    nsec: 0\n  lifespan:\n    sec: 1\n    nsec: 0\n"
        "  liveliness: 1\n  liveliness_lease_duration:\n    sec: 1\n    nsec: 0\n"
        "  avoid_ros_namespace_conventions: false"
    )
    _set_qos(bag, "/a", qos)
    with Ros2Reader(bag) as reader:  # the failure this guards against
        assert {c.topic for c, _, _ in reader.messages()} == {"/b"}
    store = tmp_path / "store"
    result = ingest_drive(bag, IngestOptions(store=store))
    assert result.drive_status == "complete" and result.message_count == 10
    assert stored(store, str(result.drive_id)) == db3_messages(bag)


def test_message_compressed_bag_is_stored_decompressed(tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    _write_ros2(bag, 4, CompressionMode.MESSAGE)
    want: defaultdict[str, list[tuple[int, bytes]]] = defaultdict(list)
    with Ros2Reader(bag) as reader:
        for conn, t, data in reader.messages():
            want[conn.topic].append((t, bytes(data)))
    assert _string("0:0") in [d for _, d in want["/a"]]
    store = tmp_path / "store"
    result = ingest_drive(bag, IngestOptions(store=store))
    assert result.drive_status == "complete"
    assert stored(store, str(result.drive_id)) == {t: sorted(v) for t, v in want.items()}


def test_fewer_messages_than_declared_is_a_counted_loss(tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    _write_ros2(bag, 6)
    db3 = next(bag.glob("*.db3"))
    con = sqlite3.connect(db3)
    (topic_id,) = con.execute("SELECT id FROM topics WHERE name = '/b'").fetchone()
    con.execute(
        "DELETE FROM messages WHERE id IN "
        "(SELECT id FROM messages WHERE topic_id = ? ORDER BY timestamp DESC LIMIT 4)",
        (topic_id,),
    )
    con.commit()
    con.close()
    store = tmp_path / "store"
    result = CliRunner().invoke(drivecat, ["ingest", "run", str(bag), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "missing messages" in result.output and "/b: metadata.yaml declares 6" in result.output
    assert "(partial)" in result.output
    drive_id = query(store, "SELECT drive_id FROM drives")[0][0]
    status, count, lost, *_ = drive_row(store, drive_id)
    assert (status, count, lost) == ("partial", 8, 4)
    rows = query(store, "SELECT topic, kind, count FROM quality WHERE kind = 'missing_messages'")
    assert rows == [("/b", "missing_messages", 4)]
    assert stored(store, drive_id) == db3_messages(bag)


def test_declared_counts_and_shortfall_are_pure() -> None:
    info = {
        "topics_with_message_count": [
            {"topic_metadata": {"name": "/x"}, "message_count": 3},
            {"topic_metadata": {"name": "/x"}, "message_count": 2},
            {"topic_metadata": {"name": "/y"}, "message_count": "many"},
        ]
    }
    assert declared_counts(info) == {"/x": 5}
    assert declared_counts({}) is None
    (problem,) = shortfall(Path("b"), {"/x": 5, "/z": 1}, {"/x": 5, "/z": 0})
    assert (problem.kind, problem.topic, problem.lost_messages) == ("missing_messages", "/z", 1)
    assert shortfall(Path("b"), {"/x": 1}, {"/x": 9}) == []


# -- empty inputs ----------------------------------------------------------------------------


def _empty_ros1(path: Path) -> Path:
    with Ros1Writer(path / "empty.bag"):
        pass
    return path / "empty.bag"


def _empty_ros2(path: Path) -> Path:
    with Ros2Writer(path / "bag", version=8):
        pass
    return path / "bag"


def _empty_mcap(path: Path) -> Path:
    source = REAL / "mcap-conformance" / "NoData" / "NoData-st-sum.mcap"
    if not source.is_file():
        pytest.skip("../shared/data/real is not here")
    return Path(shutil.copy(source, path / "NoData.mcap"))


@pytest.mark.parametrize(
    "make", [_empty_ros1, _empty_ros2, _empty_mcap], ids=["ros1", "ros2", "mcap"]
)
def test_empty_input_is_an_empty_drive_without_dates(make: Any, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    path = make(tmp_path / "in")
    store = tmp_path / "store"
    result = CliRunner().invoke(drivecat, ["ingest", "run", str(path), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "the inputs hold no message: drive marked 'empty'" in result.output
    (drive_id,) = query(store, "SELECT drive_id FROM drives")[0]
    assert "1970" not in drive_id
    status, count, lost, lost_bytes, start_ns, end_ns, start_time = drive_row(store, drive_id)
    assert (status, count, lost, lost_bytes) == ("empty", 0, 0, 0)
    assert (start_ns, end_ns, start_time) == (None, None, None)
