"""ROS 1 bags (format 2.0) read through their index, chunk by chunk (``Ros1BagSource``).

A finished bag ends in an index (wiki.ros.org/Bags/Format/2.0): at the bag header's
``index_pos``, one connection record per connection, then one chunk-info record per chunk
with the chunk's position, its first and last record time and its message count per
connection. That is all a reader needs to hand out each chunk as a *piece*
(``ingest.pieces``) and to read the chunks in time order with one ``os.pread`` each.

rosbags' reader opens a bag by also reading every message's index entry (the index-data
records after each chunk), which costs seconds on a bag of a million small messages and
would be paid again by every worker process; this reader does not need them. It reads the
index the way rosbags does (same topic normalization, same type names, same definition
text), so its channels are the ones ``ingest.bag_source.RosbagSource`` made from rosbags'
connections. A bag without an index, or whose index does not parse, is not for this reader:
``ingest.ros1_scan.open_ros1`` then scans it from the start.

Order: log time (the record time), then piece order, then record order within the chunk.
rosbags orders equal times by chunk position in the file instead of by the chunk's first
time, so the two differ only for equal record times in chunks that overlap in time and were
written in another order than their first times.
"""

from __future__ import annotations

import os
import struct
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path, PurePosixPath
from typing import Any

from drivecat.ingest.errors import IngestError
from drivecat.ingest.mcap_source import MAX_CHUNK_BYTES
from drivecat.ingest.pieces import Piece, UnknownTally
from drivecat.ingest.ros1_scan import (
    BagFormatError,
    Op,
    decompress_chunk,
    normalize_topic,
    parse_fields,
    read_bag_header,
)
from drivecat.ingest.source_types import (
    Channel,
    NoSideRecords,
    ProblemKind,
    RawMessage,
    ReadProblem,
    Schema,
    raw_message,
)
from drivecat.ingest.time_order import NEVER, Batch, batch_of, in_time_order

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_TIME = struct.Struct("<II")  # sec, nsec
_HEAD_GUESS = 128  # a chunk record's header is ~40 bytes: one pread usually gets it all
_NS = 1_000_000_000


@dataclass(frozen=True)
class _ChunkAt:
    """Where one chunk's compressed records lie, and how they are compressed."""

    fields: dict[str, bytes]  # the chunk record's header (compression, size)
    data_pos: int
    data_len: int
    record_len: int  # the whole chunk record, header included


class Ros1BagSource(UnknownTally, NoSideRecords):
    """A ROS 1 bag with a readable index, read chunk by chunk (see the module docstring).

    ``channel_pool`` lets several sources share Channel objects; within a bag, connections
    that share topic, type and definition are one channel, as ``RosbagSource`` made them.
    Raises IngestError naming the file when the bag or its index cannot be read.
    """

    UNKNOWN = "{count} messages on undefined connection {id} skipped"

    def __init__(self, path: Path, channel_pool: dict[Channel, Channel] | None = None) -> None:
        self.path = Path(path)
        self.problems: list[ReadProblem] = []
        self.out_of_order: Counter[str] = Counter()
        self._pool = channel_pool if channel_pool is not None else {}
        self._unknown: dict[int, list[int]] = {}  # connection id -> [messages, bytes]
        # what workers of ingest.parallel check of the pieces they own (see ingest.pieces)
        self.index_disagrees: list[int] = []  # owned chunks whose times the index misstates
        self.piece_problems: list[tuple[int, ReadProblem]] = []
        self._span: tuple[int, int] | None = None  # of the chunk read last
        try:
            self._read_index()
        except (OSError, BagFormatError, UnicodeDecodeError, ValueError) as err:
            reason = getattr(err, "strerror", None) or " ".join(str(err).split())
            raise IngestError(f"{self.path}: not a readable ROS 1 bag: {reason}") from None

    def _read_index(self) -> None:
        with self.path.open("rb", buffering=0) as f:
            header = read_bag_header(f)
            if header.index_pos == 0:
                raise BagFormatError("the bag is not indexed")
            size = os.fstat(f.fileno()).st_size
            if header.index_pos >= size and header.chunk_count:
                raise BagFormatError(f"the index at byte {header.index_pos} lies past the end")
            fd = f.fileno()
            index = os.pread(fd, size - header.index_pos, header.index_pos)
            pos = 0
            channels: dict[int, Channel] = {}
            for _ in range(header.conn_count if header.chunk_count else 0):
                fields, data, pos = _record_at(index, pos, Op.CONNECTION)
                conn, channel = _connection(fields, data)
                channels[conn] = self._pool.setdefault(channel, channel)
            pieces: list[Piece] = []
            chunks: dict[int, _ChunkAt] = {}
            for _ in range(header.chunk_count):
                fields, data, pos = _record_at(index, pos, Op.CHUNK_INFO)
                piece = _chunk_info(fields, data)
                chunk = _chunk_record(fd, piece.offset, size)
                pieces.append(_sized(piece, chunk))
                chunks[piece.offset] = chunk
        self._channels = channels
        self._topics = {conn: channel.topic for conn, channel in channels.items()}
        self._chunks = chunks
        self._pieces = sorted(pieces, key=lambda p: (p.start_ns, p.offset))

    # -- what the pass and the workers ask of a source --------------------------------

    @property
    def indexed(self) -> bool:
        """Always read through its index (a bag without one is scanned instead)."""
        return True

    @property
    def start_bound(self) -> int | None:
        """No message is older than its first chunk's start (None: no messages)."""
        return self._pieces[0].start_ns if self._pieces else None

    def pieces(self) -> list[Piece]:
        """Its chunks, in the order ``messages`` reads them."""
        return list(self._pieces)

    def declared_channels(self) -> list[Channel]:
        """The channels of its index's connections (shared ones once)."""
        return list(dict.fromkeys(self._channels.values()))

    def channel_topics(self) -> dict[int, str]:
        """The topic of each connection id its index declares."""
        return {conn: channel.topic for conn, channel in self._channels.items()}

    def messages(self) -> Iterator[RawMessage]:
        """Every message in log-time order (exact: the index bounds each chunk's times)."""
        yield from self._whole_read(self.messages_in(self._pieces, None, lambda _: True))

    def messages_in(
        self,
        pieces: Sequence[Piece],
        channels: frozenset[int] | None,
        owned: Callable[[Piece], bool],
    ) -> Iterator[RawMessage]:
        """The messages of ``pieces`` on the connection ids ``channels`` (None: all), in
        the order ``messages`` yields them; what reading a piece finds wrong is kept only
        for the pieces ``owned`` accepts (see ``ingest.pieces``)."""
        yield from in_time_order(self._batches(list(pieces), channels, owned))

    def _batches(
        self,
        order: list[Piece],
        channels: frozenset[int] | None,
        owned: Callable[[Piece], bool],
    ) -> Iterator[tuple[Batch, int]]:
        """Each piece's batch with the next piece's start (from the index: no lookahead)."""
        if channels is None:
            wanted = self._channels
        else:
            wanted = {c: ch for c, ch in self._channels.items() if c in channels}
        next_starts = [p.start_ns for p in order[1:]] + [NEVER] * bool(order)
        with self.path.open("rb", buffering=0) as f:
            fd = f.fileno()
            for piece, next_start in zip(order, next_starts, strict=True):
                if owned(piece):
                    before = len(self.problems)
                    batch = self._batch(fd, piece, wanted)
                    found = self.problems[before:]
                    self.piece_problems.extend((piece.offset, p) for p in found)
                    if self._span != (piece.start_ns, piece.end_ns):
                        self.index_disagrees.append(piece.offset)
                else:
                    mark = (len(self.problems), Counter(self.out_of_order), self.unknown)
                    batch = self._batch(fd, piece, wanted, whole=False)
                    del self.problems[mark[0] :]
                    self.out_of_order, self._unknown = mark[1], mark[2]
                if batch is not None:
                    yield batch, next_start

    def _batch(
        self, fd: int, piece: Piece, wanted: dict[int, Channel], whole: bool = True
    ) -> Batch | None:
        """One chunk's wanted messages; None (and a CORRUPT problem) when it is unreadable.
        Unless ``whole``, only the wanted messages are looked at (a piece another reader
        owns: what it shows of disorder and undefined connections is not kept).
        What the chunk shows of disorder and undefined connections counts only once the
        whole chunk has parsed: a chunk skipped as corrupt counts as lost, nothing more."""
        chunk = self._chunks[piece.offset]
        self._span = None
        try:
            if piece.size > MAX_CHUNK_BYTES:
                raise BagFormatError(f"it claims {piece.size} bytes uncompressed")
            data = os.pread(fd, chunk.data_len, chunk.data_pos)
            if len(data) < chunk.data_len:
                raise BagFormatError("its data runs past the end of the file")
            topics = self._topics if whole else None
            parsed = _parse(decompress_chunk(chunk.fields, data), wanted, topics)
        except BagFormatError as err:
            lost = sum(piece.counts.values())
            self.problems.append(
                ReadProblem(
                    self.path,
                    ProblemKind.CORRUPT,
                    f"chunk at byte {piece.offset} skipped: {err}; messages lost: {lost}",
                    chunk.record_len,
                    piece.start_ns,
                    lost,
                )
            )
            return None
        self._span = parsed.span
        self.out_of_order.update(parsed.disorder)
        for conn, (count, size) in parsed.unknown.items():
            tally = self._unknown.setdefault(conn, [0, 0])
            tally[0] += count
            tally[1] += size
        msgs = parsed.messages
        if not msgs:
            return None
        if parsed.in_order:
            return msgs[0][1], msgs, True
        return batch_of(msgs)


_NO_TIME = 1 << 64  # no message yet


@dataclass(frozen=True)
class _Parsed:
    """What one decompressed chunk holds: the wanted messages in record order, whether all
    its messages (wanted or not) are in time order, per topic the messages recorded after
    a later one of the topic, and per undefined connection id [messages, bytes]."""

    messages: list[RawMessage]
    in_order: bool
    disorder: Counter[str]
    unknown: dict[int, list[int]]
    span: tuple[int, int] | None  # smallest and largest time of all its known messages


def _parse(body: bytes, wanted: dict[int, Channel], topics: dict[int, str] | None) -> _Parsed:
    """The message-data records of a decompressed chunk (see ``_Parsed``); connection
    records are skipped, since the index declares every connection. Raises BagFormatError
    on a record that does not parse or runs past the chunk.

    This loop is most of the reader's time on a bag of small messages. Writers put the same
    three header fields (op, conn, time) in the same order in every message record, so the
    layout of the first one is learnt and later ones of that header length are read and
    checked with one ``unpack_from`` (``_Layout``); anything else goes field by field.
    Unwanted connections are skipped before any message is built. Without ``topics`` (a
    piece another reader owns) only the wanted messages are looked at: ``in_order`` is
    then theirs, and no disorder, undefined connection or span is counted.
    """
    msgs: list[RawMessage] = []
    append = msgs.append
    disorder: Counter[str] = Counter()
    unknown: dict[int, list[int]] = {}
    lasts: dict[str, int] = {}  # topic -> largest time so far
    in_order, last, lo = True, -1, _NO_TIME
    layouts: dict[int, _Layout] = {}
    pos, end = 0, len(body)
    unpack_u32 = _U32.unpack_from
    try:
        while pos < end:
            (hlen,) = unpack_u32(body, pos)
            layout = layouts.get(hlen)
            if (
                layout is not None
                and layout.tokens_of(values := layout.form.unpack_from(body, pos + 4))
                == layout.tokens
            ):
                conn = values[layout.conn_at]
                t = values[layout.time_at] * _NS + values[layout.time_at + 1]
                start = pos + 8 + hlen
                pos = start + values[-1]
            else:
                conn, t, start, pos = _record(body, pos, hlen, layouts)
                if conn < 0:
                    continue  # not a message record
            if pos > end:
                raise BagFormatError("record data runs past its chunk")
            if topics is None:  # the wanted messages only (their order, for the batch)
                channel = wanted.get(conn)
                if channel is not None:
                    if t < last:
                        in_order = False
                    else:
                        last = t
                    append(raw_message((channel, t, t, 0, body[start:pos])))
                continue
            topic = topics.get(conn)
            if topic is None:
                tally = unknown.setdefault(conn, [0, 0])
                tally[0] += 1
                tally[1] += pos - start
                continue
            if t < last:
                in_order = False
                if t < lo:
                    lo = t
                if t < lasts.get(topic, t):
                    disorder[topic] += 1
                else:
                    lasts[topic] = t
            else:
                if lo == _NO_TIME:
                    lo = t
                last = lasts[topic] = t
            channel = wanted.get(conn)
            if channel is not None:
                append(raw_message((channel, t, t, 0, body[start:pos])))
    except struct.error:
        raise BagFormatError("record cut short inside its chunk") from None
    return _Parsed(msgs, in_order, disorder, unknown, None if lo == _NO_TIME else (lo, last))


def _record(
    body: bytes, pos: int, hlen: int, layouts: dict[int, _Layout]
) -> tuple[int, int, int, int]:
    """The record at ``pos`` read field by field: (connection id, time, data start, data
    end), with -1 for the id of a record that is not a message. Learns the layout of a
    message record whose header length has none yet."""
    if hlen > len(body) - pos - 8:
        raise BagFormatError("record header runs past its chunk")
    header = body[pos + 4 : pos + 4 + hlen]
    fields = parse_fields(header)
    (dlen,) = _U32.unpack_from(body, pos + 4 + hlen)
    start = pos + 8 + hlen
    op = fields.get("op", b"")
    if not op:
        raise BagFormatError("record without an 'op' field")
    if op[0] != Op.MSG_DATA:
        if start + dlen > len(body):
            raise BagFormatError("record data runs past its chunk")
        return -1, 0, start, start + dlen
    conn_raw, stamp = fields.get("conn", b""), fields.get("time", b"")
    if len(conn_raw) != 4 or len(stamp) != 8:
        raise BagFormatError("message record without a connection or a time")
    sec, nsec = _TIME.unpack(stamp)
    if hlen not in layouts and (learnt := _Layout.of(header)) is not None:
        layouts[hlen] = learnt
    return _U32.unpack(conn_raw)[0], sec * _NS + nsec, start, start + dlen


@dataclass(frozen=True)
class _Layout:
    """How to read a message record whose header has exactly the fields op, conn and time
    in one order: ``form`` unpacks header and data length; ``tokens_of`` picks from its
    values each field's length, name and ``=`` (and op's value), which must equal
    ``tokens``; ``conn_at`` and ``time_at`` say where the id and the seconds land."""

    form: struct.Struct
    tokens_of: Callable[[tuple[Any, ...]], tuple[Any, ...]]
    tokens: tuple[bytes, ...]
    conn_at: int
    time_at: int

    @staticmethod
    def of(header: bytes) -> _Layout | None:
        """The layout of ``header``; None when it has other fields than those three."""
        order: list[tuple[str, int]] = []
        pos = 0
        while pos < len(header):
            (length,) = _U32.unpack_from(header, pos)
            name = header[pos + 4 : pos + 4 + length].partition(b"=")[0]
            order.append((name.decode("ascii", "replace"), length))
            pos += 4 + length
        if sorted(order) != [("conn", 9), ("op", 4), ("time", 13)]:
            return None
        form, token_at, tokens, conn_at, time_at, at = "<", [], [], 0, 0, 0
        for field, length in order:
            token_at.append(at)
            if field == "op":
                form += "8s"
                tokens.append(_U32.pack(length) + b"op=" + bytes([Op.MSG_DATA]))
                at += 1
            elif field == "conn":
                form += "9sI"
                tokens.append(_U32.pack(length) + b"conn=")
                conn_at, at = at + 1, at + 2
            else:
                form += "9sII"
                tokens.append(_U32.pack(length) + b"time=")
                time_at, at = at + 1, at + 3
        form += "I"  # the data length that follows the header
        return _Layout(struct.Struct(form), itemgetter(*token_at), tuple(tokens), conn_at, time_at)


def _record_at(buf: bytes, pos: int, op: Op) -> tuple[dict[str, bytes], bytes, int]:
    """The record of kind ``op`` at ``pos`` in ``buf``: (header fields, data, end)."""
    if len(buf) - pos < 4:
        raise BagFormatError(f"the index is cut short ({op.name.lower()} record missing)")
    (hlen,) = _U32.unpack_from(buf, pos)
    if pos + 8 + hlen > len(buf):
        raise BagFormatError(f"the index is cut short inside a {op.name.lower()} record")
    fields = parse_fields(buf[pos + 4 : pos + 4 + hlen])
    (dlen,) = _U32.unpack_from(buf, pos + 4 + hlen)
    start = pos + 8 + hlen
    if start + dlen > len(buf):
        raise BagFormatError(f"the index is cut short inside a {op.name.lower()} record")
    if fields.get("op", b"")[:1] != bytes([op]):
        raise BagFormatError(f"the index holds another record where a {op.name} should be")
    return fields, buf[start : start + dlen], start + dlen


def _connection(fields: dict[str, bytes], data: bytes) -> tuple[int, Channel]:
    """A connection record of the index -> (connection id, Channel), made as rosbags and
    ``RosbagSource`` make it: topic normalized, type as ``pkg/Name``, text fields UTF-8."""
    conn = _u32(fields, "conn")
    topic = normalize_topic(fields["topic"].decode()) if "topic" in fields else ""
    if not topic:
        raise BagFormatError("a connection record without a topic")
    info = parse_fields(data)
    try:
        msgtype = info["type"].decode()
        md5sum = info["md5sum"].decode()
        definition = info["message_definition"].decode()
    except KeyError as err:
        raise BagFormatError(f"a connection record without a {err.args[0]!r} field") from None
    latching = info["latching"].decode() if "latching" in info else ""
    meta = {"md5sum": md5sum}
    if latching and int(latching):
        meta["latching"] = "1"
    name = _ros1_type(msgtype)
    return conn, Channel(topic, "ros1", Schema(name, "ros1msg", definition.encode()), meta)


def _ros1_type(msgtype: str) -> str:
    """``pkg/Name`` as RosbagSource named it: rosbags' ``pkg/msg/Name`` form, then its
    first ``/msg/`` dropped (a ``pkg/action/Name`` keeps its middle part)."""
    path = PurePosixPath(msgtype)
    if path.parent.name not in ("msg", "action"):
        path = path.parent / "msg" / path.name
    return str(path).replace("/msg/", "/", 1)


def _chunk_info(fields: dict[str, bytes], data: bytes) -> Piece:
    """A chunk-info record -> its Piece (size filled in from the chunk record later)."""
    if _u32(fields, "ver") != 1:
        raise BagFormatError(f"chunk info version {_u32(fields, 'ver')} is not supported")
    chunk_pos = fields.get("chunk_pos", b"")
    if len(chunk_pos) != 8:
        raise BagFormatError("a chunk info without a chunk position")
    count = _u32(fields, "count")
    if len(data) < 8 * count:
        raise BagFormatError("a chunk info whose counts run past it")
    counts = dict(struct.iter_unpack("<II", data[: 8 * count]))
    start, end = (_time(fields, "start_time"), _time(fields, "end_time")) if count else (0, 0)
    return Piece(_U64.unpack(chunk_pos)[0], start, end, 0, counts)


def _chunk_record(fd: int, pos: int, size: int) -> _ChunkAt:
    """The chunk record header at ``pos`` (one pread, two for an unusually long one)."""
    head = os.pread(fd, _HEAD_GUESS, pos)
    if len(head) < 4:
        raise BagFormatError(f"the index points past the end of the file (byte {pos})")
    (hlen,) = _U32.unpack_from(head, 0)
    if hlen + 8 > len(head):
        head = os.pread(fd, hlen + 8, pos)
        if len(head) < hlen + 8:
            raise BagFormatError(f"the chunk at byte {pos} is cut short")
    fields = parse_fields(head[4 : 4 + hlen])
    if fields.get("op", b"")[:1] != bytes([Op.CHUNK]):
        raise BagFormatError(f"the index names no chunk at byte {pos}")
    (dlen,) = _U32.unpack_from(head, 4 + hlen)
    if pos + 8 + hlen + dlen > size:
        raise BagFormatError(f"the chunk at byte {pos} runs past the end of the file")
    return _ChunkAt(fields, pos + 8 + hlen, dlen, 8 + hlen + dlen)


def _sized(piece: Piece, chunk: _ChunkAt) -> Piece:
    compression = chunk.fields.get("compression", b"none").decode(errors="replace")
    return Piece(
        piece.offset,
        piece.start_ns,
        piece.end_ns,
        _u32(chunk.fields, "size"),
        piece.counts,
        "" if compression == "none" else compression,
    )


def _u32(fields: dict[str, bytes], name: str) -> int:
    value = fields.get(name, b"")
    if len(value) != 4:
        raise BagFormatError(f"record without a {name!r} field")
    return int(_U32.unpack(value)[0])


def _time(fields: dict[str, bytes], name: str) -> int:
    value = fields.get(name, b"")
    if len(value) != 8:
        raise BagFormatError(f"record without a {name!r} field")
    sec, nsec = _TIME.unpack(value)
    return int(sec * _NS + nsec)
