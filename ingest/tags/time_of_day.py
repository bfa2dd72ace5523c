"""time_of_day: day, dawn_dusk or night from the solar elevation at the segment's midpoint.

The elevation is geometric (no atmospheric refraction: the twilight boundaries are defined
on the true position of the sun's centre), computed with NOAA's solar calculator algorithm
(Meeus' low-precision solar coordinates in Julian centuries, with nutation and aberration),
in UTC, as docs/tags.md writes it. Its error against NREL's SPA is about 0.01 degrees;
NOAA's shorter "general equations", used before, were off by up to 0.57 degrees and put
0.3% of random times and places in the wrong class. ``day`` when the elevation is at least
6 degrees, ``night`` below -6 degrees, ``dawn_dusk`` in between (Waymo's split). NULL when
the segment has no position.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from drivecat.ingest.config import Config
from drivecat.ingest.roles import Role
from drivecat.ingest.tags.base import SegmentContext

_DAY_NS = 86_400_000_000_000
_MINUTE_NS = 60_000_000_000
# Julian date of the Unix epoch, and of J2000.0 (2000-01-01 12:00 TT, taken as UTC: the
# ~1 minute between them moves the sun by less than 0.001 degrees of longitude).
_JD_UNIX_EPOCH = 2_440_587.5
_JD_J2000 = 2_451_545.0


class TimeOfDay(StrEnum):
    DAY = "day"
    DAWN_DUSK = "dawn_dusk"
    NIGHT = "night"


def solar_elevation_deg(lat: float, lon: float, time_ns: int) -> float:
    """Geometric solar elevation in degrees (no refraction) at WGS84 ``lat``/``lon``
    (degrees, east positive) and ``time_ns`` (ns since the Unix epoch, UTC)."""
    # Unix time has no leap seconds: every UTC day is exactly 86,400 s of it.
    day, ns_of_day = divmod(time_ns, _DAY_NS)
    jc = (day + ns_of_day / _DAY_NS + _JD_UNIX_EPOCH - _JD_J2000) / 36_525  # Julian centuries
    mean_lon = (280.46646 + jc * (36_000.76983 + jc * 0.0003032)) % 360
    anomaly = math.radians(357.52911 + jc * (35_999.05029 - 0.0001537 * jc))
    eccentricity = 0.016708634 - jc * (0.000042037 + 0.0000001267 * jc)
    center = (
        math.sin(anomaly) * (1.914602 - jc * (0.004817 + 0.000014 * jc))
        + math.sin(2 * anomaly) * (0.019993 - 0.000101 * jc)
        + math.sin(3 * anomaly) * 0.000289
    )
    omega = math.radians(125.04 - 1934.136 * jc)  # the Moon's ascending node: nutation
    apparent_lon = math.radians(mean_lon + center - 0.00569 - 0.00478 * math.sin(omega))
    mean_obliquity = 23 + (26 + (21.448 - jc * (46.815 + jc * (0.00059 - jc * 0.001813))) / 60) / 60
    obliquity = math.radians(mean_obliquity + 0.00256 * math.cos(omega))
    declination = math.asin(math.sin(obliquity) * math.sin(apparent_lon))
    y = math.tan(obliquity / 2) ** 2
    l0 = math.radians(mean_lon)
    eq_of_time_min = 4 * math.degrees(
        y * math.sin(2 * l0)
        - 2 * eccentricity * math.sin(anomaly)
        + 4 * eccentricity * y * math.sin(anomaly) * math.cos(2 * l0)
        - 0.5 * y * y * math.sin(4 * l0)
        - 1.25 * eccentricity * eccentricity * math.sin(2 * anomaly)
    )
    true_solar_min = ns_of_day / _MINUTE_NS + eq_of_time_min + 4 * lon
    hour_angle = math.radians(true_solar_min / 4 - 180)
    phi = math.radians(lat)
    cos_zenith = math.sin(phi) * math.sin(declination) + math.cos(phi) * math.cos(
        declination
    ) * math.cos(hour_angle)
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
