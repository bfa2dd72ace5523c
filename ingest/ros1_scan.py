"""ROS 1 bags (format 2.0) read record by record from the start, for bags whose index is
missing or cut: a recorder that crashed, a copy that stopped early.

rosbags reads a bag through the index at its end (connection and chunk-info records at the
header's ``index_pos``) and refuses a bag without one. But a bag is a plain sequence of
records, ``<header_len u32><header><data_len u32><data>``, whose header is a list of
``<len u32>name=value`` fields with an ``op`` byte saying the record's kind
(wiki.ros.org/Bags/Format/2.0). Messages live in chunk records; a connection record comes
inside a chunk before the connection's first message there, and again in the index. So
reading the chunks in file order recovers every message of every complete chunk without the
index. A chunk cut by the end of the file is lost whole (its compressed data cannot be
trusted part way); what is lost is counted in bytes, and in messages when the bag header
says how many chunks there were and all of them were read (then none were lost).
"""

from __future__ import annotations

import bz2
import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import BinaryIO

from lz4.frame import decompress as lz4_decompress  # type: ignore[import-untyped]

from drivecat.ingest.errors import IngestError
from drivecat.ingest.source_types import (
    Channel,
    NoSideRecords,
    ProblemKind,
    RawMessage,
    ReadProblem,
    Schema,
    Source,
    raw_message,
)
from drivecat.ingest.time_order import Batch, batch_of, in_time_order, last_time, with_next_start

MAGIC = b"#ROSBAG V2.0\n"
_U32 = struct.Struct("<I")
_TIME = struct.Struct("<II")  # sec, nsec


class Op(IntEnum):
    """Record kinds (the header's ``op`` field)."""

    MSG_DATA = 0x02
    BAG_HEADER = 0x03
    INDEX_DATA = 0x04
    CHUNK = 0x05
    CHUNK_INFO = 0x06
    CONNECTION = 0x07


class BagFormatError(ValueError):
    """A record that does not parse (the scanner turns it into a ReadProblem)."""


def parse_fields(buf: bytes) -> dict[str, bytes]:
    """A record header's fields, ``name -> raw value``. Raises BagFormatError when a field
    runs past the header or has no ``=``."""
    fields: dict[str, bytes] = {}
    pos, end = 0, len(buf)
    while pos < end:
        if end - pos < 4:
            raise BagFormatError("header field length cut short")
        (length,) = _U32.unpack_from(buf, pos)
        pos += 4
        if length > end - pos:
            raise BagFormatError("header field runs past its header")
        name, eq, value = buf[pos : pos + length].partition(b"=")
        if not eq:
            raise BagFormatError("header field without '='")
        fields[name.decode("ascii", "replace")] = value
        pos += length
    return fields


def _u32(fields: dict[str, bytes], name: str) -> int:
    value = fields.get(name)
    if value is None or len(value) < 4:
        raise BagFormatError(f"record without a {name!r} field")
    return int(_U32.unpack_from(value)[0])


def _op(fields: dict[str, bytes]) -> int:
    op = fields.get("op")
    if not op:
        raise BagFormatError("record without an 'op' field")
    return op[0]


def records(buf: bytes) -> Iterator[tuple[dict[str, bytes], bytes]]:
    """The records of a decompressed chunk, ``(header fields, data)``. Raises
    BagFormatError on a record that runs past the chunk."""
    pos, end = 0, len(buf)
    while pos < end:
        if end - pos < 4:
            raise BagFormatError("record cut short inside its chunk")
        (hlen,) = _U32.unpack_from(buf, pos)
        if hlen > end - pos - 8:
            raise BagFormatError("record header runs past its chunk")
        fields = parse_fields(buf[pos + 4 : pos + 4 + hlen])
        pos += 4 + hlen
        (dlen,) = _U32.unpack_from(buf, pos)
        pos += 4
        if dlen > end - pos:
            raise BagFormatError("record data runs past its chunk")
        yield fields, buf[pos : pos + dlen]
        pos += dlen


def decompress_chunk(fields: dict[str, bytes], data: bytes) -> bytes:
    """A chunk record's records, decompressed; checked against the chunk's ``size``."""
    compression = fields.get("compression", b"none").decode("ascii", "replace")
    try:
        if compression == "none":
            out = data
        elif compression == "bz2":
            out = bz2.decompress(data)
        elif compression == "lz4":
            out = lz4_decompress(data)
        else:
            raise BagFormatError(f"unknown chunk compression {compression!r}")
    except (OSError, ValueError, RuntimeError) as err:  # bz2 and lz4 raise these
        if isinstance(err, BagFormatError):
            raise
        raise BagFormatError(f"{compression} chunk does not decompress: {err}") from None
    if len(out) != (size := _u32(fields, "size")):
        raise BagFormatError(f"chunk holds {len(out)} bytes, its header says {size}")
    return out


def normalize_topic(name: str) -> str:
    """The topic as rosbags names it (empty segments dropped: ``//a//b`` -> ``/a/b``), so a
    bag's topics are the same whether it is read through its index or scanned."""
    lead = "/" if name.startswith("/") else ""
    return lead + "/".join(x for x in name.split("/") if x)


def connection_channel(fields: dict[str, bytes], data: bytes) -> tuple[int, Channel]:
    """A connection record -> (connection id, Channel), as ``RosbagSource`` builds it."""
    conn = _u32(fields, "conn")
    topic = normalize_topic(fields.get("topic", b"").decode("utf-8", "replace"))
    info = parse_fields(data)
    msgtype = info.get("type", b"").decode("utf-8", "replace")
    meta = {"md5sum": info.get("md5sum", b"").decode("ascii", "replace")}
    try:
        if int(info.get("latching", b"0") or b"0"):
            meta["latching"] = "1"
    except ValueError:
        pass  # an unreadable latching flag is treated as absent, as rosbags does for ""
    schema = Schema(msgtype, "ros1msg", info.get("message_definition", b""))
    return conn, Channel(topic, "ros1", schema, meta)


@dataclass(frozen=True)
class BagHeader:
    """The bag header record: where the index starts (0: never written) and how many
    connections and chunks the finished bag has (0 when the recorder never finished)."""

    index_pos: int
    conn_count: int
    chunk_count: int
    end: int  # file position just after the header record


def read_bag_header(f: BinaryIO) -> BagHeader:
    """The magic line and bag header record at the start of ``f``. Raises BagFormatError."""
    if f.read(len(MAGIC)) != MAGIC:
        raise BagFormatError("not a ROS 1 bag (bad magic)")
    head = f.read(4)
    if len(head) < 4:
        raise BagFormatError("bag header cut short")
    (hlen,) = _U32.unpack(head)
    header = f.read(hlen)
    tail = f.read(4)
    if len(header) < hlen or len(tail) < 4:
        raise BagFormatError("bag header cut short")
    fields = parse_fields(header)
    if _op(fields) != Op.BAG_HEADER:
        raise BagFormatError("the first record is not a bag header")
    if fields.get("encryptor"):
        raise BagFormatError("encrypted bags are not supported")
    index_pos = fields.get("index_pos", b"")
    if len(index_pos) < 8:
        raise BagFormatError("bag header without an index position")
    (padding,) = _U32.unpack(tail)
    return BagHeader(
        int.from_bytes(index_pos[:8], "little"),
        _u32(fields, "conn_count"),
        _u32(fields, "chunk_count"),
        len(MAGIC) + 8 + hlen + padding,
    )


class Ros1ScanSource(NoSideRecords):
    """A ROS 1 bag read from its start, chunk by chunk, without its index (see the module
    docstring). ``why`` says why the index could not be used. Messages come in record-time
    order as far as chunks written one after another allow (``in_time_order``). When the
    stream ends, a TRUNCATED problem says how far the bag was read and what was lost."""

    start_bound: int | None = None  # its first time is known only once it is read

    def __init__(self, path: Path, header: BagHeader, why: str) -> None:
        self.path = Path(path)
        self.problems: list[ReadProblem] = []
        self.out_of_order: Counter[str] = Counter()
        self.header = header
        self._why = why
        self._size = self.path.stat().st_size
        self._channels: dict[int, Channel] = {}
        self._pool: dict[Channel, Channel] = {}
        self._unknown: Counter[int] = Counter()

    def messages(self) -> Iterator[RawMessage]:
        yield from in_time_order(with_next_start(self._batches()))

    def _batches(self) -> Iterator[Batch]:
        pos, chunks, last = self.header.end, 0, None
        with self.path.open("rb") as f:
            f.seek(pos)
            while pos < self._size:
                try:
                    record = self._record(f, pos)
                except BagFormatError as err:
                    self._stop(ProblemKind.CORRUPT, pos, chunks, last, f"unreadable record: {err}")
                    return
                if record is None:
                    break  # cut: the record runs past the end of the file
                op, fields, data, end = record
                if op == Op.CHUNK:
                    try:
                        msgs = self._chunk(fields, data)
                    except BagFormatError as err:
                        detail = f"chunk at byte {pos} skipped: {err}"
                        self._note(ProblemKind.CORRUPT, detail, end - pos, last)
                    else:
                        chunks += 1
                        if msgs:
                            last = last_time(batch := batch_of(msgs), last)
                            yield batch
                elif op == Op.CONNECTION:
                    self._connection(fields, data)
                pos = end
        self._stop(ProblemKind.TRUNCATED, pos, chunks, last, "")

    def _record(self, f: BinaryIO, pos: int) -> tuple[int, dict[str, bytes], bytes, int] | None:
        """The record at ``pos`` (``f`` is there): (op, fields, data, end position). Data is
        read for chunks and connections only. None when the record runs past the file."""
        head = f.read(4)
        if len(head) < 4:
            return None
        (hlen,) = _U32.unpack(head)
        if pos + 8 + hlen > self._size:
            return None
        fields = parse_fields(f.read(hlen))
        (dlen,) = _U32.unpack(f.read(4))
        end = pos + 8 + hlen + dlen
        if end > self._size:
            return None
        op = _op(fields)
        if op in (Op.CHUNK, Op.CONNECTION):
            data = f.read(dlen)
        else:
            data = b""
            f.seek(dlen, 1)
        return op, fields, data, end

    def _chunk(self, fields: dict[str, bytes], data: bytes) -> list[RawMessage]:
        msgs: list[RawMessage] = []
        for inner, body in records(decompress_chunk(fields, data)):
            op = _op(inner)
            if op == Op.MSG_DATA:
                conn = _u32(inner, "conn")
                stamp = inner.get("time", b"")
                if len(stamp) < 8:
                    raise BagFormatError("message record without a time")
                sec, nsec = _TIME.unpack_from(stamp)
                t = sec * 1_000_000_000 + nsec
                channel = self._channels.get(conn)
                if channel is None:
                    self._unknown[conn] += 1
                else:
                    msgs.append(raw_message((channel, t, t, 0, body)))
            elif op == Op.CONNECTION:
                self._connection(inner, body)
        return msgs

    def _connection(self, fields: dict[str, bytes], data: bytes) -> None:
        conn, channel = connection_channel(fields, data)
        self._channels.setdefault(conn, self._pool.setdefault(channel, channel))

    def _note(
        self,
        kind: ProblemKind,
        detail: str,
        lost_bytes: int,
        at: int | None,
        lost_messages: int | None = None,
    ) -> None:
        self.problems.append(ReadProblem(self.path, kind, detail, lost_bytes, at, lost_messages))

    def _stop(
        self, kind: ProblemKind, pos: int, chunks: int, last: int | None, reason: str
    ) -> None:
        """The problem that ends the scan: how far it got and what is lost after ``pos``."""
        for conn, count in sorted(self._unknown.items()):
            detail = f"{count} messages on undefined connection {conn} skipped"
            self._note(ProblemKind.UNKNOWN_CHANNEL, detail, 0, last, lost_messages=count)
        declared = self.header.chunk_count
        all_read = kind is ProblemKind.TRUNCATED and declared and chunks >= declared
        of = f" of {declared}" if declared else ""
        lost = "no messages lost" if all_read else "messages lost: not knowable without the index"
        detail = (
            f"{self._why}; scanned from the start: {chunks}{of} chunks read, up to byte "
            f"{pos} of {self._size}; {lost}" + (f"; {reason}" if reason else "")
        )
        self._note(kind, detail, self._size - pos, last, lost_messages=0 if all_read else None)


def open_ros1(path: Path) -> Source:
    """A ROS 1 bag: through its index, chunk by chunk (``Ros1BagSource``), when that is
    readable, else scanned from the start (``Ros1ScanSource``). Raises IngestError naming
    the file when it is not a ROS 1 bag at all (bad magic, unreadable header)."""
    from drivecat.ingest.ros1_bag import Ros1BagSource

    try:
        return Ros1BagSource(path)
    except IngestError as err:
        failure = err
    try:
        with Path(path).open("rb") as f:
            header = read_bag_header(f)
    except (OSError, BagFormatError):
        raise failure from None
    why = "index missing" if header.index_pos == 0 else "index cut or unreadable"
    return Ros1ScanSource(path, header, why)
