"""Per-topic, time-chunked MCAP writers.

Every output file holds one topic and the messages whose ``log_time`` falls in one window
``[start, end)`` of ``chunk_ns``; windows are aligned to multiples of ``chunk_ns`` since the
Unix epoch, so files of different drives line up on the clock. Video topics are the
exception: each of their files must decode on its own from its first message, so a video
file rotates at the first keyframe at or after the window's end (or, for a stream that
never has one, a whole window later), and is named for what it holds: ``[start, end)``
from the keyframe that opens it to the keyframe that opens the next one.

Each file is self-contained: its schemas, its channels, the metadata records it is given
(every record of the inputs, then the drive's ``device`` record), statistics, a chunk index
and message indexes (the mcap library's Writer does all of that), with chunk, data-section
and summary CRCs. The header's profile is ``ros1`` or ``ros2`` when the topic's channel is
ROS-encoded with its message definition (``types.channel_profile``), so tools that check it
(rosbags) open the file. Message bytes, ``log_time``, ``publish_time`` and ``sequence`` are
copied through unchanged.

A file is written as ``.<name>.partial`` and renamed to its final name once it is complete.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any, NamedTuple, cast

import zstandard
from mcap.writer import CompressionType, Writer

from drivecat.ingest import crc
from drivecat.ingest.sources import Channel, RawMessage
from drivecat.ingest.threads import BackgroundWriter
from drivecat.naming import time_label, topic_slug
from drivecat.types import Profile, channel_profile

#: The metadata records every output file carries, in order: (name, string map) pairs.
Metadata = Sequence[tuple[str, Mapping[str, str]]]

_PROBE_BYTES = 1 << 20
_MIN_SAVING = 0.10
# A topic's compression is chosen from its first messages, up to this many bytes or
# messages: one message says little (a first, empty perception list compresses badly; a
# zstd-compressed CDR blob not at all), and a few dozen say what the topic carries.
SAMPLE_BYTES = 64 * 1024
SAMPLE_MESSAGES = 256


class CompressionSample:
    """The compression a Splitter chooses for a topic, from the topic's messages given in
    stream order to ``add``, which returns it once certain (then stop adding); ``finish``
    gives it when the topic ended before (None for no message).

    A Splitter samples a topic's first file: its messages up to ``SAMPLE_BYTES`` or
    ``SAMPLE_MESSAGES``, or all of them when the file ends first, which for a topic that is
    not video is when a message at or past the end of the first window arrives.
    """

    def __init__(self, chunk_ns: int) -> None:
        self.chunk_ns = chunk_ns
        self.sample: list[bytes] = []
        self.size = 0
        self.window_end: int | None = None

    def add(self, message: RawMessage) -> CompressionType | None:
        t = message.log_time_ns
        if self.window_end is None:
            self.window_end = t - t % self.chunk_ns + self.chunk_ns
        elif t >= self.window_end:
            return choose_compression(b"".join(self.sample))
        self.sample.append(bytes(message.data))
        self.size += len(message.data)
        if self.size >= SAMPLE_BYTES or len(self.sample) >= SAMPLE_MESSAGES:
            return choose_compression(b"".join(self.sample))
        return None

    def finish(self) -> CompressionType | None:
        return choose_compression(b"".join(self.sample)) if self.sample else None


def choose_compression(sample: bytes) -> CompressionType:
    """zstd unless it saves under 10% on ``sample``: H.264, JPEG and noisy float data barely
    compress, and compressing them again costs more time than the whole rest of the split.
    """
    if not sample:
        return CompressionType.ZSTD
    probe = sample[:_PROBE_BYTES]
    saved = 1 - len(zstandard.ZstdCompressor(level=1).compress(probe)) / len(probe)
    return CompressionType.ZSTD if saved >= _MIN_SAVING else CompressionType.NONE


class _HashingFile:
    """A write-only file that hashes what passes through, so no second read is needed.

    Hashing and writing happen on the background writer thread, in submission order; the
    mcap Writer only needs ``write`` and ``tell``, and ``tell`` is known without waiting.
    """

    def __init__(self, path: Path, background: BackgroundWriter) -> None:
        self._file: IO[bytes] = open(path, "wb")  # noqa: SIM115 - closed by close()
        self._background = background
        self.sha256 = hashlib.sha256()
        self.size = 0

    def _write(self, data: bytes) -> None:
        self.sha256.update(data)
        self._file.write(data)

    def write(self, data: Any) -> int:
        data = bytes(data)  # the writer may reuse a buffer; the thread needs its own bytes
        self.size += len(data)
        self._background.submit(self._write, data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def submit(self, fn: Any, *args: Any) -> None:
        """Run ``fn`` on the io thread after everything written so far."""
        self._background.submit(fn, *args)

    def flush(self) -> None:
        pass  # everything reaches the file, in order, before close() runs

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True)
class OutputFile:
    """One finished output file. ``path`` is relative to the drive's folder."""

    topic: str
    path: str
    start_ns: int
    end_ns: int
    message_count: int
    bytes: int
    sha256: str


class _WindowFile:
    """One output file: one topic, one time window.

    The main thread only routes and counts. The mcap Writer's work runs, in order, on the
    ``encoder`` thread, and hashing and file writes on the ``io`` thread; so the Python of
    the writer, the chunk CRCs and copies, sha256 and the disk overlap with the reading.

    A file ``named_at_end`` (video) has a provisional name until ``seal`` gives its end.
    """

    def __init__(
        self,
        folder: Path,
        slug: str,
        start_ns: int,
        window_end_ns: int,
        encoder: BackgroundWriter,
        *,
        named_at_end: bool = False,
    ) -> None:
        self.folder = folder
        self.slug = slug
        self.start_ns = start_ns
        self.window_end_ns = window_end_ns
        self.named_at_end = named_at_end
        if named_at_end:
            self.name = f"{time_label(start_ns)}_open.mcap"
        else:
            self.name = f"{time_label(start_ns)}_{time_label(window_end_ns)}.mcap"
        self.relative = f"{slug}/{self.name}"  # relative to the drive folder
        self.final_path = folder / self.name
        self.partial_path = folder / f".{self.name}.partial"
        self.compression: CompressionType | None = None  # None while the topic is sampled
        self.profile = Profile.NONE  # the header's profile, from the topic's channel
        self.encoder = encoder
        self.count = 0
        self.min_ns: int | None = None
        self.max_ns = 0
        self.channel_ids: dict[int, int] = {}
        self.schema_ids: dict[int, int] = {}

    def seal(self, end_ns: int) -> str:
        """Give a file named at its end its final name, ``[start, end_ns)``; return the
        final path relative to the drive folder. Called on the main thread, before finish."""
        self.final_path = self.folder / f"{time_label(self.start_ns)}_{time_label(end_ns)}.mcap"
        return f"{self.slug}/{self.final_path.name}"

    # -- on the encoder thread ----------------------------------------------------------------
    def open(
        self, metadata: Metadata, chunk_size: int, io: BackgroundWriter, profile: Profile
    ) -> None:
        self.stream = _HashingFile(self.partial_path, io)
        stream = cast(IO[Any], self.stream)  # Writer needs write/tell/flush only
        compression = self.compression or CompressionType.ZSTD
        self.writer = Writer(
            stream,
            compression=compression,
            chunk_size=chunk_size,
            enable_crcs=True,
            enable_data_crcs=True,  # off by default in mcap 1.6; a streaming reader checks it
        )
        self.writer.start(profile=profile.value, library="drivecat")
        for name, record in metadata:
            self.writer.add_metadata(name, dict(record))

    def _channel_id(self, channel: Channel) -> int:
        key = id(channel)
        found = self.channel_ids.get(key)
        if found is not None:
            return found
        schema_id = 0
        if channel.schema is not None:
            skey = id(channel.schema)
            schema_id = self.schema_ids.get(skey, 0)
            if not schema_id:
                s = channel.schema
                schema_id = self.writer.register_schema(s.name, s.encoding, s.data)
                self.schema_ids[skey] = schema_id
        cid = self.writer.register_channel(
            channel.topic, channel.message_encoding, schema_id, dict(channel.metadata)
        )
        self.channel_ids[key] = cid
        return cid

    def add(self, message: RawMessage) -> None:
        self.writer.add_message(
            self._channel_id(message.channel),
            message.log_time_ns,
            message.data,
            message.publish_time_ns,
            message.sequence,
        )

    def finish(self, topic: str, relative_to: Path, done: list[OutputFile]) -> None:
        """Write the summary; then, on the io thread, close, rename and report the file."""
        self.writer.finish()
        self.stream.submit(self._complete, topic, relative_to, done)

    # -- on the io thread -------------------------------------------------------------------
    def _complete(self, topic: str, relative_to: Path, done: list[OutputFile]) -> None:
        self.stream.close()
        os.replace(self.partial_path, self.final_path)
        start = self.min_ns if self.min_ns is not None else 0
        done.append(
            OutputFile(
                topic=topic,
                path=str(self.final_path.relative_to(relative_to)),
                start_ns=start,
                end_ns=self.max_ns + 1,
                message_count=self.count,
                bytes=self.stream.size,
                sha256=self.stream.sha256.hexdigest(),
            )
        )


def _add_all(batch: list[tuple[_WindowFile, RawMessage]]) -> None:
    for out, message in batch:
        out.add(message)


_BATCH = 256  # messages per hand-over to the encoder thread, at most
_BATCH_BYTES = 2 << 20  # and bytes: with the queue's depth, this bounds memory


class Position(NamedTuple):
    """Where a message landed: its file (relative to the drive folder) and ordinal in it."""

    file: str
    message_idx: int


# A Position made without NamedTuple's Python-level __new__ (once per message written).
_position: Callable[[tuple[str, int]], Position] = partial(tuple.__new__, Position)


class Splitter:
    """Routes raw messages to per-topic, per-window MCAP files under ``drive_dir``.

    Messages must arrive in (roughly) ``log_time`` order per topic. A message older than its
    topic's open window (an out-of-order input) goes into the open file rather than
    reopening a finished one; the file's recorded start then reflects it.

    Each topic's compression is chosen from a sample of its first messages (``SAMPLE_BYTES``
    or ``SAMPLE_MESSAGES``, whichever comes first), unless ``compression`` fixes it: until
    then its first file is not opened and those messages wait here (so memory holds at
    most one sample per topic).
    """

    def __init__(
        self,
        drive_dir: Path,
        chunk_ns: int,
        metadata: Metadata,
        *,
        compression: CompressionType | None = None,
        chunk_size: int = 1024 * 1024,
    ) -> None:
        if chunk_ns <= 0:
            raise ValueError("chunk_ns must be positive")
        crc.install()  # the writer's CRCs by ISA-L: the same checksums, 5x faster
        self.drive_dir = drive_dir
        self.chunk_ns = chunk_ns
        self.metadata = metadata
        self.compression = compression  # None: chosen per topic from a sample of it
        self._topic_compression: dict[str, CompressionType] = {}
        self._sampling: dict[str, list[tuple[_WindowFile, RawMessage]]] = {}
        self._sample_bytes: dict[str, int] = {}
        self.chunk_size = chunk_size
        self._open: dict[str, _WindowFile] = {}
        self._slugs: dict[str, str] = {}
        self.files: list[OutputFile] = []
        self._renames: dict[str, str] = {}
        # Two stages: the mcap Writer's calls, then hashing and file writes. Each runs its
        # calls in order; both queues are bounded, so memory is too: when the disk falls
        # behind (the kernel throttles writers once enough is dirty), they fill, and what
        # they hold is the most memory a drive of any length needs beyond the reading.
        self._io = BackgroundWriter(depth=16)
        self._encoder = BackgroundWriter(depth=8)
        # Messages go to the encoder in batches: one hand-over per message costs more
        # than the writer's own work on a small one.
        self._batch: list[tuple[_WindowFile, RawMessage]] = []
        self._batch_bytes = 0

    def slug(self, topic: str) -> str:
        slug = self._slugs.get(topic)
        if slug is None:
            slug = topic_slug(topic)
            if slug in self._slugs.values():  # two topics shortened to one name
                slug = f"{slug}~{len(self._slugs)}"
            self._slugs[topic] = slug
            (self.drive_dir / slug).mkdir(parents=True, exist_ok=True)
        return slug

    def preset_compression(self, topic: str, compression: CompressionType) -> None:
        """Use ``compression`` for ``topic`` without sampling it (decided from the same
        sample by whoever saw the topic's first file: see ``sample_compression``)."""
        self._topic_compression[topic] = compression

    def preset_slug(self, topic: str, slug: str) -> None:
        """Use ``slug`` for ``topic`` (chosen by another splitter writing the same drive)."""
        self._slugs[topic] = slug
        (self.drive_dir / slug).mkdir(parents=True, exist_ok=True)

    @property
    def slugs(self) -> dict[str, str]:
        return dict(self._slugs)

    @property
    def renames(self) -> dict[str, str]:
        """Provisional file names given in a ``Position`` -> final names (video files,
        named once their end is known). Complete after ``close``."""
        return dict(self._renames)

    @property
    def compressions(self) -> dict[str, CompressionType]:
        """The compression chosen for each topic."""
        return dict(self._topic_compression)

    def write(self, message: RawMessage, keyframe: bool | None = None) -> Position:
        """Route one message; return where it lands.

        ``keyframe`` is None for a topic that is not video; for a video topic, whether this
        message can start a file (a keyframe with its parameter sets in band): the topic's
        files then rotate only there, so each decodes on its own.
        """
        topic = message[0].topic
        log_time = message[1]
        out = self._open.get(topic)
        if out is None or (
            log_time >= out.window_end_ns and self._rotates(out, log_time, keyframe)
        ):
            start = log_time - log_time % self.chunk_ns
            if out is not None:
                if keyframe is not None:
                    start = log_time  # a video file starts at the keyframe that opens it
                self._finish(topic, out, start)
            schema = message.channel.schema
            profile = channel_profile(
                message.channel.message_encoding, schema.encoding if schema else None
            )
            out = self._new_file(topic, start, video=keyframe is not None, profile=profile)
        if out.compression is None:
            self._sampling[topic].append((out, message))
            self._sample_bytes[topic] += len(message.data)
            sampled = self._sample_bytes[topic] >= SAMPLE_BYTES
            if sampled or len(self._sampling[topic]) >= SAMPLE_MESSAGES:
                self._decide(topic)
        else:
            batch = self._batch
            batch.append((out, message))
            self._batch_bytes += len(message[4])
            if len(batch) >= _BATCH or self._batch_bytes >= _BATCH_BYTES:
                self._flush()
        if log_time > out.max_ns:
            out.max_ns = log_time
            if out.min_ns is None:
                out.min_ns = log_time
        elif out.min_ns is None or log_time < out.min_ns:
            out.min_ns = log_time
        idx = out.count
        out.count += 1
        return _position((out.relative, idx))

    def _rotates(self, out: _WindowFile, log_time: int, keyframe: bool | None) -> bool:
        if log_time < out.window_end_ns:
            return False
        if keyframe is None or keyframe:
            return True
        # A video stream with no keyframe for a whole window past the boundary cannot be
        # cut cleanly anyway; rotating keeps its files the size of the others.
        return log_time >= out.window_end_ns + self.chunk_ns

    def _new_file(self, topic: str, start: int, *, video: bool, profile: Profile) -> _WindowFile:
        slug = self.slug(topic)
        window_end = start - start % self.chunk_ns + self.chunk_ns
        out = _WindowFile(
            self.drive_dir / slug, slug, start, window_end, self._encoder, named_at_end=video
        )
        out.profile = profile
        self._open[topic] = out
        compression = self.compression or self._topic_compression.get(topic)
        if compression is None:
            self._sampling[topic] = []
            self._sample_bytes[topic] = 0
        else:
            out.compression = compression
            self._submit(out.open, self.metadata, self.chunk_size, self._io, out.profile)
        return out

    def _decide(self, topic: str) -> None:
        """Choose the topic's compression from its sample, open its first file, write the sample."""
        pending = self._sampling.pop(topic)
        del self._sample_bytes[topic]
        sample = b"".join(bytes(m.data) for _, m in pending)
        compression = self._topic_compression[topic] = choose_compression(sample)
        out = self._open[topic]
        out.compression = compression
        self._submit(out.open, self.metadata, self.chunk_size, self._io, out.profile)
        self._batch.extend(pending)
        self._batch_bytes += len(sample)
        self._flush()

    def _finish(self, topic: str, out: _WindowFile, end_ns: int | None) -> None:
        """Finish ``out``; a video file is named ``[start, end_ns)``, or up to the end of
        the window of its last message when ``end_ns`` is None (the topic's last file)."""
        if topic in self._sampling:
            self._decide(topic)
        if out.named_at_end:
            if end_ns is None:
                end_ns = out.max_ns - out.max_ns % self.chunk_ns + self.chunk_ns
            self._renames[out.relative] = out.seal(end_ns)
        self._submit(out.finish, topic, self.drive_dir, self.files)

    def _flush(self) -> None:
        if self._batch:
            self._encoder.submit(_add_all, self._batch)
            self._batch, self._batch_bytes = [], 0

    def _submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` on the encoder thread after every message written so far."""
        self._flush()
        self._encoder.submit(fn, *args)

    def close(self) -> list[OutputFile]:
        """Finish every open file; return all files written, in order of completion."""
        try:
            for topic, out in self._open.items():
                self._finish(topic, out, None)
            self._open.clear()
            self._encoder.drain()  # every writer call done, so every byte handed to io
            self._io.drain()
        finally:
            self._encoder.close()
            self._io.close()
        return self.files

    def abort(self) -> None:
        """Stop the writer threads after a failure; the caller removes the folder."""
        self._batch = []
        for thread in (self._encoder, self._io):
            try:
                thread.drain()
            except BaseException:
                pass  # the failure that brought us here is the one to report
            finally:
                thread.close()
