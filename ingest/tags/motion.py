"""speed and distance_m: from GPS in a drive that has GPS, else from vehicle state.

A segment with GPS fixes: ``distance_m`` is the sum of haversine distances between
consecutive fixes (0 for a single fix) and ``speed`` (m/s) is ``distance_m`` over the time
between the first and the last fix (NULL when that time is 0).

A segment without fixes, from ``drivecat.vehicle.State``: ``distance_m`` integrates
``speed_mps`` by the left rectangle rule over the gaps between consecutive State messages
of the segment (each value holds until the next message; the last one adds nothing), and
``speed`` is the mean of ``speed_mps``; NULL without State messages.

"Without GPS" in docs/tags.md is read per drive: the segment builder blanks the State
values of fix-less segments when the drive has GPS at all (it alone knows that, at the end
of the drive), so a GPS drive's segment without a fix has no speed or distance, as the
sample_logs truth has it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

from drivecat.ingest.config import Config
from drivecat.ingest.roles import Role
from drivecat.ingest.tags.base import SegmentContext, as_float, haversine_m, value_of


def gps_motion(fixes: Sequence[tuple[int, float, float]]) -> tuple[float | None, float] | None:
    """(speed m/s, distance m) from fixes ``(log_time_ns, lat, lon)`` in time order; speed is
    None when the fixes span no time; None without fixes."""
    if not fixes:
        return None
    distance = sum(haversine_m(a[1], a[2], b[1], b[2]) for a, b in pairwise(fixes))
    span_s = (fixes[-1][0] - fixes[0][0]) / 1e9
    return (distance / span_s if span_s > 0 else None), distance


def state_motion(samples: Sequence[tuple[int, float]]) -> tuple[float, float] | None:
    """(mean speed m/s, distance m) from ``(log_time_ns, speed_mps)`` samples, or None."""
    if not samples:
        return None
    ordered = sorted(samples, key=lambda s: s[0])
    distance = sum(a[1] * (b[0] - a[0]) / 1e9 for a, b in pairwise(ordered))
    return sum(s[1] for s in ordered) / len(ordered), distance


class MotionTagger:
    name: str = "motion"
    columns: tuple[str, ...] = ("speed", "distance_m")
    roles: frozenset[Role] = frozenset({Role.VEHICLE})

    def __init__(self, config: Config) -> None:
        self._samples: list[tuple[int, float]] = []

    def on_message(self, role: Role, topic: str, log_time_ns: int, decoded: Any) -> None:
        speed = as_float(value_of(decoded, "speed_mps", 0.0))
        if speed is not None:
            self._samples.append((log_time_ns, speed))

    def finish(self, segment: SegmentContext) -> Mapping[str, Any]:
        found = gps_motion(segment.gps) or state_motion(self._samples)
        self._samples = []
        if found is None:
            return {"speed": None, "distance_m": None}
        return {"speed": found[0], "distance_m": found[1]}
