"""Per-segment taggers: one module per tag, the protocol and registry in ``base``.

See docs/tags.md for the exact definition of every tag.
"""

from __future__ import annotations

from drivecat.ingest.tags.base import (
    ENTRY_POINT_GROUP,
    TAG_COLUMNS,
    Fix,
    SegmentContext,
    Tagger,
    load_taggers,
)
from drivecat.ingest.tags.time_of_day import TimeOfDay
from drivecat.ingest.tags.weather import Weather

__all__ = [
    "ENTRY_POINT_GROUP",
    "TAG_COLUMNS",
    "Fix",
    "SegmentContext",
    "Tagger",
    "TimeOfDay",
    "Weather",
    "load_taggers",
]
