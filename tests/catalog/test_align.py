"""The align() table macro: for every lidar sweep, the truth-nearest frame, and its barcode.

Sweep times are read from the generated recordings with the mcap library and the Foxglove
classes (not from the catalog); frame times and indices come from ``truth.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from foxglove_schemas_protobuf.PointCloud_pb2 import PointCloud
from mcap.reader import make_reader

from drivecat.catalog import db
from drivecat.catalog.frames import iter_frames
from drivecat.cli.main import drivecat
from sample_logs.camera import read_barcode

LIDAR = "/lidar/top/points"
FRONT = "/camera/front/video"
REAR = "/camera/rear/video"


@pytest.fixture
def store(small_and_sidecar_store: Path) -> Path:
    return small_and_sidecar_store


def _sweep_times(drive: Path) -> list[int]:
    """Capture time of every lidar sweep in the drive's recordings."""
    times = []
    for path in sorted(drive.glob("rec_*.mcap")):
        with open(path, "rb") as f:
            for _, _, message in make_reader(f).iter_messages(topics=[LIDAR]):
                times.append(PointCloud.FromString(message.data).timestamp.ToNanoseconds())
    return sorted(times)


def _expected(drive: Path, camera: str, tolerance_ms: float) -> list[tuple[Any, ...]]:
    truth = json.loads((drive / "truth.json").read_text())
    frames = truth["videos"][camera]["frames"]
    times = np.array([f["capture_ns"] for f in frames], dtype=np.int64)
    rows = []
    for t in _sweep_times(drive):
        dist = np.abs(times - t)
        i = int(np.flatnonzero(dist == dist.min())[0])  # a tie goes to the earlier frame
        dt = int(times[i]) - t
        if abs(dt) <= tolerance_ms * 1e6:
            rows.append((truth["drive_id"], t, frames[i]["index"], int(times[i]), dt))
        else:
            rows.append((truth["drive_id"], t, None, None, None))
    return rows


def _align(store: Path, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    con = db.connect(store, read_only=True)  # the macro is there on read-only connections
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


ALIGN_SQL = (
    "SELECT drive_id, reference_time_ns, frame_idx, frame_time_ns, dt_ns "
    "FROM align(?, ?, ?) WHERE drive_id = ? ORDER BY reference_time_ns"
)


@pytest.mark.parametrize(
    ("which", "camera", "tolerance_ms"),
    [("small", FRONT, 100.0), ("sidecar", REAR, 100.0), ("sidecar", FRONT, None)],
    ids=["front", "rear-sidecar", "front-tight"],
)
def test_every_sweep_gets_the_truth_nearest_frame_and_its_picture(
    store: Path,
    small_drive: Path,
    sidecar_drive: Path,
    which: str,
    camera: str,
    tolerance_ms: float | None,
) -> None:
    drive = small_drive if which == "small" else sidecar_drive
    if tolerance_ms is None:  # halfway between the closest and the furthest: some left out
        gaps = [abs(r[4]) for r in _expected(drive, camera, float("inf"))]
        tolerance_ms = (min(gaps) + max(gaps)) / 2 / 1e6
    expected = _expected(drive, camera, tolerance_ms)
    drive_id = expected[0][0]
    got = _align(store, ALIGN_SQL, [LIDAR, camera, tolerance_ms, drive_id])
    assert got == expected
    if camera == FRONT and which == "sidecar":
        assert any(r[2] is None for r in got) and any(r[2] is not None for r in got)
    wanted = sorted({r[2] for r in got if r[2] is not None})
    pictures = iter_frames(store, drive_id, camera, wanted)
    assert [read_barcode(p.image) for p in pictures] == wanted


def test_a_drive_without_the_camera_keeps_its_sweeps(store: Path, small_drive: Path) -> None:
    truth = json.loads((small_drive / "truth.json").read_text())
    rows = _align(store, ALIGN_SQL, [LIDAR, REAR, 100, truth["drive_id"]])
    assert len(rows) == len(_sweep_times(small_drive))
    assert all(r[2:] == (None, None, None) for r in rows)


def test_align_through_catalog_query(store: Path) -> None:
    sql = (
        "SELECT drive_id, count(*) AS n, count(frame_idx) AS framed "
        f"FROM align('{LIDAR}', '{FRONT}', 50) GROUP BY ALL ORDER BY 1"
    )
    result = CliRunner().invoke(
        drivecat, ["catalog", "query", sql, "--store", str(store), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["n"] for r in rows] == [200, 300]  # sweeps per drive (20 s and 30 s at 10 Hz)
    assert all(r["framed"] == r["n"] for r in rows)  # 15 fps: never more than 33 ms away


def _synthetic(tmp_path: Path) -> Path:
    """Drives a and b. Lidar /l: sensor rows. Cameras /c (a and b) and /v (a only)."""
    con = db.connect(tmp_path)
    frames = [
        ("a", "/c", 0, 1000, None),
        ("a", "/c", 1, 2000, 2100),  # capture time wins over log time
        ("a", "/c", 2, 2200, 0),  # capture 0 means none: log time 2200
        ("a", "/c", 3, 2150, 2200),  # the same time as frame 2: frame 2 stands for both
        ("a", "/c", 4, 4000, None),
        ("b", "/c", 0, 10_000_000, None),
        ("a", "/v", 0, 1100, None),
        ("a", "/v", 1, 3050, None),
    ]
    for drive_id, topic, idx, log, capture in frames:
        con.execute(
            "INSERT INTO frames (drive_id, topic, frame_idx, log_time_ns, capture_ns) "
            "VALUES (?, ?, ?, ?, ?)",
            [drive_id, topic, idx, log, capture],
        )
    sweeps = [("a", 500, None), ("a", 1550, 1550), ("a", 3100, None), ("a", 9000, 3100)]
    sweeps += [("b", 1000, None)]
    for drive_id, log, capture in sweeps:
        con.execute(
            "INSERT INTO sensor_index (drive_id, topic, role, log_time_ns, capture_ns) "
            "VALUES (?, '/l', 'lidar', ?, ?)",
            [drive_id, log, capture],
        )
    con.close()
    return tmp_path


def test_ties_duplicates_tolerance_and_drives(tmp_path: Path) -> None:
    store = _synthetic(tmp_path)
    sql = "SELECT * FROM align('/l', '/c', ?)"
    rows = _align(store, sql, [0.0011])  # 1100 ns
    assert rows == [
        ("a", 500, 0, 1000, 500),
        ("a", 1550, 0, 1000, -550),  # 1000 and 2100 are 550 away: the earlier
        ("a", 3100, 2, 2200, -900),  # 2200 and 4000 tie: the earlier, frame 2
        ("a", 3100, 2, 2200, -900),  # capture time 3100, log time 9000
        ("b", 1000, None, None, None),  # b's camera is 10 ms away
    ]
    assert [r[2] for r in _align(store, sql, [0.0005])] == [0, None, None, None, None]
    assert [r[2] for r in _align(store, sql, [None])] == [0, 0, 2, 2, 0]  # no limit
    # A video topic can be the reference too.
    assert _align(store, "SELECT * FROM align('/v', '/c', 1)", []) == [
        ("a", 1100, 0, 1000, -100),
        ("a", 3050, 2, 2200, -850),
    ]
