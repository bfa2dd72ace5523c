"""The input formats: which reader opens a recording, in one place.

Two tables, looked up in this order:

- :data:`FILE_READERS`, for a recording that is one file: by suffix first, then, for a file
  whose suffix says nothing, by the magic bytes it starts with;
- :data:`ROS2_STORAGES`, for a ROS 2 bag folder: by the ``storage_identifier`` of its
  ``metadata.yaml`` (or, when that is empty, by the storage files present).

To add an input format, write a Source (``ingest.source_types.Source``) and add one row to
one table; ``ingest.drive`` finds recordings in offload folders by the same tables. A
reader must raise IngestError naming the file for input it cannot read at all, and report
damage it can step over as ``ReadProblem``s (see ``ingest.sources``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivecat.ingest.declared import counting, declared_counts, shortfall
from drivecat.ingest.errors import IngestError
from drivecat.ingest.mcap_source import MCAP_MAGIC, McapSource
from drivecat.ingest.source_types import (
    Attachment,
    Channel,
    MetadataRecord,
    RawMessage,
    Source,
)
from drivecat.ingest.time_order import merge

ChannelPool = dict[Channel, Channel]  # shared Channel objects: one topic, one channel
ROSBAG1_MAGIC = b"#ROSBAG V2.0\n"
BAG_METADATA = "metadata.yaml"


@dataclass(frozen=True)
class FileReader:
    """A recording that is one file. ``open(path, pool)`` returns its Source; sources opened
    with one ``pool`` share Channel objects where the format allows."""

    name: str  # for messages: "MCAP file", "ROS 1 bag"
    suffixes: frozenset[str]  # lower case, with the dot
    magic: bytes  # what the file starts with
    open: Callable[[Path, ChannelPool | None], Source]


@dataclass(frozen=True)
class BagFolder:
    """A ROS 2 bag folder as ``metadata.yaml`` and a look at its files describe it."""

    path: Path
    storage: str  # storage_identifier; "" when metadata.yaml is absent or does not say
    listed: tuple[Path, ...]  # relative_file_paths of metadata.yaml, under ``path``
    compression: str = ""  # compression_mode: "" (none), "message" or "file"
    # messages per topic that metadata.yaml declares; checked against what is read
    declared: Mapping[str, int] | None = field(default=None)

    def files(self, suffix: str) -> list[Path]:
        """Its storage files with ``suffix``: those metadata.yaml lists, else those present."""
        listed = [p for p in self.listed if p.suffix == suffix]
        return listed or self.present(suffix)

    def present(self, suffix: str) -> list[Path]:
        return sorted(p for p in self.path.glob(f"*{suffix}") if p.is_file())


@dataclass(frozen=True)
class StorageReader:
    """A ROS 2 storage plug-in. ``suffix``: its files' suffix; ``marks_folder``: whether a
    folder holding such files is a bag even without ``metadata.yaml`` (an offload folder
    of loose ``.mcap`` recordings is not)."""

    suffix: str
    marks_folder: bool
    open: Callable[[BagFolder], Source]


def _rosbag(
    path: Path,
    files: Sequence[Path],
    *,
    declared: Mapping[str, int] | None = None,
) -> Source:
    """A file-compressed ROS 2 bag read through rosbags' folder reader, imported only when
    such a bag is opened: a heavy import that other runs need not pay for."""
    from drivecat.ingest.bag_source import RosbagSource

    return RosbagSource(path, list(files), ros1=False, declared=declared)


def _ros1_bag(path: Path, pool: ChannelPool | None) -> Source:
    """Through rosbags; a bag whose index rosbags cannot read is scanned from its start."""
    from drivecat.ingest.ros1_scan import open_ros1

    return open_ros1(path)


def _ros2_mcap(bag: BagFolder) -> Source:
    if bag.compression:
        return _rosbag(bag.path, [bag.path], declared=bag.declared)
    files = bag.files(".mcap")
    if not files:
        raise IngestError(f"{bag.path}: ROS 2 bag folder without .mcap files")
    pool: ChannelPool = {}
    return _FolderSource(bag.path, [McapSource(f, pool) for f in files], bag.declared)


def _ros2_sqlite3(bag: BagFolder) -> Source:
    """Each .db3 read with sqlite3 (``Ros2DbSource``), which yields every topic the
    database holds, whatever the QoS strings in metadata.yaml say."""
    from drivecat.ingest.ros2_db import Ros2DbSource, inflate_message

    db3s = bag.files(".db3")
    if not db3s:
        raise IngestError(f"{bag.path}: ROS 2 bag folder without .db3 files")
    pool: ChannelPool = {}
    inflate = inflate_message if bag.compression == "message" else None
    parts = [Ros2DbSource(f, pool, inflate) for f in db3s]
    return _FolderSource(bag.path, parts, bag.declared)


#: One-file recordings: by suffix, then by magic bytes.
FILE_READERS: tuple[FileReader, ...] = (
    FileReader("MCAP file", frozenset({".mcap"}), MCAP_MAGIC, McapSource),
    FileReader("ROS 1 bag", frozenset({".bag"}), ROSBAG1_MAGIC, _ros1_bag),
)

#: ROS 2 bag folders: storage_identifier -> reader. When metadata.yaml names no storage,
#: the first whose files are present is used (so .db3 files win over .mcap ones).
ROS2_STORAGES: dict[str, StorageReader] = {
    "sqlite3": StorageReader(".db3", True, _ros2_sqlite3),
    "mcap": StorageReader(".mcap", False, _ros2_mcap),
}


def recording_suffixes() -> frozenset[str]:
    """Suffixes of one-file recordings, for finding them in an offload folder."""
    return frozenset(s for r in FILE_READERS for s in r.suffixes)


def is_bag_folder(path: Path) -> bool:
    """Whether a folder is a ROS 2 bag: it has metadata.yaml, or files of a storage that
    marks a folder as a bag."""
    if (path / BAG_METADATA).is_file():
        return True
    return any(any(path.glob(f"*{s.suffix}")) for s in ROS2_STORAGES.values() if s.marks_folder)


def open_source(path: Path, channel_pool: ChannelPool | None = None) -> Source:
    """Open a recording: a file any FILE_READERS row reads, or a ROS 2 bag folder.

    MCAP files opened with one ``channel_pool`` share Channel objects, so a topic recorded
    the same way in several files is one channel (and one in each file written from it).

    Raises IngestError naming the path when it does not exist, is none of these, or cannot
    be read at all (empty, bad magic, unreadable bag index).
    """
    path = Path(path)
    if not path.exists():
        raise IngestError(f"{path}: no such file or folder")
    if path.is_dir():
        return _open_bag_folder(path)
    suffix = path.suffix.lower()
    for reader in FILE_READERS:
        if suffix in reader.suffixes:
            return reader.open(path, channel_pool)
    try:
        with path.open("rb") as f:
            head = f.read(max(len(r.magic) for r in FILE_READERS))
    except OSError as err:
        raise IngestError(f"{path}: cannot read: {err.strerror}") from None
    for reader in FILE_READERS:
        if head.startswith(reader.magic):
            return reader.open(path, channel_pool)
    names = ", ".join(r.name for r in FILE_READERS)
    raise IngestError(f"{path}: not an {names} or ROS 2 bag folder")


def _open_bag_folder(path: Path) -> Source:
    """Pick the reader for a ROS 2 bag folder from ``metadata.yaml`` and the files present.
    File-compressed bags go through rosbags' folder reader whatever their storage. The
    message counts ``metadata.yaml`` declares are checked against what is read."""
    info = _bag_info(path)
    mode = _text_field(path, info, "compression_mode").lower()
    bag = BagFolder(
        path,
        _text_field(path, info, "storage_identifier"),
        tuple(path / Path(p).name for p in _listed_files(path, info)),
        "" if mode == "none" else mode,
        declared_counts(info),
    )
    if missing := [p for p in bag.listed if not p.exists()]:
        raise IngestError(f"{path}: {BAG_METADATA} lists {missing[0].name}, which is missing")
    if bag.compression and bag.compression != "message":
        return _rosbag(path, [path], declared=bag.declared)
    if bag.storage:
        storage = ROS2_STORAGES.get(bag.storage)
        if storage is None:
            raise IngestError(f"{path}: unsupported ROS 2 bag storage {bag.storage!r}")
        return storage.open(bag)
    for storage in ROS2_STORAGES.values():
        if bag.present(storage.suffix):
            return storage.open(bag)
    raise IngestError(f"{path}: not a ROS 2 bag folder (no {BAG_METADATA}, .mcap or .db3)")


def _bag_info(path: Path) -> dict[str, Any]:
    """``rosbag2_bagfile_information`` from ``metadata.yaml``; {} when absent or empty.
    IngestError naming the file when it cannot be parsed or is not a mapping."""
    yaml_path = path / BAG_METADATA
    if not yaml_path.is_file():
        return {}
    from ruamel.yaml import YAML, YAMLError

    try:
        doc = YAML(typ="safe").load(yaml_path.read_text())
    except (OSError, UnicodeDecodeError, YAMLError) as err:
        reason = " ".join(str(err).split())
        raise IngestError(f"{yaml_path}: unreadable bag metadata: {reason}") from None
    except RecursionError:  # nested thousands deep
        raise IngestError(f"{yaml_path}: unreadable bag metadata: nested too deeply") from None
    if doc is None:
        return {}
    info = doc.get("rosbag2_bagfile_information") if isinstance(doc, dict) else None
    if info is None and isinstance(doc, dict) and "rosbag2_bagfile_information" not in doc:
        return {}
    if not isinstance(info, dict):
        raise IngestError(
            f"{yaml_path}: invalid bag metadata: rosbag2_bagfile_information is not a mapping"
        )
    return info


def _text_field(path: Path, info: Mapping[str, Any], key: str) -> str:
    """A string field of the bag metadata; "" when absent or null."""
    value = info.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise IngestError(f"{path / BAG_METADATA}: invalid bag metadata: {key} must be a string")
    return value


def _listed_files(path: Path, info: Mapping[str, Any]) -> list[str]:
    """``relative_file_paths``: a list of strings ([] when absent or null)."""
    value = info.get("relative_file_paths")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
        raise IngestError(
            f"{path / BAG_METADATA}: invalid bag metadata: "
            "relative_file_paths must be a list of file names"
        )
    return value


class _FolderSource:
    """A ROS 2 bag folder: its files (``McapSource`` or ``Ros2DbSource``, sharing Channel
    objects so a topic keeps one) read directly and merged by log time."""

    start_bound: int | None = None  # its parts are merged inside; no bound for the whole

    def __init__(
        self, path: Path, parts: Sequence[Any], declared: Mapping[str, int] | None = None
    ) -> None:
        self.path = path
        self._declared = declared
        self._parts = list(parts)
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

    def piece_parts(self) -> list[Any]:
        """Its files, for workers that read them in pieces (``ingest.parallel``); the pass
        then calls ``settle`` with what was read instead of reading ``messages``."""
        return list(self._parts)

    def settle(self, counted: Counter[str]) -> None:
        """What ``messages`` does at its end, given the messages read per topic."""
        if self._declared is not None:
            self.problems.extend(shortfall(self.path, self._declared, counted))

    def metadata(self) -> dict[str, dict[str, str]]:
        return {k: v for part in self._parts for k, v in part.metadata().items()}

    def metadata_records(self) -> list[MetadataRecord]:
        return [r for part in self._parts for r in part.metadata_records()]

    def attachments(self) -> Iterator[Attachment]:
        for part in self._parts:
            yield from part.attachments()


__all__ = [
    "FILE_READERS",
    "ROS2_STORAGES",
    "BagFolder",
    "FileReader",
    "StorageReader",
    "is_bag_folder",
    "open_source",
    "recording_suffixes",
]
