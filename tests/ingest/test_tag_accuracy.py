"""Every tag of every segment equals truth.json, through the full ingest pass and catalog."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import duckdb
import pytest

from drivecat.ingest.config import Config
from drivecat.ingest.run import IngestOptions, ingest_drive
from sample_logs.generate import generate
from sample_logs.truth import SEGMENT_TAGS

TAGS = SEGMENT_TAGS


@pytest.fixture(scope="module")
def ros2_drive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ros2_drive")
    return generate(out, seconds=20, seed=4, variants=("ros2",), lidar_points=500)


def segments_vs_truth(drive: Path, store: Path) -> tuple[list[dict[str, Any]], list[tuple]]:
    config = Config(tags={"intersection": {"map": str(drive / "intersections.geojson")}})
    ingest_drive(drive, IngestOptions(store=store, config=config))
    truth = json.loads((drive / "truth.json").read_text())
    con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    rows = con.execute(
        f"SELECT seg_idx, start_ns, end_ns, lat, lon, {', '.join(TAGS)} FROM segments "
        "WHERE drive_id = ? ORDER BY seg_idx",
        [truth["drive_id"]],
    ).fetchall()
    con.close()
    return truth["segments"], rows


@pytest.mark.parametrize("name", ["small_drive", "sidecar_drive", "truncated_drive", "ros2_drive"])
def test_every_tag_matches_truth(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    drive = request.getfixturevalue(name)
    truth, rows = segments_vs_truth(drive, tmp_path / "store")
    assert len(rows) == len(truth)
    for row, expected in zip(rows, truth, strict=True):
        seg_idx, start_ns, end_ns, lat, lon, *tags = row
        assert (seg_idx, start_ns, end_ns) == (
            expected["seg_idx"],
            expected["start_ns"],
            expected["end_ns"],
        )
        assert math.isclose(lat, expected["lat"], abs_tol=1e-7)
        assert math.isclose(lon, expected["lon"], abs_tol=1e-7)
        got = dict(zip(TAGS, tags, strict=True))
        want = {k: expected[k] for k in TAGS}
        assert got == want, f"{name} segment {seg_idx}"
