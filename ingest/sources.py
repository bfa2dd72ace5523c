"""Every kind of recording, read as one stream of raw messages in log-time order.

``open_source`` opens an MCAP file (indexed or not, chunked or not, truncated or not), a
ROS 1 ``.bag`` or a ROS 2 bag folder (MCAP or sqlite3 storage). A source yields
``RawMessage`` tuples whose ``data`` is exactly the recorded bytes, with the schema that
decodes them; ``merge`` interleaves several sources by log time, as a stream.

Times are integer nanoseconds in the recording's own time base (for bags: the record time
the recorder stamped, not the header stamp inside the message).

Damage the reader can step over (a crash that cut the file, a corrupt chunk, a broken
summary) never raises: the source recovers what it can and appends a ``ReadProblem`` to
``problems``. Input that is not a recording at all raises ``IngestError``, one line naming
the file.
"""

from __future__ import annotations

import heapq
import io
import os
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from itertools import chain, pairwise
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, Protocol

import lz4.frame
import zstandard
from mcap.data_stream import ReadDataStream
from mcap.opcode import Opcode
from mcap.reader import SeekingReader
from mcap.records import Attachment as McapAttachment
from mcap.records import Channel as McapChannel
from mcap.records import Metadata as McapMetadata
from mcap.records import Schema as McapSchema
from mcap.summary import Summary
from rosbags.interfaces import Connection, MessageDefinitionFormat
from rosbags.rosbag1 import Reader as Ros1Reader
from rosbags.rosbag2 import Reader as Ros2Reader

from ingest.errors import IngestError


@dataclass(frozen=True)
class Schema:
    """What goes into an output MCAP schema record, as the recording carried it."""

    name: str  # "foxglove.PointCloud", "sensor_msgs/NavSatFix", "sensor_msgs/msg/NavSatFix"
    encoding: str  # "protobuf" | "ros1msg" | "ros2msg" | "ros2idl" | "jsonschema" | "" | other
    data: bytes


@dataclass(frozen=True)
class Channel:
    """A topic with its encoding and schema. A source hands out one object per channel, so
    consumers may key on ``id(channel)``; equal channels also hash equal (the hash is
    computed once). ``metadata`` is a private copy: treat it as read-only."""

    topic: str
    message_encoding: str  # "protobuf" | "ros1" | "cdr" | "json" | other
    schema: Schema | None
    metadata: Mapping[str, str] = field(default_factory=dict)
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        meta = dict(self.metadata)
        object.__setattr__(self, "metadata", meta)
        key = (self.topic, self.message_encoding, self.schema, tuple(sorted(meta.items())))
        object.__setattr__(self, "_hash", hash(key))

    def __hash__(self) -> int:
        return self._hash


class RawMessage(NamedTuple):
    """One recorded message. ``data`` is never re-encoded."""

    channel: Channel
    log_time_ns: int
    publish_time_ns: int
    sequence: int
    data: bytes


class ProblemKind(StrEnum):
    """What went wrong while reading. TRUNCATED, CORRUPT and UNKNOWN_CHANNEL lose messages;
    the others are notes about input that was still read in full."""

    TRUNCATED = "truncated"  # the file ends early (recorder crash); lost_bytes after the cut
    CORRUPT = "corrupt"  # a chunk or record that cannot be decompressed or parsed: skipped
    UNKNOWN_CHANNEL = "unknown_channel"  # messages on a channel id never defined: skipped
    BAD_SUMMARY = "bad_summary"  # footer or summary unreadable: the file was streamed instead
    MISSING_DEFINITION = "missing_definition"  # no schema text found for a channel's type


@dataclass
class ReadProblem:
    """A defect found while reading ``path``. ``lost_bytes``: input bytes that could not be
    read. ``at_log_time_ns``: the last log time recovered before the damage (None when
    nothing was recovered before it)."""

    path: Path
    kind: str  # a ProblemKind value
    detail: str
    lost_bytes: int = 0
    at_log_time_ns: int | None = None


Attachment = tuple[str, str, bytes, int]  # (name, media_type, data, log_time_ns)
SideRecords = tuple[dict[str, dict[str, str]], list[Attachment]]


class Source(Protocol):
    """One recording. ``messages()`` is one streaming pass in log-time order as far as the
    input allows; memory follows chunk size and time overlap, not recording length.
    ``problems`` fills while ``messages()`` runs."""

    path: Path
    problems: list[ReadProblem]
    out_of_order: Counter[str]  # per topic: messages recorded after a later one of that topic

    def messages(self) -> Iterator[RawMessage]: ...

    def metadata(self) -> dict[str, dict[str, str]]: ...

    def attachments(self) -> list[Attachment]: ...


# tuple.__new__ skips the NamedTuple's Python-level __new__: one call less per message.
_raw_message: Callable[[tuple[Channel, int, int, int, bytes]], RawMessage] = partial(
    tuple.__new__, RawMessage
)
_log_time = itemgetter(1)


def merge(sources: Sequence[Source]) -> Iterator[RawMessage]:
    """Interleave the sources' streams by ``log_time_ns``; equal times keep source order.
    Streams, holding one pending message per source."""
    if len(sources) == 1:
        return sources[0].messages()
    return heapq.merge(*(s.messages() for s in sources), key=_log_time)


def open_source(path: Path) -> Source:
    """Open a ``.mcap`` file, a ROS 1 ``.bag`` file or a ROS 2 bag folder.

    Raises IngestError naming the path when it does not exist, is none of these, or cannot
    be read at all (empty, bad magic, unreadable bag index).
    """
    path = Path(path)
    if not path.exists():
        raise IngestError(f"{path}: no such file or folder")
    if path.is_dir():
        return _open_ros2_folder(path)
    suffix = path.suffix.lower()
    if suffix == ".mcap":
        return McapSource(path)
    if suffix == ".bag":
        return RosbagSource(path, [path], ros1=True)
    try:
        with path.open("rb") as f:
            head = f.read(len(_ROSBAG1_MAGIC))
    except OSError as err:
        raise IngestError(f"{path}: cannot read: {err.strerror}") from None
    if head.startswith(MCAP_MAGIC):
        return McapSource(path)
    if head == _ROSBAG1_MAGIC:
        return RosbagSource(path, [path], ros1=True)
    raise IngestError(f"{path}: not an MCAP file, ROS 1 bag or ROS 2 bag folder")


# -- time order over batches ------------------------------------------------------------

_Batch = tuple[int, list[RawMessage], bool]  # (smallest log time, messages, already sorted)
_NEVER = 1 << 64  # later than any log time


def _in_time_order(batches: Iterable[tuple[_Batch, int]]) -> Iterator[RawMessage]:
    """Yield the messages of ``batches`` by log time, equal times in batch order. Each batch
    comes with the smallest log time of every batch after it (its ``next_start``).

    Exact whenever that bound holds: an indexed file read in chunk-index order, or a
    recorder that wrote chunks as time went on. Only batches that overlap in time are held.
    A batch that starts before messages already yielded is merged in as well as it can be.
    """
    pending: list[tuple[int, int, RawMessage]] = []
    counter = 0
    for (_, msgs, is_sorted), next_start in batches:
        if not msgs:
            continue
        if not pending and is_sorted and msgs[-1][1] <= next_start:
            yield from msgs  # the common case: a sorted chunk that ends before the next one
            continue
        for m in msgs:
            heapq.heappush(pending, (m[1], counter, m))
            counter += 1
        while pending and pending[0][0] < next_start:
            yield heapq.heappop(pending)[2]
    while pending:
        yield heapq.heappop(pending)[2]


def _with_next_start(batches: Iterable[_Batch]) -> Iterator[tuple[_Batch, int]]:
    """Pair each batch with the start of the one after it (one batch of lookahead)."""
    end: _Batch = (_NEVER, [], True)
    nonempty = (b for b in batches if b[1])
    for batch, after in pairwise(chain(nonempty, (end,))):
        yield batch, after[0]


def _batch(msgs: list[RawMessage]) -> _Batch:
    times = [m[1] for m in msgs]
    is_sorted = all(a <= b for a, b in pairwise(times))
    return (times[0] if is_sorted else min(times)), msgs, is_sorted


def _last_time(batch: _Batch, current: int | None) -> int | None:
    """The largest log time seen, given the one before ``batch``."""
    msgs = batch[1]
    if not msgs:
        return current
    top = msgs[-1][1] if batch[2] else max(m[1] for m in msgs)
    return top if current is None else max(top, current)


# -- MCAP -------------------------------------------------------------------------------

MCAP_MAGIC = b"\x89MCAP0\r\n"
_RECORD = struct.Struct("<BQ")  # opcode, body length
_MESSAGE = struct.Struct("<HIQQ")  # channel id, sequence, log time, publish time
_CHUNK = struct.Struct("<QQQII")  # start, end, uncompressed size, crc, compression length
_FOOTER_LEN = _RECORD.size + 20
_OP_MESSAGE = int(Opcode.MESSAGE)
_LOOSE_BATCH = 4096  # un-chunked messages are put in time order in batches of this many


class _BadRecord(Exception):
    """A chunk or record whose content cannot be read (becomes a CORRUPT problem)."""


class McapSource:
    """One MCAP file.

    With a readable summary and chunk index, chunks are read in time order through the
    index (summary parsed by ``mcap.reader.SeekingReader``). Otherwise the file is streamed
    record by record in the order it was written: unindexed and un-chunked files, files
    whose footer or summary is corrupt, and files cut by a crash, which are read up to the
    last complete record and reported TRUNCATED. Chunk CRCs are not checked, for speed; a
    chunk that fails to decompress or parse is skipped and reported CORRUPT.

    ``channel_pool`` lets several files share Channel objects (a split ROS 2 bag).
    """

    def __init__(self, path: Path, channel_pool: dict[Channel, Channel] | None = None) -> None:
        self.path = Path(path)
        self.problems: list[ReadProblem] = []
        self.out_of_order: Counter[str] = Counter()
        self._pool = channel_pool if channel_pool is not None else {}
        self._schemas: dict[int, Schema] = {}
        self._channels: dict[int, Channel] = {}
        self._unknown: dict[int, list[int]] = {}  # channel id -> [messages, bytes]
        self._side: SideRecords | None = None
        self._zstd = zstandard.ZstdDecompressor()
        self._has_footer = False
        try:
            self._size = self.path.stat().st_size
            with self.path.open("rb") as f:
                magic = f.read(len(MCAP_MAGIC))
                if self._size == 0:
                    raise IngestError(f"{self.path}: empty file")
                if magic != MCAP_MAGIC:
                    raise IngestError(f"{self.path}: not an MCAP file (bad magic)")
                self._summary = self._read_summary(f)
        except OSError as err:
            raise IngestError(f"{self.path}: cannot read: {err.strerror}") from None
        self._indexed = self._summary is not None and self._index_usable(self._summary)
        if self._summary is not None:
            for s in self._summary.schemas.values():
                self._add_schema(s)
            for c in self._summary.channels.values():
                self._add_channel(c)

    def _read_summary(self, f: BinaryIO) -> Summary | None:
        """The summary when the file ends in a well-formed footer that points to one."""
        if self._size < 2 * len(MCAP_MAGIC) + _FOOTER_LEN:
            return None
        f.seek(-len(MCAP_MAGIC) - _FOOTER_LEN, io.SEEK_END)
        tail = f.read()
        if tail[-len(MCAP_MAGIC) :] != MCAP_MAGIC or _RECORD.unpack_from(tail) != (
            Opcode.FOOTER,
            20,
        ):
            return None  # no footer: a cut file, streamed and reported as truncated
        self._has_footer = True
        summary_start = struct.unpack_from("<Q", tail, _RECORD.size)[0]
        if summary_start == 0:
            return None
        try:
            if not len(MCAP_MAGIC) < summary_start < self._size - _FOOTER_LEN:
                raise ValueError(f"summary start {summary_start} lies outside the file")
            f.seek(0)
            return SeekingReader(f).get_summary()
        except Exception as err:  # any failure here means: stream instead
            self._note(ProblemKind.BAD_SUMMARY, f"unreadable summary ({err}); file streamed")
            return None

    def _index_usable(self, summary: Summary) -> bool:
        """Whether the chunk index can drive the read: every indexed chunk really is there,
        and every channel is known up front (chunks are read out of file order)."""
        stats = summary.statistics
        if not summary.chunk_indexes or not summary.channels:
            return False
        if stats is not None and stats.channel_count != len(summary.channels):
            return False
        with self.path.open("rb", buffering=0) as f:
            fd = f.fileno()
            for ci in summary.chunk_indexes:
                head = os.pread(fd, _RECORD.size, ci.chunk_start_offset)
                expected = (Opcode.CHUNK, ci.chunk_length - _RECORD.size)
                if len(head) < _RECORD.size or _RECORD.unpack(head) != expected:
                    self._note(
                        ProblemKind.BAD_SUMMARY,
                        f"chunk index names no chunk at offset {ci.chunk_start_offset}; "
                        "file streamed",
                    )
                    return False
        return True

    def messages(self) -> Iterator[RawMessage]:
        """Every message in log-time order (see ``_in_time_order`` for when it is exact)."""
        if self._indexed:
            yield from _in_time_order(self._indexed_batches())
        else:
            yield from _in_time_order(_with_next_start(self._streamed_batches()))
        for cid, (count, size) in sorted(self._unknown.items()):
            detail = f"{count} messages on undefined channel id {cid} skipped"
            self._note(ProblemKind.UNKNOWN_CHANNEL, detail, lost_bytes=size)
        self._unknown.clear()

    def _indexed_batches(self) -> Iterator[tuple[_Batch, int]]:
        """Chunks in chunk-index order, each with the next one's start time from the index:
        the lookahead costs no read."""
        assert self._summary is not None
        order = sorted(
            self._summary.chunk_indexes,
            key=lambda ci: (ci.message_start_time, ci.chunk_start_offset),
        )
        next_starts = [ci.message_start_time for ci in order[1:]] + [_NEVER]
        with self.path.open("rb", buffering=0) as f:
            for ci, next_start in zip(order, next_starts, strict=True):
                f.seek(ci.chunk_start_offset + _RECORD.size)
                try:
                    yield self._chunk_batch(f.read(ci.chunk_length - _RECORD.size)), next_start
                except _BadRecord as err:
                    self._note(
                        ProblemKind.CORRUPT,
                        f"chunk at offset {ci.chunk_start_offset} skipped: {err}",
                        lost_bytes=ci.chunk_length,
                        at_log_time_ns=ci.message_start_time,
                    )

    def _streamed_batches(self) -> Iterator[_Batch]:
        """Every record in file order, up to the footer or the first incomplete record."""
        loose: list[RawMessage] = []
        last: int | None = None  # largest log time yielded so far
        pos = len(MCAP_MAGIC)  # end of the last complete record
        complete = False
        with self.path.open("rb", buffering=1 << 16) as f:
            f.seek(pos)
            while len(head := f.read(_RECORD.size)) == _RECORD.size:
                opcode, length = _RECORD.unpack(head)
                if length > self._size - pos - _RECORD.size:
                    break
                if loose and (opcode == Opcode.CHUNK or len(loose) >= _LOOSE_BATCH):
                    last = _last_time(batch := _batch(loose), last)
                    yield batch
                    loose = []
                try:
                    if opcode == Opcode.MESSAGE:
                        self._loose_message(f, length, loose)
                    elif opcode == Opcode.CHUNK:
                        last = _last_time(batch := self._chunk_batch(f.read(length)), last)
                        yield batch
                    elif opcode in (Opcode.SCHEMA, Opcode.CHANNEL):
                        self._add_record(opcode, f.read(length))
                    else:
                        f.seek(length, io.SEEK_CUR)
                except _BadRecord as err:
                    f.seek(pos + _RECORD.size + length)
                    self._note(
                        ProblemKind.CORRUPT,
                        f"record at offset {pos} skipped: {err}",
                        lost_bytes=_RECORD.size + length,
                        at_log_time_ns=last,
                    )
                pos += _RECORD.size + length
                if opcode == Opcode.DATA_END and self._has_footer:
                    complete = True  # the summary was found damaged; the data is all here
                    break
                if opcode == Opcode.FOOTER:
                    complete = f.read(len(MCAP_MAGIC)) == MCAP_MAGIC
                    break
        if loose:
            last = _last_time(batch := _batch(loose), last)
            yield batch
        if not complete:
            # With an intact footer the file was not cut: what stopped the read is damage.
            kind = ProblemKind.CORRUPT if self._has_footer else ProblemKind.TRUNCATED
            self._note(
                kind,
                f"unreadable after byte {pos} of {self._size}; the rest is lost",
                lost_bytes=self._size - pos,
                at_log_time_ns=last,
            )

    def _loose_message(self, f: BinaryIO, length: int, out: list[RawMessage]) -> None:
        """A message record outside any chunk; ``f`` is just past its opcode and length."""
        if length < _MESSAGE.size:
            raise _BadRecord("message record too short")
        cid, seq, log, pub = _MESSAGE.unpack(f.read(_MESSAGE.size))
        data = f.read(length - _MESSAGE.size)
        channel = self._channels.get(cid)
        if channel is None:
            self._count_unknown(cid, length)
        else:
            out.append(_raw_message((channel, log, pub, seq, data)))

    def _chunk_batch(self, body: bytes) -> _Batch:
        """The messages of one chunk record (its body, after opcode and length)."""
        try:
            start, _, size, _, clen = _CHUNK.unpack_from(body)
            compression = body[_CHUNK.size : _CHUNK.size + clen].decode()
            offset = _CHUNK.size + clen + 8
            (records_len,) = struct.unpack_from("<Q", body, offset - 8)
        except (struct.error, UnicodeDecodeError) as err:
            raise _BadRecord(f"bad chunk header: {err}") from None
        if offset + records_len != len(body):
            raise _BadRecord("chunk data length does not match its record")
        if compression == "":
            data, base = body, offset  # parse in place: no copy of the chunk
        elif size == 0:
            data, base = b"", 0  # an empty frame may not state its size: nothing to decode
        else:
            data, base = self._decompress(compression, memoryview(body)[offset:], size), 0
        if len(data) - base != size:
            raise _BadRecord(f"chunk holds {len(data) - base} bytes, its header says {size}")
        msgs: list[RawMessage] = []
        is_sorted = self._parse_records(data, base, msgs)
        if not is_sorted:
            self._count_disorder(msgs)
        first = msgs[0][1] if is_sorted and msgs else min((m[1] for m in msgs), default=start)
        return first, msgs, is_sorted

    def _count_disorder(self, msgs: list[RawMessage]) -> None:
        """Per topic, messages recorded after a later one of the same topic in this chunk.

        The stream comes out sorted, so this is the only place the recorded order is seen;
        only chunks that are not in order overall pay for it.
        """
        last: dict[str, int] = {}
        for m in msgs:
            topic = m[0].topic
            if m[1] < last.get(topic, m[1]):
                self.out_of_order[topic] += 1
            else:
                last[topic] = m[1]

    def _decompress(self, compression: str, data: memoryview, size: int) -> bytes:
        try:
            if compression == "zstd":
                out: bytes = self._zstd.decompress(data, max_output_size=size)
                return out
            if compression == "lz4":
                return bytes(lz4.frame.decompress(data))
        except (zstandard.ZstdError, RuntimeError, ValueError) as err:
            raise _BadRecord(f"{compression} decompression failed: {err}") from None
        raise _BadRecord(f"unsupported compression {compression!r}")

    def _parse_records(self, data: bytes, pos: int, out: list[RawMessage]) -> bool:
        """Append the messages among the records in ``data[pos:]`` to ``out``, registering
        schemas and channels on the way. Returns whether the appended messages are in
        log-time order. Raises _BadRecord when a record does not fit in ``data``."""
        channels = self._channels
        unpack_record = _RECORD.unpack_from
        unpack_message = _MESSAGE.unpack_from
        append = out.append
        is_sorted = True
        prev = out[-1][1] if out else 0
        end = len(data)
        while pos < end:
            if end - pos < _RECORD.size:
                raise _BadRecord("a record header runs past the end")
            opcode, length = unpack_record(data, pos)
            body = pos + _RECORD.size
            pos = body + length
            if pos > end:
                raise _BadRecord("a record runs past the end")
            if opcode == _OP_MESSAGE:
                if length < _MESSAGE.size:
                    raise _BadRecord("a message record is too short")
                cid, seq, log, pub = unpack_message(data, body)
                channel = channels.get(cid)
                if channel is None:
                    self._count_unknown(cid, length)
                    continue
                if log < prev:
                    is_sorted = False
                prev = log
                append(_raw_message((channel, log, pub, seq, data[body + _MESSAGE.size : pos])))
            elif opcode == Opcode.SCHEMA or opcode == Opcode.CHANNEL:
                self._add_record(opcode, data[body:pos])
        return is_sorted

    def _count_unknown(self, cid: int, length: int) -> None:
        entry = self._unknown.setdefault(cid, [0, 0])
        entry[0] += 1
        entry[1] += _RECORD.size + length

    def _add_record(self, opcode: int, body: bytes) -> None:
        try:
            if opcode == Opcode.SCHEMA:
                self._add_schema(McapSchema.read(_stream(body)))
            else:
                self._add_channel(McapChannel.read(_stream(body)))
        except Exception as err:  # mcap raises several types on garbage
            raise _BadRecord(f"unreadable {Opcode(opcode).name.lower()} record: {err}") from None

    def _add_schema(self, record: McapSchema) -> None:
        if record.id not in self._schemas:
            self._schemas[record.id] = Schema(record.name, record.encoding, bytes(record.data))

    def _add_channel(self, record: McapChannel) -> None:
        if record.id in self._channels:
            return
        schema = self._schemas.get(record.schema_id)
        if record.schema_id != 0 and schema is None:
            self._note(
                ProblemKind.MISSING_DEFINITION,
                f"channel {record.topic!r} names schema id {record.schema_id}, never defined",
            )
        channel = Channel(record.topic, record.message_encoding, schema, record.metadata)
        self._channels[record.id] = self._pool.setdefault(channel, channel)

    def _note(self, kind: ProblemKind, detail: str, **kw: Any) -> None:
        self.problems.append(ReadProblem(self.path, kind, detail, **kw))

    def metadata(self) -> dict[str, dict[str, str]]:
        """Metadata records by name (a later record of a name replaces an earlier one).
        Complete before ``messages()`` runs: without a metadata index this costs one pass
        over record headers (chunks are skipped, not read)."""
        return self._side_records()[0]

    def attachments(self) -> list[Attachment]:
        """Every attachment in file order; same cost as ``metadata()``."""
        return self._side_records()[1]

    def _side_records(self) -> SideRecords:
        if self._side is None:
            self._side = self._indexed_side_records() or self._scan_side_records()
        return self._side

    def _indexed_side_records(self) -> SideRecords | None:
        summary = self._summary
        stats = summary.statistics if summary is not None else None
        if summary is None or stats is None:
            return None  # without statistics, an empty index may just mean "not indexed"
        if (stats.metadata_count, stats.attachment_count) != (
            len(summary.metadata_indexes),
            len(summary.attachment_indexes),
        ):
            return None
        try:
            with self.path.open("rb") as f:
                reader = SeekingReader(f)
                meta = {m.name: dict(m.metadata) for m in reader.iter_metadata()}
                return meta, [_attachment(a) for a in reader.iter_attachments()]
        except Exception:  # a broken index: scan the file instead
            return None

    def _scan_side_records(self) -> SideRecords:
        meta: dict[str, dict[str, str]] = {}
        atts: list[Attachment] = []
        pos = len(MCAP_MAGIC)
        with self.path.open("rb") as f:
            f.seek(pos)
            while len(head := f.read(_RECORD.size)) == _RECORD.size:
                opcode, length = _RECORD.unpack(head)
                if length > self._size - pos - _RECORD.size or opcode == Opcode.DATA_END:
                    break
                pos += _RECORD.size + length
                if opcode not in (Opcode.METADATA, Opcode.ATTACHMENT):
                    f.seek(length, io.SEEK_CUR)
                    continue
                try:
                    if opcode == Opcode.METADATA:
                        m = McapMetadata.read(_stream(f.read(length)))
                        meta[m.name] = dict(m.metadata)
                    else:
                        atts.append(_attachment(McapAttachment.read(_stream(f.read(length)))))
                except Exception:  # messages() reports the damage
                    continue
        return meta, atts


def _stream(body: bytes) -> ReadDataStream:
    return ReadDataStream(io.BytesIO(body))


def _attachment(a: McapAttachment) -> Attachment:
    return (a.name, a.media_type, bytes(a.data), a.log_time)


# -- ROS bags, through rosbags ----------------------------------------------------------

_ROSBAG1_MAGIC = b"#ROSBAG V2.0\n"


class RosbagSource:
    """A ROS 1 bag, or ROS 2 sqlite3 storage, read through ``rosbags``.

    ``targets`` are what rosbags opens: the ``.bag`` file, the ROS 2 bag folder, or its
    ``.db3`` files one by one when ``metadata.yaml`` does not list them. Each target comes
    in record-time order; several are merged. ``publish_time_ns`` is the record time and
    ``sequence`` is 0: bags store neither.

    Schemas follow the MCAP conventions: ROS 1 types as ``pkg/Name`` with the bag's full
    ``ros1msg`` definition text; ROS 2 types as ``pkg/msg/Name`` with the ``ros2msg`` or
    ``ros2idl`` text the bag carries, else one generated from rosbags' type store.
    Connections that share topic, type and definition become one channel.
    """

    def __init__(self, path: Path, targets: Sequence[Path], *, ros1: bool) -> None:
        self.path = Path(path)
        self.problems: list[ReadProblem] = []
        self.out_of_order: Counter[str] = Counter()  # bags are read in time order
        self._targets = list(targets)
        self._ros1 = ros1
        self._channels: list[dict[int, Channel]] = []
        pool: dict[Channel, Channel] = {}
        for target in self._targets:
            reader = self._open(target)
            try:
                chans = {c.id: self._channel(c) for c in reader.connections}
            finally:
                reader.close()
            self._channels.append({k: pool.setdefault(v, v) for k, v in chans.items()})

    def _open(self, target: Path) -> Any:
        try:
            reader = Ros1Reader(target) if self._ros1 else Ros2Reader(target)
            reader.open()
        except Exception as err:  # rosbags raises several types on bad input
            kind = "ROS 1 bag" if self._ros1 else "ROS 2 bag"
            reason = " ".join(str(err).split()) or type(err).__name__
            raise IngestError(f"{target}: not a readable {kind}: {reason}") from None
        return reader

    def _channel(self, conn: Connection) -> Channel:
        if not self._ros1:
            schema = self._ros2_schema(conn)
            return Channel(
                conn.topic, str(getattr(conn.ext, "serialization_format", "cdr")), schema
            )
        name = conn.msgtype.replace("/msg/", "/", 1)
        meta = {"md5sum": conn.digest}
        if getattr(conn.ext, "latching", None):
            meta["latching"] = "1"
        return Channel(conn.topic, "ros1", Schema(name, "ros1msg", conn.msgdef.data.encode()), meta)

    def _ros2_schema(self, conn: Connection) -> Schema:
        fmt, text = conn.msgdef.format, conn.msgdef.data
        if fmt == MessageDefinitionFormat.IDL:
            return Schema(conn.msgtype, "ros2idl", text.encode())
        if fmt == MessageDefinitionFormat.MSG and text:
            return Schema(conn.msgtype, "ros2msg", text.encode())
        from rosbags.typesys import Stores, get_typestore  # slow import, rarely needed

        store = get_typestore(Stores.LATEST)
        if conn.msgtype in store.fielddefs:
            text, _ = store.generate_msgdef(conn.msgtype, ros_version=2)
            return Schema(conn.msgtype, "ros2msg", text.encode())
        detail = f"{conn.topic}: the bag carries no definition of {conn.msgtype}"
        self.problems.append(ReadProblem(self.path, ProblemKind.MISSING_DEFINITION, detail))
        return Schema(conn.msgtype, "ros2msg", b"")

    def messages(self) -> Iterator[RawMessage]:
        """Every message in record-time order (per target; merged across targets)."""
        streams = [self._target_messages(i) for i in range(len(self._targets))]
        return streams[0] if len(streams) == 1 else heapq.merge(*streams, key=_log_time)

    def _target_messages(self, index: int) -> Iterator[RawMessage]:
        """One target's messages. Damage met on the way (a chunk that will not decompress, a
        bad database page) ends the stream there with a CORRUPT problem, as for MCAP."""
        channels = self._channels[index]
        target = self._targets[index]
        reader = self._open(target)
        t: int | None = None
        try:
            for conn, t, data in reader.messages(reader.connections):
                yield _raw_message((channels[conn.id], t, t, 0, data))
        except Exception as err:  # rosbags raises several types on damaged input
            reason = " ".join(str(err).split()) or type(err).__name__
            detail = f"{target.name}: reading stopped: {reason}"
            self.problems.append(
                ReadProblem(self.path, ProblemKind.CORRUPT, detail, at_log_time_ns=t)
            )
        finally:
            reader.close()

    def metadata(self) -> dict[str, dict[str, str]]:
        """Bags carry no MCAP metadata records: always empty."""
        return {}

    def attachments(self) -> list[Attachment]:
        """Bags carry no attachments: always empty."""
        return []


class _McapFolderSource:
    """A ROS 2 bag folder stored as MCAP: its files read directly, merged by log time, with
    Channel objects shared across files so a topic keeps one."""

    def __init__(self, path: Path, files: Sequence[Path]) -> None:
        self.path = path
        pool: dict[Channel, Channel] = {}
        self._parts = [McapSource(f, pool) for f in files]
        self.problems = [p for part in self._parts for p in part.problems]
        self.out_of_order: Counter[str] = Counter()
        for part in self._parts:
            part.problems = self.problems  # one list, filled by every part as it reads
            part.out_of_order = self.out_of_order

    def messages(self) -> Iterator[RawMessage]:
        return merge(self._parts)

    def metadata(self) -> dict[str, dict[str, str]]:
        return {k: v for part in self._parts for k, v in part.metadata().items()}

    def attachments(self) -> list[Attachment]:
        return [a for part in self._parts for a in part.attachments()]


def _open_ros2_folder(path: Path) -> Source:
    """Pick the reader for a ROS 2 bag folder from ``metadata.yaml`` and the files present:
    MCAP storage is read directly, even when ``metadata.yaml`` has an empty storage type or
    file list; sqlite3 and compressed bags go through rosbags."""
    info = _bag_info(path)
    storage = str(info.get("storage_identifier") or "")
    listed = [path / Path(str(p)).name for p in info.get("relative_file_paths") or []]
    compressed = str(info.get("compression_mode") or "").lower() not in ("", "none")
    mcaps = sorted(p for p in path.glob("*.mcap") if p.is_file())
    db3s = sorted(p for p in path.glob("*.db3") if p.is_file())
    if missing := [p for p in listed if not p.exists()]:
        raise IngestError(f"{path}: metadata.yaml lists {missing[0].name}, which is missing")
    if compressed:
        return RosbagSource(path, [path], ros1=False)
    if storage == "mcap" or (not storage and mcaps and not db3s):
        files = [p for p in listed if p.suffix == ".mcap"] or mcaps
        if not files:
            raise IngestError(f"{path}: ROS 2 bag folder without .mcap files")
        return _McapFolderSource(path, files)
    if storage == "sqlite3" or (not storage and db3s):
        if storage and listed:
            return RosbagSource(path, [path], ros1=False)
        if not db3s:
            raise IngestError(f"{path}: ROS 2 bag folder without .db3 files")
        return RosbagSource(path, db3s, ros1=False)
    if storage:
        raise IngestError(f"{path}: unsupported ROS 2 bag storage {storage!r}")
    raise IngestError(f"{path}: not a ROS 2 bag folder (no metadata.yaml, .mcap or .db3)")


def _bag_info(path: Path) -> dict[str, Any]:
    """``rosbag2_bagfile_information`` from ``metadata.yaml``; {} when absent or empty."""
    yaml_path = path / "metadata.yaml"
    if not yaml_path.is_file():
        return {}
    from ruamel.yaml import YAML, YAMLError

    try:
        doc = YAML(typ="safe").load(yaml_path.read_text())
    except (OSError, UnicodeDecodeError, YAMLError) as err:
        reason = " ".join(str(err).split())
        raise IngestError(f"{yaml_path}: unreadable bag metadata: {reason}") from None
    info = doc.get("rosbag2_bagfile_information") if isinstance(doc, dict) else None
    return info if isinstance(info, dict) else {}


__all__ = [
    "MCAP_MAGIC",
    "Attachment",
    "Channel",
    "McapSource",
    "ProblemKind",
    "RawMessage",
    "ReadProblem",
    "RosbagSource",
    "Schema",
    "Source",
    "merge",
    "open_source",
]
