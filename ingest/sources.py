"""Every kind of recording, read as one stream of raw messages in log-time order.

``open_source`` opens an MCAP file (indexed or not, chunked or not, truncated or not), a
ROS 1 ``.bag`` or a ROS 2 bag folder (MCAP or sqlite3 storage). A source yields
``RawMessage`` tuples whose ``data`` is exactly the recorded bytes, with the schema that
decodes them; ``merge`` interleaves several sources by log time, as a stream.

Times are integer nanoseconds in the recording's own time base (for bags: the record time
the recorder stamped, not the header stamp inside the message).

Damage the reader can step over (a crash that cut the file, a corrupt chunk, a broken
summary) never raises: the source recovers what it can and appends a ``ReadProblem`` to
``problems``. Input that is not a recording at all raises ``IngestError``, one line naming
the file.

This module picks the reader for a path; the readers live in ``ingest.mcap_source`` and
``ingest.bag_source`` (imported only when a bag is opened: rosbags is a heavy import), the
records they yield in ``ingest.source_types``, importable from here too.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import zstandard

from drivecat.ingest.declared import counting, declared_counts, shortfall
from drivecat.ingest.errors import IngestError
from drivecat.ingest.mcap_source import MCAP_MAGIC, McapSource
from drivecat.ingest.source_types import (
    Attachment,
    Channel,
    ProblemKind,
    RawMessage,
    ReadProblem,
    Schema,
    Source,
)

_ROSBAG1_MAGIC = b"#ROSBAG V2.0\n"


def merge(sources: Sequence[Source]) -> Iterator[RawMessage]:
    """Interleave the sources' streams by ``log_time_ns``; equal times keep source order.

    Streams, holding one pending message per source being read. A source whose first log
    time is known ahead (``start_bound``: an indexed MCAP file) is only opened once the
    stream reaches that time, so recordings that follow one another are read one after the
    other and memory does not grow with their number.
    """
    if len(sources) == 1:
        return sources[0].messages()
    return _merge(sources)


def _merge(sources: Sequence[Source]) -> Iterator[RawMessage]:
    # waiting: (start, index), latest first, so the next to open is at the end
    waiting = sorted(
        ((_start_bound(s), i) for i, s in enumerate(sources)), key=lambda w: (-w[0], -w[1])
    )
    # one entry per open source: (log time, source index, message, the rest of its stream)
    heap: list[tuple[int, int, RawMessage, Iterator[RawMessage]]] = []
    while True:
        # open every source that may hold a message at or before the next one to yield
        while waiting and (not heap or waiting[-1][0] <= heap[0][0]):
            i = waiting.pop()[1]
            stream = iter(sources[i].messages())
            first = next(stream, None)
            if first is not None:
                heapq.heappush(heap, (first[1], i, first, stream))
        if not heap:
            return
        if len(heap) == 1:  # one source alone, until the next one's start
            _, i, message, stream = heap[0]
            yield message
            if not waiting:
                yield from stream
                return
            limit = waiting[-1][0]
            for message in stream:
                if message[1] >= limit:
                    heap[0] = (message[1], i, message, stream)
                    break
                yield message
            else:
                heap.clear()
            continue
        _, i, message, stream = heap[0]
        yield message
        following = next(stream, None)
        if following is None:
            heapq.heappop(heap)
        else:
            heapq.heapreplace(heap, (following[1], i, following, stream))


def _start_bound(source: Source) -> int:
    """No message of ``source`` is older than this (-1: not known ahead)."""
    bound = getattr(source, "start_bound", None)
    return -1 if bound is None else int(bound)


def open_source(path: Path, channel_pool: dict[Channel, Channel] | None = None) -> Source:
    """Open a ``.mcap`` file, a ROS 1 ``.bag`` file or a ROS 2 bag folder.

    MCAP files opened with one ``channel_pool`` share Channel objects, so a topic recorded
    the same way in several files is one channel (and one in each file written from it).

    Raises IngestError naming the path when it does not exist, is none of these, or cannot
    be read at all (empty, bad magic, unreadable bag index).
    """
    path = Path(path)
    if not path.exists():
        raise IngestError(f"{path}: no such file or folder")
    if path.is_dir():
        return _open_ros2_folder(path)
    suffix = path.suffix.lower()
    if suffix == ".mcap":
        return McapSource(path, channel_pool)
    if suffix == ".bag":
        return _rosbag(path, [path], ros1=True)
    try:
        with path.open("rb") as f:
            head = f.read(len(_ROSBAG1_MAGIC))
    except OSError as err:
        raise IngestError(f"{path}: cannot read: {err.strerror}") from None
    if head.startswith(MCAP_MAGIC):
        return McapSource(path, channel_pool)
    if head == _ROSBAG1_MAGIC:
        return _rosbag(path, [path], ros1=True)
    raise IngestError(f"{path}: not an MCAP file, ROS 1 bag or ROS 2 bag folder")


def _rosbag(
    path: Path,
    files: list[Path],
    *,
    ros1: bool,
    declared: Mapping[str, int] | None = None,
    message_zstd: bool = False,
) -> Source:
    """A bag read through rosbags, imported only when a bag is opened: it is a heavy import
    that MCAP-only runs (and the reading child of ingest.offload) need not pay for. A ROS 1
    bag whose index rosbags cannot read is scanned from its start instead."""
    if ros1:
        from drivecat.ingest.ros1_scan import open_ros1

        return open_ros1(path)
    from drivecat.ingest.bag_source import RosbagSource

    decompress = None
    if message_zstd:
        # rosbag2 compresses each message as one zstd frame; a streaming decompressor
        # also takes frames that do not state their size
        def decompress(data: bytes) -> bytes:
            return zstandard.ZstdDecompressor().decompressobj().decompress(data)

    return RosbagSource(path, files, ros1=False, declared=declared, decompress=decompress)


class _McapFolderSource:
    """A ROS 2 bag folder stored as MCAP: its files read directly, merged by log time, with
    Channel objects shared across files so a topic keeps one."""

    def __init__(
        self, path: Path, files: Sequence[Path], declared: Mapping[str, int] | None = None
    ) -> None:
        self.path = path
        self._declared = declared
        pool: dict[Channel, Channel] = {}
        self._parts = [McapSource(f, pool) for f in files]
        self.problems = [p for part in self._parts for p in part.problems]
        self.out_of_order: Counter[str] = Counter()
        for part in self._parts:
            part.problems = self.problems  # one list, filled by every part as it reads
            part.out_of_order = self.out_of_order

    def messages(self) -> Iterator[RawMessage]:
        """The files' messages merged by log time; once exhausted, topics read fewer times
        than ``metadata.yaml`` declares are MISSING_MESSAGES problems."""
        if self._declared is None:
            yield from merge(self._parts)
            return
        counted: Counter[str] = Counter()
        yield from counting(merge(self._parts), counted)
        self.problems.extend(shortfall(self.path, self._declared, counted))

    def metadata(self) -> dict[str, dict[str, str]]:
        return {k: v for part in self._parts for k, v in part.metadata().items()}

    def attachments(self) -> list[Attachment]:
        return [a for part in self._parts for a in part.attachments()]


def _open_ros2_folder(path: Path) -> Source:
    """Pick the reader for a ROS 2 bag folder from ``metadata.yaml`` and the files present:
    MCAP storage is read directly, even when ``metadata.yaml`` has an empty storage type or
    file list; sqlite3 ``.db3`` files are read one by one through rosbags (uncompressed or
    compressed per message); file-compressed bags go through rosbags' folder reader. The
    message counts ``metadata.yaml`` declares are checked against what is read."""
    info = _bag_info(path)
    storage = str(info.get("storage_identifier") or "")
    listed = [path / Path(str(p)).name for p in info.get("relative_file_paths") or []]
    mode = str(info.get("compression_mode") or "").lower()
    compressed = mode not in ("", "none")
    declared = declared_counts(info)
    mcaps = sorted(p for p in path.glob("*.mcap") if p.is_file())
    db3s = sorted(p for p in path.glob("*.db3") if p.is_file())
    if missing := [p for p in listed if not p.exists()]:
        raise IngestError(f"{path}: metadata.yaml lists {missing[0].name}, which is missing")
    if compressed and mode != "message":
        return _rosbag(path, [path], ros1=False, declared=declared)
    if storage == "mcap" or (not storage and mcaps and not db3s):
        if compressed:
            return _rosbag(path, [path], ros1=False, declared=declared)
        files = [p for p in listed if p.suffix == ".mcap"] or mcaps
        if not files:
            raise IngestError(f"{path}: ROS 2 bag folder without .mcap files")
        return _McapFolderSource(path, files, declared)
    if storage == "sqlite3" or (not storage and db3s):
        files = [p for p in listed if p.suffix == ".db3"] or db3s
        if not files:
            raise IngestError(f"{path}: ROS 2 bag folder without .db3 files")
        return _rosbag(path, files, ros1=False, declared=declared, message_zstd=compressed)
    if storage:
        raise IngestError(f"{path}: unsupported ROS 2 bag storage {storage!r}")
    raise IngestError(f"{path}: not a ROS 2 bag folder (no metadata.yaml, .mcap or .db3)")


def _bag_info(path: Path) -> dict[str, Any]:
    """``rosbag2_bagfile_information`` from ``metadata.yaml``; {} when absent or empty."""
    yaml_path = path / "metadata.yaml"
    if not yaml_path.is_file():
        return {}
    from ruamel.yaml import YAML, YAMLError

    try:
        doc = YAML(typ="safe").load(yaml_path.read_text())
    except (OSError, UnicodeDecodeError, YAMLError) as err:
        reason = " ".join(str(err).split())
        raise IngestError(f"{yaml_path}: unreadable bag metadata: {reason}") from None
    info = doc.get("rosbag2_bagfile_information") if isinstance(doc, dict) else None
    return info if isinstance(info, dict) else {}


__all__ = [
    "MCAP_MAGIC",
    "Attachment",
    "Channel",
    "McapSource",
    "ProblemKind",
    "RawMessage",
    "ReadProblem",
    "Schema",
    "Source",
    "merge",
    "open_source",
]
