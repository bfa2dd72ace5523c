"""An intersection map that does not cover the drive's GPS track is one warning and one
quality row, not a silent ``at_intersection = false``; a map that covers it says nothing."""

from __future__ import annotations

import json
from pathlib import Path

import h3
from click.testing import CliRunner

from drivecat.catalog import query
from drivecat.cli.main import drivecat

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "sample_logs" / "tiny"
TRUTH = json.loads((TINY / "truth.json").read_text())


def ingest(tmp_path: Path, map_text: str) -> tuple[Path, list[str]]:
    (tmp_path / "map.geojson").write_text(map_text)
    (tmp_path / "drivecat.toml").write_text('[tags.intersection]\nmap = "map.geojson"\n')
    store = tmp_path / "store"
    result = CliRunner().invoke(
        drivecat,
        ["ingest", "run", str(TINY), "--store", str(store), "--config",
         str(tmp_path / "drivecat.toml")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return store, result.stderr.splitlines()


def test_a_map_of_another_city(tmp_path: Path) -> None:
    san_francisco = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [-122.4194, 37.7749]},
    }
    # the generator put the drive in another city, far from San Francisco
    lat, lon = TRUTH["segments"][0]["lat"], TRUTH["segments"][0]["lon"]
    assert h3.great_circle_distance((lat, lon), (37.7749, -122.4194), unit="km") > 100
    store, stderr = ingest(
        tmp_path, json.dumps({"type": "FeatureCollection", "features": [san_francisco]})
    )
    notes = [line for line in stderr if "does not cover this drive" in line]
    assert len(notes) == 1 and notes[0].startswith(f"warning: {TRUTH['drive_id']}: ")
    assert "map.geojson (1 points)" in notes[0]
    rows = query.run_query(
        store, "SELECT kind, detail FROM quality WHERE kind = 'tag_not_applicable'"
    ).to_pylist()
    assert len(rows) == 1 and rows[0]["detail"].startswith("intersection: ")
    tags = query.run_query(store, "SELECT DISTINCT at_intersection AS a FROM segments")
    assert tags["a"].to_pylist() == [False]


def test_the_demo_map_covers_the_demo_drive(tmp_path: Path) -> None:
    store, stderr = ingest(tmp_path, (TINY / "intersections.geojson").read_text())
    assert not [line for line in stderr if "does not cover" in line]
    rows = query.run_query(
        store, "SELECT count(*) AS n FROM quality WHERE kind = 'tag_not_applicable'"
    )
    assert rows["n"].to_pylist() == [0]
    got = query.run_query(store, "SELECT at_intersection FROM segments ORDER BY seg_idx")
    assert got["at_intersection"].to_pylist() == [s["at_intersection"] for s in TRUTH["segments"]]
