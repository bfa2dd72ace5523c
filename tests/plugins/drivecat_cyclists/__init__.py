"""A drivecat tagger plugin: the most cyclists within 10 m of the ego vehicle at one moment.

For each detections message (``drivecat.perception.ObjectList`` or its ROS or JSON twin)
the tagger counts the distinct ``track_id``s of class ``CYCLIST`` whose horizontal range
``hypot(x, y)`` in the ego frame is at most ``radius_m`` (10 m; ``[tags.cyclists]
radius_m`` in drivecat.toml changes it). A segment's value is the largest such count; a
segment without detections messages has none (the key is then absent from
``segments.tags``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from drivecat.ingest.config import Config
from drivecat.ingest.tags.base import SegmentContext, as_float, tagger_config, value_of
from drivecat.types import Role

CYCLIST = 2  # drivecat.perception.ObjectClass.CYCLIST, the contract's number
COLUMN = "cyclists_within_10m"


class CyclistTagger:
    """Registered as ``cyclists`` in the ``drivecat.taggers`` entry point group; drivecat
    calls the class with the ingest Config."""

    name = "cyclists"
    columns = (COLUMN,)
    roles = frozenset({Role.DETECTIONS})

    def __init__(self, config: Config) -> None:
        self.radius_m = float(tagger_config(config, self.name).get("radius_m", 10.0))
        self._most: int | None = None

    def on_message(self, role: Role, topic: str, log_time_ns: int, decoded: Any) -> None:
        objects = value_of(decoded, "objects")
        if objects is None:  # not an ObjectList-shaped message: it does not count
            return
        near = {
            value_of(o, "track_id")
            for o in objects
            if _is_cyclist(value_of(o, "object_class")) and self._within(o)
        }
        self._most = max(self._most or 0, len(near))

    def finish(self, segment: SegmentContext) -> Mapping[str, Any]:
        most, self._most = self._most, None
        return {COLUMN: most}

    def _within(self, obj: Any) -> bool:
        x, y = as_float(value_of(obj, "x")), as_float(value_of(obj, "y"))
        return x is not None and y is not None and math.hypot(x, y) <= self.radius_m


def _is_cyclist(value: Any) -> bool:
    return value == "CYCLIST" if isinstance(value, str) else value == CYCLIST  # JSON: names
