"""Per-segment taggers: one module per tag, the protocol and registry in ``base``.

See docs/tags.md for the exact definition of every tag.
"""

from __future__ import annotations

from ingest.tags.base import (
    ENTRY_POINT_GROUP,
    TAG_COLUMNS,
    Fix,
    SegmentContext,
    Tagger,
    load_taggers,
)
from ingest.tags.time_of_day import TimeOfDay
from ingest.tags.weather import Weather

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
