"""The real recordings in ../shared/data/real ingest, with the counts their README gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.ingest.conftest import REAL
from tests.ingest.helpers import message_keys

pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real is not here")

EXPECTED = {
    "robot_localization_test1.bag": {
        "/fix": 989,
        "/imu/data": 11865,
        "/husky_velocity_controller/odom": 3952,
    },
    "embag_luminar_test.bag": {"/luminar_pointcloud": 5},
    "sick_rms1xxx_lms1xx_movement_off.bag": {"/cloud": 89},
    "rviz_satellite_gps_sample.bag": {"/gps/fix": 151},
    "event_camera_test_events_1.bag": {},
}


@pytest.fixture(scope="module")
def real_store(real_ingest: tuple[Path, list[dict[str, Any]]]) -> Path:
    store, report = real_ingest
    assert all(any("unknown" in w for w in r["warnings"]) for r in report)
    return store


def test_ros1_counts_match_the_readme(
    real_store: Path, real_ingest: tuple[Path, list[dict[str, Any]]]
) -> None:
    con = duckdb.connect(str(real_store / "catalog.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT drive_id, topic, topics.message_count, role, schema_name FROM topics"
    ).fetchall()
    con.close()
    drive_of = {Path(r["path"]).name: r["drive_id"] for r in real_ingest[1]}
    for name, topics in EXPECTED.items():
        found = {r[1]: r[2] for r in rows if r[0] == drive_of[name]}
        for topic, count in topics.items():
            assert found.get(topic) == count, (name, topic)
    roles = {(r[1], r[4]): r[3] for r in rows}
    assert roles[("/fix", "sensor_msgs/NavSatFix")] == "gps"
    assert roles[("/luminar_pointcloud", "sensor_msgs/PointCloud2")] == "lidar"


def test_every_real_message_is_stored(real_store: Path) -> None:
    con = duckdb.connect(str(real_store / "catalog.duckdb"), read_only=True)
    per_topic = dict(con.execute("SELECT drive_id || topic, message_count FROM topics").fetchall())
    files = con.execute("SELECT drive_id, topic, path FROM files").fetchall()
    con.close()
    stored: dict[str, int] = {}
    for drive_id, topic, path in files:
        n = sum(message_keys([real_store / path]).values())
        stored[drive_id + topic] = stored.get(drive_id + topic, 0) + n
    assert stored == per_topic


def test_ros2_mcap_keeps_its_ros2idl_schema(real_store: Path) -> None:
    con = duckdb.connect(str(real_store / "catalog.duckdb"), read_only=True)
    encodings = {r[0] for r in con.execute("SELECT encoding FROM schemas").fetchall()}
    con.close()
    assert {"ros1msg", "ros2idl"} <= encodings


def test_no_false_gaps_on_healthy_real_topics(real_store: Path) -> None:
    """The bursty 50 Hz IMU of the sailing bag, every /tf and every other topic of these
    healthy recordings: no gap rows (the old median rule gave the IMU alone dozens)."""
    con = duckdb.connect(str(real_store / "catalog.duckdb"), read_only=True)
    gaps = con.execute("SELECT topic, detail FROM quality WHERE kind = 'gap'").fetchall()
    tf = con.execute("SELECT count(*) FROM topics WHERE topic = '/tf'").fetchone()
    imu = con.execute("SELECT count(*) FROM topics WHERE topic = '/imu/data'").fetchone()
    con.close()
    assert tf is not None and tf[0] >= 2 and imu is not None and imu[0] >= 2  # the cases ran
    assert gaps == []
