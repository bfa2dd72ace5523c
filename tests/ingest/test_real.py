"""The real recordings in ../shared/data/real ingest, with the counts their README gives."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from drivecat.cli.main import drivecat
from tests.ingest.helpers import message_keys

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
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
def real_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("real_store")
    paths = [str(REAL / "ros1" / name) for name in EXPECTED]
    paths += [str(p) for p in sorted((REAL / "ros2").iterdir())]
    result = CliRunner().invoke(
        drivecat, ["ingest", "run", *paths, "--store", str(store), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [r["status"] for r in report] == ["ingested"] * len(paths)
    assert all(any("unknown" in w for w in r["warnings"]) for r in report)
    return store


def test_ros1_counts_match_the_readme(real_store: Path) -> None:
    con = duckdb.connect(str(real_store / "catalog.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT source, topic, topics.message_count, role, schema_name FROM topics "
        "JOIN drives USING (drive_id)"
    ).fetchall()
    con.close()
    for name, topics in EXPECTED.items():
        found = {r[1]: r[2] for r in rows if r[0].endswith(str(REAL / "ros1"))}
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
