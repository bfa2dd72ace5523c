"""Generated sample drives shared by the whole test session.

Each fixture writes one drive with ``sample_logs.generate`` into a session temporary folder
and returns that folder; it holds ``rec_*.mcap``, ``truth.json`` and
``intersections.geojson`` (see ``sample_logs.generate``). Tests must not modify them: copy
a drive into ``tmp_path`` first when a test needs to damage or extend it.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from sample_logs.generate import generate


@pytest.fixture(scope="session")
def small_drive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 s, seed 1, 2000 lidar points, files rotated every 20 s (so two recordings)."""
    out = tmp_path_factory.mktemp("small_drive")
    return generate(out, seconds=30, seed=1, split_every=20, lidar_points=2000)


@pytest.fixture(scope="session")
def sidecar_drive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 s at night, seed 2, with the rear camera as camera_rear.h264 and drive.json."""
    out = tmp_path_factory.mktemp("sidecar_drive")
    return generate(out, seconds=20, seed=2, variants=("sidecar", "night"), lidar_points=2000)


@pytest.fixture(scope="session")
def truncated_drive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 s, seed 3, files every 10 s; the second one cut mid-chunk with no summary or footer."""
    out = tmp_path_factory.mktemp("truncated_drive")
    return generate(
        out, seconds=20, seed=3, variants=("truncated",), split_every=10, lidar_points=2000
    )


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's demo: ``sample_logs/tiny`` ingested with ``sample_logs/drivecat.toml``,
    as the Quick start does. Tests must not modify it: copy it first."""
    from click.testing import CliRunner

    from drivecat.cli.main import drivecat

    store = tmp_path_factory.mktemp("demo_store") / "store"
    args = ["ingest", "run", str(REPO / "sample_logs" / "tiny"), "--store", str(store)]
    args += ["--config", str(REPO / "sample_logs" / "drivecat.toml"), "--json"]
    result = CliRunner().invoke(drivecat, args)
    assert result.exit_code == 0, result.output
    return store


class Fleets(NamedTuple):
    """One store holding three synthetic fleets (``sample_logs.fleet``)."""

    store: Path
    drive_ids: dict[str, list[str]]  # "baseline", "newer", "baseline_again"
    folders: dict[str, list[Path]]


@pytest.fixture(scope="session")
def fleet_store(tmp_path_factory: pytest.TempPathFactory) -> Fleets:
    """Six 4-second drives each of: the ``baseline`` profile (seed 1), the ``newer`` one
    (seed 2: night, rain, half the lidar points) and the baseline again with seed 3, all
    ingested into one store with each drive's own intersection map. Do not modify it."""
    from drivecat.ingest.config import Config
    from drivecat.ingest.run import IngestOptions, ingest_drive
    from sample_logs.fleet import PROFILES, fleet

    root = tmp_path_factory.mktemp("fleets")
    store = root / "store"
    ids: dict[str, list[str]] = {}
    folders: dict[str, list[Path]] = {}
    for name, profile, seed in (
        ("baseline", "baseline", 1),
        ("newer", "newer", 2),
        ("baseline_again", "baseline", 3),
    ):
        folders[name] = fleet(root / name, PROFILES[profile], seed=seed)
        ids[name] = []
        for folder in folders[name]:
            config = Config(tags={"intersection": {"map": str(folder / "intersections.geojson")}})
            result = ingest_drive(folder, IngestOptions(store=store, config=config))
            assert result.status == "ingested", result.error
            assert result.drive_id is not None
            ids[name].append(result.drive_id)
    return Fleets(store, ids, folders)
