"""catalog drift on fleets with planted drift (``sample_logs.fleet``): exactly the planted
changes are flagged, and nothing between two fleets of one profile."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from drivecat.catalog.drift import Drift, drift
from drivecat.catalog.errors import CatalogError
from drivecat.catalog.export import ExportOptions, export
from sample_logs.fleet import PROFILES, planted
from tests.conftest import Fleets


def _side(ids: list[str]) -> str:
    return "drive_id IN (" + ", ".join(f"'{d}'" for d in ids) + ")"


def _flagged(result: Drift) -> set[str]:
    """Flagged comparisons as the generator names them: tag:<tag>, <role>:<metric>."""
    out = set()
    for c in result.compared:
        if c.flagged:
            out.add(f"tag:{c.name}" if c.kind == "tag" else f"{c.role}:{c.metric}")
    return out | {f"schema:{s.topic}" for s in result.schemas if s.flagged}


def test_exactly_the_planted_drift_is_flagged(fleet_store: Fleets) -> None:
    result = drift(
        fleet_store.store,
        _side(fleet_store.drive_ids["baseline"]),
        _side(fleet_store.drive_ids["newer"]),
    )
    assert result.segments == {"baseline": 6, "current": 6}
    assert _flagged(result) == planted(PROFILES["baseline"], PROFILES["newer"])
    lidar = {c.metric: c for c in result.compared if c.role == "lidar"}
    assert lidar["points_per_sweep"].baseline_median == PROFILES["baseline"].lidar_points
    assert lidar["points_per_sweep"].current_median == PROFILES["newer"].lidar_points
    weather = next(c for c in result.compared if c.key == "tag:weather")
    shares = dict(zip(weather.bins, weather.current, strict=True))
    assert shares["rain"] == 6 and sum(weather.current) == 6
    assert all(not s.flagged and set(s.baseline) == set(s.current) for s in result.schemas)


@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_two_fleets_of_one_profile_do_not_drift(fleet_store: Fleets, order: str) -> None:
    a, b = fleet_store.drive_ids["baseline"], fleet_store.drive_ids["baseline_again"]
    if order == "reverse":
        a, b = b, a
    result = drift(fleet_store.store, _side(a), _side(b))
    assert result.flagged == []
    assert len(result.compared) >= 6 + 12  # every tag, and several statistics per topic


def test_the_device_version_selects_the_same_sides(fleet_store: Fleets) -> None:
    by_version = drift(fleet_store.store, "device_version = '4.2.1'", "device_version = '5.0.0'")
    assert by_version.drives == {"baseline": 12, "current": 6}
    assert _flagged(by_version) == planted(PROFILES["baseline"], PROFILES["newer"])


def test_an_export_is_a_baseline(fleet_store: Fleets, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(fleet_store.store, store)
    trained = export(
        store,
        ExportOptions(
            "device_version = '4.2.1'", "mcap", tmp_path / "trained", topics=("/gps/fix",)
        ),
    )
    from_export = drift(store, f"export:{trained.export_id}", "device_version = '5.0.0'")
    assert from_export.segments == {"baseline": 12, "current": 6}
    assert _flagged(from_export) == planted(PROFILES["baseline"], PROFILES["newer"])
    with pytest.raises(CatalogError, match=r"export:nope: no such export.*known: "):
        drift(store, "export:nope", "true")


def test_bad_sides(fleet_store: Fleets) -> None:
    with pytest.raises(CatalogError, match="baseline .* matches no segment"):
        drift(fleet_store.store, "device_version = '9.9'", "true")
    with pytest.raises(CatalogError, match="--current"):
        drift(fleet_store.store, "true", "1); DROP TABLE segments; SELECT (1")
    with pytest.raises(CatalogError, match="--threshold"):
        drift(fleet_store.store, "true", "true", psi_threshold=0)
