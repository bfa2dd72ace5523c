"""The real recordings of ../shared/data/real, ingested once for the whole session."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from drivecat.cli.main import drivecat

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
REAL_BAGS = [
    *sorted((REAL / "ros1").glob("*.bag")),
    *sorted(p for p in (REAL / "ros2").glob("*") if p.is_dir()),
]


@pytest.fixture(scope="session")
def real_ingest(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """Every real ROS 1 bag and ROS 2 bag folder ingested by the CLI into one store:
    (store, the ``--json`` report, one entry per bag in ``REAL_BAGS`` order)."""
    if not REAL.is_dir():
        pytest.skip("../shared/data/real is not here")
    store = tmp_path_factory.mktemp("real_store")
    paths = [str(p) for p in REAL_BAGS]
    result = CliRunner().invoke(
        drivecat, ["ingest", "run", *paths, "--store", str(store), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [r["status"] for r in report] == ["ingested"] * len(paths)
    return store, report
