"""pedestrian_count and pedestrians_within_5m, from the on-device detections.

For each detections message, the pedestrians and their range ``hypot(x, y)`` in the
message's frame, taken to be the ego frame (x forward, y left):

- ``drivecat.perception.ObjectList`` (the contract source): objects with
  ``object_class == PEDESTRIAN``; identity is ``track_id``.
- ``foxglove.SceneUpdate``: entities with a ``metadata`` pair whose key is ``class``,
  ``label``, ``category`` or ``object_class`` and whose value is one of ``class_ids``;
  identity is the entity ``id`` (else its index); position is the pose of its first
  primitive (cube, sphere, cylinder, arrow, model, text). Deletions are ignored.
- ``vision_msgs/Detection3DArray``: detections with a result whose class is one of
  ``class_ids`` (ROS 2 ``results[i].hypothesis.class_id``, ROS 1 ``results[i].id``, compared
  as text); identity is the detection ``id`` (or ``tracking_id``) when set, else its index;
  position is ``bbox.center.position``.

``class_ids`` defaults to ``["pedestrian", "person"]`` (case-insensitive) and is set with
``[tags.pedestrians] class_ids``. When a segment has any ObjectList message, only ObjectList
messages count there, so a visualization of the same objects is never counted twice.

``pedestrian_count`` is the largest number of distinct identities within ``max_range_m``
(30 m) in any one message; ``pedestrians_within_5m`` whether any of them was within
``near_m`` (5 m). Both are NULL for a segment without a detections message; other message
types on the detections role (2D detections) are not detections messages here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple

from drivecat.ingest.config import Config
from drivecat.ingest.errors import IngestError
from drivecat.ingest.roles import Role
from drivecat.ingest.tags.base import SegmentContext, as_float, tagger_config, type_name, value_of
from drivecat.schemas.messages import ObjectClass

_LABEL_KEYS = frozenset({"class", "label", "category", "object_class"})
_PRIMITIVES = ("cubes", "spheres", "cylinders", "arrows", "models", "texts")
DEFAULT_CLASS_IDS = ("pedestrian", "person")
_PEDESTRIAN = int(ObjectClass.PEDESTRIAN)


class Sighting(NamedTuple):
    """One pedestrian in one message: its identity and its horizontal range in metres."""

    identity: str
    range_m: float


def _xy_range(position: Any) -> float | None:
    if position is None:
        return None
    x, y = as_float(value_of(position, "x")), as_float(value_of(position, "y"))
    if x is None or y is None:
        return None
    return math.hypot(x, y)


def _class_number(name: str) -> int:
    try:
        return int(ObjectClass.Value(name))
    except ValueError:
        return -1


def _object_list(message: Any) -> Iterator[Sighting]:
    if not isinstance(message, dict):  # protobuf: the hot path, plain attribute access
        for obj in message.objects:
            if obj.object_class == _PEDESTRIAN:
                yield Sighting(f"track:{obj.track_id}", math.hypot(obj.x, obj.y))
        return
    for obj in message.get("objects") or ():
        cls = value_of(obj, "object_class", 0)
        if isinstance(cls, str):  # JSON carries enum names
            cls = _class_number(cls)
        if cls != _PEDESTRIAN:
            continue
        found = _xy_range(obj)
        if found is not None:
            yield Sighting(f"track:{value_of(obj, 'track_id', 0)}", found)


def _scene_update(message: Any, class_ids: frozenset[str]) -> Iterator[Sighting]:
    for index, entity in enumerate(value_of(message, "entities", None) or ()):
        labels = {
            str(value_of(kv, "value", "")).lower()
            for kv in value_of(entity, "metadata", None) or ()
            if str(value_of(kv, "key", "")).lower() in _LABEL_KEYS
        }
        if not labels & class_ids:
            continue
        for kind in _PRIMITIVES:
            shapes = value_of(entity, kind, None) or ()
            if shapes:
                pose = value_of(shapes[0], "pose", None)
                found = _xy_range(value_of(pose, "position", None) if pose is not None else None)
                if found is not None:
                    ident = value_of(entity, "id", "")
                    yield Sighting(f"entity:{ident}" if ident else f"index:{index}", found)
                break


def _result_class(result: Any) -> str:
    hypothesis = value_of(result, "hypothesis", None)
    if hypothesis is not None:  # ROS 2 (vision_msgs >= 3)
        return str(value_of(hypothesis, "class_id", "")).lower()
    return str(value_of(result, "id", "")).lower()  # ROS 1


def _detections(message: Any, class_ids: frozenset[str]) -> Iterator[Sighting]:
    for index, detection in enumerate(value_of(message, "detections", None) or ()):
        results = value_of(detection, "results", None) or ()
        if not any(_result_class(r) in class_ids for r in results):
            continue
        bbox = value_of(detection, "bbox", None)
        center = value_of(bbox, "center", None) if bbox is not None else None
        found = _xy_range(value_of(center, "position", None) if center is not None else None)
        if found is None:
            continue
        ident = value_of(detection, "id", "") or value_of(detection, "tracking_id", "")
        yield Sighting(f"det:{ident}" if ident else f"index:{index}", found)


class Source(Enum):
    """The kinds of detections message this tagger reads."""

    OBJECT_LIST = "drivecat.perception.ObjectList"
    SCENE_UPDATE = "foxglove.SceneUpdate"
    DETECTION_3D = "vision_msgs/Detection3DArray"


_BY_NAME = {s.value: s for s in Source}
_BY_NAME["drivecat_msgs/ObjectList"] = Source.OBJECT_LIST  # the contract message as a ROS 2 type


def source_of(message: Any) -> Source | None:
    """Which kind of detections message this is, from its type name or, for JSON, its fields;
    None for anything else (2D detections, say)."""
    name = type_name(message)
    if name is not None:
        return _BY_NAME.get(name)
    if not isinstance(message, dict):
        return None
    if "objects" in message:
        return Source.OBJECT_LIST
    if "entities" in message:
        return Source.SCENE_UPDATE
    if "detections" in message:
        return Source.DETECTION_3D
    return None


def sightings(message: Any, class_ids: Iterable[str] = DEFAULT_CLASS_IDS) -> list[Sighting] | None:
    """The pedestrians in one decoded detections message; None when it is not a detections
    message this tagger reads (then it does not count as one)."""
    ids = frozenset(c.lower() for c in class_ids)
    source = source_of(message)
    if source is Source.OBJECT_LIST:
        return list(_object_list(message))
    if source is Source.SCENE_UPDATE:
        return list(_scene_update(message, ids))
    if source is Source.DETECTION_3D:
        return list(_detections(message, ids))
    return None


@dataclass
class _Tally:
    messages: int = 0
    count: int = 0
    near: bool = False

    def add(self, found: list[Sighting], max_range_m: float, near_m: float) -> None:
        close = [s for s in found if s.range_m <= max_range_m]
        self.messages += 1
        self.count = max(self.count, len({s.identity for s in close}))
        self.near = self.near or any(s.range_m <= near_m for s in close)


class PedestrianTagger:
    name: str = "pedestrians"
    columns: tuple[str, ...] = ("pedestrian_count", "pedestrians_within_5m")
    roles: frozenset[Role] = frozenset({Role.DETECTIONS})

    def __init__(self, config: Config) -> None:
        section = tagger_config(config, self.name)
        try:
            ids = section.get("class_ids", DEFAULT_CLASS_IDS)
            self.class_ids = frozenset(str(c).lower() for c in ids)
            self.max_range_m = float(section.get("max_range_m", 30.0))
            self.near_m = float(section.get("near_m", 5.0))
        except (TypeError, ValueError) as err:
            raise IngestError(f"drivecat.toml: [tags.pedestrians]: invalid value: {err}") from None
        self._contract = _Tally()  # ObjectList messages
        self._other = _Tally()  # SceneUpdate and Detection3DArray, used only without ObjectList

    def on_message(self, role: Role, topic: str, log_time_ns: int, decoded: Any) -> None:
        found = sightings(decoded, self.class_ids)
        if found is None:
            return
        tally = self._contract if source_of(decoded) is Source.OBJECT_LIST else self._other
        tally.add(found, self.max_range_m, self.near_m)

    def finish(self, segment: SegmentContext) -> Mapping[str, Any]:
        tally = self._contract if self._contract.messages else self._other
        self._contract, self._other = _Tally(), _Tally()
        if not tally.messages:
            return {"pedestrian_count": None, "pedestrians_within_5m": None}
        return {"pedestrian_count": tally.count, "pedestrians_within_5m": tally.near}
