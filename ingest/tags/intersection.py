"""at_intersection: whether the ego path came within ``radius_m`` of a mapped intersection.

Two sources, both optional, set in ``[tags.intersection]``:

- ``map``: a GeoJSON FeatureCollection of Point (or MultiPoint) features, ``[lon, lat]``.
  The segment is true when any of its GPS fixes is within ``radius_m`` (default 15 m,
  haversine) of any point, false when it has fixes but none is that close.
- ``topic``: an on-device map-context topic (any role, any decodable encoding) whose
  messages carry a boolean ``at_intersection`` and/or a number
  ``distance_to_intersection_m``. A message says true when ``at_intersection`` is true or
  the distance is ``<= radius_m``. The segment is true when any such message says so,
  false when it has such messages and none does.

With both, the segment is true when either source says true, false when at least one has
evidence and none says true. NULL when neither has evidence for the segment (no map or no
fix, and no map-context message).

A map with no point within :data:`COVER_M` of any segment's first or last GPS fix does not
cover the drive: :meth:`IntersectionTagger.notes` says so once, and the pass turns that into
a warning and a ``tag_not_applicable`` quality row.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from drivecat.ingest.config import Config
from drivecat.ingest.errors import IngestError
from drivecat.ingest.roles import Role
from drivecat.ingest.tags.base import (
    EARTH_RADIUS_M,
    SegmentContext,
    as_float,
    haversine_m,
    tagger_config,
    value_of,
)

DEFAULT_RADIUS_M = 15.0
#: A map "covers" a drive when one of its points is this close to the drive's GPS track.
#: Farther, the map is of somewhere else (another city, a wrong file), and a false
#: at_intersection there says nothing about the road: the drive gets a warning.
COVER_M = 1000.0
_CELL_DEG = 0.01  # grid bucket size: ~1.1 km of latitude, a few buckets per query
_COLUMNS = round(360 / _CELL_DEG)


class IntersectionMap:
    """Intersection points bucketed in a lat/lon grid, for a fast "any point within r" check."""

    def __init__(self, points: list[tuple[float, float]]) -> None:
        """``points`` are ``(lat, lon)`` in degrees."""
        self.size = len(points)
        self._rows: dict[int, dict[int, list[tuple[float, float]]]] = defaultdict(dict)
        for lat, lon in points:
            row, col = self._bucket(lat, lon)
            self._rows[row].setdefault(col, []).append((lat, lon))

    @staticmethod
    def _bucket(lat: float, lon: float) -> tuple[int, int]:
        return math.floor(lat / _CELL_DEG), math.floor((lon + 180.0) / _CELL_DEG) % _COLUMNS

    def _candidates(self, lat: float, lon: float, radius_m: float) -> Iterator[tuple[float, float]]:
        # The lat/lon box that holds the spherical cap of radius_m around the fix.
        angle = radius_m / EARTH_RADIUS_M
        dlat = math.degrees(angle) * 1.001
        cos_lat = math.cos(math.radians(lat))
        whole_circle = cos_lat <= math.sin(angle) * 1.001  # the cap holds a pole
        dlon = 0.0 if whole_circle else math.degrees(math.asin(math.sin(angle) / cos_lat)) * 1.001
        first_row = math.floor((lat - dlat) / _CELL_DEG)
        last_row = math.floor((lat + dlat) / _CELL_DEG)
        first_col = math.floor((lon - dlon + 180.0) / _CELL_DEG)
        last_col = math.floor((lon + dlon + 180.0) / _CELL_DEG)
        for row in range(first_row, last_row + 1):
            columns = self._rows.get(row)
            if not columns:
                continue
            if whole_circle or last_col - first_col + 1 >= _COLUMNS:
                for bucket in columns.values():
                    yield from bucket
                continue
            for col in range(first_col, last_col + 1):
                yield from columns.get(col % _COLUMNS, ())

    def near(self, lat: float, lon: float, radius_m: float) -> bool:
        """Whether any point is within ``radius_m`` metres (haversine, inclusive)."""
        return any(
            haversine_m(lat, lon, plat, plon) <= radius_m
            for plat, plon in self._candidates(lat, lon, radius_m)
        )


def _points(geometry: Any, path: Path) -> Iterator[tuple[float, float]]:
    if not isinstance(geometry, dict):
        return
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    positions: list[Any] = [coords] if kind == "Point" else []
    if kind == "MultiPoint" and isinstance(coords, list):
        positions = coords
    for position in positions:
        try:
            lon, lat = float(position[0]), float(position[1])
        except (TypeError, ValueError, IndexError):
            raise IngestError(f"{path}: bad {kind} coordinates {position!r}") from None
        if not (-90.0 <= lat <= 90.0 and math.isfinite(lon)):
            raise IngestError(f"{path}: coordinates {position!r} are not [lon, lat]")
        yield lat, lon


@lru_cache(maxsize=4)
def _load_cached(path: Path, mtime_ns: int, size: int) -> IntersectionMap:
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise IngestError(f"{path}: cannot read the intersection map: {err}") from None
    if not isinstance(doc, dict):
        raise IngestError(f"{path}: the intersection map is not a GeoJSON object")
    if doc.get("type") == "FeatureCollection":
        features = doc.get("features") or []
    elif doc.get("type") == "Feature":
        features = [doc]
    else:
        features = [{"geometry": doc}]
    points = [
        point
        for feature in features
        if isinstance(feature, dict)
        for point in _points(feature.get("geometry"), path)
    ]
    return IntersectionMap(points)


def load_map(path: str | Path) -> IntersectionMap:
    """Read a GeoJSON map of intersection points; raises IngestError naming the file.

    Maps are cached by path, modification time and size, so many drives share one load.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as err:
        raise IngestError(f"{path}: cannot read the intersection map: {err}") from None
    return _load_cached(path, stat.st_mtime_ns, stat.st_size)


def context_says(message: Any, radius_m: float) -> bool | None:
    """What one map-context message says: True, False, or None when it has neither field."""
    flag = value_of(message, "at_intersection", None)
    distance = as_float(value_of(message, "distance_to_intersection_m", None))
    if flag is None and distance is None:
        return None
    return bool(flag) or (distance is not None and distance <= radius_m)


class IntersectionTagger:
    name: str = "intersection"
    columns: tuple[str, ...] = ("at_intersection",)
    roles: frozenset[Role] = frozenset()

    def __init__(self, config: Config) -> None:
        section = tagger_config(config, self.name)
        try:
            self.radius_m = float(section.get("radius_m", DEFAULT_RADIUS_M))
        except (TypeError, ValueError):
            raise IngestError("drivecat.toml: [tags.intersection]: bad radius_m") from None
        self.map_path = str(section["map"]) if section.get("map") else None
        self.map = load_map(section["map"]) if section.get("map") else None
        self._fixes_seen = False
        self._covered = False
        topic = section.get("topic")
        topics = [topic] if isinstance(topic, str) else list(topic or [])
        self.topics = frozenset(str(t) for t in topics)
        self._context: bool | None = None

    def on_message(self, role: Role, topic: str, log_time_ns: int, decoded: Any) -> None:
        says = context_says(decoded, self.radius_m)
        if says is not None:
            self._context = bool(self._context) or says

    def _from_map(self, segment: SegmentContext) -> bool | None:
        if self.map is None or not segment.gps:
            return None
        self._fixes_seen = True
        if not self._covered:  # two fixes a segment: cheap, and a track is continuous
            ends = (segment.gps[0], segment.gps[-1])
            self._covered = any(self.map.near(lat, lon, COVER_M) for _, lat, lon in ends)
        return any(self.map.near(lat, lon, self.radius_m) for _, lat, lon in segment.gps)

    def notes(self) -> list[str]:
        """After the last segment: why the configuration did not apply to this drive."""
        if self.map is None or not self._fixes_seen or self._covered:
            return []
        size = f"{self.map.size} points" if self.map.size else "no point"
        return [
            f"[tags.intersection] map {self.map_path} ({size}) does not cover this drive: "
            f"nothing within {COVER_M / 1000:g} km of its GPS track, so at_intersection "
            "is false there for want of a map, not of intersections"
        ]

    def finish(self, segment: SegmentContext) -> Mapping[str, Any]:
        evidence = [e for e in (self._from_map(segment), self._context) if e is not None]
        self._context = None
        return {"at_intersection": any(evidence) if evidence else None}
