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
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from mcap.records import ChunkIndex

from drivecat.ingest.errors import IngestError
from drivecat.ingest.mcap_source import McapSource
from drivecat.ingest.source_types import Channel, RawMessage
from drivecat.ingest.split import CompressionSample, Metadata, OutputFile, Splitter
from drivecat.ingest.time_order import merge

WORKER_COMMAND = [sys.executable, "-m", "drivecat.ingest.parallel"]
# A chunk spanning more windows than this (a clock outlier at log time 0 and the drive in
# one chunk) weighs on its first and last window only; the ranges still cover every window.
_MAX_SPAN = 10_000
_MALLOC_TUNING = {  # as ingest.offload: large short-lived buffers stay in the heap
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(128 << 20),
}


@dataclass(frozen=True)
class WindowJob:
    """What one worker writes: the files of the ``topics`` whose
    window number (``log_time // chunk_ns``) lies in ``[first, last)`` (None: unbounded),
    into ``drive_dir``, as a Splitter with ``chunk_ns`` and ``metadata`` would."""

    paths: tuple[Path, ...]
    drive_dir: Path
    chunk_ns: int
    metadata: Metadata
    topics: frozenset[str]
    first: int | None
    last: int | None

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
        self, source: McapSource, chunks: list[ChunkIndex], keep: Callable[[RawMessage], bool]
    ) -> None:
        self.source, self.chunks, self.keep = source, chunks, keep

    @property
    def start_bound(self) -> int | None:
        return self.chunks[0].message_start_time if self.chunks else None

    def messages(self) -> Iterator[RawMessage]:
        if self.chunks:
            yield from self.source.messages_in(self.chunks, self.keep)


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


def write_windows(job: WindowJob) -> list[OutputFile]:
    """Read the job's share of the inputs and write its files (what a worker runs)."""
    pool: dict[Channel, Channel] = {}  # as the pass opens them (see ingest.run)
    sources = [McapSource(p, pool) for p in job.paths]
    chunk_ns = job.chunk_ns
    parts = []
    present: set[str] = set()
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
        parts.append(
            _Part(
                source,
                chunks,
                lambda m: m.channel.topic in topics and job.holds(m.log_time_ns // chunk_ns),
            )
        )
    splitter = Splitter(job.drive_dir, chunk_ns, job.metadata)
    try:
        for topic, compression in _compressions(sources, chunk_ns, present).items():
            splitter.preset_compression(topic, compression)
        write = splitter.write
        for message in merge(parts):
            write(message)
        return splitter.close()
    except BaseException:
        splitter.abort()
        raise


def _serve(stdin: BinaryIO, stdout: BinaryIO) -> int:
    """A worker's main: the job pickled on stdin; ("ok", files) or ("error", line) out."""
    try:
        job = pickle.load(stdin)
    except EOFError:  # started, then not needed
        return 0
    try:
        outcome: tuple[str, Any] = ("ok", write_windows(job))
    except Exception as err:  # reported to the pass as one line
        outcome = ("error", f"{type(err).__name__}: {err}")
    try:
        pickle.dump(outcome, stdout, protocol=pickle.HIGHEST_PROTOCOL)
        stdout.flush()
    except BrokenPipeError:  # the pass stopped listening: it is aborting
        return 1
    return 0


class Worker:
    """The pass's handle on one worker process: ``Worker(job)`` starts it, ``result`` waits
    for its files, ``abort`` kills it (safe to call more than once)."""

    def __init__(self, job: WindowJob) -> None:
        env = dict(_MALLOC_TUNING, **os.environ)  # the user's own settings win
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _wait)
        window = f"windows {job.first}..{job.last}"
        self._what = f"writing {window} in a worker process"
        try:
            self._proc = subprocess.Popen(
                WORKER_COMMAND,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
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
            pass  # it died at once: ``result`` says why

    def result(self) -> list[OutputFile]:
        assert self._proc.stdout is not None
        try:
            kind, payload = pickle.load(self._proc.stdout)
        except EOFError:  # killed, out of memory, a bad install
            self._wait()
            raise IngestError(f"{self._what} failed ({self._last_words()})") from None
        self._wait()
        if kind != "ok":
            raise IngestError(f"{self._what} failed: {payload}")
        files: list[OutputFile] = payload
        return files

    def _wait(self) -> None:
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc.wait()
        if not self._stderr.closed:
            self._stderr.seek(0)
            self._last_stderr = self._stderr.read().decode(errors="replace").strip()
            self._stderr.close()

    def _last_words(self) -> str:
        lines = getattr(self, "_last_stderr", "").splitlines()
        return f"exit code {self._proc.returncode}: {lines[-1] if lines else 'no output'}"

    def abort(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._wait()


if __name__ == "__main__":
    code = _serve(sys.stdin.buffer, sys.stdout.buffer)
    sys.stderr.flush()
    os._exit(code)  # every file is closed and the outcome flushed: skip the teardown
