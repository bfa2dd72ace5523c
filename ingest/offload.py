"""A second process that reads the drive and splits the topics the pass need not see.

Two kinds of topic cost the pass most: many small messages (a 200 Hz IMU is most of a
drive's messages: Python's per-message cost) and a few huge ones (lidar is most of its
bytes: copies, hashing). Threads cannot share that work (the GIL). So for large drives of
indexed MCAP files, a child process reads the files (the same code, the same order), splits
those topics with its own :class:`~ingest.split.Splitter` into the same drive folder, and
pipes every other message to the pass, which never decompresses a chunk itself. At the end
the child sends what the pass needs to finish: the files it wrote, each of its topics'
statistics, sensor index rows for its lidar and image topics, and what it found wrong while
reading (read problems and out-of-order counts per file).

The files are the ones the pass would have written itself (same windows, names, bytes and
sha256). A topic qualifies when nothing else in the pass needs its messages: no tagger, no
video frame index, no side-car. If a child cannot be started, or inside a Dask worker
(whose cores are already counted), the pass reads and writes everything itself.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from drivecat.ingest.decode import UNDECODABLE, Decoders, Undecodable, stamp_ns
from drivecat.ingest.errors import IngestError
from drivecat.ingest.mcap_source import McapSource
from drivecat.ingest.source_types import Channel, RawMessage, ReadProblem, Schema, raw_message
from drivecat.ingest.sources import merge
from drivecat.ingest.split import Metadata, OutputFile, Position, Splitter
from drivecat.ingest.stats import TopicStats
from drivecat.ingest.threads import prefetch

SensorRow = dict[str, Any]
Result = tuple[
    list[OutputFile],  # the files written
    dict[str, TopicStats],  # per split topic
    Counter[str],  # per topic: messages recorded after a later one (all topics)
    list[SensorRow],
    dict[str, list[ReadProblem]],  # per input path
    Undecodable,  # split topics' messages that did not decode (no sensor row)
]
CHILD_COMMAND = [sys.executable, "-m", "drivecat.ingest.offload"]
# The child's buffers are large and short-lived (a decompressed chunk, a lidar message, an
# output chunk: 0.5 to 4 MB). glibc would hand many of them back to the kernel when freed
# and fault the pages in again on the next one: tens of thousands of page faults, about 0.2 s
# of system time per 800 MB drive. Keeping them in the heap stops that (glibc only; other
# allocators ignore these variables).
_MALLOC_TUNING = {
    "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
    "MALLOC_TRIM_THRESHOLD_": str(128 << 20),
}
_BATCH = 512  # forwarded messages per batch, at most
_BATCH_BYTES = 4 << 20


@dataclass(frozen=True)
class Job:
    """What the child does: read ``paths``; split the ``slugs`` topics (topic -> folder)
    into ``drive_dir`` as a Splitter with ``chunk_ns`` and ``metadata`` would; give the
    ``indexed`` ones (topic -> role) sensor index rows."""

    paths: list[Path]
    drive_dir: Path
    chunk_ns: int
    metadata: Metadata  # the records of every output file, in order
    slugs: dict[str, str]
    indexed: dict[str, str]


def split_topics(job: Job, forward: Callable[[list[Any]], None]) -> Result:
    """Read ``job.paths`` in time order; split the job's topics and hand every other
    message to ``forward``, in batches (what the child runs).

    A batch holds channel definitions ``(key, topic, encoding, schema, metadata)``, each
    before the first message that uses it, and messages ``(key, log, publish, sequence,
    data)``. Sensor index rows say where each message went, with its capture time.
    """
    slugs, indexed = job.slugs, job.indexed
    splitter = Splitter(job.drive_dir, job.chunk_ns, job.metadata)
    try:
        for topic, slug in slugs.items():
            splitter.preset_slug(topic, slug)
        pool: dict[Channel, Channel] = {}  # as the pass opens them (see ingest.run)
        sources = [McapSource(p, pool) for p in job.paths]
        stats = {topic: TopicStats(topic) for topic in slugs}
        rows: list[SensorRow] = []
        decoders = Decoders()
        undecodable = Undecodable()
        keys: dict[int, int] = {}
        batch: list[Any] = []
        batch_bytes = 0
        write = splitter.write
        for message in prefetch(merge(sources)):
            channel = message.channel
            topic = channel.topic
            if topic in slugs:
                position = write(message)
                stats[topic].add(message.log_time_ns, len(message.data))
                role = indexed.get(topic)
                if role is not None:
                    decoder = decoders.decoder(channel)
                    capture = None
                    if decoder is not None:
                        decoded = undecodable.decode(
                            decoder, channel, message.log_time_ns, message.data
                        )
                        if decoded is UNDECODABLE:  # stored and counted, not indexed
                            continue
                        capture = stamp_ns(decoded)
                    rows.append(sensor_row(message, role, capture, position))
                continue
            key = keys.get(id(channel))
            if key is None:
                key = keys[id(channel)] = len(keys)
                schema = channel.schema
                schema_tuple = (schema.name, schema.encoding, schema.data) if schema else None
                batch.append(
                    (key, topic, channel.message_encoding, schema_tuple, dict(channel.metadata))
                )
            batch.append(
                (key, message.log_time_ns, message.publish_time_ns, message.sequence, message.data)
            )
            batch_bytes += len(message.data)
            if len(batch) >= _BATCH or batch_bytes >= _BATCH_BYTES:
                forward(batch)
                batch, batch_bytes = [], 0
        if batch:
            forward(batch)
        files = splitter.close()
    except BaseException:
        splitter.abort()
        raise
    recorded: Counter[str] = Counter()
    for source in sources:
        recorded.update(source.out_of_order)
    problems = {str(source.path): source.problems for source in sources}
    return files, stats, recorded, rows, problems, undecodable


def sensor_row(message: RawMessage, role: str, capture_ns: int | None, at: Position) -> SensorRow:
    """One ``sensor_index`` row (without the drive id)."""
    return {
        "topic": message.channel.topic,
        "role": role,
        "log_time_ns": message.log_time_ns,
        "capture_ns": capture_ns,
        "file": at.file,
        "message_idx": at.message_idx,
    }


def _serve(stdin: BinaryIO, stdout: BinaryIO) -> int:
    """The child's main: arguments come pickled on stdin; batches, then the outcome, go
    to stdout as a stream of pickles. No job (stdin closed at once) is a quiet exit."""
    try:
        job = pickle.load(stdin)
    except EOFError:  # started ahead of time, then not needed
        return 0

    def forward(batch: list[Any]) -> None:
        pickle.dump(("batch", batch), stdout, protocol=pickle.HIGHEST_PROTOCOL)

    try:
        result = split_topics(job, forward)
        outcome: tuple[str, Any] = ("ok", result)
    except BrokenPipeError:  # the parent stopped reading: it is aborting
        return 1
    except Exception as err:  # reported to the parent as one line
        outcome = ("error", f"{type(err).__name__}: {err}")
    pickle.dump(outcome, stdout)
    stdout.flush()
    return 0


class Offload:
    """The parent's handle on the child: ``Offload()`` starts it, ``start`` gives it its
    job, ``messages`` streams what it forwards, ``result`` is what it reports; ``abort``
    kills it.

    The child is a fresh interpreter (``python -m drivecat.ingest.offload``), so neither the
    caller's ``__main__`` nor its threads matter. Its imports take a moment, so it can be
    started before the job is known (see ``ingest.run.prepare_drive``).
    """

    def __init__(self) -> None:
        env = dict(_MALLOC_TUNING, **os.environ)  # the user's own settings win
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (_wait closes it)
        try:
            self._proc = subprocess.Popen(
                CHILD_COMMAND,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=env,
            )
        except BaseException:
            self._stderr.close()
            raise
        self._what = "reading in a second process"
        self._result: Result | None = None
        self._pool: dict[Channel, Channel] = {}
        self._last_stderr = ""
        self.started = False

    def start(self, job: Job, channel_pool: dict[Channel, Channel]) -> None:
        """Hand the child its job; channels it forwards are taken from ``channel_pool``."""
        assert self._proc.stdin is not None and not self.started
        self.started = True
        self._what = f"reading in a second process (splitting {', '.join(sorted(job.slugs))})"
        self._pool = channel_pool
        try:
            with self._proc.stdin as stdin:
                pickle.dump(job, stdin)
        except OSError:
            pass  # it died at once: ``messages`` says why

    def messages(self) -> Iterator[RawMessage]:
        """The messages of every topic the child does not split, in time order. Once this
        is exhausted, ``result`` holds what the child reports."""
        assert self._proc.stdout is not None
        stdout = self._proc.stdout
        channels: dict[int, Channel] = {}
        load = pickle.load
        while True:
            try:
                kind, payload = load(stdout)
            except EOFError:  # it died without a word (killed, out of memory, bad install)
                self._wait()
                raise IngestError(f"{self._what} failed ({self._last_words()})") from None
            if kind == "batch":
                for item in payload:
                    if len(item) == 5 and isinstance(item[1], int):
                        key, log, pub, seq, data = item
                        yield raw_message((channels[key], log, pub, seq, data))
                    else:
                        key, topic, encoding, schema, meta = item
                        found = Channel(topic, encoding, Schema(*schema) if schema else None, meta)
                        channels[key] = self._pool.setdefault(found, found)
            elif kind == "ok":
                self._wait()
                self._result = payload
                return
            else:
                self._wait()
                raise IngestError(f"{self._what} failed: {payload}")

    def result(self) -> Result:
        if self._result is None:
            raise IngestError(f"{self._what} did not finish")
        files, stats, recorded, rows, problems, undecodable = self._result
        return files, stats, recorded, rows, problems, undecodable

    def _wait(self) -> None:
        """Wait for the child to exit; then release its pipe and its stderr file."""
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc.wait()
        self._stderr.seek(0)
        self._last_stderr = self._stderr.read().decode(errors="replace").strip()
        self._stderr.close()

    def _last_words(self) -> str:
        lines = self._last_stderr.splitlines()
        return f"exit code {self._proc.returncode}: {lines[-1] if lines else 'no output'}"

    def abort(self) -> None:
        """Stop the child now (started or not); what it wrote is in the caller's temporary
        folder. Safe to call more than once."""
        if self._proc.poll() is None:
            self._proc.kill()
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            self._proc.stdin.close()
        if not self._stderr.closed:
            self._wait()
        self._stderr.close()


if __name__ == "__main__":
    code = _serve(sys.stdin.buffer, sys.stdout.buffer)
    # Every file is closed and the outcome flushed: skip the interpreter's teardown (tens
    # of ms), which the parent would otherwise wait for.
    sys.stderr.flush()
    os._exit(code)
