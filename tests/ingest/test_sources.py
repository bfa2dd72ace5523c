"""Reading MCAP files and ROS bags as one time-ordered stream (ingest.sources).

MCAP test files are written here with mcap's own Writer, over every variant a recorder can
produce; the ground truth is the list of messages handed to the writer. Truncated and
corrupted files are made by cutting or overwriting bytes at offsets found from the MCAP
record layout, so the recoverable messages are known without the code under test.
"""

from __future__ import annotations

import json
import random
import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mcap.reader import make_reader
from mcap.records import Schema as McapSchema
from mcap.writer import CompressionType, IndexType, Writer

from drivecat.ingest import readers
from drivecat.ingest.drive import find_inputs
from drivecat.ingest.errors import IngestError
from drivecat.ingest.sources import (
    Attachment,
    Channel,
    ProblemKind,
    RawMessage,
    ReadProblem,
    merge,
    open_source,
)

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
MAGIC = b"\x89MCAP0\r\n"
REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"  # ../shared

TOPICS = {  # topic -> (message encoding, schema (name, encoding, data) or None)
    "/camera": ("protobuf", ("foxglove.CompressedImage", "protobuf", b"\x0a\x03abc")),
    "/gps": ("json", ("gps", "jsonschema", b'{"type": "object"}')),
    "/raw": ("x-custom", None),
}
DEVICE = {"device_id": "veh042", "device_version": "4.2.1", "vehicle_id": "v42", "operator": "jd"}
ATTACHMENT = ("calib.yaml", "application/yaml", b"fx: 1000\nfy: 1000\n", T0 + 5, 1)


@dataclass(frozen=True)
class Msg:
    topic: str
    log_time_ns: int
    publish_time_ns: int
    sequence: int
    data: bytes


@dataclass
class Written:
    path: Path
    messages: list[Msg]
    chunk_groups: list[list[Msg]] = field(default_factory=list)  # per chunk, in file order
    chunk_starts: list[int] = field(default_factory=list)  # byte offset of each chunk record
    header_end: int = 0


def make_messages(n: int, seed: int = 1) -> list[Msg]:
    """Messages ~1 ms apart on three topics. Every 7th arrives 2.5 ms late (so file order is
    not time order) and every 50th repeats the time before it (ties)."""
    rng = random.Random(seed)
    out: list[Msg] = []
    topics = list(TOPICS)
    for i in range(n):
        t = T0 + i * MS + rng.randrange(-300_000, 300_000)
        if i % 7 == 3:
            t -= 2_500_000
        if i % 50 == 49:
            t = out[-1].log_time_ns
        size = rng.choice([0, 1, 17, 100, 600, 1500])
        data = rng.randbytes(size)
        out.append(Msg(topics[i % 3], t, t - rng.randrange(0, 10 * MS), i, data))
    return out


def _writer(stream, *, indexed: bool, chunked: bool, compression: str, chunk_size: int) -> Writer:
    kind = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4, "none": CompressionType.NONE}
    extra: dict[str, Any] = {}
    if not indexed:  # no summary at all: footer with summary_start 0
        extra = {
            "index_types": IndexType.NONE,
            "repeat_channels": False,
            "repeat_schemas": False,
            "use_statistics": False,
            "use_summary_offsets": False,
        }
    return Writer(
        stream,
        chunk_size=chunk_size,
        compression=kind[compression],
        use_chunking=chunked,
        **extra,
    )


def _register(writer: Writer) -> dict[str, int]:
    ids = {}
    for topic, (encoding, schema) in TOPICS.items():
        sid = writer.register_schema(*schema) if schema else 0
        ids[topic] = writer.register_channel(topic, encoding, sid, {"origin": topic})
    return ids


def write_mcap(
    path: Path,
    messages: list[Msg],
    *,
    indexed: bool = True,
    chunked: bool = True,
    compression: str = "zstd",
    chunk_size: int = 8192,
    group: int | None = None,
) -> Written:
    """Write ``messages`` in list order. With ``group``, every ``group`` messages make exactly
    one chunk (the writer is flushed), and chunk offsets are recorded."""
    written = Written(path, messages)
    with path.open("wb") as f:
        writer = _writer(
            f,
            indexed=indexed,
            chunked=chunked,
            compression=compression,
            chunk_size=(1 << 40) if group else chunk_size,
        )
        writer.start(profile="", library="test")
        written.header_end = f.tell()
        writer.add_metadata("device", DEVICE)
        writer.add_metadata("extra", {"k": "v"})
        name, media, data, log, create = ATTACHMENT
        writer.add_attachment(create, log, name, media, data)
        writer.add_metadata("extra", {"k": "again"})  # a repeated name: both are kept
        ids = _register(writer)
        step = group or len(messages)
        for start in range(0, len(messages), step):
            chunk = messages[start : start + step]
            written.chunk_starts.append(f.tell())
            written.chunk_groups.append(chunk)
            for m in chunk:
                writer.add_message(
                    ids[m.topic], m.log_time_ns, m.data, m.publish_time_ns, m.sequence
                )
            if group:
                writer.flush()
        writer.finish()
    return written


def by_time(messages: list[Msg]) -> list[Msg]:
    return sorted(messages, key=lambda m: m.log_time_ns)  # stable: ties keep write order


def as_msgs(raw: list[RawMessage]) -> list[Msg]:
    return [Msg(r.channel.topic, r.log_time_ns, r.publish_time_ns, r.sequence, r.data) for r in raw]


VARIANTS = [
    (indexed, chunked, compression)
    for indexed in (True, False)
    for chunked in (True, False)
    for compression in (("zstd", "lz4", "none") if chunked else ("none",))
]


def _id(v: tuple[bool, bool, str]) -> str:
    indexed, chunked, compression = v
    return (
        f"{'indexed' if indexed else 'unindexed'}-{'chunked' if chunked else 'plain'}-{compression}"
    )


@pytest.mark.parametrize("variant", VARIANTS, ids=[_id(v) for v in VARIANTS])
def test_every_message_comes_back_exactly_in_time_order(tmp_path, variant):
    indexed, chunked, compression = variant
    truth = make_messages(5000)  # > one loose batch, ~1000 chunks of 8 KiB
    path = tmp_path / "drive.mcap"
    write_mcap(path, truth, indexed=indexed, chunked=chunked, compression=compression)

    source = open_source(path)
    raw = list(source.messages())

    assert as_msgs(raw) == by_time(truth)
    assert source.problems == []
    by_topic: dict[str, set[int]] = {}
    for r in raw:
        by_topic.setdefault(r.channel.topic, set()).add(id(r.channel))
    assert all(len(ids) == 1 for ids in by_topic.values())  # one Channel object per channel
    channels = {r.channel.topic: r.channel for r in raw}
    for topic, (encoding, schema) in TOPICS.items():
        ch = channels[topic]
        assert ch.message_encoding == encoding
        assert ch.metadata == {"origin": topic}
        if schema is None:
            assert ch.schema is None
        else:
            assert ch.schema is not None
            assert (ch.schema.name, ch.schema.encoding, ch.schema.data) == schema
    assert source.metadata() == {"device": DEVICE, "extra": {"k": "again"}}
    assert [(r.name, dict(r.metadata)) for r in source.metadata_records()] == [
        ("device", DEVICE),
        ("extra", {"k": "v"}),
        ("extra", {"k": "again"}),
    ]
    assert list(source.attachments()) == [ATTACHMENT]
    # the indexed path is the one taken whenever there is a chunk index to take, and then
    # the merge knows ahead that no message is older than the first one
    assert source.indexed == (indexed and chunked)  # type: ignore[attr-defined]
    first = min(m.log_time_ns for m in as_msgs(raw))
    assert source.start_bound == (first if indexed and chunked else None)  # type: ignore[attr-defined]


def test_metadata_is_available_before_messages_are_read(tmp_path):
    path = tmp_path / "a.mcap"
    write_mcap(path, make_messages(50), indexed=False)
    source = open_source(path)
    assert source.metadata()["device"] == DEVICE
    assert len(list(source.messages())) == 50


# -- truncation and damage ------------------------------------------------------------


def _record_end(path: Path, offset: int) -> int:
    """End of the MCAP record starting at ``offset`` (opcode u8, length u64, body)."""
    with path.open("rb") as f:
        f.seek(offset)
        _, length = struct.unpack("<BQ", f.read(9))
    return offset + 9 + length


def _summary_start(path: Path) -> int:
    data = path.read_bytes()
    footer = data[-8 - 29 : -8]
    assert footer[0] == 0x02
    return struct.unpack_from("<Q", footer, 9)[0]


def _cut(written: Written, tmp_path: Path, at: int) -> Path:
    out = tmp_path / f"cut_{at}.mcap"
    out.write_bytes(written.path.read_bytes()[:at])
    return out


CUTS = ["after_header", "mid_chunk", "in_chunk_head", "at_chunk_start", "mid_summary", "last_byte"]


@pytest.mark.parametrize("compression", ["zstd", "lz4", "none"])
@pytest.mark.parametrize("where", CUTS)
def test_truncated_file_recovers_every_complete_chunk(tmp_path, compression, where):
    truth = make_messages(60, seed=7)
    w = write_mcap(tmp_path / "full.mcap", truth, compression=compression, group=10)
    size = w.path.stat().st_size
    starts = w.chunk_starts
    at, complete_chunks, lost = {
        "after_header": (w.header_end, 0, 0),
        "mid_chunk": ((starts[3] + _record_end(w.path, starts[3])) // 2, 3, None),
        "in_chunk_head": (starts[2] + 5, 2, 5),
        "at_chunk_start": (starts[4], 4, 0),
        "mid_summary": ((_summary_start(w.path) + size) // 2, 6, None),
        "last_byte": (size - 1, 6, 7),  # the footer is whole, its closing magic is not
    }[where]
    if lost is None and where == "mid_chunk":
        lost = at - starts[3]  # everything before the cut chunk is complete records
    path = _cut(w, tmp_path, at)

    source = open_source(path)
    raw = list(source.messages())

    recoverable = [m for g in w.chunk_groups[:complete_chunks] for m in g]
    assert as_msgs(raw) == by_time(recoverable)
    truncated = [p for p in source.problems if p.kind == ProblemKind.TRUNCATED]
    assert len(truncated) == 1, source.problems
    if lost is not None:
        assert truncated[0].lost_bytes == lost
    assert truncated[0].at_log_time_ns == (
        max(m.log_time_ns for m in recoverable) if recoverable else None
    )
    if where != "after_header":
        assert source.metadata()["device"] == DEVICE  # written before the first chunk


def test_corrupt_footer_falls_back_to_streaming(tmp_path):
    truth = make_messages(300)
    w = write_mcap(tmp_path / "a.mcap", truth)
    data = bytearray(w.path.read_bytes())
    footer = len(data) - 8 - 29
    data[footer + 9 : footer + 17] = b"\xff" * 8  # summary_start far outside the file
    w.path.write_bytes(bytes(data))

    source = open_source(w.path)
    assert as_msgs(list(source.messages())) == by_time(truth)
    assert [p.kind for p in source.problems] == [ProblemKind.BAD_SUMMARY]
    assert source.metadata()["device"] == DEVICE


def test_corrupt_summary_falls_back_to_streaming(tmp_path):
    truth = make_messages(300)
    w = write_mcap(tmp_path / "a.mcap", truth)
    data = bytearray(w.path.read_bytes())
    start = _summary_start(w.path)
    data[start : start + 16] = b"\xff" * 16  # unknown opcode with an absurd length
    w.path.write_bytes(bytes(data))

    source = open_source(w.path)
    assert as_msgs(list(source.messages())) == by_time(truth)
    assert [p.kind for p in source.problems] == [ProblemKind.BAD_SUMMARY]


@pytest.mark.parametrize("indexed", [True, False], ids=["indexed", "unindexed"])
def test_corrupt_chunk_is_skipped_and_reported(tmp_path, indexed):
    truth = make_messages(50, seed=3)
    w = write_mcap(tmp_path / "a.mcap", truth, indexed=indexed, compression="zstd", group=10)
    data = bytearray(w.path.read_bytes())
    # chunk body: start u64, end u64, size u64, crc u32, "zstd" (u32 + 4), records length u64
    frame = w.chunk_starts[2] + 9 + 8 + 8 + 8 + 4 + 4 + 4 + 8
    data[frame : frame + 4] = b"\x00\x00\x00\x00"  # break the zstd frame magic
    w.path.write_bytes(bytes(data))

    source = open_source(w.path)
    raw = list(source.messages())

    kept = [m for i, g in enumerate(w.chunk_groups) if i != 2 for m in g]
    assert as_msgs(raw) == by_time(kept)
    assert [p.kind for p in source.problems] == [ProblemKind.CORRUPT]
    assert (
        source.problems[0].lost_bytes == _record_end(w.path, w.chunk_starts[2]) - w.chunk_starts[2]
    )
    # counted from the chunk's message index when the file has one; unknown when streamed
    assert source.problems[0].lost_messages == (len(w.chunk_groups[2]) if indexed else None)


def test_messages_on_an_undefined_channel_are_counted_not_raised(tmp_path):
    path = tmp_path / "a.mcap"
    with path.open("wb") as f:
        writer = Writer(f)
        writer.start()
        cid = writer.register_channel("/ok", "json", 0)
        writer.add_message(cid, T0, b"{}", T0)
        writer.add_message(99, T0 + 1, b"lost", T0 + 1)  # the writer does not check ids
        writer.add_message(99, T0 + 2, b"lost", T0 + 2)
        writer.finish()

    source = open_source(path)
    assert [r.data for r in source.messages()] == [b"{}"]
    assert [p.kind for p in source.problems] == [ProblemKind.UNKNOWN_CHANNEL]
    assert "2 messages" in source.problems[0].detail
    assert source.problems[0].lost_messages == 2


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, this is not an MCAP file\n", MAGIC[:5]],
    ids=["empty", "text", "short"],
)
def test_not_an_mcap_file_raises_naming_it(tmp_path, content):
    path = tmp_path / "bad.mcap"
    path.write_bytes(content)
    with pytest.raises(IngestError, match="bad.mcap") as info:
        open_source(path)
    assert "\n" not in str(info.value)


def test_unknown_inputs_raise_naming_them(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(IngestError, match="notes.txt"):
        open_source(tmp_path / "notes.txt")
    with pytest.raises(IngestError, match="missing"):
        open_source(tmp_path / "missing.mcap")
    (tmp_path / "folder").mkdir()
    with pytest.raises(IngestError, match="folder"):
        open_source(tmp_path / "folder")
    (tmp_path / "broken.bag").write_bytes(b"#ROSBAG V2.0\n" + b"\x00" * 20)
    with pytest.raises(IngestError, match="broken.bag"):
        open_source(tmp_path / "broken.bag")


def test_overlapping_files_merge_into_global_time_order(tmp_path):
    truth = make_messages(3000, seed=11)
    a = [m for i, m in enumerate(truth) if i % 2 == 0]
    b = [m for i, m in enumerate(truth) if i % 2 == 1]
    write_mcap(tmp_path / "a.mcap", a, compression="lz4")
    write_mcap(tmp_path / "b.mcap", b, indexed=False, chunked=False)
    sources = [open_source(tmp_path / "a.mcap"), open_source(tmp_path / "b.mcap")]

    merged = list(merge(sources))

    times = [r.log_time_ns for r in merged]
    assert times == sorted(times)
    assert Counter(as_msgs(merged)) == Counter(truth)


@dataclass
class _Listed:
    """A source over a list of (log time, tag) pairs, with a known start or none; it notes
    when it was opened, counted in messages the merge had yielded by then."""

    items: list[tuple[int, str]]
    start_bound: int | None
    opened_at: list[int]
    yielded: list[RawMessage]
    path: Path = Path("listed")
    problems: list[Any] = field(default_factory=list)
    out_of_order: Counter[str] = field(default_factory=Counter)

    def messages(self):
        self.opened_at.append(len(self.yielded))
        chan = Channel("/t", "json", None, {})
        for t, tag in self.items:
            yield RawMessage(chan, t, t, 0, tag.encode())


def _merged(sources: list[_Listed]) -> list[RawMessage]:
    out = sources[0].yielded
    for m in merge(sources):
        out.append(m)
    return out


def _listed(rows, bounds) -> list[_Listed]:
    opened: list[int] = []
    yielded: list[RawMessage] = []
    return [_Listed(r, b, opened, yielded) for r, b in zip(rows, bounds, strict=True)]


def test_recordings_that_follow_one_another_are_opened_one_at_a_time():
    rows = [[(t, f"{k}:{t}") for t in range(k * 100, k * 100 + 100, 7)] for k in range(5)]
    sources = _listed(rows, [k * 100 for k in range(5)])
    merged = _merged(sources)
    assert [m.data.decode() for m in merged] == [tag for r in rows for _, tag in r]
    # each recording opens only after every message of the ones before it was yielded
    assert sources[0].opened_at == [0, 15, 30, 45, 60]


def test_merge_is_exact_with_ties_overlaps_and_unknown_starts():
    rng = random.Random(5)
    for _ in range(200):
        rows, bounds = [], []
        for k in range(rng.randint(2, 5)):
            start = rng.randint(0, 30)
            times = sorted(rng.randint(start, start + rng.randint(0, 20)) for _ in range(8))
            rows.append([(t, f"{k}:{n}") for n, t in enumerate(times)])
            bounds.append(rng.choice([None, start, start - rng.randint(0, 5)]))
        merged = _merged(_listed(rows, bounds))
        # by log time; equal times in source order, then in each source's own order
        expected = sorted(
            ((t, k, n, tag) for k, r in enumerate(rows) for n, (t, tag) in enumerate(r))
        )
        assert [m.data.decode() for m in merged] == [e[3] for e in expected]


def test_channels_hash_and_compare_by_value():
    schema_args = ("s", "protobuf", b"x")
    from drivecat.ingest.sources import Schema

    a = Channel("/t", "protobuf", Schema(*schema_args), {"k": "v"})
    b = Channel("/t", "protobuf", Schema(*schema_args), {"k": "v"})
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != Channel("/t", "protobuf", Schema(*schema_args), {"k": "w"})


# -- real recordings ----------------------------------------------------------------------

needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="real recordings not present")


def _topic_counts(raw: list[RawMessage]) -> dict[str, int]:
    return dict(Counter(r.channel.topic for r in raw))


@needs_real
@pytest.mark.parametrize("name", sorted(p.name for p in (REAL / "ros1").glob("*.bag")))
def test_ros1_bags_read_with_their_counts_and_definitions(name):
    from rosbags.rosbag1 import Reader

    path = REAL / "ros1" / name
    with Reader(path) as reader:  # an independent count: the bag's own index
        expected = Counter()
        for conn in reader.connections:
            expected[conn.topic] += conn.msgcount

    source = open_source(path)
    raw = list(source.messages())

    assert _topic_counts(raw) == dict(expected)
    times = [r.log_time_ns for r in raw]
    assert times == sorted(times)
    for ch in {r.channel for r in raw}:
        assert ch.message_encoding == "ros1"
        assert ch.schema is not None and ch.schema.encoding == "ros1msg"
        assert ch.schema.data and "/msg/" not in ch.schema.name
    assert source.metadata() == {} and source.problems == []


@needs_real
def test_ros1_husky_bag_matches_readme_and_decodes():
    from mcap_ros1.decoder import DecoderFactory

    raw = list(open_source(REAL / "ros1" / "robot_localization_test1.bag").messages())
    assert _topic_counts(raw) == {
        "/fix": 989,
        "/imu/data": 11865,
        "/husky_velocity_controller/odom": 3952,
    }
    fix = next(r for r in raw if r.channel.topic == "/fix")
    assert fix.channel.schema is not None
    assert fix.channel.schema.name == "sensor_msgs/NavSatFix"
    schema = fix.channel.schema
    decode = DecoderFactory().decoder_for(
        "ros1", McapSchema(id=1, name=schema.name, encoding=schema.encoding, data=schema.data)
    )
    assert decode is not None
    msg = decode(fix.data)
    assert 42.0 < msg.latitude < 43.0 and -72.0 < msg.longitude < -71.0  # Cambridge, MA


@needs_real
def test_ros2_db3_bag_reads_with_definitions():
    from mcap_ros2.decoder import DecoderFactory
    from ruamel.yaml import YAML

    folder = REAL / "ros2" / "event_camera_test_events_1_db3"
    info = YAML(typ="safe").load((folder / "metadata.yaml").read_text())
    expected = info["rosbag2_bagfile_information"]["message_count"]

    source = open_source(folder)
    raw = list(source.messages())

    assert len(raw) == expected == 517
    ch = raw[0].channel
    assert ch.message_encoding == "cdr" and ch.schema is not None
    assert (ch.schema.name, ch.schema.encoding) == ("event_camera_msgs/msg/EventPacket", "ros2msg")
    schema = McapSchema(id=1, name=ch.schema.name, encoding="ros2msg", data=ch.schema.data)
    decode = DecoderFactory().decoder_for("cdr", schema)
    assert decode is not None
    msg = decode(raw[0].data)
    assert msg.width > 0 and msg.height > 0 and len(msg.events) > 0


@needs_real
def test_ros2_mcap_bag_with_empty_metadata_passes_ros2idl_through():
    folder = REAL / "ros2" / "event_camera_test_events_2_mcap"
    (mcap_file,) = folder.glob("*.mcap")
    with mcap_file.open("rb") as f:  # independent: the mcap library's own reader
        expected = [
            (ch.topic, m.log_time, m.publish_time, m.sequence, m.data, sc.encoding, sc.data)
            for sc, ch, m in make_reader(f).iter_messages(log_time_order=True)
        ]

    source = open_source(folder)
    got = [
        (r.channel.topic, r.log_time_ns, r.publish_time_ns, r.sequence, r.data)
        + (r.channel.schema.encoding, r.channel.schema.data)
        for r in source.messages()
        if r.channel.schema is not None
    ]

    assert len(got) == 100
    assert got == expected
    assert got[0][5] == "ros2idl"
    assert "rosbag2" in source.metadata()


# -- streaming properties ---------------------------------------------------------------


@pytest.mark.parametrize("indexed", [True, False], ids=["indexed", "unindexed"])
def test_memory_stays_bounded_by_the_chunk_size(tmp_path, indexed):
    import tracemalloc

    rng = random.Random(5)
    truth = [Msg("/camera", T0 + i * MS, T0, i, rng.randbytes(16_000)) for i in range(1000)]
    path = tmp_path / "big.mcap"
    write_mcap(path, truth, indexed=indexed, compression="zstd", chunk_size=256_000)
    assert path.stat().st_size > 15_000_000

    source = open_source(path)
    tracemalloc.start()
    count = sum(1 for _ in source.messages())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    assert count == 1000
    assert peak < 3_000_000  # a few 256 KB chunks in flight, not the 16 MB file


def test_a_file_written_out_of_time_order(tmp_path):
    """Two recordings concatenated in the wrong order: the index still sorts them; streaming
    returns every message, as near to time order as a single pass allows."""
    first, second = make_messages(400, seed=1), make_messages(400, seed=2)
    late = [
        Msg(m.topic, m.log_time_ns + 10**9, m.publish_time_ns, m.sequence, m.data) for m in first
    ]
    truth = late + second  # the later half written first
    write_mcap(tmp_path / "i.mcap", truth)
    write_mcap(tmp_path / "u.mcap", truth, indexed=False)

    assert as_msgs(list(open_source(tmp_path / "i.mcap").messages())) == by_time(truth)
    assert Counter(as_msgs(list(open_source(tmp_path / "u.mcap").messages()))) == Counter(truth)


def test_a_recording_without_a_known_suffix_is_sniffed(tmp_path):
    truth = make_messages(20)
    write_mcap(tmp_path / "rec.mcap", truth)
    (tmp_path / "rec.mcap").rename(tmp_path / "recording")
    assert as_msgs(list(open_source(tmp_path / "recording").messages())) == by_time(truth)


def test_split_ros2_mcap_bag_shares_channels_across_files(tmp_path):
    folder = tmp_path / "bag"
    folder.mkdir()
    (folder / "metadata.yaml").write_text(
        "rosbag2_bagfile_information:\n  version: 9\n  storage_identifier: mcap\n"
        "  relative_file_paths: [bag_0.mcap, bag_1.mcap]\n"
    )
    definition = b"float64 x\n"
    expected = []
    for k in range(2):
        with (folder / f"bag_{k}.mcap").open("wb") as f:
            writer = Writer(f)
            writer.start()
            sid = writer.register_schema("pkg/msg/P", "ros2msg", definition)
            cid = writer.register_channel("/p", "cdr", sid)
            for i in range(10):
                t = T0 + (k * 10 + i) * MS
                data = struct.pack("<4xd", float(i))
                writer.add_message(cid, t, data, t, i)
                expected.append((t, data))
            writer.finish()

    raw = list(open_source(folder).messages())

    assert [(r.log_time_ns, r.data) for r in raw] == expected
    assert len({id(r.channel) for r in raw}) == 1
    assert raw[0].channel.schema is not None
    assert raw[0].channel.schema.data == definition


@needs_real
def test_ros2_db3_folder_without_metadata_yaml(tmp_path):
    import shutil

    folder = tmp_path / "bag"
    shutil.copytree(REAL / "ros2" / "event_camera_test_events_1_db3", folder)
    (folder / "metadata.yaml").unlink()

    raw = list(open_source(folder).messages())

    assert len(raw) == 517
    assert raw[0].channel.schema is not None and raw[0].channel.schema.data


@needs_real
def test_damage_inside_a_ros1_bag_chunk_loses_that_chunk_counted(tmp_path):
    """As for an MCAP chunk: the damaged chunk is skipped whole, its messages counted from
    the index, and the rest of the bag read on (this bag has one chunk)."""
    from rosbags.rosbag1 import Reader

    src = REAL / "ros1" / "rviz_satellite_gps_sample.bag"
    with Reader(src) as reader:  # where the 11th message's record sits in the file
        entry = sorted(e for index in reader.indexes.values() for e in index)[10]
        chunk = reader.chunks[entry.chunk_pos]
        assert reader.chunks and chunk.decompressor(b"same") == b"same"  # stored uncompressed
        at = chunk.datapos + entry.offset
        in_chunk = sum(e.chunk_pos == entry.chunk_pos for i in reader.indexes.values() for e in i)
        start = min(ci.start_time for ci in reader.chunk_infos if ci.pos == entry.chunk_pos)
    data = bytearray(src.read_bytes())
    data[at : at + 64] = b"\xff" * 64  # its record header is now garbage
    path = tmp_path / "damaged.bag"
    path.write_bytes(bytes(data))

    source = open_source(path)
    raw = list(source.messages())

    assert raw == []
    assert [p.kind for p in source.problems] == [ProblemKind.CORRUPT]
    assert f"chunk at byte {entry.chunk_pos}" in source.problems[0].detail
    assert source.problems[0].lost_messages == in_chunk == 151
    assert source.problems[0].at_log_time_ns == start


# ---------------------------------------------------------------------------- the reader table


class _LineSource:
    """A toy input format: one JSON message per line, ``[topic, log_time_ns, text]``."""

    start_bound = None

    def __init__(self, path: Path, pool: dict[Channel, Channel] | None = None) -> None:
        self.path = path
        self.problems: list[ReadProblem] = []
        self.out_of_order: Counter[str] = Counter()

    def messages(self) -> Iterator[RawMessage]:
        for line in self.path.read_text().splitlines():
            topic, t, text = json.loads(line)
            channel = Channel(topic, "json", None)
            yield RawMessage(channel, t, t, 0, json.dumps({"text": text}).encode())

    def metadata(self) -> dict[str, dict[str, str]]:
        return {}

    def attachments(self) -> list[Attachment]:
        return []


def test_an_input_format_is_one_row_in_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    row = readers.FileReader("line file", frozenset({".lines"}), b'["', _LineSource)
    monkeypatch.setattr(readers, "FILE_READERS", (*readers.FILE_READERS, row))
    (tmp_path / "a.lines").write_text('["/chat", 5, "hi"]\n["/chat", 9, "bye"]\n')
    (tmp_path / "b.unknown").write_text('["/chat", 7, "by magic"]\n')
    inputs = find_inputs(tmp_path)
    assert [p.name for p in inputs.recordings] == ["a.lines"]  # found by its suffix
    sources = [open_source(tmp_path / "a.lines"), open_source(tmp_path / "b.unknown")]
    assert all(isinstance(s, _LineSource) for s in sources)
    merged = [(m.log_time_ns, json.loads(m.data)["text"]) for m in merge(sources)]
    assert merged == [(5, "hi"), (7, "by magic"), (9, "bye")]
