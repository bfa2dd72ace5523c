"""truth.json agrees with the messages: every field recomputed here, independently of
sample_logs.truth, from the MCAPs read back with the mcap library (docs/tags.md rules)."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h3
import numpy as np
import pytest

import sample_logs
from sample_logs.generate import generate
from sample_logs.truth import (
    distance_m,
    is_keyframe_h264,
    majority_weather,
    solar_elevation_deg,
    weather_of,
)
from sample_logs.world import World
from tests.sample_logs.test_generate import Read, read_messages

TINY = Path(sample_logs.__file__).parent / "tiny"
R_EARTH = 6_371_008.8
SEC = 1_000_000_000
ROLE = {
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


def stamp(msg: Any) -> int:
    ts = msg.timestamp
    if hasattr(ts, "nanosec"):  # ROS 2 builtin_interfaces/Time
        return int(ts.sec) * SEC + int(ts.nanosec)
    return int(ts.seconds) * SEC + int(ts.nanos)


def rule_weather(s: Any) -> str:
    if s.fog_lights:
        return "fog"
    wet = s.wipers >= 2  # WIPER_LOW
    if s.outside_temp_c <= 1.0 and (wet or s.rain_intensity >= 0.2):
        return "snow"
    return "rain" if wet or s.rain_intensity >= 0.3 else "clear"


def majority(values: list[str]) -> str:
    if not values:
        return "unknown"
    tally = {w: values.count(w) for w in ("clear", "rain", "snow", "fog")}
    best = max(tally.values())
    # The first in severity order among the most common wins.
    return next(w for w in ("fog", "snow", "rain", "clear") if tally[w] == best)


def haversine(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> Any:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = (
        np.sin((p2 - p1) / 2) ** 2
        + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * R_EARTH * np.arcsin(np.sqrt(a))


def elevation(lat: float, lon: float, t_ns: int) -> float:
    """Geometric solar elevation by NOAA's solar calculator (Julian centuries), written out
    here apart from sample_logs.truth (astral) and the tagger."""
    jc = (t_ns / SEC / 86400 + 2440587.5 - 2451545) / 36525
    l0 = (280.46646 + jc * (36000.76983 + jc * 0.0003032)) % 360
    m = math.radians(357.52911 + jc * (35999.05029 - 0.0001537 * jc))
    e = 0.016708634 - jc * (0.000042037 + 0.0000001267 * jc)
    c = math.sin(m) * (1.914602 - jc * (0.004817 + 0.000014 * jc)) + math.sin(2 * m) * (
        0.019993 - 0.000101 * jc
    )
    lam = math.radians(l0 + c - 0.00569 - 0.00478 * math.sin(math.radians(125.04 - 1934.136 * jc)))
    eps = math.radians(23.439291 - jc * 0.0130042)
    decl = math.asin(math.sin(eps) * math.sin(lam))
    y = math.tan(eps / 2) ** 2
    l0r = math.radians(l0)
    eqt = 4 * math.degrees(
        y * math.sin(2 * l0r)
        - 2 * e * math.sin(m)
        + 4 * e * y * math.sin(m) * math.cos(2 * l0r)
        - 0.5 * y * y * math.sin(4 * l0r)
        - 1.25 * e * e * math.sin(2 * m)
    )
    minutes = (t_ns % (86400 * SEC)) / (60 * SEC)
    ha = math.radians((minutes + eqt + 4 * lon) / 4 - 180)
    phi = math.radians(lat)
    x = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha)
    return 90 - math.degrees(math.acos(x))


def light(elev: float) -> str:
    return "day" if elev >= 6 else "night" if elev < -6 else "dawn_dusk"


class Drive:
    """The tag inputs of a drive as read back: GPS fixes, weather per State, pedestrians."""

    def __init__(self, folder: Path) -> None:
        self.by_topic: dict[str, list[Read]] = {}
        for m in read_messages(folder):
            self.by_topic.setdefault(m.topic, []).append(m)
        gps = sorted(
            (m.message.log_time, m.decoded.latitude, m.decoded.longitude)
            for m in self.by_topic["/gps/fix"]
        )
        self.g_t = np.array([g[0] for g in gps], dtype=np.int64)
        self.g_lat, self.g_lon = np.array([g[1] for g in gps]), np.array([g[2] for g in gps])
        geo = json.loads((folder / "intersections.geojson").read_text())
        pts = np.array([f["geometry"]["coordinates"] for f in geo["features"]])  # lon, lat
        self.near = np.array(
            [
                haversine(la, lo, pts[:, 1], pts[:, 0]).min() <= 15.0
                for la, lo in zip(self.g_lat, self.g_lon, strict=True)
            ]
        )
        self.states = [
            (m.message.log_time, rule_weather(m.decoded)) for m in self.by_topic["/vehicle/state"]
        ]
        self.dets = [
            (
                m.message.log_time,
                [
                    (o.track_id, math.hypot(o.x, o.y))
                    for o in m.decoded.objects
                    if o.object_class == 1
                ],
            )
            for m in self.by_topic["/perception/objects"]
        ]

    def window(self, lo: int, hi: int) -> dict[str, Any]:
        mid = (lo + hi) // 2
        lat, lon = (
            float(np.interp(mid, self.g_t, self.g_lat)),
            float(np.interp(mid, self.g_t, self.g_lon)),
        )
        inside = (self.g_t >= lo) & (self.g_t < hi)
        ds = [p for t, p in self.dets if lo <= t < hi]
        return {
            "lat": lat,
            "lon": lon,
            "weather": majority([w for t, w in self.states if lo <= t < hi]),
            "at_intersection": bool(self.near[inside].any()) if inside.any() else None,
            "pedestrian_count": max(
                (len({i for i, r in p if r <= 30.0}) for p in ds), default=None
            ),
            "pedestrians_within_5m": any(r <= 5.0 for p in ds for _, r in p) if ds else None,
            "time_of_day": light(elevation(lat, lon, mid)),
        }

    def segment(self, k: int, lo: int, hi: int) -> dict[str, Any]:
        seg = {"seg_idx": k, "start_ns": lo, "end_ns": hi, **self.window(lo, hi)}
        inside = (self.g_t >= lo) & (self.g_t < hi)
        la, lo_, t = self.g_lat[inside], self.g_lon[inside], self.g_t[inside]
        cell = h3.str_to_int(h3.latlng_to_cell(seg["lat"], seg["lon"], 9))
        cells = {h3.str_to_int(h3.latlng_to_cell(a, b, 9)) for a, b in zip(la, lo_, strict=True)}
        seg["h3_cell"], seg["h3_cells"] = cell, sorted(cells | {cell})
        seg["distance_m"] = float(haversine(la[:-1], lo_[:-1], la[1:], lo_[1:]).sum())
        seg["speed"] = seg["distance_m"] / ((t[-1] - t[0]) / SEC)
        return seg


def expected(folder: Path) -> dict[str, Any]:
    """truth.json's start/end, seconds, segments and topics, recomputed."""
    drive = Drive(folder)
    times = [m.message.log_time for items in drive.by_topic.values() for m in items]
    rear = [stamp(m.decoded) for m in drive.by_topic.get("/camera/rear/video/frame_times", [])]
    start, end = min(times + rear), max(times + rear) + 1
    seconds = [
        {"t_ns": lo, **drive.window(lo, min(lo + SEC, end))} for lo in range(start, end, SEC)
    ]
    segments = [
        drive.segment(k, lo, min(lo + 10 * SEC, end))
        for k, lo in enumerate(range(start, end, 10 * SEC))
    ]
    topics = {
        t: {
            "message_count": len(items),
            "schema_name": items[0].schema.name,
            "message_encoding": items[0].channel.message_encoding,
            "role": ROLE.get(items[0].schema.name, "other"),
        }
        for t, items in drive.by_topic.items()
    }
    return {
        "start_ns": start,
        "end_ns": end,
        "seconds": seconds,
        "segments": segments,
        "topics": topics,
    }


def same(got: dict[str, Any], want: dict[str, Any], where: str) -> None:
    for key, value in want.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-9), f"{where} {key}"
        else:
            assert got[key] == value, f"{where} {key}"


@pytest.mark.parametrize("drive", ["small_drive", "sidecar_drive", "truncated_drive", "tiny"])
def test_truth_matches_recomputation(drive: str, request: pytest.FixtureRequest) -> None:
    folder: Path = TINY if drive == "tiny" else request.getfixturevalue(drive)
    doc = json.loads((folder / "truth.json").read_text())
    want = expected(folder)
    assert (doc["start_ns"], doc["end_ns"]) == (want["start_ns"], want["end_ns"])
    assert doc["segment_seconds"] == 10 and doc["h3_resolution"] == 9
    for topic, entry in want["topics"].items():
        same(doc["topics"][topic], entry, topic)
    assert set(doc["topics"]) - set(want["topics"]) <= {"/camera/rear/video"}
    assert len(doc["segments"]) == len(want["segments"])
    for got, exp in zip(doc["segments"], want["segments"], strict=True):
        same(got, exp, f"segment {exp['seg_idx']}")
    assert len(doc["seconds"]) == len(want["seconds"])
    for got, exp in zip(doc["seconds"], want["seconds"], strict=True):
        same(got, exp, f"second {exp['t_ns']}")
    assert doc["drive_id"].startswith(doc["device"]["device_id"] + "_")
    start = datetime.fromtimestamp(doc["start_ns"] // SEC, tz=UTC)
    assert doc["drive_id"].endswith(start.strftime("%Y-%m-%dT%H%M%SZ"))


def test_truths_sun_is_geometric_and_agrees_with_noaas_calculator() -> None:
    """truth's elevation (astral, refraction off) against the formula written out above, at
    places and times all over the globe and year: within 0.02 degrees everywhere."""
    rng = np.random.default_rng(3)
    worst = 0.0
    for _ in range(500):
        lat, lon = rng.uniform(-66, 66), rng.uniform(-180, 180)
        t = int(rng.integers(1_600_000_000, 2_000_000_000)) * SEC + int(rng.integers(0, SEC))
        worst = max(worst, abs(solar_elevation_deg(lat, lon, t) - elevation(lat, lon, t)))
    assert worst < 0.02
    # Refraction would lift the sun ~0.5 degrees at the horizon: Greenwich sunset, 2024-03-20
    # 18:14 GMT (published, upper limb on the horizon) is at a geometric -0.83 degrees.
    sunset = int(datetime(2024, 3, 20, 18, 14, tzinfo=UTC).timestamp()) * SEC
    assert solar_elevation_deg(51.4779, 0.0, sunset) == pytest.approx(-0.833, abs=0.2)


def test_small_drive_truth_covers_interesting_cases(small_drive: Path) -> None:
    """Seed 1 passes intersections and open road, and sees pedestrians both within 30 m and
    only between 30 and 60 m, which must not be counted."""
    doc = json.loads((small_drive / "truth.json").read_text())
    assert {s["at_intersection"] for s in doc["seconds"]} == {True, False}
    far_only = 0
    for m in read_messages(small_drive):
        if m.topic == "/perception/objects":
            ranges = [math.hypot(o.x, o.y) for o in m.decoded.objects if o.object_class == 1]
            far_only += any(30 < r <= 60 for r in ranges)
    assert far_only > 0
    assert max(s["pedestrian_count"] for s in doc["segments"]) >= 2


def test_rules_on_hand_made_values() -> None:
    assert majority_weather(["rain", "clear"]) == "rain"  # a tie goes to the more severe
    assert majority_weather(["fog", "snow", "snow", "fog", "clear"]) == "fog"
    assert majority_weather(["clear", "clear", "rain"]) == "clear"
    assert majority_weather([]) == "unknown"
    assert weather_of(False, 1.0, 0, 0.2) == "snow"
    assert weather_of(False, 1.1, 0, 0.2) == "clear"
    assert weather_of(False, 10.0, 1, 0.29) == "clear"  # intermittent wipers alone are not rain
    assert weather_of(False, 10.0, 2, 0.0) == "rain"
    assert weather_of(True, -5.0, 3, 0.9) == "fog"
    assert distance_m(0.0, 0.0, 1.0, 0.0) == pytest.approx(R_EARTH * math.pi / 180, rel=1e-12)
    idr = b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x68\xce\x00\x00\x01\x65\x88"
    assert is_keyframe_h264(idr)
    assert not is_keyframe_h264(b"\x00\x00\x00\x01\x09\xf0\x00\x00\x01\x41\x9a")


def test_worlds_cover_every_tag_value() -> None:
    """Over a few seeds the simulated world shows every weather and light, pedestrian counts
    from 0 to 5+ within 30 m, pedestrians within 5 m, pedestrians only 30-60 m away, and
    time both near and away from intersections."""
    weather, light_seen, counts, near5, far, at_x = set(), set(), set(), set(), 0, set()
    for seed in range(8):
        world = World(seed, 60)
        xs = np.array([p for p in world.intersections()])
        for k in range(0, 600, 2):
            t = k / 10
            ego, sig = world.ego(t), world.signals(t)
            weather.add(
                weather_of(sig.fog_lights, sig.outside_temp_c, sig.wipers, sig.rain_intensity)
            )
            light_seen.add(world.light(t))
            r = [math.hypot(o.x, o.y) for o in world.objects(t, ego) if o.object_class == 1]
            counts.add(min(sum(x <= 30 for x in r), 5))
            near5.add(any(x <= 5 for x in r))
            far += bool(r) and min(r) > 30
            at_x.add(bool((haversine(ego.lat, ego.lon, xs[:, 0], xs[:, 1]) <= 15).any()))
    assert weather == {"clear", "rain", "snow", "fog"}
    assert light_seen == {"day", "dawn_dusk", "night"}
    assert counts == set(range(6)) and near5 == at_x == {True, False} and far > 0


def test_committed_tiny_sample_is_whole_and_small() -> None:
    """The committed sample is what sample_logs/__init__.py says, and every file is the one
    its truth describes (no half-regenerated commit)."""
    doc = json.loads((TINY / "truth.json").read_text())
    assert doc["generator"] == {
        "seed": 5,
        "seconds": 20.0,
        "variants": ["sidecar"],
        "split_every": 30.0,
        "lidar_points": 1000,
        "crf": 32,
    }
    for entry in doc["files"]:
        data = (TINY / entry["name"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["bytes"], entry["sha256"])
    assert sum(p.stat().st_size for p in TINY.iterdir()) < 5_000_000
    assert {s["at_intersection"] for s in doc["segments"]} == {True, False}


def test_ros2_variant_is_the_same_drive_in_cdr(tmp_path: Path) -> None:
    """A ROS 2 drive is recorded as cdr/ros2msg, its truth matches its own CDR messages, and
    its tags equal those of the protobuf drive of the same seed."""
    args: dict[str, Any] = {"seconds": 6, "seed": 4, "lidar_points": 100}
    plain = generate(tmp_path / "plain", **args)
    ros = generate(tmp_path / "ros2", variants=("ros2",), **args)
    doc = json.loads((ros / "truth.json").read_text())
    want = expected(ros)
    assert {t: e["message_encoding"] for t, e in want["topics"].items()} == dict.fromkeys(
        want["topics"], "cdr"
    )
    assert want["topics"]["/gps/fix"]["schema_name"] == "sensor_msgs/msg/NavSatFix"
    for topic, entry in want["topics"].items():
        same(doc["topics"][topic], entry, topic)
    for got, exp in zip(doc["segments"], want["segments"], strict=True):
        same(got, exp, f"segment {exp['seg_idx']}")
    base = json.loads((plain / "truth.json").read_text())
    assert doc["segments"] == base["segments"] and doc["seconds"] == base["seconds"]
    assert doc["videos"] == base["videos"]
