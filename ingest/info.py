"""What is in one recording, at a glance (``drivecat info FILE``): what ``mcap info`` gives.

For an MCAP file: the header's profile and library, every channel's topic, schema, encodings,
message count and rate, the time span, the chunks by compression, the attachments and the
metadata records. An indexed file is read from its summary only; a file without one (a
recorder crash) is streamed up to where it stops, and says so. For a ROS 1 bag or a ROS 2
bag folder, rosbags gives the topics, types, counts and time span (and, for ROS 2, the
storage and compression its ``metadata.yaml`` declares).

Times are nanoseconds since the Unix epoch; a rate is messages over the recording's span.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from drivecat.ingest.errors import IngestError


@dataclass(frozen=True)
class TopicInfo:
    topic: str
    schema_name: str
    schema_encoding: str
    message_encoding: str
    message_count: int
    rate_hz: float | None


@dataclass(frozen=True)
class AttachmentInfo:
    name: str
    media_type: str
    bytes: int
    log_time_ns: int


@dataclass(frozen=True)
class RecordingInfo:
    path: str
    format: str  # "mcap", "ros1 bag", "ros2 bag (sqlite3)", "ros2 bag (mcap)"
    bytes: int
    indexed: bool  # read from a summary or index, not streamed
    start_ns: int | None
    end_ns: int | None
    message_count: int
    topics: tuple[TopicInfo, ...]
    profile: str = ""
    library: str = ""
    compression: dict[str, int] = field(default_factory=dict)  # chunks per compression
    attachments: tuple[AttachmentInfo, ...] = ()
    metadata: dict[str, dict[str, str]] = field(default_factory=dict)
    note: str = ""  # e.g. why the file was streamed

    @property
    def duration_s(self) -> float | None:
        if self.start_ns is None or self.end_ns is None:
            return None
        return (self.end_ns - self.start_ns) / 1e9

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["duration_s"] = self.duration_s
        return doc


def _rate(count: int, start_ns: int | None, end_ns: int | None) -> float | None:
    if start_ns is None or end_ns is None or end_ns <= start_ns or count < 2:
        return None
    return (count - 1) / ((end_ns - start_ns) / 1e9)


def recording_info(path: Path) -> RecordingInfo:
    """Summarize one recording: an ``.mcap`` file, a ROS 1 ``.bag`` or a ROS 2 bag folder.
    IngestError (one line, naming the file) when it is none of them or cannot be read."""
    path = Path(path)
    if path.is_dir():
        mcaps = sorted(path.glob("*.mcap"))
        if (path / "metadata.yaml").is_file() and mcaps:
            # read as MCAP: rosbags needs the storage id that some writers leave empty
            return _ros2_mcap_info(path, [_mcap_info(p) for p in mcaps])
        if (path / "metadata.yaml").is_file():
            return _ros_info(path)
        raise IngestError(f"{path}: not a recording (a ROS 2 bag folder has metadata.yaml)")
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    with path.open("rb") as stream:
        magic = stream.read(8)
    if magic.startswith(b"\x89MCAP"):
        return _mcap_info(path)
    if magic.startswith(b"#ROSBAG"):
        return _ros_info(path)
    raise IngestError(f"{path}: not an MCAP file or a ROS bag (unknown magic bytes)")


def _mcap_info(path: Path) -> RecordingInfo:
    from mcap.exceptions import McapError
    from mcap.reader import SeekingReader

    size = path.stat().st_size
    with path.open("rb") as stream:
        reader = SeekingReader(stream)
        try:
            header = reader.get_header()
        except (McapError, ValueError, EOFError, AssertionError) as err:
            raise IngestError(f"{path}: cannot read the MCAP header: {err}") from None
        try:
            summary = reader.get_summary()
        except Exception:  # noqa: BLE001 - a cut or damaged end fails in many ways: stream it
            summary = None
        if summary is None or summary.statistics is None:
            stream.seek(0)
            return _mcap_streamed(path, size, stream)
        stats = summary.statistics
        start = stats.message_start_time if stats.message_count else None
        end = stats.message_end_time if stats.message_count else None
        topics = []
        for channel_id, channel in sorted(summary.channels.items()):
            schema = summary.schemas.get(channel.schema_id)
            count = stats.channel_message_counts.get(channel_id, 0)
            topics.append(
                TopicInfo(
                    channel.topic,
                    schema.name if schema else "",
                    schema.encoding if schema else "",
                    channel.message_encoding,
                    count,
                    _rate(count, start, end),
                )
            )
        metadata = {m.name: dict(m.metadata) for m in reader.iter_metadata()}
        return RecordingInfo(
            str(path),
            "mcap",
            size,
            True,
            start,
            end,
            stats.message_count,
            tuple(topics),
            profile=header.profile,
            library=header.library,
            compression=dict(Counter(c.compression or "none" for c in summary.chunk_indexes)),
            attachments=tuple(
                AttachmentInfo(a.name, a.media_type, a.data_size, a.log_time)
                for a in summary.attachment_indexes
            ),
            metadata=metadata,
        )


def _mcap_streamed(path: Path, size: int, stream: IO[bytes]) -> RecordingInfo:
    """An MCAP without a usable summary, read record by record until it stops."""
    from mcap.records import Attachment, Channel, Chunk, Header, Message, Metadata, Schema
    from mcap.stream_reader import StreamReader

    schemas: dict[int, Schema] = {}
    channels: dict[int, Channel] = {}
    counts: Counter[int] = Counter()
    chunks: Counter[str] = Counter()
    attachments: list[AttachmentInfo] = []
    metadata: dict[str, dict[str, str]] = {}
    profile = library = ""
    start: int | None = None
    end: int | None = None
    note = "no summary: streamed to the end"
    try:
        for record in StreamReader(stream, emit_chunks=False).records:
            if isinstance(record, Message):
                counts[record.channel_id] += 1
                t = record.log_time
                start = t if start is None else min(start, t)
                end = t if end is None else max(end, t)
            elif isinstance(record, Channel):
                channels[record.id] = record
            elif isinstance(record, Schema):
                schemas[record.id] = record
            elif isinstance(record, Chunk):
                chunks[record.compression or "none"] += 1
            elif isinstance(record, Attachment):
                attachments.append(
                    AttachmentInfo(
                        record.name, record.media_type, len(record.data), record.log_time
                    )
                )
            elif isinstance(record, Metadata):
                metadata[record.name] = dict(record.metadata)
            elif isinstance(record, Header):
                profile, library = record.profile, record.library
    except Exception as err:  # noqa: BLE001 - a cut file ends in any kind of error
        note = f"no summary: streamed, and the file stops early ({type(err).__name__})"
    topics = tuple(
        TopicInfo(
            ch.topic,
            schemas[ch.schema_id].name if ch.schema_id in schemas else "",
            schemas[ch.schema_id].encoding if ch.schema_id in schemas else "",
            ch.message_encoding,
            counts[cid],
            _rate(counts[cid], start, end),
        )
        for cid, ch in sorted(channels.items())
    )
    return RecordingInfo(
        str(path),
        "mcap",
        size,
        False,
        start,
        end,
        sum(counts.values()),
        topics,
        profile=profile,
        library=library,
        compression=dict(chunks),
        attachments=tuple(attachments),
        metadata=metadata,
        note=note,
    )


def _ros_info(path: Path) -> RecordingInfo:
    from rosbags.highlevel import AnyReader, AnyReaderError

    is_ros2 = path.is_dir()
    try:
        with AnyReader([path]) as reader:
            count = reader.message_count
            start = reader.start_time if count else None
            end = reader.end_time if count else None
            topics = tuple(
                TopicInfo(
                    name,
                    info.msgtype or "",
                    "ros2msg" if is_ros2 else "ros1msg",
                    "cdr" if is_ros2 else "ros1",
                    info.msgcount,
                    _rate(info.msgcount, start, end),
                )
                for name, info in sorted(reader.topics.items())
            )
    except (AnyReaderError, OSError, ValueError, KeyError) as err:
        raise IngestError(f"{path}: cannot read the bag: {err}") from None
    size = sum(p.stat().st_size for p in _files(path))
    fmt, compression = "ros1 bag", dict[str, int]()
    if is_ros2:
        storage, compression = _ros2_storage(path)
        fmt = f"ros2 bag ({storage})"
    return RecordingInfo(
        str(path), fmt, size, True, start, end, count, topics, compression=compression
    )


def _ros2_mcap_info(folder: Path, parts: list[RecordingInfo]) -> RecordingInfo:
    """A ROS 2 bag in MCAP storage: its files' summaries, topic by topic."""
    starts = [p.start_ns for p in parts if p.start_ns is not None]
    ends = [p.end_ns for p in parts if p.end_ns is not None]
    start, end = (min(starts), max(ends)) if starts and ends else (None, None)
    merged: dict[str, TopicInfo] = {}
    for part in parts:
        for t in part.topics:
            count = t.message_count + (merged[t.topic].message_count if t.topic in merged else 0)
            merged[t.topic] = TopicInfo(
                t.topic, t.schema_name, t.schema_encoding, t.message_encoding, count, None
            )
    topics = tuple(
        TopicInfo(t.topic, t.schema_name, t.schema_encoding, t.message_encoding,
                  t.message_count, _rate(t.message_count, start, end))
        for t in sorted(merged.values(), key=lambda t: t.topic)
    )  # fmt: skip
    compression: Counter[str] = Counter()
    for part in parts:
        compression.update(part.compression)
    return RecordingInfo(
        str(folder),
        "ros2 bag (mcap)",
        sum(p.bytes for p in parts),
        all(p.indexed for p in parts),
        start,
        end,
        sum(p.message_count for p in parts),
        topics,
        profile=parts[0].profile,
        library=parts[0].library,
        compression=dict(compression),
        attachments=tuple(a for p in parts for a in p.attachments),
        metadata={k: v for p in parts for k, v in p.metadata.items()},
        note="; ".join(p.note for p in parts if p.note),
    )


def _files(path: Path) -> Iterable[Path]:
    return [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]


def _ros2_storage(folder: Path) -> tuple[str, dict[str, int]]:
    from ruamel.yaml import YAML, YAMLError

    try:
        doc = YAML(typ="safe").load((folder / "metadata.yaml").read_text())
        info = doc["rosbag2_bagfile_information"]
    except (OSError, ValueError, KeyError, TypeError, YAMLError):
        return "unknown", {}
    storage = str(info.get("storage_identifier") or "unknown")
    mode = str(info.get("compression_mode") or "")
    files = info.get("relative_file_paths") or []
    kind = f"{info.get('compression_format') or 'none'} ({mode.lower()})" if mode else "none"
    return storage, {kind: len(files)}
