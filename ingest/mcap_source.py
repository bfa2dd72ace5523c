"""MCAP files read as one stream of raw messages in log-time order (``McapSource``).

Indexed files are read chunk by chunk through the chunk index; anything else (unindexed,
un-chunked, a broken summary, a file cut by a crash) is streamed record by record. Damage is
stepped over and reported as ``ReadProblem``s, as ``ingest.sources`` describes.
"""

from __future__ import annotations

import io
import os
import struct
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import lz4.frame
import zstandard
from mcap.data_stream import ReadDataStream
from mcap.opcode import Opcode
from mcap.reader import SeekingReader
from mcap.records import Attachment as McapAttachment
from mcap.records import Channel as McapChannel
from mcap.records import ChunkIndex
from mcap.records import Metadata as McapMetadata
from mcap.records import Schema as McapSchema
from mcap.summary import Summary

from drivecat.ingest.crc import crc32
from drivecat.ingest.errors import IngestError
from drivecat.ingest.pieces import Piece, UnknownTally
from drivecat.ingest.source_types import (
    Attachment,
    Channel,
    MetadataRecord,
    ProblemKind,
    RawMessage,
    ReadProblem,
    Schema,
    raw_message,
)
from drivecat.ingest.time_order import (
    NEVER,
    Batch,
    batch_of,
    in_time_order,
    last_time,
    with_next_start,
)

MCAP_MAGIC = b"\x89MCAP0\r\n"
_RECORD = struct.Struct("<BQ")  # opcode, body length
_MESSAGE = struct.Struct("<HIQQ")  # channel id, sequence, log time, publish time
_CHUNK = struct.Struct("<QQQII")  # start, end, uncompressed size, crc, compression length
_MESSAGE_INDEX = struct.Struct("<BQHI")  # opcode, length, channel id, records length
_INDEX_ENTRY = 16  # a message index entry: log time, offset


def _header_follows(head: bytes, size: int) -> bool:
    """Whether ``head`` (the bytes after the magic) starts a Header record: opcode 0x01 and
    a body long enough for its two strings' lengths that fits in the file."""
    if len(head) < _RECORD.size:
        return False
    opcode, length = _RECORD.unpack_from(head)
    return opcode == 0x01 and 8 <= length <= size - len(MCAP_MAGIC) - _RECORD.size


def _indexed_count(fd: int, offsets: dict[int, int], length: int) -> int | None:
    """How many messages a chunk holds, from the message index records that follow it (one
    read of ``length`` bytes at the first ``offsets`` value); None when the chunk has none
    or they do not parse. Used for a chunk that cannot be read, to count what it cost."""
    if not offsets or length <= 0:
        return None
    start = min(offsets.values())
    data = os.pread(fd, length, start)
    count = 0
    for offset in offsets.values():
        at = offset - start
        if at < 0 or at + _MESSAGE_INDEX.size > len(data):
            return None
        opcode, _, _, records = _MESSAGE_INDEX.unpack_from(data, at)
        if opcode != Opcode.MESSAGE_INDEX or records % _INDEX_ENTRY:
            return None
        count += records // _INDEX_ENTRY
    return count


def _sized_messages(fd: int, ci: ChunkIndex) -> list[tuple[int, int]] | None:
    """(channel id, record bytes) of each message of the chunk ``ci`` indexes, from the
    offsets in its message index records (each message runs to the next offset, the last
    to the chunk's end); None when they do not parse."""
    offsets = ci.message_index_offsets
    if not offsets or ci.message_index_length <= 0:
        return None
    start = min(offsets.values())
    data = os.pread(fd, ci.message_index_length, start)
    found: list[tuple[int, int]] = []
    for cid, offset in offsets.items():
        at = offset - start
        if at < 0 or at + _MESSAGE_INDEX.size > len(data):
            return None
        opcode, _, _, records = _MESSAGE_INDEX.unpack_from(data, at)
        body = data[at + _MESSAGE_INDEX.size : at + _MESSAGE_INDEX.size + records]
        if opcode != Opcode.MESSAGE_INDEX or records % _INDEX_ENTRY or len(body) < records:
            return None
        found.extend((at_, cid) for _, at_ in struct.iter_unpack("<QQ", body))
    found.sort()
    ends = [at for at, _ in found[1:]] + [ci.uncompressed_size]
    return [(cid, end - at) for (at, cid), end in zip(found, ends, strict=True)]


_FOOTER_LEN = _RECORD.size + 20
_OP_MESSAGE = int(Opcode.MESSAGE)
_LOOSE_BATCH = 4096  # un-chunked messages are put in time order in batches of this many
# The most one chunk may inflate to. Recorders write chunks of a few MiB (4 MiB by default
# in the mcap and ROS 2 writers); a chunk that claims more is skipped as corrupt rather than
# allowed to take the machine's memory (a 184-byte file can claim a 1 TiB chunk).
MAX_CHUNK_BYTES = 512 << 20

# every metadata record, and the file offset of every attachment record, in file order
SideRecords = tuple[list[MetadataRecord], list[int]]


def _index_counts(ci: ChunkIndex) -> dict[int, int]:
    """Messages per channel id in the chunk ``ci`` indexes: each message index record is
    its header and 16 bytes per message, and the records lie end to end."""
    ends = sorted(ci.message_index_offsets.items(), key=lambda item: item[1])
    stop = ci.chunk_start_offset + ci.chunk_length + ci.message_index_length
    counts: dict[int, int] = {}
    for k, (cid, at) in enumerate(ends):
        length = (ends[k + 1][1] if k + 1 < len(ends) else stop) - at
        counts[cid] = max((length - _MESSAGE_INDEX.size) // _INDEX_ENTRY, 1)
    return counts


class _Track:
    """What an owned chunk shows of all its messages (``_parse_records`` fills it): the
    smallest and largest log time, per topic the largest so far and the messages recorded
    after a later one of the topic."""

    __slots__ = ("disorder", "hi", "lasts", "lo")

    def __init__(self) -> None:
        self.lo: int | None = None
        self.hi: int | None = None
        self.lasts: dict[str, int] = {}
        self.disorder: Counter[str] = Counter()


class _BadRecord(Exception):
    """A chunk or record whose content cannot be read (becomes a CORRUPT problem)."""


class McapSource(UnknownTally):
    """One MCAP file.

    With a readable summary and chunk index, chunks are read in time order through the
    index (summary parsed by ``mcap.reader.SeekingReader``). Otherwise the file is streamed
    record by record in the order it was written: unindexed and un-chunked files, files
    whose footer or summary is corrupt, and files cut by a crash, which are read up to the
    last complete record and reported TRUNCATED. Chunk CRCs are checked (CRC_MISMATCH); a
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
        self._damaged_heads: set[int] = set()  # chunk offsets whose record header is wrong
        self._pieces: list[Piece] | None = None
        self.index_disagrees: list[int] = []  # owned chunks whose times the index misstates
        self.piece_problems: list[tuple[int, ReadProblem]] = []  # of owned chunks, by offset
        try:
            self._size = self.path.stat().st_size
            with self.path.open("rb") as f:
                magic = f.read(len(MCAP_MAGIC))
                if self._size == 0:
                    raise IngestError(f"{self.path}: empty file")
                if magic != MCAP_MAGIC:
                    raise IngestError(f"{self.path}: not an MCAP file (bad magic)")
                if not _header_follows(f.read(_RECORD.size + 8), self._size):
                    # magic then garbage: not a recording cut short, there is nothing in it
                    raise IngestError(f"{self.path}: not an MCAP file (no header record)")
                self._summary = self._read_summary(f)
        except OSError as err:
            raise IngestError(f"{self.path}: cannot read: {err.strerror}") from None
        self._indexed = self._summary is not None and self._index_usable(self._summary)
        if self._summary is not None:
            for s in self._summary.schemas.values():
                self._add_schema(s)
            missing = {
                c.schema_id
                for c in self._summary.channels.values()
                if c.schema_id != 0 and c.schema_id not in self._schemas
            }
            if missing:
                self._schemas_from_data(missing)
            for c in self._summary.channels.values():
                self._add_channel(c)

    @property
    def indexed(self) -> bool:
        """Whether the file is read through its chunk index (it has an intact summary)."""
        return self._indexed

    @property
    def first_log_time(self) -> int | None:
        """The smallest log time of its chunked messages, from the summary."""
        if self._summary is None or not self._summary.chunk_indexes:
            return None
        return min(ci.message_start_time for ci in self._summary.chunk_indexes)

    @property
    def start_bound(self) -> int | None:
        """No message it yields is older than this, when read through its index (see
        ``ingest.sources.merge``); None when not known ahead."""
        return self.first_log_time if self._indexed else None

    def declared_channels(self) -> list[Channel]:
        """The channels its summary declares (none when it has no summary)."""
        return list(self._channels.values())

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
        """Whether the chunk index can drive the read: it points at chunks, and every
        channel is known up front (chunks are read out of file order).

        A chunk whose record header is damaged (a flipped length, say) is still read by the
        index's own offset and length; only an index that mostly points at no chunk is
        distrusted, and the file streamed instead.
        """
        stats = summary.statistics
        if not summary.chunk_indexes or not summary.channels:
            return False
        if stats is not None and stats.channel_count != len(summary.channels):
            return False
        damaged = []
        with self.path.open("rb", buffering=0) as f:
            fd = f.fileno()
            for ci in summary.chunk_indexes:
                head = os.pread(fd, _RECORD.size, ci.chunk_start_offset)
                expected = (Opcode.CHUNK, ci.chunk_length - _RECORD.size)
                if len(head) < _RECORD.size or _RECORD.unpack(head) != expected:
                    damaged.append(ci.chunk_start_offset)
        if len(damaged) * 2 > len(summary.chunk_indexes):
            self._note(
                ProblemKind.BAD_SUMMARY,
                f"the chunk index names no chunk at {len(damaged)} of its "
                f"{len(summary.chunk_indexes)} offsets; file streamed",
            )
            return False
        self._damaged_heads = set(damaged)
        return True

    def messages(self) -> Iterator[RawMessage]:
        """Every message in log-time order (see ``in_time_order`` for when it is exact)."""
        if self._indexed:
            batches = self._indexed_batches()
        else:
            batches = with_next_start(self._streamed_batches())
        yield from self._whole_read(in_time_order(batches))

    def chunk_order(self) -> list[ChunkIndex]:
        """The chunk index in the order ``messages`` reads it (indexed files only)."""
        assert self._summary is not None
        return sorted(
            self._summary.chunk_indexes,
            key=lambda ci: (ci.message_start_time, ci.chunk_start_offset),
        )

    def channel_topics(self) -> dict[int, str]:
        """The topic of each channel id its summary declares."""
        if self._summary is None:
            return {}
        return {c.id: c.topic for c in self._summary.channels.values()}

    def pieces(self) -> list[Piece]:
        """The chunks as ``ingest.pieces`` pieces, in ``chunk_order`` (indexed files only):
        each chunk's messages per channel follow from the lengths of its message index
        records, which the chunk index locates (no read)."""
        if self._pieces is None:
            self._pieces = self._make_pieces()
        return list(self._pieces)

    def message_sizes(self, samples: int = 16) -> dict[int, float]:
        """Each channel's mean message size (bytes of its records), from the message
        indexes of up to ``samples`` chunks spread over the file (one small read each);
        channels those chunks do not hold are left out."""
        order = self.chunk_order()
        step = max(len(order) // samples, 1)
        total: Counter[int] = Counter()
        count: Counter[int] = Counter()
        with self.path.open("rb", buffering=0) as f:
            for ci in order[::step]:
                for cid, size in _sized_messages(f.fileno(), ci) or []:
                    total[cid] += size
                    count[cid] += 1
        return {cid: total[cid] / count[cid] for cid in count}

    def _make_pieces(self) -> list[Piece]:
        every = dict.fromkeys(self._channels, 1)  # a chunk without a message index may hold any
        return [
            Piece(
                ci.chunk_start_offset,
                ci.message_start_time,
                ci.message_end_time,
                ci.uncompressed_size,
                _index_counts(ci) if ci.message_index_offsets else every,
                ci.compression,
            )
            for ci in self.chunk_order()
        ]

    def messages_in(
        self,
        pieces: Sequence[Piece],
        channels: frozenset[int] | None,
        owned: Callable[[Piece], bool],
    ) -> Iterator[RawMessage]:
        """The messages on ``channels`` (None: all) among ``pieces`` (a subsequence of
        ``pieces()``), in the order ``messages`` yields them: with equal log times in chunk
        order, then record order. What reading a chunk finds wrong (read problems,
        disorder, undefined channels) is kept only for the chunks ``owned`` accepts, so
        that readers sharing a file count each chunk once; the undefined channels are not
        noted (see ``unknown`` and ``note_unknown``). An owned chunk is read whole, and one
        whose messages do not span exactly the times its index says (or that cannot be
        read) is added to ``index_disagrees``."""
        assert self._indexed
        by_offset = {ci.chunk_start_offset: ci for ci in self.chunk_order()}
        mine = {p.offset for p in pieces if owned(p)}
        chunks = [by_offset[p.offset] for p in pieces]
        batches = self._indexed_batches(chunks, lambda ci: ci.chunk_start_offset in mine, channels)
        yield from in_time_order(batches)

    def _indexed_batches(
        self,
        order: list[ChunkIndex] | None = None,
        owned: Callable[[ChunkIndex], bool] | None = None,
        channels: frozenset[int] | None = None,
    ) -> Iterator[tuple[Batch, int]]:
        """Chunks in chunk-index order, each with the next one's start time from the index:
        the lookahead costs no read."""
        if order is None:
            order = self.chunk_order()
        next_starts = [ci.message_start_time for ci in order[1:]] + [NEVER]
        with self.path.open("rb", buffering=0) as f:
            fd = f.fileno()
            for ci, next_start in zip(order, next_starts, strict=True):
                if owned is not None and not owned(ci):
                    mark = (len(self.problems), Counter(self.out_of_order), self.unknown)
                    yield from self._chunk_of(fd, ci, next_start, channels)
                    del self.problems[mark[0] :]
                    self.out_of_order, self._unknown = mark[1], mark[2]
                elif owned is not None:
                    yield from self._owned_chunk(fd, ci, next_start, channels)
                else:
                    yield from self._chunk_of(fd, ci, next_start)

    def _owned_chunk(
        self, fd: int, ci: ChunkIndex, next_start: int, channels: frozenset[int] | None
    ) -> Iterator[tuple[Batch, int]]:
        """An owned chunk: every message is seen (its times checked against the index's,
        its recorded disorder and undefined channels counted), those on ``channels`` kept."""
        before = len(self.problems)
        track = _Track()
        found = list(self._chunk_of(fd, ci, next_start, channels, track))
        self.piece_problems.extend((ci.chunk_start_offset, p) for p in self.problems[before:])
        if not found or (track.lo, track.hi) != (ci.message_start_time, ci.message_end_time):
            self.index_disagrees.append(ci.chunk_start_offset)
        yield from found

    def _chunk_of(
        self,
        fd: int,
        ci: ChunkIndex,
        next_start: int,
        channels: frozenset[int] | None = None,
        track: _Track | None = None,
    ) -> Iterator[tuple[Batch, int]]:
        """The batch of one chunk (none when it cannot be read: a problem says why), of
        the messages on ``channels`` (None: all); ``track`` sees every message."""
        body = os.pread(fd, ci.chunk_length - _RECORD.size, ci.chunk_start_offset + _RECORD.size)
        try:
            batch = self._chunk_batch(body, ci.chunk_start_offset, channels, track)
            if ci.chunk_start_offset in self._damaged_heads:
                self._note(
                    ProblemKind.DAMAGED_HEADER,
                    f"the chunk record at offset {ci.chunk_start_offset} has a damaged "
                    f"header; its {len(batch[1])} messages were read through the index",
                    at_log_time_ns=ci.message_start_time,
                )
            yield batch, next_start
        except _BadRecord as err:
            lost = _indexed_count(fd, ci.message_index_offsets, ci.message_index_length)
            known = "unknown (no message index)" if lost is None else str(lost)
            self._note(
                ProblemKind.CORRUPT,
                f"chunk at offset {ci.chunk_start_offset} skipped: {err}; messages lost: {known}",
                lost_bytes=ci.chunk_length,
                at_log_time_ns=ci.message_start_time,
                lost_messages=lost,
            )

    def _streamed_batches(self) -> Iterator[Batch]:
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
                    last = last_time(batch := batch_of(loose), last)
                    yield batch
                    loose = []
                try:
                    if opcode == Opcode.MESSAGE:
                        self._loose_message(f, length, loose)
                    elif opcode == Opcode.CHUNK:
                        batch = self._chunk_batch(f.read(length), pos)
                        last = last_time(batch, last)
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
            last = last_time(batch := batch_of(loose), last)
            yield batch
        if not complete:
            # With an intact footer the file was not cut: what stopped the read is damage.
            kind = ProblemKind.CORRUPT if self._has_footer else ProblemKind.TRUNCATED
            self._note(
                kind,
                f"unreadable after byte {pos} of {self._size}; the rest is lost "
                "(how many messages: unknown, the summary that counts them is gone)",
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
            out.append(raw_message((channel, log, pub, seq, data)))

    def _schemas_from_data(self, wanted: set[int]) -> None:
        """Find the schemas ``wanted`` in the data section, chunks included.

        A summary may repeat the channels but not the schemas (both are optional): the
        channels must not be made without the schemas they name, which were in the data
        section all along. Reads from the start until every one is found; damage ends the
        search quietly, since ``messages()`` reports it.
        """
        pos = len(MCAP_MAGIC)
        with self.path.open("rb") as f:
            f.seek(pos)
            while wanted and len(head := f.read(_RECORD.size)) == _RECORD.size:
                opcode, length = _RECORD.unpack(head)
                if length > self._size - pos - _RECORD.size or opcode == Opcode.DATA_END:
                    return
                pos += _RECORD.size + length
                try:
                    if opcode == Opcode.SCHEMA:
                        self._add_record(opcode, f.read(length))
                    elif opcode == Opcode.CHUNK:
                        data, base, _, _ = self._chunk_records(f.read(length))
                        self._schemas_in_records(data, base)
                    else:
                        f.seek(length, io.SEEK_CUR)
                except _BadRecord:
                    return
                wanted -= self._schemas.keys()

    def _schemas_in_records(self, data: bytes, pos: int) -> None:
        end = len(data)
        while end - pos >= _RECORD.size:
            opcode, length = _RECORD.unpack_from(data, pos)
            body = pos + _RECORD.size
            pos = body + length
            if pos > end:
                return
            if opcode == Opcode.SCHEMA:
                self._add_record(opcode, data[body:pos])

    def _chunk_records(self, body: bytes) -> tuple[bytes, int, int, bool]:
        """The records of one chunk record (its body, after opcode and length), as
        ``(data, offset of the first record in data, the chunk's start time, CRC ok)``."""
        try:
            start, _, size, crc, clen = _CHUNK.unpack_from(body)
            compression = body[_CHUNK.size : _CHUNK.size + clen].decode()
            offset = _CHUNK.size + clen + 8
            (records_len,) = struct.unpack_from("<Q", body, offset - 8)
        except (struct.error, UnicodeDecodeError) as err:
            raise _BadRecord(f"bad chunk header: {err}") from None
        if offset + records_len != len(body):
            raise _BadRecord("chunk data length does not match its record")
        if size > MAX_CHUNK_BYTES:
            raise _BadRecord(
                f"chunk claims {size} bytes uncompressed, over the {MAX_CHUNK_BYTES >> 20} MiB "
                "limit of one chunk"
            )
        if compression == "":
            data, base = body, offset  # parse in place: no copy of the chunk
        elif size == 0:
            data, base = b"", 0  # an empty frame may not state its size: nothing to decode
        else:
            data, base = self._decompress(compression, memoryview(body)[offset:], size), 0
        if len(data) - base != size:
            raise _BadRecord(f"chunk holds {len(data) - base} bytes, its header says {size}")
        # 0 means the writer computed no CRC (ingest.crc: ISA-L's crc32, about 22 GB/s).
        crc_ok = crc == 0 or crc32(memoryview(data)[base:]) == crc
        return data, base, start, crc_ok

    def _chunk_batch(
        self,
        body: bytes,
        offset: int,
        channels: frozenset[int] | None = None,
        track: _Track | None = None,
    ) -> Batch:
        """The messages of the chunk record at ``offset`` (its body, after opcode and
        length).

        A chunk whose CRC fails but whose records still parse is kept as read and reported:
        the store may be the only copy, and one flipped byte should not cost a whole chunk.
        """
        data, base, start, crc_ok = self._chunk_records(body)
        msgs: list[RawMessage] = []
        is_sorted = self._parse_records(data, base, msgs, channels, track)
        if not crc_ok:
            self._note(
                ProblemKind.CRC_MISMATCH,
                f"chunk at offset {offset} fails its CRC: its {len(msgs)} messages are stored "
                "as read and may be damaged",
                at_log_time_ns=start,
            )
        if track is not None:
            self.out_of_order.update(track.disorder)
        elif not is_sorted:
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
                # Bounded: a frame that inflates past what its chunk declares stops there.
                inflater = lz4.frame.LZ4FrameDecompressor()
                out = inflater.decompress(data, max_length=size + 1)
                if len(out) > size or not inflater.eof:
                    raise _BadRecord(f"lz4 data inflates past the {size} bytes declared")
                return bytes(out)
        except (zstandard.ZstdError, RuntimeError, ValueError) as err:
            raise _BadRecord(f"{compression} decompression failed: {err}") from None
        raise _BadRecord(f"unsupported compression {compression!r}")

    def _parse_records(
        self,
        data: bytes,
        pos: int,
        out: list[RawMessage],
        wanted: frozenset[int] | None = None,
        track: _Track | None = None,
    ) -> bool:
        """Append the messages among the records in ``data[pos:]`` to ``out`` (only those
        on the channel ids ``wanted``, when given: the others are skipped uncounted, unless
        ``track`` is given: it then sees every message, wanted or not), registering schemas
        and channels on the way. Returns whether the appended messages are in log-time
        order. Raises _BadRecord when a record does not fit in ``data``."""
        channels = self._channels
        unpack_record = _RECORD.unpack_from
        unpack_message = _MESSAGE.unpack_from
        append = out.append
        is_sorted = True
        prev = out[-1][1] if out else 0
        end = len(data)
        lasts = track.lasts if track is not None else None  # per topic, the largest so far
        disorder = track.disorder if track is not None else Counter()
        lo = track.lo if track is not None else None
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
                if lasts is not None:  # an owned chunk: every message is seen
                    seen = channels.get(cid)
                    if seen is None:
                        self._count_unknown(cid, length)
                        continue
                    last = lasts.get(seen.topic)
                    if last is None:
                        lasts[seen.topic] = log
                        if lo is None or log < lo:
                            lo = log
                    elif log < last:
                        disorder[seen.topic] += 1
                        if lo is None or log < lo:
                            lo = log
                    else:
                        lasts[seen.topic] = log
                if wanted is not None and cid not in wanted:
                    continue
                channel = channels.get(cid)
                if channel is None:
                    self._count_unknown(cid, length)
                    continue
                if log < prev:
                    is_sorted = False
                prev = log
                append(raw_message((channel, log, pub, seq, data[body + _MESSAGE.size : pos])))
            elif opcode == Opcode.SCHEMA or opcode == Opcode.CHANNEL:
                self._add_record(opcode, data[body:pos])
        if track is not None:
            track.lo = lo
            track.hi = max(track.lasts.values(), default=None)
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
            return
        except UnicodeDecodeError:
            pass  # a name that is not UTF-8: read it escaped below, keep its messages
        except Exception as err:  # mcap raises several types on garbage
            raise _BadRecord(f"unreadable {Opcode(opcode).name.lower()} record: {err}") from None
        try:
            fields = _EscapedFields(body)
            if opcode == Opcode.SCHEMA:
                schema = McapSchema(
                    id=fields.u16(), name=fields.text(), encoding=fields.text(), data=fields.rest()
                )
                self._add_schema(schema)
                record_id = schema.id
            else:
                cid, schema_id = fields.u16(), fields.u16()
                topic, encoding = fields.text(), fields.text()
                channel = McapChannel(
                    id=cid,
                    schema_id=schema_id,
                    topic=topic,
                    message_encoding=encoding,
                    metadata=fields.text_map(),
                )
                self._add_channel(channel)
                record_id = cid
        except (struct.error, ValueError) as err:
            raise _BadRecord(f"unreadable {Opcode(opcode).name.lower()} record: {err}") from None
        self._note(
            ProblemKind.ODD_NAME,
            f"{Opcode(opcode).name.lower()} {record_id} has names that are not UTF-8; "
            f"stored with the bad bytes escaped ({fields.escaped})",
        )

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
        """Metadata records by name (of several records of a name, the last one)."""
        return {r.name: dict(r.metadata) for r in self.metadata_records()}

    def metadata_records(self) -> list[MetadataRecord]:
        """Every metadata record in file order, repeated names included. Complete before
        ``messages()`` runs: without a metadata index this costs one pass over record
        headers (chunks are skipped, not read)."""
        return self._side_records()[0]

    def attachments(self) -> Iterator[Attachment]:
        """Every attachment in file order, each read from the file when the iteration
        reaches it (found as ``metadata_records()`` finds records). An attachment whose
        CRC does not match is still yielded, and noted as a CRC_MISMATCH problem."""
        with self.path.open("rb") as f:
            for offset in self._side_records()[1]:
                f.seek(offset)
                opcode, length = _RECORD.unpack(f.read(_RECORD.size))
                body = f.read(length)
                try:
                    record = McapAttachment.read(_stream(body))
                except Exception:  # checked by the scan; only a file changed under us
                    self._note(ProblemKind.CORRUPT, f"unreadable attachment at byte {offset}")
                    continue
                end = _attachment_crc_at(body)
                (crc,) = struct.unpack_from("<I", body, end)
                if crc and crc32(body[:end]) != crc:
                    self._note(
                        ProblemKind.CRC_MISMATCH,
                        f"attachment {record.name!r} failed its CRC; kept as read",
                    )
                yield Attachment(
                    record.name,
                    record.media_type,
                    bytes(record.data),
                    record.log_time,
                    record.create_time,
                )

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
                meta = [
                    MetadataRecord(m.name, dict(m.metadata))
                    for m in SeekingReader(f).iter_metadata()
                ]
                offsets = []
                for index in summary.attachment_indexes:
                    f.seek(index.offset)
                    opcode, length = _RECORD.unpack(f.read(_RECORD.size))
                    if opcode != Opcode.ATTACHMENT or index.offset + length > self._size:
                        return None  # an index that points elsewhere: scan the file
                    offsets.append(index.offset)
        except Exception:  # a broken index: scan the file instead
            return None
        return meta, sorted(offsets)

    def _scan_side_records(self) -> SideRecords:
        meta: list[MetadataRecord] = []
        offsets: list[int] = []
        pos = len(MCAP_MAGIC)
        with self.path.open("rb") as f:
            f.seek(pos)
            while len(head := f.read(_RECORD.size)) == _RECORD.size:
                opcode, length = _RECORD.unpack(head)
                if length > self._size - pos - _RECORD.size or opcode == Opcode.DATA_END:
                    break
                at, pos = pos, pos + _RECORD.size + length
                if opcode not in (Opcode.METADATA, Opcode.ATTACHMENT):
                    f.seek(length, io.SEEK_CUR)
                    continue
                body = f.read(length)
                try:
                    if opcode == Opcode.METADATA:
                        m = McapMetadata.read(_stream(body))
                        meta.append(MetadataRecord(m.name, dict(m.metadata)))
                    else:
                        McapAttachment.read(_stream(body))  # read again when asked for
                        offsets.append(at)
                except Exception:  # messages() reports the damage
                    continue
        return meta, offsets


class _EscapedFields:
    """The fields of a schema or channel record whose strings need not be UTF-8: bytes that
    are not UTF-8 become ``\\xNN`` escapes (listed in ``escaped``), so the name can still be
    written to an output file and a person can see what it was."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._pos = 0
        self.escaped: list[str] = []

    def _take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self._body, self._pos)
        self._pos += struct.calcsize(fmt)
        return int(value)

    def u16(self) -> int:
        return self._take("<H")

    def text(self) -> str:
        length = self._take("<I")
        raw = self._body[self._pos : self._pos + length]
        if len(raw) != length:
            raise ValueError("a string runs past the end of its record")
        self._pos += length
        try:
            return raw.decode()
        except UnicodeDecodeError:
            self.escaped.append(text := raw.decode(errors="backslashreplace"))
            return text

    def text_map(self) -> dict[str, str]:
        length = self._take("<I")
        end = self._pos + length
        out = {}
        while self._pos < end:
            key = self.text()
            out[key] = self.text()
        return out

    def rest(self) -> bytes:
        length = self._take("<I")
        return self._body[self._pos : self._pos + length]


def _attachment_crc_at(body: bytes) -> int:
    """Where an attachment record's CRC lies in its body: after log time, create time, name,
    media type and data (a record may be padded past its CRC)."""
    at = 16
    for _ in range(2):  # name, media type: uint32 length-prefixed strings
        (length,) = struct.unpack_from("<I", body, at)
        at += 4 + length
    (length,) = struct.unpack_from("<Q", body, at)
    return at + 8 + length


def _stream(body: bytes) -> ReadDataStream:
    return ReadDataStream(io.BytesIO(body))
