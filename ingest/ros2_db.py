"""One ROS 2 sqlite3 ``.db3`` file read with Python's sqlite3, whole or in pieces.

A piece is a time slice of the ``messages`` table: about ``SLICE_BYTES`` of message data
or ``SLICE_MESSAGES`` messages, cut only between two different timestamps, so that a
slice is exactly the rows whose timestamp lies in its [start_ns, end_ns]. One pass over
``(timestamp, length(data), topic_id)`` finds the slices; it reads no message data.

The database is opened read-only and immutable, as rosbags opens it: nothing is written
beside the recording (a read-only connection to a WAL database would otherwise create its
``-shm`` and ``-wal`` files), and what is read is what rosbags reads.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from itertools import pairwise
from pathlib import Path

import zstandard

from drivecat.ingest.errors import IngestError
from drivecat.ingest.pieces import Piece, UnknownTally
from drivecat.ingest.ros2_defs import DEFINITION_ENCODINGS, known_definitions, ros2_schema
from drivecat.ingest.source_types import (
    Channel,
    NoSideRecords,
    ProblemKind,
    RawMessage,
    ReadProblem,
    Schema,
    raw_message,
)

SLICE_BYTES = 4 << 20  # a slice closes once it holds this much message data ...
SLICE_MESSAGES = 20_000  # ... or this many messages (at the next change of timestamp)

# rosbags orders by timestamp alone; SQLite then walks the timestamp index, whose equal
# keys lie in rowid order. The id makes that order explicit (and holds without the index).
_ORDER = "ORDER BY timestamp, id"
_SCAN_BATCH = 8192  # rows fetched at once by the pieces pass


class _Slice:
    """What the pieces pass learns of one slice: its Piece's fields, its bytes per topic,
    and the range of row ids it holds (which reads it by primary key as well, when the
    slices' id ranges do not interleave: a bag without a timestamp index)."""

    __slots__ = ("count", "counts", "end_ns", "first_id", "last_id", "size", "sizes", "start_ns")

    def __init__(self, rows: list[tuple[int, int, int, int]]) -> None:
        """From the slice's rows (timestamp, id, topic id, data length) in read order."""
        self.start_ns, self.end_ns = rows[0][0], rows[-1][0]
        ids = [r[1] for r in rows]
        self.first_id, self.last_id = min(ids), max(ids)
        self.count = len(rows)
        self.counts: Counter[int] = Counter(r[2] for r in rows)  # topic id -> messages
        self.sizes: Counter[int] = Counter()  # topic id -> bytes of message data
        for _, _, tid, size in rows:
            self.sizes[tid] += size
        self.size = sum(self.sizes.values())


def inflate_message(data: bytes) -> bytes:
    """A message of a bag compressed per message: one zstd frame (a streaming decompressor
    also takes frames that do not state their size)."""
    out: bytes = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return out


class Ros2DbSource(UnknownTally, NoSideRecords):
    """One ``.db3`` of a ROS 2 bag: its topics as channels (the same Channel objects as
    ``RosbagSource`` makes for it, shared through ``channel_pool`` across the files of a
    bag) and its messages in (timestamp, row id) order: the order rosbags yields them from
    a database with the timestamp index rosbag2 writes (without it, rosbags leaves the
    order of equal timestamps to SQLite's sorter; row id is the order they were recorded).
    ``slice_bytes`` and ``slice_messages`` set the size of a piece.

    ``decompress`` undoes per-message compression. ``publish_time_ns`` is the record time
    and ``sequence`` 0: the table stores neither. A database that cannot be opened, or
    lacks the ``topics`` and ``messages`` tables, is an IngestError naming the file; a
    database error while reading a slice skips the rest of that slice as a CORRUPT
    problem, and reading goes on with the next one.
    """

    UNKNOWN = "{count} messages on topic id {id}, which the topics table lacks, skipped"

    def __init__(
        self,
        path: Path,
        channel_pool: dict[Channel, Channel] | None = None,
        decompress: Callable[[bytes], bytes] | None = None,
        *,
        slice_bytes: int = SLICE_BYTES,
        slice_messages: int = SLICE_MESSAGES,
    ) -> None:
        self.path = Path(path)
        self._limits = (slice_bytes, slice_messages)
        self.problems: list[ReadProblem] = []
        self.out_of_order: Counter[str] = Counter()  # read in time order: stays empty
        self.index_disagrees: list[int] = []  # owned slices whose rows differ from the pass
        self.piece_problems: list[tuple[int, ReadProblem]] = []  # of owned slices
        self._pool = channel_pool if channel_pool is not None else {}
        self._decompress = decompress
        self._unknown: dict[int, list[int]] = {}  # topic id -> [messages, bytes]
        self._slices: list[_Slice] | None = None
        self._by_id = False  # whether each slice is read by its row-id range
        self._last_ns: int | None = None  # the last timestamp yielded
        self._db = self._connect()
        try:
            self._channels = self._read_channels()
        except sqlite3.Error as err:
            self._db.close()
            raise IngestError(f"{self.path}: not a readable ROS 2 bag: {_reason(err)}") from None

    def worker_state(self) -> tuple[bool, list[_Slice], bool]:
        """What a worker process needs to reopen it (``reopen``) without a pieces pass:
        whether messages are inflated, the slices, and how they are read."""
        slices = self._pass()
        return self._decompress is not None, slices, self._by_id

    @classmethod
    def reopen(
        cls, path: Path, pool: dict[Channel, Channel], state: tuple[bool, list[_Slice], bool]
    ) -> Ros2DbSource:
        inflated, slices, by_id = state
        source = cls(path, pool, inflate_message if inflated else None)
        source._slices, source._by_id = slices, by_id
        return source

    def _connect(self) -> sqlite3.Connection:
        uri = f"{self.path.resolve().as_uri()}?mode=ro&immutable=1"
        try:
            db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            tables = {
                name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.Error as err:
            raise IngestError(f"{self.path}: not a readable ROS 2 bag: {_reason(err)}") from None
        if not {"messages", "topics"} <= tables:
            db.close()
            raise IngestError(f"{self.path}: not a ROS 2 bag (no messages and topics tables)")
        return db

    def _read_channels(self) -> dict[int, Channel]:
        """Topic id -> Channel. Definitions are read where rosbags reads them: from schema
        version 4 on (the version a ``schema`` table states, else 2 or 1 by the columns of
        ``topics``)."""
        db = self._db
        definitions: list[tuple[str, str, str]] = []
        if db.execute("PRAGMA table_info(schema)").fetchall():
            row = db.execute("SELECT schema_version FROM schema").fetchone()
            if row is not None and row[0] >= 4:
                definitions = db.execute(
                    "SELECT topic_type, encoding, encoded_message_definition "
                    "FROM message_definitions ORDER BY id"
                ).fetchall()
        known = known_definitions(definitions)
        own: dict[str, tuple[str, str]] = {}
        for name, encoding, text in definitions:  # a type's first row is its own
            own.setdefault(name, (encoding, text) if encoding in DEFINITION_ENCODINGS else ("", ""))
        channels: dict[int, Channel] = {}
        rows = db.execute("SELECT id, name, type, serialization_format FROM topics ORDER BY id")
        for tid, topic, msgtype, fmt in rows.fetchall():
            encoding, text = own.get(msgtype, ("", ""))
            schema = ros2_schema(msgtype, encoding, text, known)
            if schema is None:
                detail = f"{topic}: the bag carries no definition of {msgtype}"
                self._note(ProblemKind.MISSING_DEFINITION, detail)
                schema = Schema(msgtype, "ros2msg", b"")
            channel = Channel(topic, str(fmt), schema)
            channels[tid] = self._pool.setdefault(channel, channel)
        return channels

    # -- what a PieceSource hands out --------------------------------------------------------
    @property
    def start_bound(self) -> int | None:
        """The smallest timestamp of its messages (None when it has none)."""
        slices = self._pass()
        return slices[0].start_ns if slices else None

    def declared_channels(self) -> list[Channel]:
        return list(self._channels.values())

    def channel_topics(self) -> dict[int, str]:
        return {tid: c.topic for tid, c in self._channels.items()}

    def pieces(self) -> list[Piece]:
        """The slices in time order; ``offset`` is the slice's number."""
        return [
            Piece(n, s.start_ns, s.end_ns, s.size, dict(s.counts))
            for n, s in enumerate(self._pass())
        ]

    def message_sizes(self) -> dict[int, float]:
        """Each topic id's mean message size in bytes, exact (from the pieces pass)."""
        total: Counter[int] = Counter()
        count: Counter[int] = Counter()
        for s in self._pass():
            total.update(s.sizes)
            count.update(s.counts)
        return {tid: total[tid] / n for tid, n in count.items()}

    def messages(self) -> Iterator[RawMessage]:
        """Every message in (timestamp, row id) order: every slice, read whole."""
        yield from self._whole_read(self.messages_in(self.pieces(), None, lambda p: True))

    def messages_in(
        self,
        pieces: Sequence[Piece],
        channels: frozenset[int] | None,
        owned: Callable[[Piece], bool],
    ) -> Iterator[RawMessage]:
        """The messages on topic ids ``channels`` (None: all) of ``pieces`` (a subsequence
        of ``pieces()``), in the order ``messages`` yields them. Slices do not overlap in
        time, so reading them one after the other is that order. What reading a slice
        finds wrong (database errors, messages on unknown topic ids) is kept only for the
        slices ``owned`` accepts; an owned slice whose rows are not those the pieces pass
        found (count and time range) is added to ``index_disagrees``."""
        slices = self._pass()
        for p in pieces:
            if owned(p):
                yield from self._owned_slice(p.offset, slices[p.offset], channels)
            else:
                mark = len(self.problems)
                yield from self._slice(slices[p.offset], channels, None)
                del self.problems[mark:]

    def _owned_slice(
        self, n: int, s: _Slice, channels: frozenset[int] | None
    ) -> Iterator[RawMessage]:
        before = len(self.problems)
        seen = _Seen()
        yield from self._slice(s, channels, seen)
        if (seen.count, seen.first, seen.last) != (s.count, s.start_ns, s.end_ns):
            self.index_disagrees.append(n)
        self.piece_problems.extend((n, p) for p in self.problems[before:])
        for tid, (count, size) in seen.unknown.items():
            entry = self._unknown.setdefault(tid, [0, 0])
            entry[0] += count
            entry[1] += size

    def _slice(
        self, s: _Slice, channels: frozenset[int] | None, seen: _Seen | None
    ) -> Iterator[RawMessage]:
        """One slice's rows on ``channels``. With ``seen`` (an owned slice), every row of
        the slice is tallied there, those on unknown topic ids with their bytes; the data
        of rows on other channels is not read (NULL in its place)."""
        where, args = self._where(s)
        data = "data"
        if channels is not None:
            ids = sorted(channels)
            wanted = f"topic_id IN ({','.join('?' * len(ids))})"
            if seen is None:
                where += f" AND {wanted}"
                args += ids
            else:
                known = sorted(self._channels)
                others = f"topic_id NOT IN ({','.join('?' * len(known))})"
                data = f"CASE WHEN {wanted} OR {others} THEN data END"
                args = [*ids, *known, *args]
        query = f"SELECT topic_id, timestamp, {data} FROM messages {where} {_ORDER}"
        yield from self._rows(s, query, args, channels, seen)

    def _rows(
        self,
        s: _Slice,
        query: str,
        args: list[int],
        channels: frozenset[int] | None,
        seen: _Seen | None,
    ) -> Iterator[RawMessage]:
        known = self._channels
        decompress = self._decompress
        read = 0
        t: int | None = None
        try:
            for tid, t, data in self._db.execute(query, args):
                read += 1
                if seen is not None:
                    seen.add(t)
                channel = known.get(tid)
                if channel is None:
                    if seen is not None:
                        seen.unknown_row(tid, len(data))
                    continue
                if channels is not None and tid not in channels:
                    continue
                if decompress is not None:
                    data = self._inflated(data, t, channel.topic)
                    if data is None:
                        continue
                self._last_ns = t
                yield raw_message((channel, t, t, 0, data))
        except sqlite3.Error as err:
            # kept for owned slices only, whose query returns every row of the slice
            lost = max(s.count - read, 0)
            self._note(
                ProblemKind.CORRUPT,
                f"{self.path.name}: the slice of {s.start_ns}..{s.end_ns} ns stopped after "
                f"{read} rows: {_reason(err)}; rows not read: {lost}",
                lost_messages=lost,
                at_log_time_ns=self._last_ns,
            )

    def _where(self, s: _Slice) -> tuple[str, list[int]]:
        if self._by_id:
            where = "WHERE timestamp BETWEEN ? AND ? AND id BETWEEN ? AND ?"
            return where, [s.start_ns, s.end_ns, s.first_id, s.last_id]
        return "WHERE timestamp BETWEEN ? AND ?", [s.start_ns, s.end_ns]

    def _inflated(self, data: bytes, t: int, topic: str) -> bytes | None:
        """A message-compressed message undone; None (and a CORRUPT problem) when it does
        not decompress."""
        assert self._decompress is not None
        try:
            return self._decompress(data)
        except Exception as err:  # the decompressor's own error types
            self._note(
                ProblemKind.CORRUPT,
                f"{self.path.name}: a message of {topic} at {t} ns does not decompress: "
                f"{_reason(err)}",
                lost_bytes=len(data),
                lost_messages=1,
                at_log_time_ns=self._last_ns,
                topic=topic,
            )
            return None

    # -- the pieces pass ---------------------------------------------------------------------
    def _pass(self) -> list[_Slice]:
        if self._slices is None:
            self._slices = self._scan()
            self._by_id = not self._has_time_index() and all(
                a.last_id < b.first_id for a, b in pairwise(self._slices)
            )
        return self._slices

    def _scan(self) -> list[_Slice]:
        """The slices, from one pass in read order over every row's timestamp, id, topic
        and data length (SQLite takes the length from the record header: no data read).
        A database error stops the pass: what it found stands, and a CORRUPT problem says
        where it stopped."""
        slices: list[_Slice] = []
        rows: list[tuple[int, int, int, int]] = []  # of the open slice
        size = 0
        t: int | None = None
        most_bytes, most_messages = self._limits
        try:
            cursor = self._db.execute(
                f"SELECT timestamp, id, topic_id, length(data) FROM messages {_ORDER}"
            )
            while batch := cursor.fetchmany(_SCAN_BATCH):
                for row in batch:
                    if row[0] != t and (len(rows) >= most_messages or size >= most_bytes):
                        slices.append(_Slice(rows))
                        rows, size = [], 0
                    rows.append(row)
                    size += row[3]
                    t = row[0]
        except sqlite3.Error as err:
            self._note(
                ProblemKind.CORRUPT,
                f"{self.path.name}: reading stopped: {_reason(err)}",
                at_log_time_ns=t,
            )
        if rows:
            slices.append(_Slice(rows))
        return slices

    def _has_time_index(self) -> bool:
        """Whether an index of ``messages`` leads with ``timestamp`` (rosbag2 writes one)."""
        for index in self._db.execute("PRAGMA index_list(messages)").fetchall():
            columns = self._db.execute(f"PRAGMA index_info({_quoted(index[1])})").fetchall()
            if columns and columns[0][2] == "timestamp":
                return True
        return False

    def close(self) -> None:
        self._db.close()

    def _note(self, kind: ProblemKind, detail: str, **kw: object) -> None:
        self.problems.append(ReadProblem(self.path, kind, detail, **kw))  # type: ignore[arg-type]


class _Seen:
    """What reading an owned slice found: its rows' count and time range, and the rows on
    topic ids the topics table lacks (id -> [messages, bytes])."""

    __slots__ = ("count", "first", "last", "unknown")

    def __init__(self) -> None:
        self.count = 0
        self.first: int | None = None
        self.last: int | None = None
        self.unknown: dict[int, list[int]] = {}

    def add(self, t: int) -> None:
        self.count += 1
        if self.first is None:
            self.first = t
        self.last = t  # rows come in time order

    def unknown_row(self, tid: int, size: int) -> None:
        entry = self.unknown.setdefault(tid, [0, 0])
        entry[0] += 1
        entry[1] += size


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _reason(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__
