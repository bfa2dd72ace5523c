"""Output files written by worker processes, each taking a share of the drive's output files.

The unit of work that is independent on disk is one output file: one topic in one window of
``chunk_ns``. For a drive whose inputs are read in pieces (``ingest.pieces``: indexed MCAP
files, ROS 1 bags with their index), the pass (``ingest.passes``) hands ``--jobs`` workers
every such unit of the topics it need not see itself (not video, side-car or tagged: the
*remote* topics), plus, per window, the unit of the pass's own topics in that window. Units
go to workers by their estimated cost (``plan``): each piece's messages per channel come
from the index, each channel's message size from a least-squares fit of the pieces' sizes
to those counts, and the cost of a unit is a time per message plus a time per byte. A
worker reads only the pieces that overlap its units, skipping the records of channels it
does not write before it builds a message, and:

- writes the files of its remote units into the drive's folder, as one process would;
- gathers their statistics (``TopicStats.part``, one per unit), the sensor index rows of
  its indexed topics with the capture time it decoded, and their undecodable messages;
- spools the pass's own messages of each window it holds, in order, to ``.spool-<window>``,
  which the pass reads window after window while the workers go on.

So the pass touches no message of a remote topic: it adds up what the workers report.

The files are the ones one process writes, byte for byte, and the statistics and rows the
same: messages of an indexed file come exactly in log-time order, so each unit's messages
are a contiguous stretch of its topic's stream; the compression of a topic is chosen from a
sample of its first file, which a worker that does not hold that file reads itself
(``split.CompressionSample``, the same rule); names, metadata records and profile are the
pass's own. Statistics appended in window order are those of the whole stream
(``TopicStats.then``). What one process decides from the whole stream, workers cannot: the
pass takes this road only for a drive that is one run of messages with no clock outliers or
gaps over ``drive_gap_seconds`` (``one_run``, from the index), and each piece's owner checks
that its messages span exactly the times the index says; if one does not, the pass is run
again in one process (``SingleProcessAgain``).

Each worker is a fresh interpreter (``python -m drivecat.ingest.parallel JOB``): its job is
pickled to ``.job-<k>``, whose path is its argument; its outcome goes to ``.outcome-<k>``,
or one line saying why it failed.
Crash safety is the pass's: everything is written under the drive's temporary folder, and
a failure kills the workers.
"""

from __future__ import annotations

import gc
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from drivecat.ingest.decode import DECODABLE, UNDECODABLE, Decoders, Undecodable, stamp_ns
from drivecat.ingest.errors import IngestError
from drivecat.ingest.pieces import Piece, PieceSource
from drivecat.ingest.source_types import Channel, RawMessage, ReadProblem, Schema
from drivecat.ingest.split import CompressionSample, Metadata, OutputFile, Splitter
from drivecat.ingest.stats import TopicStats
from drivecat.ingest.time_order import merge

WORKER_COMMAND = [sys.executable, "-m", "drivecat.ingest.parallel"]
# A piece spanning more windows than this weighs on its first and last window only.
_MAX_SPAN = 10_000
_WORKER_ENV = {
    # large, short-lived buffers (chunks, lidar messages) stay in the heap
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(128 << 20),
    # a worker does no linear algebra: without it, numpy's OpenBLAS starts a thread per
    # core that spins for a while (measured: 2.4% of all CPU of a 60 s lidar drive)
    "OPENBLAS_NUM_THREADS": "1",
}
# The cost model that shares units between workers (seconds; measured on the bench drives:
# a small message costs about its reading, routing and writing, a large one its bytes).
_PER_MESSAGE = 12e-6
_PER_BYTE = 4e-9
_PER_OWNED = 0.3e-6  # a message of a piece its owner sees, wanted or not
# a piece read: its bytes decompressed (per uncompressed byte, by compression; measured
# here: zstd and lz4 0.5 ns, bz2 17 ns)...
_READ_BYTE = {"": 0.2e-9, "zstd": 1e-9, "lz4": 1e-9, "bz2": 17e-9}
_READ_RECORD = 0.3e-6  # ... and its records walked
_CHEAP_READ = 0.1  # reading all pieces under this share of the work: whole topics
# One process already overlaps byte work (decompressing, CRCs, hashing, writing: outside
# the GIL, on its reader and writer threads) with its per-message Python: about 1.5 cores'
# worth (measured on the lidar drives). A worker costs about this much to start (an
# interpreter, its imports). Workers are used only where the plan's estimate with them is
# under this share of one process's: set from the bench drives, where one process won on
# a 60 s lidar drive (estimate 1.01) and workers on 180 s of lidar (0.85) and on 60 s of
# a bz2 bag (0.93).
_THREADS = 1.5
_WORKER_START = 0.3
_PAYS = 0.95
_WHOLE_TOPIC = 8  # ... each under 1/8 of a worker's share
# The cyclic collector, run every 700 new objects by default, walks the millions of small
# messages in flight again and again (none of which is cyclic): 10-15% of a worker's time.
GC_THRESHOLDS = (100_000, 50, 1000)
_PROGRESS_EVERY = 16384  # messages between two progress notes of a worker
_PROGRESS = struct.Struct("<QQ")  # log time, messages read


class SingleProcessAgain(Exception):
    """The workers found what only one process can handle (an index that misstates a
    piece's times): the pass must be run again with ``--jobs 1``."""


@dataclass(frozen=True)
class Input:
    """One input file as a worker reopens it: ``kind`` names its reader in ``READERS``;
    ``state`` is what the pass's own reader hands on (``worker_state``), if anything."""

    kind: str
    path: Path
    state: Any = None


def _open_mcap(path: Path, pool: dict[Channel, Channel], state: Any) -> PieceSource:
    from drivecat.ingest.mcap_source import McapSource

    return McapSource(path, pool)


def _open_ros1(path: Path, pool: dict[Channel, Channel], state: Any) -> PieceSource:
    from drivecat.ingest.ros1_bag import Ros1BagSource

    return Ros1BagSource(path, pool)


def _open_ros2db(path: Path, pool: dict[Channel, Channel], state: Any) -> PieceSource:
    from drivecat.ingest.ros2_db import Ros2DbSource

    return Ros2DbSource.reopen(path, pool, state)  # its slices: no second pieces pass


#: Readers a worker reopens its inputs with, by ``Input.kind``.
READERS: dict[str, Callable[[Path, dict[Channel, Channel], Any], PieceSource]] = {
    "mcap": _open_mcap,
    "ros1": _open_ros1,
    "ros2db": _open_ros2db,
}

_KINDS = {"McapSource": "mcap", "Ros1BagSource": "ros1", "Ros2DbSource": "ros2db"}


def input_kind(source: object) -> str | None:
    """The ``READERS`` kind of an open source that can be read in pieces; else None."""
    if not getattr(source, "indexed", True):
        return None  # an MCAP file without a usable index is streamed
    return _KINDS.get(type(source).__name__)


# -- the plan -------------------------------------------------------------------------------
Unit = tuple[str | None, int]  # (remote topic, or None for the pass's own topics; window)


@dataclass(frozen=True)
class WindowJob:
    """What one worker does (see the module docstring). ``units``: remote topic -> the
    windows whose file of it the worker writes; ``local``: the windows whose messages of
    the pass's own topics it spools; ``owned``: per input, the offsets of the pieces whose
    problems it reports; ``read``: per input, the pieces it reads; ``indexed``: remote
    topic -> role, for the sensor index."""

    index: int
    inputs: tuple[Input, ...]
    drive_dir: Path
    chunk_ns: int
    metadata: Metadata
    remote: frozenset[str]
    units: dict[str, frozenset[int]]
    local: tuple[int, ...]
    owned: tuple[frozenset[int], ...]
    read: tuple[tuple[Piece, ...], ...]
    indexed: dict[str, str]

    @property
    def outcome_path(self) -> Path:
        return self.drive_dir / f".outcome-{self.index}"

    @property
    def progress_path(self) -> Path:
        return self.drive_dir / f".progress-{self.index}"

    @property
    def job_path(self) -> Path:
        return self.drive_dir / f".job-{self.index}"


def spool_path(drive_dir: Path, window: int) -> Path:
    return drive_dir / f".spool-{window}"


def one_run(sources: Sequence[PieceSource], gap_ns: int) -> bool:
    """Whether, by the index, the drive is one run: no two messages in a row over
    ``gap_ns`` apart (no clock outliers, no body gaps). True when no piece with messages
    spans over ``gap_ns`` and the union of their spans has no hole over it: two messages
    over ``gap_ns`` apart with none between would otherwise need a piece that spans the
    hole (too long) or leave it uncovered. Exact when each piece spans exactly what the
    index says, which the workers check."""
    spans = sorted(
        (p.start_ns, p.end_ns) for s in sources for p in s.pieces() if sum(p.counts.values())
    )
    if not spans:
        return False
    reach = spans[0][1]
    for start, end in spans:
        if end - start > gap_ns or start - reach > gap_ns:
            return False
        reach = max(reach, end)
    return True


def _spanned(first: int, last: int) -> Sequence[int]:
    """The windows a piece over windows ``first..last`` weighs on: all of them, or for one
    spanning more than ``_MAX_SPAN`` (a clock outlier and the drive in one chunk), its
    first and last only."""
    return range(first, last + 1) if last - first < _MAX_SPAN else (first, last)


def _message_sizes(pieces: list[Piece]) -> dict[int, float]:
    """Each channel's typical message size: the least-squares fit of the pieces' sizes to
    their messages per channel, with no size below 0 (a channel whose fitted size is
    negative is set to 0 and the others fitted again, until none is; channels that always
    come together share alike). Negative sizes cut to 0 after one fit had put the 200-topic
    bag at 25 times its bytes; scipy's nnls would do, but importing scipy.optimize takes
    0.4 s before any worker can start."""
    ids = sorted({cid for p in pieces for cid in p.counts})
    if not ids:
        return {}
    col = {cid: k for k, cid in enumerate(ids)}
    counts = np.zeros((len(pieces), len(ids)))
    for row, p in enumerate(pieces):
        for cid, n in p.counts.items():
            counts[row, col[cid]] = n
    sizes = np.array([p.size for p in pieces], dtype=float)
    fit = np.zeros(len(ids))
    kept = np.arange(len(ids))
    while kept.size:
        found, *_ = np.linalg.lstsq(counts[:, kept], sizes, rcond=None)
        if (found >= 0).all():
            fit[kept] = found
            break
        kept = kept[found > 0]
    return {cid: float(fit[col[cid]]) for cid in ids}


def plan(
    sources: Sequence[PieceSource],
    chunk_ns: int,
    remote: frozenset[str],
    jobs: int,
) -> Plan:
    """Units shared among at most ``jobs`` workers (see the module docstring): per worker,
    its units and their cost; and the worker of each window's own unit.

    Largest first, each to the worker it leaves least loaded, counting the pieces it would
    read that it does not read already: so a worker keeps to the pieces it reads, and a
    piece is decompressed by as few workers as the balance allows."""
    cost: dict[Unit, float] = {}
    per_message: dict[Unit, float] = {}  # the part of its cost that holds the GIL
    needs: dict[Unit, set[tuple[int, int]]] = {}  # unit -> the pieces it reads
    read: dict[tuple[int, int], float] = {}  # (input, piece offset) -> cost of reading it
    for k, source in enumerate(sources):
        pieces = source.pieces()
        topics = source.channel_topics()
        sizes = _message_sizes(pieces)
        measured = getattr(source, "message_sizes", None)  # from the index, where it says
        if measured is not None:
            sizes.update(measured())
        for p in pieces:
            first, last = p.start_ns // chunk_ns, p.end_ns // chunk_ns
            spanned = _spanned(first, last)
            key = (k, p.offset)
            messages = sum(p.counts.values())
            per_byte = _READ_BYTE.get(p.compression, _READ_BYTE["bz2"])
            read[key] = p.size * per_byte + messages * _READ_RECORD
            # its owner (the worker of its first window's own unit) sees every message
            cost[(None, first)] = cost.get((None, first), 0.0) + messages * _PER_OWNED
            per_message[(None, first)] = per_message.get((None, first), 0.0) + messages * _PER_OWNED
            needs.setdefault((None, first), set()).add(key)
            for w in spanned:
                cost.setdefault((None, w), 0.0)
            for cid, n in p.counts.items():
                topic = topics.get(cid)
                owner = topic if topic in remote else None
                gil = n * _PER_MESSAGE / len(spanned)
                share = gil + n * sizes.get(cid, 0.0) * _PER_BYTE / len(spanned)
                for w in spanned:
                    cost[(owner, w)] = cost.get((owner, w), 0.0) + share
                    per_message[(owner, w)] = per_message.get((owner, w), 0.0) + gil
                    needs.setdefault((owner, w), set()).add(key)
    # Where reading is cheap next to writing (many small messages), a small topic goes
    # whole to one worker: each topic's files are open in one process only, and a worker
    # skips the other topics' records. Where reading weighs (large messages), units stay
    # by window, so that each chunk is decompressed by one worker.
    items: list[tuple[float, list[Unit]]] = []
    total = sum(cost.values())
    if sum(read.values()) < _CHEAP_READ * total:
        by_topic: dict[str, list[Unit]] = {}
        for unit in cost:
            if unit[0] is not None:
                by_topic.setdefault(unit[0], []).append(unit)
        for units in by_topic.values():
            whole = sum(cost[u] for u in units)
            if whole <= total / jobs / _WHOLE_TOPIC:
                items.append((whole, sorted(units, key=lambda u: u[1])))
            else:
                items.extend((cost[u], [u]) for u in units)
        items.extend((c, [u]) for u, c in cost.items() if u[0] is None)
    else:
        items = [(c, [u]) for u, c in cost.items()]
    items.sort(key=lambda item: (-item[0], item[1][0][1], item[1][0][0] or ""))
    loads = [0.0] * jobs
    held = [0.0] * jobs  # of each load, the per-message part
    reading: list[set[tuple[int, int]]] = [set() for _ in range(jobs)]
    shares: list[dict[Unit, float]] = [{} for _ in range(jobs)]
    for c, units in items:
        wanted = set().union(*(needs.get(u, set()) for u in units))
        added = [c + sum(read[key] for key in wanted - reading[j]) for j in range(jobs)]
        best = min(range(jobs), key=lambda j: (loads[j] + added[j], j))
        loads[best] += added[best]
        held[best] += sum(per_message.get(u, 0.0) for u in units)
        reading[best] |= wanted
        for unit in units:
            shares[best][unit] = cost[unit]
    local_owner = {w: k for k, share in enumerate(shares) for (t, w) in share if t is None}
    alone = _wall(sum(per_message.values()), sum(cost.values()) + sum(read.values()))
    cores = min(jobs, len(os.sched_getaffinity(0)))
    spread = (
        max(
            max(_wall(h, load) for h, load in zip(held, loads, strict=True)),
            sum(loads) / cores,  # pieces read by two workers are paid twice
        )
        + _WORKER_START
    )
    return Plan(shares, local_owner, alone, spread)


def _wall(held: float, work: float) -> float:
    """A process's time for ``work`` seconds of which ``held`` hold the GIL."""
    return max(held, work / _THREADS)


@dataclass(frozen=True)
class Plan:
    """What ``plan`` makes: per worker, its units and their cost; the worker of each
    window's own unit; and the estimated time of the pass's share in one process
    (``alone``) and with these workers (``spread``)."""

    shares: list[dict[Unit, float]]
    local_owner: dict[int, int]
    alone: float
    spread: float

    @property
    def pays(self) -> bool:
        return self.spread < _PAYS * self.alone


def jobs_for(
    sources: Sequence[PieceSource],
    kinds: Sequence[str],
    drive_dir: Path,
    chunk_ns: int,
    metadata: Metadata,
    remote: frozenset[str],
    indexed: dict[str, str],
    jobs: int,
    weigh: bool = False,
) -> tuple[list[WindowJob], list[tuple[int, int]]]:
    """The workers' jobs (those with any unit), and every window in order with the index
    of the job that spools its messages of the pass's own topics. With ``weigh`` (the
    default ``--jobs``), none at all where one process would be about as fast
    (``Plan.pays``); a number of jobs the user gave is used wherever the drive splits."""
    planned = plan(sources, chunk_ns, remote, jobs)
    if weigh and not planned.pays:
        return [], []
    shares, local_owner = planned.shares, planned.local_owner
    windows = sorted(local_owner)
    inputs = tuple(
        Input(kind, Path(s.path), getattr(s, "worker_state", lambda: None)())
        for kind, s in zip(kinds, sources, strict=True)
    )
    made: list[WindowJob] = []
    index_of: dict[int, int] = {}
    for k, share in enumerate(shares):
        if not share:
            continue
        units: dict[str, set[int]] = {}
        local: set[int] = set()
        for topic, w in share:
            if topic is None:
                local.add(w)
            else:
                units.setdefault(topic, set()).add(w)
        owned, read = [], []
        for source in sources:
            topics = source.channel_topics()
            mine: set[int] = set()
            chosen: list[Piece] = []
            for p in source.pieces():
                first, last = p.start_ns // chunk_ns, p.end_ns // chunk_ns
                if local_owner.get(first) == k:
                    mine.add(p.offset)
                if p.offset in mine or _touches(p, topics, units, local, remote, first, last):
                    chosen.append(p)
            owned.append(frozenset(mine))
            read.append(tuple(chosen))
        index_of[k] = len(made)
        made.append(
            WindowJob(
                index=len(made),
                inputs=inputs,
                drive_dir=drive_dir,
                chunk_ns=chunk_ns,
                metadata=metadata,
                remote=remote,
                units={t: frozenset(ws) for t, ws in units.items()},
                local=tuple(sorted(local)),
                owned=tuple(owned),
                read=tuple(read),
                indexed={t: r for t, r in indexed.items() if t in units},
            )
        )
    return made, [(w, index_of[local_owner[w]]) for w in windows]


def _touches(
    p: Piece,
    topics: dict[int, str],
    units: dict[str, set[int]],
    local: set[int],
    remote: frozenset[str],
    first: int,
    last: int,
) -> bool:
    """Whether piece ``p`` (windows ``first..last``) holds a message of one of the units."""
    for cid in p.counts:
        topic = topics.get(cid)
        wins = units.get(topic) if topic is not None and topic in remote else local
        if wins and _meets(wins, first, last):
            return True
    return False


def _meets(windows: set[int], first: int, last: int) -> bool:
    """Whether any of ``windows`` lies in ``first..last`` (whichever is shorter is walked:
    a piece may span more windows than a worker holds)."""
    if last - first < len(windows):
        return any(w in windows for w in range(first, last + 1))
    return any(first <= w <= last for w in windows)


# -- the worker -----------------------------------------------------------------------------
class _Part:
    """The pieces of one input a worker reads, as a source ``merge`` can interleave."""

    def __init__(
        self,
        source: PieceSource,
        pieces: Sequence[Piece],
        channels: frozenset[int] | None,
        owned: Callable[[Piece], bool],
    ) -> None:
        self.source, self.pieces, self.channels, self.owned = source, pieces, channels, owned

    @property
    def start_bound(self) -> int | None:
        return self.pieces[0].start_ns if self.pieces else None

    def messages(self) -> Iterator[RawMessage]:
        if self.pieces:
            yield from self.source.messages_in(self.pieces, self.channels, self.owned)


def _compressions(sources: list[PieceSource], chunk_ns: int, topics: set[str]) -> dict[str, Any]:
    """The compression one process would choose for each of ``topics``: each topic's
    first messages, read from the pieces that hold the topics, until every one is decided."""
    samples = {topic: CompressionSample(chunk_ns) for topic in topics}
    decided: dict[str, Any] = {}
    parts = []
    for source in sources:
        ids = frozenset(i for i, t in source.channel_topics().items() if t in topics)
        pieces = [p for p in source.pieces() if ids & p.counts.keys()]
        parts.append(_Part(source, pieces, ids, lambda p: False))
    for message in merge(parts):
        topic = message.channel.topic
        sample = samples.get(topic)
        if sample is None:  # decided while its piece was being read
            continue
        choice = sample.add(message)
        if choice is not None:
            decided[topic] = choice
            del samples[topic]
            if not samples:
                break
    for topic, sample in samples.items():
        choice = sample.finish()
        if choice is not None:
            decided[topic] = choice
    return decided


_BATCH = 2048  # spooled messages per record, at most
_BATCH_BYTES = 4 << 20

Packed = tuple[str, str, tuple[str, str, bytes] | None, dict[str, str]]


def pack(channel: Channel) -> Packed:
    """A channel as plain values (a Channel's hash is its process's own)."""
    schema = channel.schema
    packed = (schema.name, schema.encoding, schema.data) if schema else None
    return channel.topic, channel.message_encoding, packed, dict(channel.metadata)


def unpack(packed: Packed, pool: dict[Channel, Channel]) -> Channel:
    topic, encoding, schema, meta = packed
    found = Channel(topic, encoding, Schema(*schema) if schema else None, meta)
    return pool.setdefault(found, found)


class _Spooler:
    """Records appended to a window's spool file, each a length and a pickle, flushed as
    written, so the pass can follow the file while it grows. A batch holds channel
    definitions ``(key, packed channel)`` before the first message that uses them, and
    messages ``(key, log, publish, sequence, data)``; ``("end", n)`` closes the file."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "wb")  # noqa: SIM115 - closed by close()
        self.keys: dict[int, int] = {}
        self.batch: list[Any] = []
        self.size = 0
        self.count = 0

    def add(self, message: RawMessage) -> None:
        channel = message[0]
        key = self.keys.get(id(channel))
        if key is None:
            key = self.keys[id(channel)] = len(self.keys)
            self.batch.append((key, pack(channel)))
        self.batch.append((key, message[1], message[2], message[3], message[4]))
        self.size += len(message[4]) + 32
        self.count += 1
        if len(self.batch) >= _BATCH or self.size >= _BATCH_BYTES:
            self._record(("batch", self.batch))
            self.batch, self.size = [], 0

    def _record(self, value: Any) -> None:
        blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self.file.write(struct.pack("<Q", len(blob)) + blob)
        self.file.flush()

    def close(self) -> None:
        if self.batch:
            self._record(("batch", self.batch))
        self._record(("end", self.count))
        self.file.close()


@dataclass
class Outcome:
    """What a worker reports. ``stats``: per (topic, window) unit, its ``TopicStats.part``;
    ``firsts``: per topic, its first message's log time and channel; ``rows``: sensor
    index rows ``(topic, role, log, capture, file, idx)``; per input path, the read
    problems of its owned pieces as ``(piece offset, problem)``, recorded disorder,
    undefined-channel tallies, and the owned pieces whose times the index misstates."""

    files: list[OutputFile] = field(default_factory=list)
    stats: dict[tuple[str, int], TopicStats] = field(default_factory=dict)
    firsts: dict[str, tuple[int, Packed]] = field(default_factory=dict)
    unknown_encoding: Counter[str] = field(default_factory=Counter)
    rows: list[tuple[str, str, int, int | None, str, int]] = field(default_factory=list)
    undecodable: Undecodable = field(default_factory=Undecodable)
    problems: dict[str, list[tuple[int, ReadProblem]]] = field(default_factory=dict)
    recorded: dict[str, Counter[str]] = field(default_factory=dict)
    unknown: dict[str, dict[int, list[int]]] = field(default_factory=dict)
    disagrees: dict[str, list[int]] = field(default_factory=dict)
    count: int = 0  # messages of remote topics written


def write_units(job: WindowJob) -> Outcome:
    """Read the job's pieces, write its units' files, spool the pass's messages of its
    windows, and gather what the pass needs (what a worker runs)."""
    pool: dict[Channel, Channel] = {}
    sources = [READERS[i.kind](i.path, pool, i.state) for i in job.inputs]
    chunk_ns = job.chunk_ns
    remote, units, indexed = job.remote, job.units, job.indexed
    parts = []
    present: set[str] = set()
    for source, read, owned in zip(sources, job.read, job.owned, strict=True):
        topics = source.channel_topics()
        ids = frozenset(
            cid for cid, t in topics.items() if (t in units) or (job.local and t not in remote)
        )
        present.update(units.keys() & {topics.get(cid) for p in read for cid in p.counts})
        parts.append(_Part(source, read, ids, lambda p, owned=owned: p.offset in owned))  # type: ignore[misc]
    outcome = Outcome()
    splitter = Splitter(job.drive_dir, chunk_ns, job.metadata)
    decoders = Decoders()
    undecodable = outcome.undecodable
    local = set(job.local)
    spools: dict[int, _Spooler] = {}
    open_window = -1  # the windows before it have all their messages spooled
    try:
        firsts_at = _first_windows(sources, chunk_ns)
        ahead = {t for t in present if min(units[t]) > firsts_at.get(t, 0)}
        for topic, compression in _compressions(sources, chunk_ns, ahead).items():
            splitter.preset_compression(topic, compression)
        write, stats, firsts, rows = splitter.write, outcome.stats, outcome.firsts, outcome.rows
        # per unit, its messages' log times and bytes until its window is past (then its
        # statistics: TopicStats.part_of); per topic, the unit being filled
        gathered: dict[tuple[str, int], list[Any]] = {}
        current: dict[str, tuple[int, list[Any]]] = {}
        progress = os.open(job.progress_path, os.O_WRONLY | os.O_CREAT, 0o644)
        n = count = 0
        # per channel: (windows it writes, None for the pass's own; role; decodable)
        plans: dict[int, tuple[frozenset[int] | None, str | None, bool]] = {}
        for message in merge(parts):
            channel, t = message[0], message[1]
            w = t // chunk_ns
            n += 1
            if n % _PROGRESS_EVERY == 0:
                os.pwrite(progress, _PROGRESS.pack(t, n), 0)
            if w > open_window:
                for done in [v for v in spools if v < w]:
                    spools.pop(done).close()
                for key in [k for k in gathered if k[1] < w]:  # their windows are past
                    times, size = gathered.pop(key)
                    stats[key] = TopicStats.part_of(key[0], times, size)
                open_window = w
            plan = plans.get(id(channel))
            if plan is None:
                topic = channel.topic
                plan = plans[id(channel)] = (
                    (units.get(topic, frozenset()), indexed.get(topic),
                     channel.message_encoding in DECODABLE)
                    if topic in remote
                    else (None, None, False)
                )  # fmt: skip
            wins = plan[0]
            if wins is None:  # the pass's own topic
                spool = spools.get(w)
                if spool is None and w in local:
                    spool = spools[w] = _Spooler(spool_path(job.drive_dir, w))
                    local.discard(w)  # opened once: what is left has no message of them
                if spool is not None:
                    spool.add(message)
                continue
            if w not in wins:
                continue
            position = write(message)
            topic = channel.topic
            entry = current.get(topic)
            if entry is None or entry[0] != w:
                entry = current[topic] = (w, gathered.setdefault((topic, w), [array("Q"), 0]))
                if topic not in firsts:
                    firsts[topic] = (t, pack(channel))
            unit = entry[1]
            unit[0].append(t)
            unit[1] += len(message[4])
            count += 1
            if not plan[2]:
                outcome.unknown_encoding[topic] += 1
                continue
            role = plan[1]
            if role is not None:
                capture: int | None = None
                decoder = decoders.decoder(channel)
                if decoder is not None:
                    decoded = undecodable.decode(decoder, channel, t, message[4])
                    if decoded is UNDECODABLE:
                        continue  # stored and counted; not indexed
                    capture = stamp_ns(decoded)
                rows.append((topic, role, t, capture, position.file, position.message_idx))
        outcome.count = count
        for key, (times, size) in gathered.items():
            stats[key] = TopicStats.part_of(key[0], times, size)
        os.close(progress)
        outcome.files = splitter.close()
    except BaseException:
        splitter.abort()
        for spool in spools.values():
            spool.file.close()  # no end record: the pass waits for the outcome's error
        raise
    for spool in spools.values():
        spool.close()
    for w in local:  # windows it holds with none of the pass's messages
        _Spooler(spool_path(job.drive_dir, w)).close()
    for source in sources:
        path = str(source.path)
        outcome.problems[path] = list(source.piece_problems)
        outcome.recorded[path] = source.out_of_order
        outcome.unknown[path] = source.unknown
        outcome.disagrees[path] = list(source.index_disagrees)
    return outcome


def _first_windows(sources: list[PieceSource], chunk_ns: int) -> dict[str, int]:
    """Per topic, the window of the first piece that holds it, over every input."""
    first: dict[str, int] = {}
    for source in sources:
        topics = source.channel_topics()
        for p in source.pieces():
            w = p.start_ns // chunk_ns
            for cid in p.counts:
                topic = topics.get(cid)
                if topic is not None and w < first.get(topic, w + 1):
                    first[topic] = w
    return first


def _serve(argv: list[str]) -> int:
    """A worker's main: ``argv`` is the path of its job's pickle (see ``Worker``); its
    outcome file holds ("ok", Outcome) or ("error", one line)."""
    if len(argv) != 1:
        print("usage: python -m drivecat.ingest.parallel JOB (a job pickled by the pass)",
              file=sys.stderr)  # fmt: skip
        return 2
    with open(argv[0], "rb") as f:
        job = pickle.load(f)
    os.unlink(argv[0])
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        result: tuple[str, Any] = ("ok", write_units(job))
    except Exception as err:  # reported to the pass as one line
        result = ("error", f"{type(err).__name__}: {err}")
    partial = job.outcome_path.with_suffix(".partial")
    with open(partial, "wb") as f:
        pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(partial, job.outcome_path)
    return 0


class Worker:
    """The pass's handle on one worker process: ``Worker(job)`` starts it, ``messages(w)``
    follows its spool of window ``w``, ``outcome`` waits for what it reported, ``abort``
    kills it (safe to call more than once)."""

    def __init__(self, job: WindowJob) -> None:
        self.job = job
        self._what = f"writing {sum(map(len, job.units.values()))} output files in a worker process"
        self._outcome: Outcome | None = None
        self._last_stderr = ""
        env = dict(_WORKER_ENV, **os.environ)  # the user's own settings win
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        try:
            with open(job.job_path, "wb") as f:
                pickle.dump(job, f, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:
            job.job_path.unlink(missing_ok=True)
            raise
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _wait)
        try:
            self._proc = subprocess.Popen(
                [*WORKER_COMMAND, os.fsdecode(job.job_path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                env=env,
            )
        except BaseException:
            self._stderr.close()
            job.job_path.unlink(missing_ok=True)
            raise

    def progress(self) -> tuple[int, int]:
        """(log time, messages read) as the worker last noted them; (0, 0) before."""
        try:
            with open(self.job.progress_path, "rb") as f:
                head = f.read(_PROGRESS.size)
        except OSError:
            return 0, 0
        return _PROGRESS.unpack(head) if len(head) == _PROGRESS.size else (0, 0)

    def _check(self) -> None:
        """Raise if the worker has ended without its outcome, or with an error."""
        if self._proc.poll() is None:
            return
        if self.job.outcome_path.exists():
            kind, payload = self._read_outcome()
            if kind == "error":
                raise IngestError(f"{self._what} failed: {payload}")
            return
        self._fail()

    def _read_outcome(self) -> tuple[str, Any]:
        with open(self.job.outcome_path, "rb") as f:
            found: tuple[str, Any] = pickle.load(f)
        return found

    def messages(
        self, window: int, pool: dict[Channel, Channel], waiting: Callable[[], None]
    ) -> Iterator[RawMessage]:
        """The pass's messages of ``window``, in order, as the worker spools them; calls
        ``waiting`` now and then while it waits."""
        path = spool_path(self.job.drive_dir, window)
        channels: dict[int, Channel] = {}
        while not path.exists():
            self._check()
            waiting()
            time.sleep(0.005)
        with open(path, "rb") as f:
            while True:
                at = f.tell()
                head = f.read(8)
                size = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
                blob = f.read(size) if size >= 0 else b""
                if size < 0 or len(blob) < size:
                    self._check()
                    f.seek(at)  # not all written yet
                    waiting()
                    time.sleep(0.002)
                    continue
                kind, payload = pickle.loads(blob)
                if kind == "end":
                    break
                for item in payload:
                    if len(item) == 2:
                        channels[item[0]] = unpack(item[1], pool)
                    else:
                        key, log, pub, seq, data = item
                        yield RawMessage(channels[key], log, pub, seq, data)
        path.unlink(missing_ok=True)

    def outcome(self, waiting: Callable[[], None]) -> Outcome:
        """Wait for the worker's end; what it reported (IngestError when it failed)."""
        if self._outcome is None:
            while self._proc.poll() is None:
                waiting()
                time.sleep(0.005)
            self._check()
            kind, payload = self._read_outcome()
            self._wait()
            self._outcome = payload
            self._remove_scratch()
        return self._outcome

    def _remove_scratch(self) -> None:
        """Remove the worker's own files from the drive's folder: its job, progress note,
        outcome and spools (those the pass read are gone already)."""
        job = self.job
        scratch = [job.job_path, job.progress_path, job.outcome_path]
        scratch += [job.outcome_path.with_suffix(".partial")]
        scratch += [spool_path(job.drive_dir, w) for w in job.local]
        for path in scratch:
            path.unlink(missing_ok=True)

    def _fail(self) -> None:
        self._wait()
        raise IngestError(f"{self._what} failed ({self._last_words()})")

    def _wait(self) -> None:
        self._proc.wait()
        if not self._stderr.closed:
            self._stderr.seek(0)
            self._last_stderr = self._stderr.read().decode(errors="replace").strip()
            self._stderr.close()

    def _last_words(self) -> str:
        lines = self._last_stderr.splitlines()
        return f"exit code {self._proc.returncode}: {lines[-1] if lines else 'no output'}"

    def abort(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._wait()
        self._remove_scratch()  # the pass may go on in one process in the same folder


if __name__ == "__main__":
    # through the module's own name, so that what it pickles names drivecat.ingest.parallel
    from drivecat.ingest.parallel import _serve as serve

    code = serve(sys.argv[1:])
    sys.stderr.flush()
    os._exit(code)  # every file is closed and the outcome written: skip the teardown
