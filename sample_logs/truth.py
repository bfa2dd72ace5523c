"""Ground truth of a generated drive, computed from the messages exactly as they were written.

The rules are those of ``docs/tags.md``: windows by ``log_time`` from the drive's first
``log_time``, weather by majority with the severity tie rule, position interpolated between
GPS fixes by ``log_time``, intersections within 15 m (great-circle distance), pedestrians
within 30 m and 5 m in the ego frame, time of day from the geometric solar elevation. Values
are decoded back from the serialized bytes, so float32 fields (rain intensity, temperature)
are judged as a reader will see them, not as the simulator meant them.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import h3
from astral import Observer
from astral.sun import elevation
from foxglove_schemas_protobuf.CompressedVideo_pb2 import CompressedVideo
from foxglove_schemas_protobuf.LocationFix_pb2 import LocationFix

# Nothing here comes from drivecat.ingest: truth computed with the code under test could not
# catch its bugs. Distances come from h3's great-circle distance, the sun from astral. The
# contract message classes are data definitions generated from schemas/proto, not logic.
from drivecat.schemas.messages import ObjectClass, ObjectList, State, WiperMode

SEGMENT_SECONDS = 10
# The segment tags truth.json records, named as the segments table's columns.
SEGMENT_TAGS = (
    "weather",
    "at_intersection",
    "pedestrian_count",
    "pedestrians_within_5m",
    "time_of_day",
    "h3_cell",
)
H3_RESOLUTION = 9
EARTH_RADIUS_M = 6_371_008.8  # docs/tags.md: the mean Earth radius (IUGG R1)
INTERSECTION_RADIUS_M = 15.0
PEDESTRIAN_RANGE_M = 30.0
PEDESTRIAN_NEAR_M = 5.0
WEATHER_SEVERITY = ("fog", "snow", "rain", "clear")  # ties go to the earlier one

ROLES = {
    "foxglove.CompressedVideo": "video",
    "foxglove.PointCloud": "lidar",
    "foxglove.LocationFix": "gps",
    "drivecat.perception.ObjectList": "detections",
    "drivecat.vehicle.State": "vehicle",
    "foxglove_msgs/msg/CompressedVideo": "video",
    "sensor_msgs/msg/PointCloud2": "lidar",
    "sensor_msgs/msg/NavSatFix": "gps",
    "drivecat_msgs/msg/ObjectList": "detections",
    "drivecat_msgs/msg/State": "vehicle",
}


# ---------------------------------------------------------------------------- tag rules


def weather_of(fog_lights: bool, outside_temp_c: float, wipers: int, rain_intensity: float) -> str:
    """The contract weather of one vehicle-state message (docs/tags.md, default thresholds)."""
    if fog_lights:
        return "fog"
    wet = wipers >= WiperMode.WIPER_LOW
    if outside_temp_c <= 1.0 and (wet or rain_intensity >= 0.2):
        return "snow"
    if wet or rain_intensity >= 0.3:
        return "rain"
    return "clear"


def majority_weather(values: Sequence[str]) -> str:
    """Most common value; a tie goes to the more severe (fog > snow > rain > clear)."""
    if not values:
        return "unknown"
    counts = Counter(values)
    return max(WEATHER_SEVERITY, key=lambda w: (counts[w], -WEATHER_SEVERITY.index(w)))


def time_of_day(elevation_deg: float) -> str:
    """day at >= 6 degrees, dawn_dusk in [-6, 6), night below -6 (Waymo's split)."""
    if elevation_deg >= 6.0:
        return "day"
    return "dawn_dusk" if elevation_deg >= -6.0 else "night"


def solar_elevation_deg(lat: float, lon: float, t_ns: int) -> float:
    """Geometric solar elevation, degrees, by astral. Without refraction: twilight is defined
    on the sun's true position (astral adds refraction unless told not to)."""
    when = datetime.fromtimestamp(t_ns // 1_000_000_000, tz=UTC) + timedelta(
        microseconds=(t_ns % 1_000_000_000) // 1000
    )
    return float(elevation(Observer(lat, lon), when, with_refraction=False))


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two WGS84 points: h3's central angle on the
    sphere of docs/tags.md's radius (h3's own unit="m" uses 6,371,007.18 m)."""
    return float(h3.great_circle_distance((lat1, lon1), (lat2, lon2), unit="rads")) * EARTH_RADIUS_M


def is_keyframe_h264(access_unit: bytes) -> bool:
    """Whether an Annex-B H.264 access unit holds an IDR slice (NAL type 5)."""
    i = access_unit.find(b"\x00\x00\x01")
    while i >= 0 and i + 3 < len(access_unit):
        if access_unit[i + 3] & 0x1F == 5:
            return True
        i = access_unit.find(b"\x00\x00\x01", i + 3)
    return False


# ---------------------------------------------------------------------------- collection


class _Written(NamedTuple):
    file_idx: int
    ordinal: int  # position in its file's write order
    topic: str
    log_time_ns: int


class _Fix(NamedTuple):
    log_time_ns: int
    lat: float
    lon: float


class _Peds(NamedTuple):
    log_time_ns: int
    ranges: tuple[tuple[int, float], ...]  # (track_id, horizontal range m) of pedestrians


@dataclass
class _Topic:
    schema_name: str
    message_encoding: str
    role: str
    sidecar: str | None = None


@dataclass
class TruthCollector:
    """Collects what truth needs from every written message, then computes truth.json's body.

    Feed ``add_message`` in write order with the serialized bytes. ``truncate`` forgets the
    messages a reader cannot recover from a cut file, so the truth describes what is readable.
    """

    written: list[_Written] = field(default_factory=list)
    topics: dict[str, _Topic] = field(default_factory=dict)
    fixes: list[tuple[_Written, _Fix]] = field(default_factory=list)
    states: list[tuple[_Written, int, str]] = field(default_factory=list)
    peds: list[tuple[_Written, _Peds]] = field(default_factory=list)
    frames: list[tuple[_Written, dict[str, Any]]] = field(default_factory=list)
    sidecar_frames: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _per_file: Counter[int] = field(default_factory=Counter)

    def add_message(
        self,
        file_idx: int,
        topic: str,
        schema_name: str,
        encoding: str,
        log_time_ns: int,
        data: bytes,
        written_as: tuple[str, str] | None = None,
    ) -> None:
        """Record one message as written (protobuf or JSON; other encodings are only counted).

        ``written_as`` is (schema name, message encoding) when the file holds the same content
        in another encoding (the ROS 2 variant); ``data`` is then the protobuf original.
        """
        rec = _Written(file_idx, self._per_file[file_idx], topic, log_time_ns)
        self._per_file[file_idx] += 1
        self.written.append(rec)
        if topic not in self.topics:
            name, enc = written_as or (schema_name, encoding)
            self.topics[topic] = _Topic(name, enc, ROLES.get(name, "other"))
        if encoding != "protobuf":
            return
        if schema_name == "foxglove.LocationFix":
            fix = LocationFix.FromString(data)
            self.fixes.append((rec, _Fix(log_time_ns, fix.latitude, fix.longitude)))
        elif schema_name == "drivecat.vehicle.State":
            s = State.FromString(data)
            w = weather_of(s.fog_lights, s.outside_temp_c, s.wipers, s.rain_intensity)
            self.states.append((rec, log_time_ns, w))
        elif schema_name == "drivecat.perception.ObjectList":
            objs = ObjectList.FromString(data).objects
            ranges = tuple(
                (o.track_id, math.hypot(o.x, o.y))
                for o in objs
                if o.object_class == ObjectClass.PEDESTRIAN
            )
            self.peds.append((rec, _Peds(log_time_ns, ranges)))
        elif schema_name == "foxglove.CompressedVideo":
            video = CompressedVideo.FromString(data)
            capture = video.timestamp.seconds * 1_000_000_000 + video.timestamp.nanos
            frame = {"capture_ns": capture, "log_time_ns": log_time_ns}
            frame["keyframe"] = is_keyframe_h264(video.data)
            self.frames.append((rec, frame))

    def add_sidecar(self, topic: str, file: str) -> None:
        """Announce a side-car video file; call before its frames (they may come from a thread)."""
        self.topics[topic] = _Topic("foxglove.CompressedVideo", "protobuf", "video", file)
        self.sidecar_frames[topic] = []

    def add_sidecar_frame(self, topic: str, capture_ns: int, unit: bytes) -> None:
        """One frame of a side-car video file; its log_time will be its capture time."""
        keyframe = is_keyframe_h264(unit)
        frame = {"capture_ns": capture_ns, "log_time_ns": capture_ns, "keyframe": keyframe}
        self.sidecar_frames[topic].append(frame)

    def truncate(self, file_idx: int, keep: int) -> None:
        """Forget the messages of file ``file_idx`` from write position ``keep`` on."""

        def kept(rec: _Written) -> bool:
            return rec.file_idx != file_idx or rec.ordinal < keep

        self.written = [r for r in self.written if kept(r)]
        self.fixes = [x for x in self.fixes if kept(x[0])]
        self.states = [x for x in self.states if kept(x[0])]
        self.peds = [x for x in self.peds if kept(x[0])]
        self.frames = [x for x in self.frames if kept(x[0])]

    def counts(self, file_idx: int | None = None) -> dict[str, int]:
        """Messages per topic, of one file or of all (side-car frames not included)."""
        recs = (r for r in self.written if file_idx is None or r.file_idx == file_idx)
        return dict(sorted(Counter(r.topic for r in recs).items()))

    def build(self, intersections: Sequence[tuple[float, float]]) -> dict[str, Any]:
        """start_ns, end_ns, seconds, segments, topics and videos, per docs/tags.md.

        ``intersections`` are (lat, lon) points of the map. Raises ValueError with no messages.
        """
        times = [r.log_time_ns for r in self.written]
        for frames in self.sidecar_frames.values():
            times.extend(f["log_time_ns"] for f in frames)
        if not times:
            raise ValueError("truth: the drive has no messages")
        start_ns, end_ns = min(times), max(times) + 1
        tagger = _Tagger(self, intersections)
        return {
            "start_ns": start_ns,
            "end_ns": end_ns,
            "segment_seconds": SEGMENT_SECONDS,
            "h3_resolution": H3_RESOLUTION,
            "seconds": tagger.windows(start_ns, end_ns, 1, with_cells=False),
            "segments": tagger.windows(start_ns, end_ns, SEGMENT_SECONDS, with_cells=True),
            "topics": self._topics_truth(),
            "videos": self._videos_truth(),
        }

    def _topics_truth(self) -> dict[str, Any]:
        counts = self.counts()
        out: dict[str, Any] = {}
        for topic, info in sorted(self.topics.items()):
            entry: dict[str, Any] = {
                "message_count": counts.get(topic, 0),
                "schema_name": info.schema_name,
                "message_encoding": info.message_encoding,
                "role": info.role,
            }
            if info.sidecar is not None:
                entry["message_count"] = len(self.sidecar_frames[topic])
                entry["sidecar"] = info.sidecar
            out[topic] = entry
        return out

    def _videos_truth(self) -> dict[str, Any]:
        videos: dict[str, list[dict[str, Any]]] = {}
        for rec, frame in self.frames:
            videos.setdefault(rec.topic, []).append(frame)
        videos.update(self.sidecar_frames)
        return {
            topic: {"frames": [{"index": i, **f} for i, f in enumerate(frames)]}
            for topic, frames in sorted(videos.items())
        }


# ---------------------------------------------------------------------------- windows


class _Tagger:
    """Tag values of time windows; all inputs sorted by log_time."""

    def __init__(self, c: TruthCollector, intersections: Sequence[tuple[float, float]]) -> None:
        self.fixes = sorted((f for _, f in c.fixes), key=lambda f: f.log_time_ns)
        self.fix_times = [f.log_time_ns for f in self.fixes]
        states = sorted((t, w) for _, t, w in c.states)
        self.state_times = [t for t, _ in states]
        self.state_weather = [w for _, w in states]
        self.peds = sorted((p for _, p in c.peds), key=lambda p: p.log_time_ns)
        self.ped_times = [p.log_time_ns for p in self.peds]
        self.near_fix = [_near_any(f, intersections) for f in self.fixes]
        self.has_map = bool(intersections)

    def windows(self, start_ns: int, end_ns: int, seconds: int, with_cells: bool) -> list[Any]:
        step = seconds * 1_000_000_000
        out = []
        for k in range(-(-(end_ns - start_ns) // step)):
            lo, hi = start_ns + k * step, min(start_ns + (k + 1) * step, end_ns)
            row: dict[str, Any] = (
                {"seg_idx": k, "start_ns": lo, "end_ns": hi} if with_cells else {"t_ns": lo}
            )
            row.update(self._tags(lo, hi, with_cells))
            out.append(row)
        return out

    def _tags(self, lo: int, hi: int, with_cells: bool) -> dict[str, Any]:
        mid = (lo + hi) // 2
        pos = self._position(mid)
        row: dict[str, Any] = {"lat": pos[0] if pos else None, "lon": pos[1] if pos else None}
        f0, f1 = bisect.bisect_left(self.fix_times, lo), bisect.bisect_left(self.fix_times, hi)
        if with_cells:
            cell = h3.str_to_int(h3.latlng_to_cell(pos[0], pos[1], H3_RESOLUTION)) if pos else None
            cells = {
                h3.str_to_int(h3.latlng_to_cell(f.lat, f.lon, H3_RESOLUTION))
                for f in self.fixes[f0:f1]
            }
            row["h3_cell"] = cell
            row["h3_cells"] = sorted(cells | ({cell} if cell is not None else set()))
            row.update(self._motion(f0, f1))
        s0, s1 = bisect.bisect_left(self.state_times, lo), bisect.bisect_left(self.state_times, hi)
        row["weather"] = majority_weather(self.state_weather[s0:s1])
        near = self.near_fix[f0:f1]
        row["at_intersection"] = any(near) if near and self.has_map else None
        p0, p1 = bisect.bisect_left(self.ped_times, lo), bisect.bisect_left(self.ped_times, hi)
        msgs = self.peds[p0:p1]
        if msgs:
            counts = [len({t for t, r in m.ranges if r <= PEDESTRIAN_RANGE_M}) for m in msgs]
            row["pedestrian_count"] = max(counts)
            row["pedestrians_within_5m"] = any(
                r <= PEDESTRIAN_NEAR_M for m in msgs for _, r in m.ranges
            )
        else:
            row["pedestrian_count"] = row["pedestrians_within_5m"] = None
        elev = solar_elevation_deg(pos[0], pos[1], mid) if pos else None
        row["time_of_day"] = time_of_day(elev) if elev is not None else None
        return row

    def _position(self, t_ns: int) -> tuple[float, float] | None:
        if not self.fixes:
            return None
        i = bisect.bisect_right(self.fix_times, t_ns)
        if i == 0:
            return self.fixes[0].lat, self.fixes[0].lon
        if i == len(self.fixes):
            return self.fixes[-1].lat, self.fixes[-1].lon
        a, b = self.fixes[i - 1], self.fixes[i]
        w = (t_ns - a.log_time_ns) / (b.log_time_ns - a.log_time_ns)
        return a.lat + (b.lat - a.lat) * w, a.lon + (b.lon - a.lon) * w

    def _motion(self, f0: int, f1: int) -> dict[str, Any]:
        fixes = self.fixes[f0:f1]
        if not fixes:
            return {"distance_m": None, "speed": None}
        dist = sum(
            distance_m(a.lat, a.lon, b.lat, b.lon) for a, b in zip(fixes, fixes[1:], strict=False)
        )
        span_s = (fixes[-1].log_time_ns - fixes[0].log_time_ns) / 1e9
        return {"distance_m": dist, "speed": dist / span_s if span_s > 0 else None}


def _near_any(fix: _Fix, points: Sequence[tuple[float, float]]) -> bool:
    # A cheap degree box first: 15 m is far below 0.001 degrees at any latitude we use.
    return any(
        abs(lat - fix.lat) < 0.001
        and abs(lon - fix.lon) < 0.002
        and distance_m(fix.lat, fix.lon, lat, lon) <= INTERSECTION_RADIUS_M
        for lat, lon in points
    )
