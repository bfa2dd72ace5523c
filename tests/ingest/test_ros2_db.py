"""A ROS 2 ``.db3`` read with sqlite3, whole and in pieces (``ingest.ros2_db``).

Ground truth is rosbags' own sqlite3 storage reader (which yields every topic of the
database), and Python's sqlite3 for what the pieces claim. The bags are the real ROS 2
sqlite3 bags of ../shared/data/real and small ones written here by rosbags' writer: several
topics, many equal timestamps, a topic without messages, message compression, and copies
without the timestamp index (rows in time order, and rows in shuffled order).
"""

from __future__ import annotations

import heapq
import random
import shutil
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zstandard
from rosbags.rosbag2 import Reader as Ros2Reader
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer as Ros2Writer
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode
from rosbags.typesys import Stores, get_typestore

from drivecat.ingest.bag_source import RosbagSource
from drivecat.ingest.pieces import Piece
from drivecat.ingest.ros2_db import Ros2DbSource
from drivecat.ingest.source_types import Channel, ProblemKind, RawMessage
from tests.ingest.conftest import REAL

STORE = get_typestore(Stores.ROS2_HUMBLE)
T0 = 1_700_000_000_000_000_000
REAL_DB3 = sorted((REAL / "ros2").glob("*/*.db3"))
SMALL = {"slice_bytes": 3000, "slice_messages": 16}  # many pieces from a small bag


def _string(text: str) -> bytes:
    return bytes(
        STORE.serialize_cdr(STORE.types["std_msgs/msg/String"](data=text), "std_msgs/msg/String")
    )


def _int32(value: int) -> bytes:
    return bytes(
        STORE.serialize_cdr(STORE.types["std_msgs/msg/Int32"](data=value), "std_msgs/msg/Int32")
    )


def _write_bag(folder: Path, compressed: bool = False) -> Path:
    """Three topics with messages at 60 distinct times (so many equal timestamps, within
    and across topics, written in random order) and one topic with none."""
    writer = Ros2Writer(folder, version=8, storage_plugin=StoragePlugin.SQLITE3)
    if compressed:
        writer.set_compression(CompressionMode.MESSAGE, CompressionFormat.ZSTD)
    rng = random.Random(18)
    with writer:
        a = writer.add_connection("/a", "std_msgs/msg/String", typestore=STORE)
        b = writer.add_connection("/b", "std_msgs/msg/String", typestore=STORE)
        n = writer.add_connection("/n", "std_msgs/msg/Int32", typestore=STORE)
        writer.add_connection("/silent", "std_msgs/msg/Int32", typestore=STORE)
        for i in range(400):
            t = T0 + rng.randrange(60) * 1_000_000
            conn = rng.choice((a, b, n))
            data = _int32(i) if conn is n else _string(f"{i}:" + "x" * rng.randrange(600))
            writer.write(conn, t, data)
    (db3,) = folder.glob("*.db3")
    return db3


def _without_index(db3: Path, shuffle: bool) -> None:
    """Drop the timestamp index, and rewrite the rows: renumbered in time order (as a
    recorder whose clock never steps back writes them), or, with ``shuffle``, in random
    order keeping each row's id (so equal times keep their recorded order)."""
    con = sqlite3.connect(db3)
    con.execute("DROP INDEX timestamp_idx")
    rows = con.execute("SELECT id, topic_id, timestamp, data FROM messages").fetchall()
    if shuffle:
        random.Random(5).shuffle(rows)
    else:
        rows.sort(key=lambda r: (r[2], r[0]))
        rows = [(k + 1, *r[1:]) for k, r in enumerate(rows)]
    con.execute("DELETE FROM messages")
    con.executemany("INSERT INTO messages VALUES (?, ?, ?, ?)", rows)
    con.commit()
    con.execute("VACUUM")
    con.close()


@pytest.fixture(scope="module")
def bags(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Generated ``.db3`` files by variant."""
    root = tmp_path_factory.mktemp("ros2_db")
    out = {"indexed": _write_bag(root / "indexed")}
    out["message-zstd"] = _write_bag(root / "zstd", compressed=True)
    for name, shuffle in (("no-index", False), ("no-index-shuffled", True)):
        shutil.copytree(out["indexed"].parent, root / name)
        out[name] = root / name / out["indexed"].name
        _without_index(out[name], shuffle)
    return out


def _inflate(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


def _open(db3: Path, **kw: Any) -> Ros2DbSource:
    return Ros2DbSource(db3, decompress=_inflate if "zstd" in db3.parent.name else None, **kw)


def _truth(db3: Path) -> list[tuple[str, int, bytes]]:
    """(topic, time, data) in the order rosbags' storage reader yields them."""
    with Ros2Reader(db3) as reader:
        out = [(c.topic, t, bytes(d)) for c, t, d in reader.messages(reader.connections)]
    if "zstd" in db3.parent.name:
        out = [(topic, t, _inflate(d)) for topic, t, d in out]
    return out


def _by_time(msgs: list[tuple[str, int, bytes]]) -> dict[int, Counter[tuple[str, bytes]]]:
    out: dict[int, Counter[tuple[str, bytes]]] = {}
    for topic, t, data in msgs:
        out.setdefault(t, Counter())[(topic, data)] += 1
    return out


def _recorded(db3: Path) -> list[tuple[int, bytes]]:
    """(time, data) by time, equal times in the order they were recorded (row id)."""
    con = sqlite3.connect(f"file:{db3}?immutable=1", uri=True)
    rows = con.execute("SELECT timestamp, id, data FROM messages").fetchall()
    con.close()
    return [(t, d) for t, _, d in sorted(rows)]


def _plain(msgs: list[RawMessage]) -> list[tuple[str, int, bytes]]:
    assert all(m.publish_time_ns == m.log_time_ns and m.sequence == 0 for m in msgs)
    return [(m.channel.topic, m.log_time_ns, m.data) for m in msgs]


def _cases(bags: dict[str, Path]) -> list[Path]:
    return [*REAL_DB3, *bags.values()]


VARIANTS = [p.parent.name for p in REAL_DB3] + [
    "indexed",
    "message-zstd",
    "no-index",
    "no-index-shuffled",
]


@pytest.fixture(params=VARIANTS)
def db3(request: pytest.FixtureRequest, bags: dict[str, Path]) -> Path:
    for path in REAL_DB3:
        if path.parent.name == request.param:
            return path
    return bags[request.param]


def test_messages_and_channels_are_rosbags(db3: Path) -> None:
    source = _open(db3)
    got = list(source.messages())
    if "no-index" in db3.parent.name:
        # Without the timestamp index, rosbags' order among equal timestamps is whatever
        # SQLite's sorter leaves (here: by topic id); ours is the recording's (row id).
        assert _by_time(_plain(got)) == _by_time(_truth(db3))
        assert [(t, d) for _, t, d in _plain(got)] == _recorded(db3)
    else:
        assert _plain(got) == _truth(db3)
    assert source.problems == [] and not source.out_of_order
    with Ros2Reader(db3) as reader:  # the topics table, as rosbags reads it
        conns = {(c.topic, c.msgtype, c.ext.serialization_format) for c in reader.connections}  # type: ignore[union-attr]
        own = {c.msgtype: c.msgdef.data for c in reader.connections if c.msgdef.data}
    channels = source.declared_channels()
    assert {(c.topic, c.schema.name, c.message_encoding) for c in channels if c.schema} == conns
    for c in channels:
        assert c.schema is not None and c.schema.data  # a definition for every type
        if c.schema.name in own:
            assert c.schema.data == own[c.schema.name].encode()
    # the Channel objects RosbagSource makes for the same file
    folder_reader = RosbagSource(db3.parent, [db3], ros1=False)
    assert sorted(map(repr, channels)) == sorted(map(repr, folder_reader._channels[0].values()))
    assert {id(m.channel) for m in got} <= {id(c) for c in channels}


def test_pieces_state_what_the_database_holds(db3: Path) -> None:
    source = _open(db3, **SMALL)
    pieces = source.pieces()
    assert [p.offset for p in pieces] == list(range(len(pieces)))
    assert pieces == sorted(pieces, key=lambda p: (p.start_ns, p.offset))
    con = sqlite3.connect(f"file:{db3}?immutable=1", uri=True)
    total = con.execute("SELECT count(*), min(timestamp) FROM messages").fetchone()
    assert sum(sum(p.counts.values()) for p in pieces) == total[0]
    assert source.start_bound == total[1]
    for p, after in zip(pieces, pieces[1:], strict=False):
        assert p.end_ns < after.start_ns  # equal timestamps are never split
    for p in pieces:
        rows = con.execute(
            "SELECT topic_id, count(*), sum(length(data)), min(timestamp), max(timestamp) "
            "FROM messages WHERE timestamp BETWEEN ? AND ? GROUP BY topic_id",
            (p.start_ns, p.end_ns),
        ).fetchall()
        assert dict(p.counts) == {tid: n for tid, n, *_ in rows}
        assert p.size == sum(r[2] for r in rows)
        assert (p.start_ns, p.end_ns) == (min(r[3] for r in rows), max(r[4] for r in rows))
    con.close()
    if db3.parent.name in ("indexed", "no-index"):
        assert len(pieces) > 10
        for p in pieces[:-1]:  # closed only once full
            assert (
                sum(p.counts.values()) >= SMALL["slice_messages"] or p.size >= SMALL["slice_bytes"]
            )


SPLITS: dict[str, Callable[[int, int], bool]] = {
    "halves": lambda k, n: k < n // 2,
    "alternate": lambda k, n: k % 2 == 0,
    "random": lambda k, n: random.Random(k * 7 + n).random() < 0.5,
    "all-one-side": lambda k, n: True,
}


@pytest.mark.parametrize("split", list(SPLITS))
def test_owned_halves_merged_are_the_whole(db3: Path, split: str) -> None:
    whole = list(_open(db3, **SMALL).messages())
    source = _open(db3, **SMALL)
    pieces = source.pieces()
    side = [SPLITS[split](k, len(pieces)) for k in range(len(pieces))]
    parts = []
    for want in (True, False):
        mine = [p for p, s in zip(pieces, side, strict=True) if s == want]
        other = _open(db3, **SMALL)  # each worker opens the file itself
        parts.append(list(other.messages_in(mine, None, lambda p: True)))
        assert other.index_disagrees == [] and other.piece_problems == []
    merged = list(heapq.merge(*parts, key=lambda m: m.log_time_ns))
    assert _plain(merged) == _plain(whole)


def test_channel_filter_keeps_order_and_reads_only_those(db3: Path) -> None:
    source = _open(db3, **SMALL)
    whole = list(source.messages())
    ids = sorted(source.channel_topics())
    for keep in ([ids[0]], ids[1:], []):
        reader = _open(db3, **SMALL)
        topics = {reader.channel_topics()[i] for i in keep}
        got = list(reader.messages_in(reader.pieces(), frozenset(keep), lambda p: True))
        assert _plain(got) == [m for m in _plain(whole) if m[0] in topics]
        assert reader.index_disagrees == []


def test_channels_shared_through_a_pool(bags: dict[str, Path]) -> None:
    pool: dict[Channel, Channel] = {}
    first = Ros2DbSource(bags["indexed"], pool)
    second = Ros2DbSource(bags["no-index"], pool)
    assert [id(c) for c in first.declared_channels()] == [id(c) for c in second.declared_channels()]


def _owner(offsets: set[int]) -> Callable[[Piece], bool]:
    return lambda p: p.offset in offsets


def test_rows_on_an_unknown_topic_id_are_counted_once(
    tmp_path: Path, bags: dict[str, Path]
) -> None:
    folder = tmp_path / "stray"
    shutil.copytree(bags["indexed"].parent, folder)
    db3 = folder / bags["indexed"].name
    con = sqlite3.connect(db3)
    (last,) = con.execute("SELECT max(timestamp) FROM messages").fetchone()
    con.executemany(
        "INSERT INTO messages (topic_id, timestamp, data) VALUES (99, ?, ?)",
        [(T0, b"abc"), (last, b"defgh")],
    )
    con.commit()
    con.close()
    whole = _open(db3, **SMALL)
    assert _plain(list(whole.messages())) == _truth(db3)  # rosbags' join drops them too
    (problem,) = whole.problems
    assert problem.kind is ProblemKind.UNKNOWN_CHANNEL
    assert (problem.lost_messages, problem.lost_bytes) == (2, 8)
    # two readers sharing the file, each owning half, one filtering: tallied once
    pieces = whole.pieces()
    tallies: Counter[int] = Counter()
    for half, channels in ((pieces[::2], None), (pieces[1::2], frozenset({1}))):
        reader = _open(db3, **SMALL)
        owned = _owner({p.offset for p in half})
        list(reader.messages_in(pieces, channels, owned))
        for tid, (n, _) in reader.unknown.items():
            tallies[tid] += n
        assert reader.index_disagrees == []
    assert tallies == {99: 2}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "not a ROS 2 bag .no messages and topics tables"),
        (b"a text file, not a database\n" * 40, "not a readable ROS 2 bag: file is not a database"),
    ],
)
def test_unreadable_database_is_one_error_naming_the_file(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    from drivecat.ingest.errors import IngestError

    path = tmp_path / "bad.db3"
    path.write_bytes(content)
    with pytest.raises(IngestError, match=reason) as err:
        Ros2DbSource(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_the_recording_folder_is_left_untouched(tmp_path: Path) -> None:
    """A WAL-mode database is read without creating -shm or -wal files beside it."""
    if not REAL_DB3:
        pytest.skip("real recordings not present")
    talker = REAL / "ros2" / "rosbag2_talker_sqlite3" / "talker.db3"
    copy = tmp_path / "talker.db3"
    shutil.copy(talker, copy)
    assert copy.read_bytes()[18:20] == b"\x02\x02"  # WAL mode
    assert len(list(Ros2DbSource(copy).messages())) == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talker.db3"]
