"""``Ros1BagSource`` against rosbags' own reader, the ground truth for what a bag holds.

Real bags from ../shared/data/real and bags written here with rosbags' writer (no, bz2 and
lz4 compression; several connections on one topic; chunks written out of time order;
disorder inside chunks) must give the same messages as rosbags, with the channels
``RosbagSource`` made from rosbags' connections. Reading the chunks in pieces, split between
two readers, must give what one reader gives. A damaged chunk costs exactly its messages.
"""

from __future__ import annotations

import bz2
import heapq
import random
import struct
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from rosbags.rosbag1 import Reader as Ros1Reader
from rosbags.rosbag1 import Writer as Ros1Writer

from drivecat.ingest.bag_source import RosbagSource
from drivecat.ingest.pieces import Piece
from drivecat.ingest.ros1_bag import Ros1BagSource
from drivecat.ingest.ros1_scan import Ros1ScanSource, open_ros1
from drivecat.ingest.source_types import RawMessage
from drivecat.types import ProblemKind
from tests.ingest.conftest import REAL

REAL_ROS1 = sorted((REAL / "ros1").glob("*.bag"))
Msg = tuple[str, int, bytes]  # topic, log time, data


def rosbags_messages(bag: Path) -> list[Msg]:
    with Ros1Reader(bag) as reader:
        return [(c.topic, t, bytes(d)) for c, t, d in reader.messages()]


def per_topic(msgs: list[Msg]) -> dict[str, list[Msg]]:
    out: defaultdict[str, list[Msg]] = defaultdict(list)
    for m in msgs:
        out[m[0]].append(m)
    return dict(out)


def plain(msgs: list[RawMessage]) -> list[Msg]:
    return [(m.channel.topic, m.log_time_ns, m.data) for m in msgs]


def assert_same_as_rosbags(bag: Path, src: Ros1BagSource) -> list[RawMessage]:
    got = list(src.messages())
    want = rosbags_messages(bag)
    assert Counter(plain(got)) == Counter(want)
    # rosbags orders equal times by chunk position, this reader by piece order: the bags
    # here have no equal times within a topic, so each topic's order is the same
    assert per_topic(plain(got)) == per_topic(want)
    times = [m.log_time_ns for m in got]
    assert times == sorted(times)
    assert all(m.publish_time_ns == m.log_time_ns and m.sequence == 0 for m in got)
    return got


def assert_channels_as_rosbag_source(bag: Path, got: list[RawMessage]) -> None:
    """Every message's channel is the one ``RosbagSource`` gave it (rosbags' connections)."""
    old = RosbagSource(bag, [bag], ros1=True)
    assert Counter((m.channel, m.log_time_ns, m.data) for m in got) == Counter(
        (m.channel, m.log_time_ns, m.data) for m in old.messages()
    )
    assert set(Ros1BagSource(bag).declared_channels()) == set(old._channels[0].values())


@pytest.mark.parametrize("bag", REAL_ROS1, ids=lambda p: p.stem)
def test_real_bags_read_as_rosbags_reads_them(bag: Path) -> None:
    if not bag.exists():
        pytest.skip("../shared/data/real is not here")
    src = Ros1BagSource(bag)
    got = assert_same_as_rosbags(bag, src)
    assert_channels_as_rosbag_source(bag, got)
    assert src.problems == []
    with Ros1Reader(bag) as reader:
        assert len(src.pieces()) == len(reader.chunk_infos)
        assert src.start_bound == reader.start_time
    assert isinstance(open_ros1(bag), Ros1BagSource)


# -- bags written here ----------------------------------------------------------------

_STRING = "string data"
_STRING_MD5 = "992ce8a1687cec8c8bd883ec73ca41d1"
_POSE = "float64 x\nfloat64 y\n"


def write_bag(path: Path, compression: str, seed: int, disorder: bool = True) -> Path:
    """About 2000 messages on four topics in 4 KiB chunks: ``/a`` from two publishers
    (two connections, one channel), a latched ``/b``, ``/c`` of another type, and
    ``//d//e`` (a topic rosbags normalizes). Blocks of time are written out of order, so
    chunks overlap in time and do not come in time order; with ``disorder``, messages
    are shuffled within runs of ten (recorded out of order inside a chunk). Times are
    distinct within each topic."""
    rng = random.Random(seed)
    writer = Ros1Writer(path)
    if compression != "none":
        writer.set_compression(Ros1Writer.CompressionFormat[compression.upper()])
    writer.chunk_threshold = 4096
    with writer as bag:
        conns = [
            bag.add_connection("/a", "std_msgs/msg/String", msgdef=_STRING, md5sum=_STRING_MD5,
                               callerid="/one"),
            bag.add_connection("/a", "std_msgs/msg/String", msgdef=_STRING, md5sum=_STRING_MD5,
                               callerid="/two"),
            bag.add_connection("/b", "std_msgs/msg/String", msgdef=_STRING, md5sum=_STRING_MD5,
                               latching=1),
            bag.add_connection("/c", "geometry_msgs/msg/Pose2D", msgdef=_POSE, md5sum="0" * 32),
            bag.add_connection("//d//e", "std_msgs/msg/String", msgdef=_STRING,
                               md5sum=_STRING_MD5),
        ]  # fmt: skip
        blocks = list(range(20))
        rng.shuffle(blocks)  # 20 blocks of one second, written in a random order
        for block in blocks:
            msgs = []
            for k in range(100):
                conn = conns[k % len(conns)]
                t = 1_700_000_000_000_000_000 + block * 1_000_000_000 + k * 7_000_000
                data = rng.randbytes(rng.randrange(0, 120))
                msgs.append((conn, t, struct.pack("<I", len(data)) + data))
            if disorder:
                for i in range(0, len(msgs), 10):
                    run = msgs[i : i + 10]
                    rng.shuffle(run)
                    msgs[i : i + 10] = run
            for conn, t, data in msgs:
                bag.write(conn, t, data)
    return path


@pytest.fixture(scope="module", params=["none", "bz2", "lz4"])
def made_bag(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp(f"ros1_{request.param}")
    return write_bag(folder / "made.bag", request.param, seed=len(request.param))


def chunk_contents(bag: Path) -> dict[int, list[tuple[str, int]]]:
    """Chunk position -> its messages (topic, time) in record order, from rosbags' index."""
    out: defaultdict[int, list[tuple[int, str, int]]] = defaultdict(list)
    with Ros1Reader(bag) as reader:
        topic = {c.id: c.topic for c in reader.connections}
        for conn, entries in reader.indexes.items():
            for e in entries:
                out[e.chunk_pos].append((e.offset, topic[conn], e.time))
    return {pos: [(tp, t) for _, tp, t in sorted(v)] for pos, v in out.items()}


def test_made_bags_read_as_rosbags_reads_them(made_bag: Path) -> None:
    src = Ros1BagSource(made_bag)
    got = assert_same_as_rosbags(made_bag, src)
    assert_channels_as_rosbag_source(made_bag, got)
    assert src.problems == []
    # two publishers on /a are one channel; the odd topic is named as rosbags names it
    assert sorted(c.topic for c in src.declared_channels()) == ["/a", "/b", "/c", "/d/e"]
    assert [dict(c.metadata).get("latching") for c in src.declared_channels()] == [
        None,
        "1",
        None,
        None,
    ]
    assert len(src.pieces()) > 20
    pieces = src.pieces()
    assert pieces == sorted(pieces, key=lambda p: (p.start_ns, p.offset))
    assert any(a.offset > b.offset for a, b in zip(pieces, pieces[1:], strict=False))


def test_disorder_inside_chunks_is_counted_per_topic(made_bag: Path) -> None:
    """Ground truth from rosbags' index: within each chunk, in record order, the messages
    of a topic recorded after a later one of that topic."""
    want: Counter[str] = Counter()
    for records in chunk_contents(made_bag).values():
        last: dict[str, int] = {}
        for topic, t in records:
            if t < last.get(topic, t):
                want[topic] += 1
            else:
                last[topic] = t
    assert sum(want.values()) > 0
    src = Ros1BagSource(made_bag)
    list(src.messages())
    assert src.out_of_order == want


def test_sizes_and_counts_of_pieces_come_from_the_chunks(made_bag: Path) -> None:
    chunks = chunk_contents(made_bag)
    src = Ros1BagSource(made_bag)
    topics = src.channel_topics()
    for piece in src.pieces():
        records = chunks[piece.offset]
        assert Counter(topics[c] for c, n in piece.counts.items() for _ in range(n)) == Counter(
            tp for tp, _ in records
        )
        assert (piece.start_ns, piece.end_ns) == (
            min(t for _, t in records),
            max(t for _, t in records),
        )
        with made_bag.open("rb") as f:  # the chunk record's header says its size
            f.seek(piece.offset + 4)
            assert b"size=" + struct.pack("<I", piece.size) in f.read(200)


def read_split(
    src: Ros1BagSource, pieces: list[Piece], topics: set[str], owned: set[int]
) -> tuple[list[RawMessage], Counter[str], int]:
    """What a worker that writes ``topics`` reads: the pieces holding them, counting what
    is wrong only in the pieces at the offsets ``owned``. (messages, disorder, problems)"""
    ids = frozenset(c for c, t in src.channel_topics().items() if t in topics)
    mine = [p for p in pieces if ids & p.counts.keys()]
    before = len(src.problems)
    src.out_of_order = Counter()
    msgs = list(src.messages_in(mine, ids, lambda p: p.offset in owned))
    return msgs, src.out_of_order, len(src.problems) - before


@pytest.mark.parametrize("seed", range(4))
def test_pieces_split_between_two_readers_give_one_readers_stream(
    made_bag: Path, seed: int
) -> None:
    whole = Ros1BagSource(made_bag)
    expected = list(whole.messages())
    rng = random.Random(seed)
    src = Ros1BagSource(made_bag)
    pieces = src.pieces()
    offsets = [p.offset for p in pieces]
    rng.shuffle(offsets)
    halves = set(offsets[: len(offsets) // 2]), set(offsets[len(offsets) // 2 :])
    topics = sorted({c.topic for c in src.declared_channels()})
    rng.shuffle(topics)
    cut = rng.randrange(1, len(topics))
    one = read_split(src, pieces, set(topics[:cut]), halves[0])
    two = read_split(src, pieces, set(topics[cut:]), halves[1])
    for (msgs, _, _), share in zip((one, two), (topics[:cut], topics[cut:]), strict=True):
        assert msgs == [m for m in expected if m.channel.topic in share]
    merged = list(heapq.merge(one[0], two[0], key=lambda m: m.log_time_ns))
    assert Counter(merged) == Counter(expected)
    assert [m.log_time_ns for m in merged] == [m.log_time_ns for m in expected]
    assert one[1] + two[1] == whole.out_of_order
    # all pieces, all channels, always owned: messages() itself
    assert list(src.messages_in(pieces, None, lambda _: True)) == expected


# -- damage ---------------------------------------------------------------------------


def test_a_damaged_chunk_costs_its_messages_and_no_more(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "bz2.bag", "bz2", seed=9, disorder=False)
    chunks = chunk_contents(bag)
    src = Ros1BagSource(bag)
    victim = src.pieces()[len(src.pieces()) // 2]
    raw = bytearray(bag.read_bytes())
    (hlen,) = struct.unpack_from("<I", raw, victim.offset)
    data_at = victim.offset + 8 + hlen
    assert raw[data_at : data_at + 3] == b"BZh"
    raw[data_at + 20 : data_at + 60] = bytes(40)  # inside the bz2 stream
    damaged = tmp_path / "damaged.bag"
    damaged.write_bytes(bytes(raw))
    with pytest.raises(OSError):
        bz2.decompress(bytes(raw[data_at : data_at + 4096]))

    src = Ros1BagSource(damaged)
    got = list(src.messages())
    lost = chunks[victim.offset]
    want = Counter((tp, t) for tp, t, _ in rosbags_messages(bag)) - Counter(lost)
    assert Counter((m.channel.topic, m.log_time_ns) for m in got) == want
    (problem,) = src.problems
    assert problem.kind is ProblemKind.CORRUPT
    assert f"chunk at byte {victim.offset}" in problem.detail
    assert problem.lost_messages == len(lost)
    assert problem.at_log_time_ns == victim.start_ns

    # a reader that does not own the damaged chunk says nothing of it
    other = Ros1BagSource(damaged)
    list(other.messages_in(other.pieces(), None, lambda p: p.offset != victim.offset))
    assert other.problems == []


def test_an_index_that_does_not_parse_falls_back_to_the_scan(tmp_path: Path) -> None:
    bag = write_bag(tmp_path / "made.bag", "none", seed=3)
    raw = bytearray(bag.read_bytes())
    index_pos = struct.unpack_from("<Q", raw, raw.index(b"index_pos=") + 10)[0]
    with Ros1Reader(bag) as reader:
        assert index_pos > max(ci.pos for ci in reader.chunk_infos)
    cut = tmp_path / "cut.bag"
    cut.write_bytes(bytes(raw[: index_pos + 10]))  # the index cut inside its first record
    with pytest.raises(Exception, match="not a readable ROS 1 bag"):
        Ros1BagSource(cut)
    scanned = open_ros1(cut)
    assert isinstance(scanned, Ros1ScanSource)
    assert Counter((m.channel.topic, m.log_time_ns, m.data) for m in scanned.messages()) == (
        Counter(rosbags_messages(bag))
    )


def test_a_bag_without_messages_has_no_pieces(tmp_path: Path) -> None:
    with Ros1Writer(tmp_path / "empty.bag"):
        pass
    src = Ros1BagSource(tmp_path / "empty.bag")
    assert (src.pieces(), list(src.messages()), src.start_bound) == ([], [], None)
    assert src.problems == []
