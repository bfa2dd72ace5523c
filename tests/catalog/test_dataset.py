"""DrivecatDataset over a dataset built by hand here, and over a real export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from drivecat.catalog.dataset import DrivecatDataset
from drivecat.catalog.errors import CatalogError
from drivecat.catalog.export import ExportOptions, export
from drivecat.ingest.config import Config
from drivecat.ingest.run import IngestOptions, ingest_drive
from sample_logs.camera import read_barcode
from tests.catalog.handmade import write_sample, write_samples


@pytest.fixture
def handmade(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """Three samples: two in train, one in val, with known pictures, points and labels."""
    rng = np.random.default_rng(7)
    truth = []
    rows = []
    for k, split in enumerate(("train", "val", "train")):
        image = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
        points = rng.normal(size=(50 + k, 4)).astype(np.float32)
        label = {"sample_id": f"s{k}", "detections": {"objects": [{"track_id": k}]}}
        rows.append(write_sample(tmp_path, k, image, points, label, split, {"x": str(k)}))
        truth.append({"image": image, "points": points, "label": label, "split": split})
    write_samples(tmp_path, rows)
    return tmp_path, truth


def test_items_load_exactly(handmade: tuple[Path, list[dict[str, Any]]]) -> None:
    root, truth = handmade
    ds = DrivecatDataset(root)
    assert len(ds) == 3
    for i, want in enumerate(truth):
        item = ds[i]
        assert item["sample"]["sample_id"] == f"s{i}" and item["sample"]["tags"] == {"x": str(i)}
        np.testing.assert_array_equal(item["frames"]["/cam"], want["image"])
        np.testing.assert_array_equal(item["points"], want["points"])
        assert item["points"].dtype == np.float32
        assert item["label"] == want["label"]
    assert ds[-1]["sample"]["sample_id"] == "s2"
    with pytest.raises(IndexError):
        ds[3]


def test_split_and_transform(handmade: tuple[Path, list[dict[str, Any]]]) -> None:
    root, _ = handmade
    train = DrivecatDataset(root, split="train", transform=lambda item: item["sample"]["sample_id"])
    assert len(train) == 2 and [train[i] for i in range(2)] == ["s0", "s2"]
    assert len(DrivecatDataset(root, split="val")) == 1
    with pytest.raises(CatalogError, match="tran"):
        DrivecatDataset(root, split="tran")
    with pytest.raises(CatalogError, match="samples.parquet"):
        DrivecatDataset(root / "nowhere")


def test_no_torch_and_nothing_heavy_at_import() -> None:
    code = (
        "import sys, catalog.dataset\n"
        "bad = {'torch', 'open3d', 'av'} & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_reads_a_real_export(small_drive: Path, tmp_path: Path) -> None:
    config = Config(tags={"intersection": {"map": str(small_drive / "intersections.geojson")}})
    store = tmp_path / "store"
    assert ingest_drive(small_drive, IngestOptions(store=store, config=config)).status == "ingested"
    out = tmp_path / "ds"
    export(store, ExportOptions("seg_idx = 2", "dataset", out, image_workers=0))
    ds = DrivecatDataset(out)
    assert len(ds) > 50
    lidar_points = json.loads((small_drive / "truth.json").read_text())["generator"]["lidar_points"]
    for i in (0, len(ds) // 2, len(ds) - 1):
        item = ds[i]
        [frame] = item["sample"]["frames"]
        assert read_barcode(item["frames"][frame["topic"]]) == frame["frame_idx"]
        assert item["points"].shape == (lidar_points, 4)
        assert item["label"]["sample_id"] == item["sample"]["sample_id"]
