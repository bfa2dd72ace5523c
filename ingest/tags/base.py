"""The Tagger protocol, the segment context taggers see, and the registry of taggers.

A tagger turns the decoded messages of one segment into a few values. The segment builder
(``ingest.segments``) feeds it every message whose role it declares, in log-time order,
then calls ``finish`` once per segment, in segment order; ``finish`` returns the values and
resets the tagger for the next segment.

Built-in taggers fill the ``segments`` columns named in :data:`TAG_COLUMNS`. Third-party
taggers register a factory ``(config) -> Tagger`` under the entry point group
``drivecat.taggers``; their values land in the ``segments.tags`` MAP, keyed by the names
in their ``columns``. A tagger (built-in or plugin) is switched off with
``[tags.<name>] enabled = false`` in ``drivecat.toml``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, NamedTuple, Protocol, runtime_checkable

from drivecat.ingest.config import Config
from drivecat.ingest.errors import IngestError
from drivecat.ingest.roles import Role, normalise_schema_name

# Re-exported: taggers (plugins too) read decoded fields with it.
from drivecat.schemas.decoding import value_of as value_of

ENTRY_POINT_GROUP = "drivecat.taggers"

#: ``segments`` columns that built-in taggers fill; a plugin may not claim them.
TAG_COLUMNS: tuple[str, ...] = (
    "speed",
    "distance_m",
    "weather",
    "at_intersection",
    "pedestrian_count",
    "pedestrians_within_5m",
    "time_of_day",
)

#: Names of the built-in taggers (and of their ``[tags.<name>]`` config tables).
BUILTIN_NAMES: tuple[str, ...] = ("motion", "weather", "intersection", "pedestrians", "time_of_day")

#: Mean Earth radius (IUGG), the one docs/tags.md uses for every haversine distance.
EARTH_RADIUS_M = 6_371_008.8


class Fix(NamedTuple):
    """One GPS fix: its message's ``log_time`` (ns since the Unix epoch) and WGS84 degrees."""

    log_time_ns: int
    lat: float
    lon: float


@dataclass(frozen=True)
class SegmentContext:
    """What a tagger knows about the segment it is finishing.

    Times are ``log_time`` nanoseconds; the segment covers ``[start_ns, end_ns)`` and
    ``mid_ns = (start_ns + end_ns) // 2``. ``lat``/``lon`` are the interpolated GPS
    position at ``mid_ns`` (None without GPS). ``gps`` holds the segment's own fixes in
    log-time order. Taggers that consume messages are finished as soon as their segment
    closes; when no fix after the midpoint has arrived yet, their ``lat``/``lon`` is the
    best estimate so far (the last fix before the midpoint). Taggers that consume no
    messages (empty ``roles``) always see the final position.
    """

    seg_idx: int
    start_ns: int
    end_ns: int
    mid_ns: int
    lat: float | None
    lon: float | None
    gps: Sequence[tuple[int, float, float]]


@runtime_checkable
class Tagger(Protocol):
    """A per-segment tagger.

    ``name`` is unique among loaded taggers; ``columns`` are the keys ``finish`` returns
    (``segments`` columns for built-ins, ``tags`` keys for plugins); ``roles`` are the topic
    roles whose decoded messages it wants. A tagger may also define ``topics``, a
    ``frozenset[str]`` of topic names it wants whatever their role.
    """

    name: str
    columns: tuple[str, ...]
    roles: frozenset[Role]

    def on_message(self, role: Role, topic: str, log_time_ns: int, decoded: Any) -> None: ...

    def finish(self, segment: SegmentContext) -> Mapping[str, Any]: ...


def tagger_topics(tagger: Tagger) -> frozenset[str]:
    """The optional ``topics`` a tagger asks for by name (empty when it has none)."""
    topics = getattr(tagger, "topics", None)
    return frozenset(topics) if topics else frozenset()


def tagger_config(config: Config, name: str) -> dict[str, Any]:
    """The ``[tags.<name>]`` table of ``drivecat.toml`` (empty when absent)."""
    section = config.tags.get(name, {})
    return dict(section) if isinstance(section, dict) else {}


def _enabled(config: Config, name: str) -> bool:
    return bool(tagger_config(config, name).get("enabled", True))


def _builtins(config: Config) -> list[Tagger]:
    # Imported here: the tagger modules import this one.
    from drivecat.ingest.tags.intersection import IntersectionTagger
    from drivecat.ingest.tags.motion import MotionTagger
    from drivecat.ingest.tags.pedestrians import PedestrianTagger
    from drivecat.ingest.tags.time_of_day import TimeOfDayTagger
    from drivecat.ingest.tags.weather import WeatherTagger

    factories = (MotionTagger, WeatherTagger, IntersectionTagger, PedestrianTagger, TimeOfDayTagger)
    return [f(config) for f in factories if _enabled(config, f.name)]


def load_taggers(config: Config) -> list[Tagger]:
    """The built-in taggers, then every plugin in the ``drivecat.taggers`` entry point group.

    Raises IngestError naming the entry point when a plugin cannot be loaded, does not
    satisfy the Tagger protocol, reuses a loaded tagger's name or claims a built-in column.
    """
    taggers = _builtins(config)
    names = set(BUILTIN_NAMES)  # reserved even when a built-in is switched off
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if not _enabled(config, ep.name):
            continue
        where = f"tagger plugin {ep.name} ({ep.value})"
        try:
            tagger = ep.load()(config)
        except Exception as err:  # a broken plugin must not look like a drivecat bug
            raise IngestError(f"{where}: cannot load: {err}") from None
        if not isinstance(tagger, Tagger):
            raise IngestError(f"{where}: does not have name, columns, roles, on_message, finish")
        if tagger.name in names:
            raise IngestError(f"{where}: the name {tagger.name!r} is already taken")
        claimed = set(tagger.columns) & set(TAG_COLUMNS)
        if claimed:
            raise IngestError(f"{where}: columns {sorted(claimed)} belong to built-in taggers")
        names.add(tagger.name)
        taggers.append(tagger)
    return taggers


# -- helpers shared by the taggers -------------------------------------------------------------


def as_float(value: Any) -> float | None:
    """``value`` as a finite float, or None (missing, not a number, NaN or infinite)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two WGS84 points in degrees (R = 6,371,008.8 m)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def type_name(message: Any) -> str | None:
    """The schema name a decoded message carries, ROS names in ``pkg/Type`` form.

    Protobuf objects know their full name, ROS objects (mcap_ros1, mcap_ros2) their
    ``_type``; JSON dicts know nothing (None), so taggers fall back on their fields.
    """
    descriptor = getattr(message, "DESCRIPTOR", None)
    if descriptor is not None:
        return str(descriptor.full_name)
    ros_type = getattr(message, "_type", None)
    return normalise_schema_name(ros_type) if isinstance(ros_type, str) else None
