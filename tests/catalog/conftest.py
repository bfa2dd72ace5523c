"""A store shared by the catalog tests that only read it."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivecat.ingest.run import IngestOptions, ingest_drive


@pytest.fixture(scope="session")
def small_and_sidecar_store(
    small_drive: Path, sidecar_drive: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """``small_drive`` and ``sidecar_drive`` ingested with default settings. Tests must not
    modify it: copy it into ``tmp_path`` first to damage it."""
    out = tmp_path_factory.mktemp("small_and_sidecar_store")
    for drive in (small_drive, sidecar_drive):
        assert ingest_drive(drive, IngestOptions(store=out)).status == "ingested"
    return out
