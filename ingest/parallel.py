"""Output files written by worker processes, each taking a share of the drive's time windows.

The unit of work that is independent on disk is one output file: one topic, one window of
``chunk_ns``. For a drive of indexed MCAP files, the pass (``ingest.passes``) hands every
topic that is not video to ``--jobs`` workers: each takes a contiguous range of windows
(balanced by the input bytes of the chunks that overlap them), reads only the chunks the
chunk index says overlap that range, and writes those windows' files of every such topic
into the drive's folder. The pass still reads the whole drive in order, for what needs it
whole (statistics, tags, the frame and sensor index, video files, the catalog rows); it
only places those topics' messages (``Splitter.place_only``: file and ordinal) instead of
writing them, so the threads of the writers no longer share its interpreter.

The files are the ones one process writes, byte for byte:
- the order: ``McapSource.messages_in`` keeps, within each file, the order of the whole
  stream (log time, then input, then chunk, then record), and ``sources.merge`` the order
  across inputs;
- the windows: a topic that is not video fills the window of each message's log time (the
  stream is in log-time order: indexed files are read exactly in order);
- the compression: one process chooses it from a sample of the topic's first file; a
  worker reads that sample itself (``split.CompressionSample``, the same rule), from the
  chunks that hold the topic, up to where the decision is certain;
- names (``naming.topic_slug``), metadata records and profile are the pass's own.

Each worker is a fresh interpreter (``python -m drivecat.ingest.parallel``): the job comes
pickled on stdin, the files it wrote go back pickled on stdout, or one line saying why it
failed. Crash safety is the pass's: everything is written under the drive's temporary
folder, and a failure kills the workers.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from mcap.records import ChunkIndex

from drivecat.ingest.decode import UNDECODABLE, Decoders, Undecodable, stamp_ns
from drivecat.ingest.errors import IngestError
from drivecat.ingest.mcap_source import McapSource
from drivecat.ingest.source_types import Channel, RawMessage, ReadProblem, Schema
from drivecat.ingest.split import CompressionSample, Metadata, OutputFile, Splitter
from drivecat.ingest.time_order import merge

WORKER_COMMAND = [sys.executable, "-m", "drivecat.ingest.parallel"]
# A chunk spanning more windows than this (a clock outlier at log time 0 and the drive in
# one chunk) weighs on its first and last window only; the ranges still cover every window.
_MAX_SPAN = 10_000
_MALLOC_TUNING = {  # large, short-lived buffers (chunks, lidar messages) stay in the heap
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(128 << 20),
}


@dataclass(frozen=True)
class WindowJob:
    """What one worker does: read every message whose window number (``log_time //
    chunk_ns``) lies in ``[first, last)`` (None: unbounded); write the files of the
    ``topics`` there into ``drive_dir``, as a Splitter with ``chunk_ns`` and ``metadata``
    would, with the capture time of each message of the ``indexed`` ones (topic -> role);
    and spool, in order, to ``spool``, every other message whole and of those topics
    what the pass needs (see ``_Spooler``)."""

    paths: tuple[Path, ...]
    drive_dir: Path
    chunk_ns: int
    metadata: Metadata
    topics: frozenset[str]
    indexed: dict[str, str]
    first: int | None
    last: int | None
    spool: Path

    def holds(self, window: int) -> bool:
        return (self.first is None or window >= self.first) and (
            self.last is None or window < self.last
        )

    def overlaps(self, first: int, last: int) -> bool:
        """Whether windows ``first..last`` (inclusive) meet the job's range."""
        return (self.first is None or last >= self.first) and (
            self.last is None or first < self.last
        )


def window_ranges(
    sources: Sequence[McapSource], chunk_ns: int, jobs: int
) -> list[tuple[int | None, int | None]]:
    """At most ``jobs`` contiguous ranges of window numbers covering all of them, each
    about the same share of the chunks' uncompressed bytes (a chunk's bytes are spread
    evenly over the windows it overlaps)."""
    weight: dict[int, float] = {}
    for source in sources:
        for ci in source.chunk_order():
            first, last = ci.message_start_time // chunk_ns, ci.message_end_time // chunk_ns
            spanned = range(first, last + 1) if last - first < _MAX_SPAN else (first, last)
            share = ci.uncompressed_size / len(spanned)
            for w in spanned:
                weight[w] = weight.get(w, 0.0) + share
    total = sum(weight.values())
    bounds: list[int] = []
    seen = 0.0
    for w in sorted(weight):
        # a new range starts at the first window past the next share of the total
        if seen >= total * (len(bounds) + 1) / jobs and len(bounds) < jobs - 1:
            bounds.append(w)
        seen += weight[w]
    edges: list[int | None] = [None, *bounds, None]
    return list(zip(edges, edges[1:], strict=False))


class _Part:
    """The chunks of one input a worker reads, as a source ``merge`` can interleave."""

    def __init__(
        self,
        source: McapSource,
        chunks: list[ChunkIndex],
        keep: Callable[[RawMessage], bool],
        owned: Callable[[ChunkIndex], bool] = lambda ci: False,
    ) -> None:
        self.source, self.chunks, self.keep, self.owned = source, chunks, keep, owned

    @property
    def start_bound(self) -> int | None:
        return self.chunks[0].message_start_time if self.chunks else None

    def messages(self) -> Iterator[RawMessage]:
        if self.chunks:
            yield from self.source.messages_in(self.chunks, self.keep, self.owned)


def _compressions(
    sources: list[McapSource], chunk_ns: int, topics: set[str]
) -> dict[str, Any]:
    """The compression one process would choose for each of ``topics``: each topic's
    first messages, read from the chunks that hold the topics, until every one is decided."""
    samples = {topic: CompressionSample(chunk_ns) for topic in topics}
    decided: dict[str, Any] = {}
    parts = []
    for source in sources:
        ids = {i for i, t in source.channel_topics().items() if t in topics}
        chunks = [ci for ci in source.chunk_order() if ids & ci.message_index_offsets.keys()]
        parts.append(_Part(source, chunks, lambda m: m.channel.topic in samples))
    for message in merge(parts):
        topic = message.channel.topic
        sample = samples.get(topic)
        if sample is None:  # decided while its chunk was being read
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


UNDECODED = -1  # in a spooled capture time: the message did not decode (counted)
_BATCH = 2048  # spooled items per record, at most
_BATCH_BYTES = 4 << 20

# What a worker reports at the end: the files it wrote, per input path the read problems
# and recorded disorder of the chunks it owns and its undefined-channel tallies, and the
# messages of its indexed topics that did not decode.
Outcome = tuple[
    list[OutputFile],
    dict[str, list[ReadProblem]],
    dict[str, Counter[str]],
    dict[str, dict[int, list[int]]],
    Undecodable,
]


class _Spooler:
    """Records appended to the spool file, each a length and a pickle, flushed as written,
    so the pass can follow the file while it grows. A batch holds channel definitions
    ``(key, topic, encoding, schema, metadata)`` before the first message that uses them;
    whole messages ``(key, log, publish, sequence, data)``; and, for the worker's topics,
    ``(key, log, size, capture)`` (capture: ns, None, or UNDECODED)."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "wb")  # noqa: SIM115 - closed by close()
        self.keys: dict[int, int] = {}
        self.batch: list[Any] = []
        self.size = 0

    def key(self, channel: Channel) -> int:
        key = self.keys.get(id(channel))
        if key is None:
            key = self.keys[id(channel)] = len(self.keys)
            schema = channel.schema
            packed = (schema.name, schema.encoding, schema.data) if schema else None
            self.batch.append(
                (key, channel.topic, channel.message_encoding, packed, dict(channel.metadata))
            )
        return key

    def add(self, item: tuple[Any, ...], size: int) -> None:
        self.batch.append(item)
        self.size += size
        if len(self.batch) >= _BATCH or self.size >= _BATCH_BYTES:
            self.record(("batch", self.batch))
            self.batch, self.size = [], 0

    def record(self, value: Any) -> None:
        blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self.file.write(struct.pack("<Q", len(blob)) + blob)
        self.file.flush()

    def close(self, outcome: tuple[str, Any]) -> None:
        if self.batch:
            self.record(("batch", self.batch))
        self.record(outcome)
        self.file.close()


def write_windows(job: WindowJob, spool: _Spooler) -> Outcome:
    """Read the job's share of the inputs, write its files and spool the rest in order
    (what a worker runs)."""
    pool: dict[Channel, Channel] = {}  # as the pass opens them (see ingest.run)
    sources = [McapSource(p, pool) for p in job.paths]
    chunk_ns = job.chunk_ns
    parts = []
    present: set[str] = set()
    starts: dict[str, list[int]] = {}  # topic -> window of its first chunk, per input
    topics = job.topics
    for source in sources:
        chunks = [
            ci
            for ci in source.chunk_order()
            if job.overlaps(ci.message_start_time // chunk_ns, ci.message_end_time // chunk_ns)
        ]
        ids = {i: t for i, t in source.channel_topics().items() if t in topics}
        for ci in chunks:
            present.update(ids[i] for i in ci.message_index_offsets if i in ids)
        first_chunk: dict[str, int] = {}  # where each topic starts in this input
        for ci in source.chunk_order():
            for i in ci.message_index_offsets:
                if i in ids and ids[i] not in first_chunk:
                    first_chunk[ids[i]] = ci.message_start_time // chunk_ns
            if len(first_chunk) == len(set(ids.values())):
                break
        for topic, window in first_chunk.items():
            starts.setdefault(topic, []).append(window)
        parts.append(
            _Part(
                source,
                chunks,
                lambda m: job.holds(m.log_time_ns // chunk_ns),
                lambda ci: job.holds(ci.message_start_time // chunk_ns),
            )
        )
    splitter = Splitter(job.drive_dir, chunk_ns, job.metadata)
    decoders = Decoders()
    undecodable = Undecodable()
    try:
        # A topic whose first chunk in every input starts in this range has its first
        # file here: this Splitter samples it as one process would. Others are read ahead.
        ahead = {t for t in present if not all(job.holds(w) for w in starts.get(t, [-1]))}
        for topic, compression in _compressions(sources, chunk_ns, ahead).items():
            splitter.preset_compression(topic, compression)
        write, key, add, indexed = splitter.write, spool.key, spool.add, job.indexed
        for message in merge(parts):
            channel = message.channel
            if channel.topic not in topics:
                add((key(channel), message[1], message[2], message[3], message[4]), len(message[4]))
                continue
            write(message)
            capture: int | None = None
            if channel.topic in indexed:
                decoder = decoders.decoder(channel)
                if decoder is not None:
                    decoded = undecodable.decode(decoder, channel, message[1], message[4])
                    capture = UNDECODED if decoded is UNDECODABLE else stamp_ns(decoded)
            add((key(channel), message[1], len(message[4]), capture), 32)
        files = splitter.close()
    except BaseException:
        splitter.abort()
        raise
    problems = {str(s.path): s.problems for s in sources}
    recorded = {str(s.path): s.out_of_order for s in sources}
    unknown = {str(s.path): s.unknown for s in sources}
    return files, problems, recorded, unknown, undecodable


def _serve(stdin: BinaryIO) -> int:
    """A worker's main: the job pickled on stdin; its spool ends with ("ok", Outcome) or
    ("error", one line)."""
    try:
        job = pickle.load(stdin)
    except EOFError:  # started, then not needed
        return 0
    spool = _Spooler(job.spool)
    try:
        outcome: tuple[str, Any] = ("ok", write_windows(job, spool))
    except Exception as err:  # reported to the pass as one line
        outcome = ("error", f"{type(err).__name__}: {err}")
    spool.close(outcome)
    return 0


class Worker:
    """The pass's handle on one worker process: ``Worker(job)`` starts it, ``messages``
    follows its spool, ``outcome`` is what it reported, ``abort`` kills it (safe to call
    more than once)."""

    def __init__(self, job: WindowJob) -> None:
        env = dict(_MALLOC_TUNING, **os.environ)  # the user's own settings win
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self.job = job
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _wait)
        self._what = f"reading windows {job.first}..{job.last} in a worker process"
        self._outcome: Outcome | None = None
        self._last_stderr = ""
        try:
            self._proc = subprocess.Popen(
                WORKER_COMMAND,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                env=env,
            )
        except BaseException:
            self._stderr.close()
            raise
        assert self._proc.stdin is not None
        try:
            with self._proc.stdin as stdin:
                pickle.dump(job, stdin, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError:
            pass  # it died at once: ``messages`` says why

    def _records(self) -> Iterator[Any]:
        """The spool's records as they are written; IngestError when the worker exits
        before writing its last one."""
        path = self.job.spool
        while True:
            exited = self._proc.poll() is not None  # before the read: no race with its end
            if path.exists():
                break
            if exited:
                self._fail()
            time.sleep(0.002)
        with open(path, "rb") as f:
            while True:
                exited = self._proc.poll() is not None
                at = f.tell()
                head = f.read(8)
                size = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
                blob = f.read(size) if size >= 0 else b""
                if size < 0 or len(blob) < size:
                    if exited:
                        self._fail()
                    f.seek(at)  # not all written yet
                    time.sleep(0.002)
                    continue
                record = pickle.loads(blob)
                yield record
                if record[0] != "batch":
                    return

    def _fail(self) -> None:
        self._wait()
        raise IngestError(f"{self._what} failed ({self._last_words()})")

    def messages(self, pool: dict[Channel, Channel]) -> Iterator[RawMessage]:
        """Every message of its windows, in order; one of the worker's topics has a
        stand-in ``data`` (``Written``). Channels are taken from ``pool``."""
        channels: dict[int, Channel] = {}
        for kind, payload in self._records():
            if kind == "ok":
                self._outcome = payload
                break
            if kind == "error":
                self._wait()
                raise IngestError(f"{self._what} failed: {payload}")
            for item in payload:
                if len(item) == 4:
                    key, log, size, capture = item
                    yield RawMessage(channels[key], log, log, 0, Written(size, capture))
                elif isinstance(item[1], str):
                    key, topic, encoding, schema, meta = item
                    found = Channel(topic, encoding, Schema(*schema) if schema else None, meta)
                    channels[key] = pool.setdefault(found, found)
                else:
                    key, log, pub, seq, data = item
                    yield RawMessage(channels[key], log, pub, seq, data)
        self._wait()
        self.job.spool.unlink(missing_ok=True)

    def outcome(self) -> Outcome:
        if self._outcome is None:
            raise IngestError(f"{self._what} did not finish")
        return self._outcome

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


class Written(bytes):
    """The stand-in ``data`` of a message a worker wrote: empty, but its ``len`` is the
    message's size, which is all the pass reads of it (statistics), and it carries the
    capture time the worker decoded (ns, None, or UNDECODED)."""

    _size: int
    capture: int | None

    def __new__(cls, size: int, capture: int | None) -> Written:
        obj = super().__new__(cls)
        obj._size, obj.capture = size, capture
        return obj

    def __len__(self) -> int:
        return self._size


if __name__ == "__main__":
    code = _serve(sys.stdin.buffer)
    sys.stderr.flush()
    os._exit(code)  # every file is closed and the outcome flushed: skip the teardown
