"""One exported dataset of ``small_drive`` shared by the label tests (they must not change it;
imports go into copies)."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivecat.catalog.export import ExportOptions, export
from drivecat.ingest.run import IngestOptions, ingest_drive


@pytest.fixture(scope="session")
def labels_dataset(
    small_drive: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """(store, dataset): small_drive ingested and exported whole as a dataset."""
    root = tmp_path_factory.mktemp("labels")
    store = root / "store"
    assert ingest_drive(small_drive, IngestOptions(store=store)).status == "ingested"
    export(store, ExportOptions("true", "dataset", root / "ds", image_workers=0))
    return store, root / "ds"
