"""What every source hands out: raw messages, their channels and schemas, read problems.

These records are shared by the readers (``ingest.mcap_source``, ``ingest.bag_source``) and
by everything downstream of them; ``ingest.sources`` re-exports them. Times are integer
nanoseconds in the recording's own time base.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import NamedTuple, Protocol

from drivecat.types import ProblemKind


@dataclass(frozen=True)
class Schema:
    """What goes into an output MCAP schema record, as the recording carried it."""

    name: str  # "foxglove.PointCloud", "sensor_msgs/NavSatFix", "sensor_msgs/msg/NavSatFix"
    encoding: str  # "protobuf" | "ros1msg" | "ros2msg" | "ros2idl" | "jsonschema" | "" | other
    data: bytes


@dataclass(frozen=True)
class Channel:
    """A topic with its encoding and schema. A source hands out one object per channel, so
    consumers may key on ``id(channel)``; equal channels also hash equal (the hash is
    computed once). ``metadata`` is a private copy: treat it as read-only."""

    topic: str
    message_encoding: str  # "protobuf" | "ros1" | "cdr" | "json" | other
    schema: Schema | None
    metadata: Mapping[str, str] = field(default_factory=dict)
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        meta = dict(self.metadata)
        object.__setattr__(self, "metadata", meta)
        key = (self.topic, self.message_encoding, self.schema, tuple(sorted(meta.items())))
        object.__setattr__(self, "_hash", hash(key))

    def __hash__(self) -> int:
        return self._hash


class RawMessage(NamedTuple):
    """One recorded message. ``data`` is never re-encoded."""

    channel: Channel
    log_time_ns: int
    publish_time_ns: int
    sequence: int
    data: bytes


@dataclass
class ReadProblem:
    """A defect found while reading ``path``. ``lost_bytes``: input bytes that could not be
    read. ``at_log_time_ns``: the last log time recovered before the damage (None when
    nothing was recovered before it). ``lost_messages``: how many messages the defect cost,
    when the input says so (a bag's declared counts, a summary's statistics); None when
    that is not knowable."""

    path: Path
    kind: ProblemKind
    detail: str
    lost_bytes: int = 0
    at_log_time_ns: int | None = None
    lost_messages: int | None = None
    topic: str = ""  # the topic the defect concerns, when it is one


class Attachment(NamedTuple):
    """One attachment record as recorded (MCAP): a named file with its times."""

    name: str
    media_type: str
    data: bytes
    log_time_ns: int
    create_time_ns: int


class MetadataRecord(NamedTuple):
    """One metadata record as recorded: a name and its string map. A recording may hold
    several records of one name; each is one of these, in recording order."""

    name: str
    metadata: Mapping[str, str]


class NoSideRecords:
    """The side records of a format that has none (ROS bags): no metadata records and no
    attachments."""

    def metadata(self) -> dict[str, dict[str, str]]:
        return {}

    def metadata_records(self) -> list[MetadataRecord]:
        return []

    def attachments(self) -> Iterator[Attachment]:
        return iter(())


class Source(Protocol):
    """One recording. ``messages()`` is one streaming pass in log-time order as far as the
    input allows; memory follows chunk size and time overlap, not recording length.
    ``problems`` fills while ``messages()`` runs."""

    path: Path
    problems: list[ReadProblem]
    out_of_order: Counter[str]  # per topic: messages recorded after a later one of that topic

    @property
    def start_bound(self) -> int | None:
        """No message it yields is older than this, when known before reading (an indexed
        MCAP file); None otherwise. ``merge`` opens a source only once the stream reaches
        its bound, so recordings that follow one another are read one after the other."""
        ...

    def messages(self) -> Iterator[RawMessage]: ...

    def metadata(self) -> dict[str, dict[str, str]]:
        """Metadata records by name; of several records of a name, the last one."""
        ...

    def metadata_records(self) -> list[MetadataRecord]:
        """Every metadata record in recording order, repeated names included."""
        ...

    def attachments(self) -> Iterator[Attachment]:
        """Every attachment in recording order, read one at a time as the caller iterates
        (an attachment can be large: it is never all held at once)."""
        ...


# tuple.__new__ skips the NamedTuple's Python-level __new__: one call less per message.
raw_message: Callable[[tuple[Channel, int, int, int, bytes]], RawMessage] = partial(
    tuple.__new__, RawMessage
)
by_log_time = itemgetter(1)  # the key that orders RawMessages by log_time_ns
