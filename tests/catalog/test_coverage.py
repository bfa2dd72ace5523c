"""catalog coverage against direct SQL over `segments`, h3-py, and the fleets' truth."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import duckdb
import h3
import pytest

from drivecat.catalog.conditions import DIMENSIONS
from drivecat.catalog.coverage import coverage
from drivecat.catalog.errors import CatalogError
from tests.conftest import Fleets


def _direct(store: Path, sql: str) -> list[tuple[object, ...]]:
    # Plain DuckDB on the file: no drivecat code between the test and the rows.
    con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_every_combination_is_a_row_and_counts_equal_sql(fleet_store: Fleets) -> None:
    result = coverage(fleet_store.store, ["weather", "time_of_day", "at_intersection"])
    rows = result.rows.to_pylist()
    assert len(rows) == 5 * 3 * 2  # the domains' product, whatever was driven
    direct = {
        (w, t, str(a).lower()): (n, d, hours)
        for w, t, a, n, d, hours in _direct(
            fleet_store.store,
            "SELECT weather, time_of_day, at_intersection, count(*), count(DISTINCT drive_id), "
            "sum(end_ns - start_ns) / 3.6e12 FROM segments GROUP BY ALL",
        )
    }
    for row in rows:
        key = (row["weather"], row["time_of_day"], row["at_intersection"])
        n, d, hours = direct.get(key, (0, 0, 0.0))
        assert (row["segments"], row["drives"]) == (n, d), key
        assert row["hours"] == pytest.approx(hours, abs=1e-6)
        assert row["gap"] == (n == 0)
    assert sum(r["segments"] for r in rows) == 18 * 1  # 18 drives of one 4 s segment
    assert result.gaps == sum(1 for r in rows if r["segments"] == 0)


def test_the_newer_fleet_covers_exactly_its_planted_conditions(fleet_store: Fleets) -> None:
    result = coverage(
        fleet_store.store, ["weather", "time_of_day"], where="device_version = '5.0.0'"
    )
    truth: Counter[tuple[str, str]] = Counter()
    for folder in fleet_store.folders["newer"]:
        for seg in json.loads((folder / "truth.json").read_text())["segments"]:
            truth[(seg["weather"], seg["time_of_day"])] += 1
    assert truth == {("rain", "night"): 6}
    found = {(r["weather"], r["time_of_day"]): r["segments"] for r in result.rows.to_pylist()}
    assert {k: v for k, v in found.items() if v} == dict(truth)
    assert len(found) == 15 and sum(1 for v in found.values() if v == 0) == 14


def test_min_hours_flags_thin_combinations(fleet_store: Fleets) -> None:
    # 6 rainy segments of about 4 s: 0.0067 h; 12 clear ones: 0.013 h.
    rows = coverage(fleet_store.store, ["weather"], min_hours=0.01).rows.to_pylist()
    gap = {r["weather"]: r["gap"] for r in rows}
    assert gap == {"clear": False, "rain": True, "snow": True, "fog": True, "unknown": True}


def test_pedestrian_and_speed_bins_equal_sql(fleet_store: Fleets) -> None:
    rows = coverage(fleet_store.store, ["pedestrians", "speed"]).rows.to_pylist()
    assert [r["pedestrians"] for r in rows[:: len(DIMENSIONS["speed"].domain)]] == list(
        DIMENSIONS["pedestrians"].domain
    )
    speeds = [s for (s,) in _direct(fleet_store.store, "SELECT speed FROM segments")]
    edges = [0.5, 5, 10, 15, 25]
    labels = DIMENSIONS["speed"].domain
    expected = Counter(labels[sum(s >= e for e in edges)] for s in speeds)
    found = Counter()
    for r in rows:
        found[r["speed"]] += r["segments"]
    assert +found == expected


def test_by_h3_cell_equals_h3_py_parents(fleet_store: Fleets) -> None:
    result = coverage(fleet_store.store, ["time_of_day"], h3_resolution=6)
    cells = [c for (c,) in _direct(fleet_store.store, "SELECT h3_cell FROM segments")]
    expected = Counter(h3.cell_to_parent(h3.int_to_str(c), 6) for c in cells)
    found = Counter()
    for r in result.rows.to_pylist():
        assert r["h3"] in expected  # the domain is the catalog's cells
        found[r["h3"]] += r["segments"]
    assert found == expected
    assert result.rows.num_rows == 3 * len(expected)


def test_plugin_tags_and_bad_input(fleet_store: Fleets) -> None:
    rows = coverage(fleet_store.store, ["tag:cyclists"]).rows.to_pylist()
    assert [(r["tag_cyclists"], r["segments"]) for r in rows] == [("unknown", 18)]
    with pytest.raises(CatalogError, match="not a condition"):
        coverage(fleet_store.store, ["wether"])
    with pytest.raises(CatalogError, match="one SQL expression|several statements"):
        coverage(fleet_store.store, ["weather"], where="1=1); COPY segments TO 'x.csv'; SELECT (1")
    with pytest.raises(CatalogError, match="named twice"):
        coverage(fleet_store.store, ["weather", "weather"])
    with pytest.raises(CatalogError, match="0..9"):
        coverage(fleet_store.store, ["weather"], h3_resolution=12)
