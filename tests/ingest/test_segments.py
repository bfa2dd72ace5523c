"""Segment windows, midpoint positions, H3 cells and row assembly, against hand-worked values."""

from __future__ import annotations

import heapq
import json
import math
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import h3
import pytest
from foxglove_schemas_protobuf.LocationFix_pb2 import LocationFix
from hypothesis import given, settings
from hypothesis import strategies as st
from mcap.reader import make_reader
from mcap_protobuf.decoder import DecoderFactory

from drivecat.catalog.tables import SEGMENTS
from drivecat.ingest.config import Config
from drivecat.ingest.errors import IngestError
from drivecat.ingest.roles import Role, role_for
from drivecat.ingest.segments import REORDER_NS, SegmentBuilder
from drivecat.ingest.tags.base import SegmentContext
from drivecat.schemas.messages import Object, ObjectClass, ObjectList, State, WiperMode
from sample_logs.generate import generate

SEC = 1_000_000_000
T0 = 1_781_544_600 * SEC  # 2026-06-15T17:30:00Z
R = 6_371_008.8


def cell(lat: float, lon: float, res: int = 9) -> int:
    return h3.str_to_int(h3.latlng_to_cell(lat, lon, res))


def fix(lat: float, lon: float) -> LocationFix:
    return LocationFix(latitude=lat, longitude=lon)


def run(
    messages: list[tuple[Role, str, int, Any]],
    end_ns: int | None = None,
    config: Config | None = None,
    taggers: list[Any] | None = None,
) -> list[dict[str, Any]]:
    builder = SegmentBuilder(config or Config(), T0, taggers)
    for role, topic, t, decoded in messages:
        builder.on_message(role, topic, t, decoded)
    last = max((m[2] for m in messages), default=T0)
    return builder.finish(end_ns if end_ns is not None else last + 1, "veh042_x", "4.2.1")


def test_windows_boundaries_and_the_last_partial_segment() -> None:
    times = [T0, T0 + 10 * SEC - 1, T0 + 10 * SEC, T0 + 25 * SEC]
    rows = run([(Role.VEHICLE, "/v", t, State()) for t in times])
    assert [(r["seg_idx"], r["start_ns"] - T0, r["end_ns"] - T0) for r in rows] == [
        (0, 0, 10 * SEC),
        (1, 10 * SEC, 20 * SEC),
        (2, 20 * SEC, 25 * SEC + 1),
    ]
    assert rows[0]["start_time"] == datetime(2026, 6, 15, 17, 30, 0, tzinfo=UTC)
    assert rows[2]["end_time"] == datetime(2026, 6, 15, 17, 30, 25, tzinfo=UTC)
    assert [r["weather"] for r in rows] == ["clear", "clear", "clear"]
    assert all(r["drive_id"] == "veh042_x" and r["device_version"] == "4.2.1" for r in rows)


def test_rows_have_exactly_the_segments_columns_and_fit_the_arrow_schema() -> None:
    rows = run([(Role.GPS, "/gps", T0 + i * SEC, fix(37.0, -122.0)) for i in range(12)])
    assert all(list(r) == [c.name for c in SEGMENTS.columns] for r in rows)
    table = SEGMENTS.from_rows(rows)
    assert table.num_rows == 2
    assert table.column("h3_cell").to_pylist() == [cell(37.0, -122.0)] * 2


def test_a_segment_without_messages_still_has_a_row() -> None:
    rows = run(
        [
            (Role.VEHICLE, "/v", T0, State(fog_lights=True)),
            (Role.VEHICLE, "/v", T0 + 31 * SEC, State()),
        ]
    )
    assert [r["seg_idx"] for r in rows] == [0, 1, 2, 3]
    assert [r["weather"] for r in rows] == ["fog", "unknown", "unknown", "clear"]
    assert [r["pedestrian_count"] for r in rows] == [None] * 4


def test_segment_length_from_config_and_end_past_the_last_tagged_message() -> None:
    config = Config(segment_seconds=2.5)
    rows = run([(Role.VEHICLE, "/v", T0, State())], end_ns=T0 + 6 * SEC, config=config)
    assert [(r["start_ns"] - T0, r["end_ns"] - T0) for r in rows] == [
        (0, 2_500_000_000),
        (2_500_000_000, 5_000_000_000),
        (5_000_000_000, 6_000_000_000),
    ]


def test_midpoint_position_is_interpolated_between_the_fixes_around_it() -> None:
    # Segment 0's midpoint is T0 + 5 s; fixes at 2 s and 7 s: 3/5 of the way.
    rows = run(
        [
            (Role.GPS, "/gps", T0 + 2 * SEC, fix(10.0, 20.0)),
            (Role.GPS, "/gps", T0 + 7 * SEC, fix(11.0, 22.0)),
        ],
        end_ns=T0 + 10 * SEC,
    )
    assert rows[0]["lat"] == pytest.approx(10.6)
    assert rows[0]["lon"] == pytest.approx(21.2)
    assert rows[0]["h3_cell"] == cell(10.6, 21.2)


def test_midpoint_needs_a_fix_that_arrives_after_the_segment() -> None:
    # Segment 0 (mid 5 s) has one fix at 1 s; the next fix is at 15 s, in segment 1.
    messages = [
        (Role.GPS, "/gps", T0 + 1 * SEC, fix(0.0, 0.0)),
        (Role.VEHICLE, "/v", T0 + 12 * SEC, State()),
        (Role.GPS, "/gps", T0 + 15 * SEC, fix(1.4, -2.8)),
    ]
    rows = run(messages, end_ns=T0 + 20 * SEC)
    assert rows[0]["lat"] == pytest.approx(1.4 * 4 / 14)
    assert rows[0]["lon"] == pytest.approx(-2.8 * 4 / 14)
    # Segment 1's midpoint (15 s) is exactly on a fix, the last one.
    assert (rows[1]["lat"], rows[1]["lon"]) == pytest.approx((1.4, -2.8))


def test_before_the_first_fix_and_after_the_last_the_nearest_fix() -> None:
    messages = [
        (Role.VEHICLE, "/v", T0, State()),
        (Role.GPS, "/gps", T0 + 14 * SEC, fix(5.0, 6.0)),
        (Role.GPS, "/gps", T0 + 16 * SEC, fix(7.0, 8.0)),
        (Role.VEHICLE, "/v", T0 + 39 * SEC, State()),
    ]
    rows = run(messages)
    assert [(r["lat"], r["lon"]) for r in rows] == [
        (5.0, 6.0),
        pytest.approx((6.0, 7.0)),
        (7.0, 8.0),
        (7.0, 8.0),
    ]
    assert rows[0]["h3_cells"] == [cell(5.0, 6.0)]  # no fix in it: just the midpoint cell


def test_no_gps_means_null_position_cells_and_time_of_day() -> None:
    rows = run([(Role.VEHICLE, "/v", T0 + i * SEC, State(speed_mps=2.0)) for i in range(5)])
    (row,) = rows
    assert (row["lat"], row["lon"], row["h3_cell"], row["h3_cells"]) == (None, None, None, [])
    assert row["time_of_day"] is None and row["at_intersection"] is None
    assert row["speed"] == 2.0 and row["distance_m"] == pytest.approx(8.0)


def test_h3_cells_are_every_fix_cell_plus_the_midpoint_cell_sorted() -> None:
    # Fixes 0.003 deg of latitude apart (~330 m) cross several res-9 cells (~200 m edges).
    lats = [37.0 + 0.003 * i for i in range(10)]
    rows = run(
        [(Role.GPS, "/gps", T0 + i * SEC, fix(lat, -122.0)) for i, lat in enumerate(lats)],
        end_ns=T0 + 10 * SEC,
    )
    (row,) = rows
    mid_lat = lats[5]  # the midpoint, 5 s, is exactly the sixth fix
    expected = sorted({cell(lat, -122.0) for lat in lats} | {cell(mid_lat, -122.0)})
    assert row["h3_cell"] == cell(mid_lat, -122.0)
    assert row["h3_cells"] == expected and len(expected) >= 5
    step = R * math.radians(0.003)
    assert row["distance_m"] == pytest.approx(9 * step, rel=1e-9)
    assert row["speed"] == pytest.approx(9 * step / 9.0, rel=1e-9)


def test_h3_resolution_from_config() -> None:
    rows = run([(Role.GPS, "/gps", T0, fix(48.8566, 2.3522))], config=Config(h3_resolution=5))
    assert rows[0]["h3_cell"] == cell(48.8566, 2.3522, 5)
    with pytest.raises(IngestError, match="h3_resolution"):
        SegmentBuilder(Config(h3_resolution=16), T0)
    with pytest.raises(IngestError, match="segment_seconds"):
        SegmentBuilder(Config(segment_seconds=0), T0)


def test_no_fix_status_and_second_gps_topics_are_ignored() -> None:
    no_fix = SimpleNamespace(latitude=50.0, longitude=50.0, status=SimpleNamespace(status=-1))
    good = SimpleNamespace(latitude=1.0, longitude=2.0, status=SimpleNamespace(status=0))
    messages = [
        (Role.GPS, "/fix", T0, no_fix),
        (Role.GPS, "/fix", T0 + SEC, good),
        (Role.GPS, "/other_gps", T0 + 2 * SEC, fix(60.0, 60.0)),
        (Role.GPS, "/fix", T0 + 3 * SEC, {"latitude": math.nan, "longitude": 0.0}),
    ]
    (row,) = run(messages)
    assert (row["lat"], row["lon"]) == (1.0, 2.0)
    assert row["h3_cells"] == [cell(1.0, 2.0)]
    config = Config(tags={"position": {"gps_topic": "/other_gps"}})
    (row,) = run(messages, config=config)
    assert (row["lat"], row["lon"]) == (60.0, 60.0)


def test_tags_over_segments_weather_pedestrians_and_gps_fallback() -> None:
    rain = State(outside_temp_c=15.0, wipers=WiperMode.WIPER_LOW, speed_mps=10.0)
    peds = ObjectList(
        objects=[
            Object(track_id=i, object_class=ObjectClass.PEDESTRIAN, x=4.0 + i) for i in range(3)
        ]
    )
    messages = [
        (Role.VEHICLE, "/v", T0 + i * SEC, rain if i < 6 else State(speed_mps=10.0))
        for i in range(10)
    ]
    messages += [
        (Role.DETECTIONS, "/det", T0 + 12 * SEC, peds),
        (Role.DETECTIONS, "/det", T0 + 13 * SEC, ObjectList()),
    ]
    messages.sort(key=lambda m: m[2])
    rows = run(messages, end_ns=T0 + 20 * SEC)
    assert [r["weather"] for r in rows] == ["rain", "unknown"]
    assert [r["pedestrian_count"] for r in rows] == [None, 3]
    assert [r["pedestrians_within_5m"] for r in rows] == [None, True]
    assert rows[0]["speed"] == 10.0 and rows[0]["distance_m"] == pytest.approx(90.0)
    assert rows[1]["speed"] is None and rows[1]["distance_m"] is None


def test_a_gps_drive_takes_motion_from_gps_only() -> None:
    # Segment 0: one fix; segment 1: no fix but vehicle state; segment 2: two fixes 3 s apart.
    messages = [
        (Role.GPS, "/gps", T0 + SEC, fix(0.0, 0.0)),
        (Role.VEHICLE, "/v", T0 + 12 * SEC, State(speed_mps=5.0)),
        (Role.VEHICLE, "/v", T0 + 13 * SEC, State(speed_mps=5.0)),
        (Role.GPS, "/gps", T0 + 21 * SEC, fix(0.0, 0.0)),
        (Role.GPS, "/gps", T0 + 24 * SEC, fix(math.degrees(30.0 / R), 0.0)),
    ]
    rows = run(messages)
    assert [(r["speed"], r["distance_m"]) for r in rows] == [
        (None, 0.0),
        (None, None),
        (pytest.approx(10.0), pytest.approx(30.0)),
    ]


def test_small_disorder_is_put_back_in_order_and_late_messages_are_counted() -> None:
    builder = SegmentBuilder(Config(), T0)
    fog = State(fog_lights=True)
    builder.on_message(Role.VEHICLE, "/v", T0, State())
    builder.on_message(Role.VEHICLE, "/v", T0 + 10 * SEC + 200_000_000, State())
    builder.on_message(Role.VEHICLE, "/v", T0 + 9 * SEC + 900_000_000, fog)  # 0.3 s late: ok
    builder.on_message(Role.VEHICLE, "/v", T0 + 9 * SEC + 950_000_000, fog)
    builder.on_message(Role.VEHICLE, "/v", T0 + 12 * SEC, State())
    builder.on_message(Role.VEHICLE, "/v", T0 + 5 * SEC, fog)  # 7 s late: segment 0 closed
    rows = builder.finish(T0 + 12 * SEC + 1, "d", "v")
    assert [r["weather"] for r in rows] == ["fog", "clear"]  # 2 fog beat 1 clear
    assert builder.late_messages == 1
    assert any("after their segment closed" in w for w in builder.warnings)


def test_roles_and_wants_decide_what_is_decoded() -> None:
    builder = SegmentBuilder(Config(), T0)
    assert builder.roles == {Role.GPS, Role.VEHICLE, Role.DETECTIONS}
    assert not builder.wants(Role.LIDAR, "/lidar") and not builder.wants(Role.OTHER, "/tf")
    config = Config(tags={"intersection": {"topic": "/map/context"}})
    builder = SegmentBuilder(config, T0)
    assert Role.OTHER in builder.roles
    assert builder.wants(Role.OTHER, "/map/context") and not builder.wants(Role.OTHER, "/tf")


def test_map_context_topic_reaches_the_intersection_tagger() -> None:
    config = Config(tags={"intersection": {"topic": "/map/context"}})
    messages = [
        (Role.OTHER, "/map/context", T0 + SEC, {"distance_to_intersection_m": 3.0}),
        (Role.OTHER, "/tf", T0 + 2 * SEC, {"at_intersection": False}),
        (Role.OTHER, "/map/context", T0 + 12 * SEC, {"at_intersection": False}),
    ]
    rows = run(messages, config=config)
    assert [r["at_intersection"] for r in rows] == [True, False]


class Recorder:
    """A plugin-style tagger with no roles: it must see each segment's final position."""

    name = "recorder"
    columns: tuple[str, ...] = ("seen_lat", "flag")
    roles: frozenset[Role] = frozenset()

    def __init__(self) -> None:
        self.contexts: list[SegmentContext] = []

    def on_message(self, role: Role, topic: str, log_time_ns: int, decoded: Any) -> None:
        raise AssertionError("a tagger without roles gets no messages")

    def finish(self, segment: SegmentContext) -> dict[str, Any]:
        self.contexts.append(segment)
        return {"seen_lat": segment.lat, "flag": segment.seg_idx % 2 == 0, "nothing": None}


class Broken:
    name = "broken"
    columns: tuple[str, ...] = ("x",)
    roles = frozenset({Role.VEHICLE})

    def on_message(self, role: Role, topic: str, log_time_ns: int, decoded: Any) -> None:
        raise KeyError("boom")

    def finish(self, segment: SegmentContext) -> dict[str, Any]:
        return {"x": 1}


def test_plugin_values_land_in_tags_and_a_failing_tagger_only_warns() -> None:
    recorder = Recorder()
    # Segment 0 has no fix after its midpoint until 25 s, in segment 2.
    messages = [
        (Role.GPS, "/gps", T0 + SEC, fix(0.0, 0.0)),
        (Role.VEHICLE, "/v", T0 + 12 * SEC, State()),
        (Role.GPS, "/gps", T0 + 25 * SEC, fix(2.4, 0.0)),
    ]
    builder = SegmentBuilder(Config(), T0, [recorder, Broken()])
    for m in messages:
        builder.on_message(*m)
    rows = builder.finish(T0 + 25 * SEC + 1, "d", "v")
    assert [c.seg_idx for c in recorder.contexts] == [0, 1, 2]
    # Midpoints 5 s, 15 s and 22.5 s (the last segment ends at 25 s + 1 ns), between the
    # fixes at 1 s and 25 s: 2.4 * 4/24, 2.4 * 14/24, 2.4 * 21.5/24.
    assert [c.lat for c in recorder.contexts] == pytest.approx([0.4, 1.4, 2.15])
    flags = ["true", "false", "true"]
    assert [r["tags"] for r in rows] == [
        {"seen_lat": str(c.lat), "flag": f, "x": "1"}  # None values are left out
        for c, f in zip(recorder.contexts, flags, strict=True)
    ]
    assert [r["weather"] for r in rows] == [None, None, None]  # no weather tagger loaded
    assert builder.warnings == ["tagger broken: /v: KeyError: 'boom'"]


class LastFinished:
    """A tagger that remembers only the last segment it finished."""

    name = "last_finished"
    columns: tuple[str, ...] = ()
    roles: frozenset[Role] = frozenset()
    seg_idx = -1

    def on_message(self, role: Role, topic: str, log_time_ns: int, decoded: Any) -> None:
        pass

    def finish(self, segment: SegmentContext) -> dict[str, Any]:
        self.seg_idx = segment.seg_idx
        return {}


def test_memory_stays_bounded_on_a_long_drive() -> None:
    """Each segment is finished (its taggers called) within the reorder window after it ends,
    and the memory the builder holds stops growing once the drive is under way: what it
    keeps is the open segment, the reorder window and one small row per finished segment."""
    recorder = LastFinished()
    builder = SegmentBuilder(Config(), T0, [recorder])
    hours = 2
    late_ns = 0
    tracemalloc.start()
    try:
        held = []
        for i in range(hours * 3600):
            t = T0 + i * SEC
            builder.on_message(Role.GPS, "/gps", t, fix(37.0 + i * 1e-5, -122.0))
            builder.on_message(Role.VEHICLE, "/v", t + 1, State(speed_mps=1.0))
            closed = (t - T0) // (10 * SEC)  # segments that ended at or before t
            if recorder.seg_idx + 1 < closed:  # the newest closed segment is not finished
                late_ns = max(late_ns, t - (T0 + closed * 10 * SEC))
            if i % 1800 == 1799:
                held.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert late_ns <= REORDER_NS + 2 * SEC
    # Per half hour: the 180 finished rows (~0.9 kB each); buffering the half hour's 3,600
    # fixes and 3,600 states as messages would take several MB.
    growth = [b - a for a, b in zip(held, held[1:], strict=False)]
    assert max(growth) < 400_000, growth
    rows = builder.finish(T0 + hours * 3600 * SEC, "d", "v")
    assert len(rows) == hours * 360


@settings(max_examples=60, deadline=None)
@given(
    lat=st.floats(-89.9, 89.9, allow_nan=False),
    lon=st.floats(-179.9, 179.9, allow_nan=False),
    res=st.integers(0, 15),
)
def test_h3_round_trip_center_lies_within_the_cells_circumradius(
    lat: float, lon: float, res: int
) -> None:
    rows = run([(Role.GPS, "/gps", T0, fix(lat, lon))], config=Config(h3_resolution=res))
    got = rows[0]["h3_cell"]
    assert got == cell(lat, lon, res)
    clat, clon = h3.cell_to_latlng(h3.int_to_str(got))

    def dist(a: tuple[float, float], b: tuple[float, float]) -> float:
        return h3.great_circle_distance(a, b, unit="m")

    circumradius = max(dist((clat, clon), v) for v in h3.cell_to_boundary(h3.int_to_str(got)))
    assert dist((lat, lon), (clat, clon)) <= circumradius * 1.001 + 1e-6


def _replay(folder: Path, config: Config) -> SegmentBuilder:
    """Feed a generated drive's MCAPs to a builder in log-time order, decoding what it wants."""
    factory = DecoderFactory()
    decoders: dict[str, Any] = {}

    def messages(path: Path) -> Iterator[tuple[int, str, Any, bytes, str]]:
        with path.open("rb") as f:
            reader = make_reader(f)
            for schema, channel, message in reader.iter_messages(log_time_order=True):
                yield (
                    message.log_time,
                    channel.topic,
                    schema,
                    message.data,
                    channel.message_encoding,
                )

    builder: SegmentBuilder | None = None
    streams = [messages(p) for p in sorted(folder.glob("rec_*.mcap"))]
    for log_time, topic, schema, data, encoding in heapq.merge(*streams, key=lambda m: m[0]):
        builder = builder or SegmentBuilder(config, log_time)
        role = role_for(topic, schema.name if schema else None)
        if builder.wants(role, topic):
            if topic not in decoders:
                decoders[topic] = (
                    json.loads if encoding == "json" else factory.decoder_for(encoding, schema)
                )
            builder.on_message(role, topic, log_time, decoders[topic](data))
    assert builder is not None
    return builder


def test_a_generated_drive_matches_its_truth(tmp_path: Path) -> None:
    folder = generate(tmp_path / "drive", seconds=15, seed=21, lidar_points=10)
    truth = json.loads((folder / "truth.json").read_text())
    config = Config(tags={"intersection": {"map": str(folder / "intersections.geojson")}})
    builder = _replay(folder, config)
    assert builder.start_ns == truth["start_ns"]
    rows = builder.finish(truth["end_ns"], "d", "v")
    assert len(rows) == len(truth["segments"]) == 2
    for row, expected in zip(rows, truth["segments"], strict=True):
        for key, value in expected.items():
            if isinstance(value, float):
                assert row[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key
            else:
                assert row[key] == value, key
    assert builder.warnings == []
