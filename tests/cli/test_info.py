"""``drivecat info``: a recording, a drive folder and a store, checked against the
generator's truth, the README of the real recordings, and mcap's own reader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from mcap.reader import make_reader

from drivecat.cli.main import drivecat

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "sample_logs" / "tiny"
TRUTH = json.loads((TINY / "truth.json").read_text())
REAL = REPO.parent / "shared" / "data" / "real"


def info(*args: str) -> Any:
    return CliRunner().invoke(drivecat, ["info", *args])


def as_json(*args: str) -> Any:
    result = info(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_an_mcap_file_like_mcap_info(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = as_json(str(TINY / "rec_0000.mcap"))
    in_file = {k: v for k, v in TRUTH["topics"].items() if k != "/camera/rear/video"}  # side-car
    assert {t["topic"]: t["message_count"] for t in doc["topics"]} == {
        k: v["message_count"] for k, v in in_file.items()
    }
    assert doc["message_count"] == TRUTH["files"][0]["message_count"]
    assert doc["metadata"] == {"device": TRUTH["device"]}
    assert [a["name"] for a in doc["attachments"]] == ["calibration.json"]
    with (TINY / "rec_0000.mcap").open("rb") as f:  # the time span, message by message
        times = [m.log_time for _, _, m in make_reader(f).iter_messages()]
    assert (int(doc["start_ns"]), int(doc["end_ns"])) == (min(times), max(times))
    assert isinstance(doc["start_ns"], str)  # beyond 2^53: a string in JSON
    imu = next(t for t in doc["topics"] if t["topic"] == "/imu/data")
    assert imu["rate_hz"] == pytest.approx(200, rel=0.01)  # the generator's IMU rate
    assert doc["indexed"] and doc["compression"]

    # A short path as typed: the layout must fit 80 columns, whatever the checkout's path.
    monkeypatch.chdir(TINY)
    text = info("rec_0000.mcap").stdout
    assert "/imu/data" in text and "3,997 msgs" in text and "calibration.json" in text
    assert all(len(line) <= 80 for line in text.splitlines()), text


def test_a_cut_mcap_is_streamed_and_says_so(tmp_path: Path) -> None:
    data = (TINY / "rec_0000.mcap").read_bytes()
    (tmp_path / "cut.mcap").write_bytes(data[: len(data) // 2])
    doc = as_json(str(tmp_path / "cut.mcap"))
    assert not doc["indexed"] and "stops early" in doc["note"]
    assert 0 < doc["message_count"] < TRUTH["files"][0]["message_count"]
    assert doc["metadata"] == {"device": TRUTH["device"]}  # written before the first chunk


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real is not here")
def test_a_ros1_bag() -> None:
    # ../shared/data/real/README.md: a stationary GPS, 15 s, /gps/fix NavSatFix x151
    doc = as_json(str(REAL / "ros1" / "rviz_satellite_gps_sample.bag"))
    assert doc["format"] == "ros1 bag"
    assert [(t["topic"], t["message_count"]) for t in doc["topics"]] == [("/gps/fix", 151)]
    assert doc["topics"][0]["schema_name"] == "sensor_msgs/msg/NavSatFix"
    assert doc["duration_s"] == pytest.approx(15, abs=0.5)


def test_a_store_and_a_drive_folder(demo_store: Path) -> None:
    (folder,) = (demo_store / "drives").iterdir()
    for path, kind in ((demo_store, "store"), (folder, "drive")):
        doc = as_json(str(path))
        assert doc["kind"] == kind and doc["drives"] == 1
        assert doc["drive_ids"] == [TRUTH["drive_id"]]
        assert doc["versions"] == {TRUTH["device"]["device_version"]: 1}
        assert doc["devices"] == {TRUTH["device"]["device_id"]: 1}
        segs = TRUTH["segments"]
        assert doc["segments"] == len(segs)
        weather: dict[str, int] = {}
        for s in segs:
            weather[s["weather"]] = weather.get(s["weather"], 0) + 1
        assert doc["tags"]["weather"] == weather
        assert doc["tags"]["at_intersection"].get("true", 0) == sum(
            s["at_intersection"] for s in segs
        )
        assert doc["pedestrian_segments"] == sum(s["pedestrian_count"] > 0 for s in segs)
        span_s = (TRUTH["end_ns"] - TRUTH["start_ns"]) / 1e9
        assert doc["hours"] == pytest.approx(span_s / 3600, abs=0.001)
    text = info(str(demo_store)).stdout
    assert f"versions:  {TRUTH['device']['device_version']} 1" in text


def test_an_offload_folder_lists_its_recordings() -> None:
    doc = as_json(str(TINY))
    assert [Path(d["path"]).name for d in doc] == ["rec_0000.mcap"]


def test_not_a_recording_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.mcap").write_text("not an mcap\n")
    result = info(str(tmp_path / "notes.mcap"))
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {tmp_path / 'notes.mcap'}: not an MCAP file or a ROS bag (unknown magic bytes)\n"
    )
