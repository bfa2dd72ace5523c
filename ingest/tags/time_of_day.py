"""time_of_day: day, dawn_dusk or night from the solar elevation at the segment's midpoint.

The elevation comes from NOAA's general solar position equations (the fractional-year
Fourier series), exactly as docs/tags.md writes them, in UTC. ``day`` when the elevation
is at least 6 degrees, ``night`` below -6 degrees, ``dawn_dusk`` in between (Waymo's split).
NULL when the segment has no position.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from drivecat.ingest.config import Config
from drivecat.ingest.roles import Role
from drivecat.ingest.tags.base import SegmentContext

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR_NS = 3_600_000_000_000
_DAY_NS = 24 * _HOUR_NS


class TimeOfDay(StrEnum):
    DAY = "day"
    DAWN_DUSK = "dawn_dusk"
    NIGHT = "night"


def solar_elevation_deg(lat: float, lon: float, time_ns: int) -> float:
    """Solar elevation in degrees (no refraction) at WGS84 ``lat``/``lon`` (degrees, east
    positive) and ``time_ns`` (ns since the Unix epoch, UTC), by NOAA's general equations.
    """
    # Unix time has no leap seconds: every UTC day is exactly 86,400 s of it.
    day, ns_of_day = divmod(time_ns, _DAY_NS)
    when = _EPOCH + timedelta(days=day)
    doy = when.timetuple().tm_yday
    hour = ns_of_day / _HOUR_NS
    days_in_year = 366 if calendar.isleap(when.year) else 365
    g = 2 * math.pi / days_in_year * (doy - 1 + (hour - 12) / 24)
    eqt = 229.18 * (
        0.000075
        + 0.001868 * math.cos(g)
        - 0.032077 * math.sin(g)
        - 0.014615 * math.cos(2 * g)
        - 0.040849 * math.sin(2 * g)
    )
    decl = (
        0.006918
        - 0.399912 * math.cos(g)
        + 0.070257 * math.sin(g)
        - 0.006758 * math.cos(2 * g)
        + 0.000907 * math.sin(2 * g)
        - 0.002697 * math.cos(3 * g)
        + 0.00148 * math.sin(3 * g)
    )
    tst = hour * 60 + eqt + 4 * lon
    ha = math.radians(tst / 4 - 180)
    phi = math.radians(lat)
    cos_zenith = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha)
    return 90 - math.degrees(math.acos(min(1.0, max(-1.0, cos_zenith))))


def classify(elevation_deg: float) -> TimeOfDay:
    if elevation_deg >= 6.0:
        return TimeOfDay.DAY
    if elevation_deg >= -6.0:
        return TimeOfDay.DAWN_DUSK
    return TimeOfDay.NIGHT


def time_of_day(lat: float | None, lon: float | None, time_ns: int) -> TimeOfDay | None:
    """The class at a position and time; None without a position."""
    if lat is None or lon is None:
        return None
    return classify(solar_elevation_deg(lat, lon, time_ns))


class TimeOfDayTagger:
    """Consumes no messages, so the builder finishes it once the midpoint position is final."""

    name: str = "time_of_day"
    columns: tuple[str, ...] = ("time_of_day",)
    roles: frozenset[Role] = frozenset()

    def __init__(self, config: Config) -> None:
        pass

    def on_message(self, role: Role, topic: str, log_time_ns: int, decoded: Any) -> None:
        pass

    def finish(self, segment: SegmentContext) -> Mapping[str, Any]:
        tod = time_of_day(segment.lat, segment.lon, segment.mid_ns)
        return {"time_of_day": None if tod is None else tod.value}
