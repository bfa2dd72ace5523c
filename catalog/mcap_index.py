"""An MCAP file's summary and message indexes, parsed straight from their bytes.

For reads of a few messages (one frame's GOP): the mcap library's ``SeekingReader`` builds
a record object per summary record through a generic stream reader, and reading a message
by its index costs a seek and two reads. Here the summary is found from the file's tail
(one read when the summary is small, as in store files), only schemas, channels and chunk
indexes are decoded, and the messages of a chunk are read as one span.

Record layouts follow the MCAP specification: opcode u8, record length u64, then the
fields, little-endian; strings and byte arrays carry a u32 length, maps a u32 byte length.
Every parse error is a ValueError saying what is wrong; callers name the file.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from mcap.records import Channel, ChunkIndex, Schema

MAGIC = b"\x89MCAP0\r\n"
_RECORD_HEAD = struct.Struct("<BQ")
_FOOTER = struct.Struct("<BQQQI")  # opcode, length (20), summary start, offsets start, crc
_U16, _U32, _U64 = struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<Q")
_CHUNK_INDEX_HEAD = struct.Struct("<QQQQ")  # start, end, chunk offset, chunk length
_CHUNK_INDEX_TAIL = struct.Struct("<QQ")  # compressed size, uncompressed size
_MESSAGE_HEAD = struct.Struct("<HIQQ")  # channel id, sequence, log_time, publish_time
_OP_FOOTER, _OP_SCHEMA, _OP_CHANNEL = 0x02, 0x03, 0x04
_OP_MESSAGE, _OP_MESSAGE_INDEX, _OP_CHUNK_INDEX = 0x05, 0x07, 0x08
# The first read of a file takes this much of its tail: a store file's whole summary
# (schema, channel, a few chunk indexes, metadata index, statistics) fits, so the footer and
# the summary come in one read.
TAIL_READ = 16384

INDEX_ENTRY = np.dtype([("log_time", "<u8"), ("offset", "<u8")])  # a MessageIndex entry
ReadAt = Callable[[int, int], bytes]  # (offset, size) -> bytes, short only at end of file


@dataclass(frozen=True)
class FileSummary:
    """The parts of a summary section that locate messages."""

    schemas: dict[int, Schema]
    channels: dict[int, Channel]
    chunk_indexes: list[ChunkIndex]


def read_summary(read_at: ReadAt, size: int) -> FileSummary:
    """The summary of an MCAP file of ``size`` bytes. ValueError when the file does not end
    in a footer, or the footer points to no summary or to one outside the file."""
    tail_at = max(0, size - TAIL_READ)
    tail = read_at(tail_at, size - tail_at)
    footer_at = size - len(MAGIC) - _FOOTER.size
    if footer_at < len(MAGIC) or len(tail) != size - tail_at or tail[-len(MAGIC) :] != MAGIC:
        raise ValueError("no MCAP footer at the end of the file")
    opcode, length, summary_start, _, _ = _FOOTER.unpack_from(tail, footer_at - tail_at)
    if opcode != _OP_FOOTER or length != _FOOTER.size - _RECORD_HEAD.size:
        raise ValueError("no MCAP footer at the end of the file")
    if summary_start == 0:
        raise ValueError("no summary section")
    if not len(MAGIC) <= summary_start <= footer_at:
        raise ValueError(f"summary start {summary_start} lies outside the file")
    if summary_start >= tail_at:
        section = tail[summary_start - tail_at : footer_at - tail_at]
    else:
        section = read_at(summary_start, footer_at - summary_start)
    return parse_summary(section)


def parse_summary(section: bytes) -> FileSummary:
    """Schemas, channels and chunk indexes of a summary section's records (the bytes from
    the footer's summary start to the footer); other records are skipped."""
    schemas: dict[int, Schema] = {}
    channels: dict[int, Channel] = {}
    chunks: list[ChunkIndex] = []
    view = memoryview(section)
    at = 0
    while at < len(section):
        if at + _RECORD_HEAD.size > len(section):
            raise ValueError(f"summary record cut at {at}")
        opcode, length = _RECORD_HEAD.unpack_from(section, at)
        body_at = at + _RECORD_HEAD.size
        at = body_at + length
        if at > len(section):
            raise ValueError(f"summary record at {body_at - _RECORD_HEAD.size} runs past the end")
        body = _Fields(view[body_at:at])
        if opcode == _OP_SCHEMA:
            schema = Schema(id=body.u16(), name=body.text(), encoding=body.text(), data=body.blob())
            schemas[schema.id] = schema
        elif opcode == _OP_CHANNEL:
            cid, schema_id = body.u16(), body.u16()
            topic, encoding = body.text(), body.text()
            channels[cid] = Channel(
                id=cid,
                schema_id=schema_id,
                topic=topic,
                message_encoding=encoding,
                metadata=body.text_map(),
            )
        elif opcode == _OP_CHUNK_INDEX:
            chunks.append(_chunk_index(body))
    return FileSummary(schemas, channels, chunks)


def _chunk_index(body: _Fields) -> ChunkIndex:
    start, end, offset, chunk_length = body.take(_CHUNK_INDEX_HEAD)
    offsets = {}
    size = body.u32()
    if size % 10:
        raise ValueError(f"chunk index: message index offsets of {size} bytes")
    for _ in range(size // 10):
        cid = body.u16()
        offsets[cid] = body.u64()
    index_length = body.u64()
    compression = body.text()
    compressed, uncompressed = body.take(_CHUNK_INDEX_TAIL)
    return ChunkIndex(
        message_start_time=start,
        message_end_time=end,
        chunk_start_offset=offset,
        chunk_length=chunk_length,
        message_index_offsets=offsets,
        message_index_length=index_length,
        compression=compression,
        compressed_size=compressed,
        uncompressed_size=uncompressed,
    )


def records_offset(chunk: ChunkIndex) -> int:
    """File offset of a chunk's records: after its head (times, uncompressed size, crc,
    compression name) and the records' u64 length."""
    name = len(chunk.compression.encode())
    return chunk.chunk_start_offset + _RECORD_HEAD.size + 8 + 8 + 8 + 4 + 4 + name + 8


def index_entries(data: bytes, base: int, at: int) -> np.ndarray:
    """The entries of the MessageIndex record at file offset ``at``, ``data`` being the
    file's bytes from offset ``base`` on: a structured array of ``log_time`` and ``offset``
    (in the chunk's records), in record order. An array, not tuples: a video chunk indexes
    hundreds of messages, and a frame access wants a few dozen of them."""
    head = at - base
    if head < 0 or head + _RECORD_HEAD.size + 6 > len(data):
        raise ValueError(f"message index at {at} lies outside the chunk's indexes")
    opcode, length = _RECORD_HEAD.unpack_from(data, head)
    (size,) = _U32.unpack_from(data, head + _RECORD_HEAD.size + 2)
    entries_at = head + _RECORD_HEAD.size + 6
    if (
        opcode != _OP_MESSAGE_INDEX
        or size > length - 6
        or size % INDEX_ENTRY.itemsize
        or entries_at + size > len(data)
    ):
        raise ValueError(f"no message index at offset {at}")
    return np.frombuffer(data, INDEX_ENTRY, size // INDEX_ENTRY.itemsize, entries_at)


def messages_in(span: bytes, base: int, offsets: list[int]) -> list[tuple[int, int, bytes]]:
    """(channel id, log_time, data) of the Message records at ``offsets`` of a chunk's
    records, ``span`` being those records from offset ``base`` on."""
    out = []
    for offset in offsets:
        at = offset - base
        if at < 0 or at + _RECORD_HEAD.size + _MESSAGE_HEAD.size > len(span):
            raise ValueError(f"no message at chunk offset {offset}")
        opcode, length = _RECORD_HEAD.unpack_from(span, at)
        body_at = at + _RECORD_HEAD.size
        if opcode != _OP_MESSAGE or length < _MESSAGE_HEAD.size or body_at + length > len(span):
            raise ValueError(f"no message at chunk offset {offset}")
        channel_id, _, log_time, _ = _MESSAGE_HEAD.unpack_from(span, body_at)
        out.append((channel_id, log_time, span[body_at + _MESSAGE_HEAD.size : body_at + length]))
    return out


class _Fields:
    """Reads a record's fields in order; ValueError when one runs past the record."""

    def __init__(self, body: memoryview) -> None:
        self.body, self.at = body, 0

    def take(self, fmt: struct.Struct) -> tuple[int, ...]:
        if self.at + fmt.size > len(self.body):
            raise ValueError("a summary record is shorter than its fields")
        values = fmt.unpack_from(self.body, self.at)
        self.at += fmt.size
        return values

    def u16(self) -> int:
        return self.take(_U16)[0]

    def u32(self) -> int:
        return self.take(_U32)[0]

    def u64(self) -> int:
        return self.take(_U64)[0]

    def blob(self) -> bytes:
        size = self.u32()
        if self.at + size > len(self.body):
            raise ValueError("a summary record is shorter than its fields")
        out = bytes(self.body[self.at : self.at + size])
        self.at += size
        return out

    def text(self) -> str:
        return self.blob().decode()

    def text_map(self) -> dict[str, str]:
        end = self.at + self.u32()
        if end > len(self.body):
            raise ValueError("a summary record is shorter than its fields")
        out = {}
        while self.at < end:
            key = self.text()
            out[key] = self.text()
        return out
