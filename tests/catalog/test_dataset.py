"""DrivecatDataset over a dataset built by hand here, and over a real export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import numpy as np
import open3d as o3d
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from drivecat.catalog.dataset import DrivecatDataset
from drivecat.catalog.errors import CatalogError
from drivecat.catalog.export import ExportOptions, export
from drivecat.catalog.export_dataset import SAMPLES_SCHEMA
from drivecat.ingest.config import Config
from drivecat.ingest.run import IngestOptions, ingest_drive
from sample_logs.camera import read_barcode


def _png(image: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = image.shape[1], image.shape[0], "rgb24"  # type: ignore[union-attr]
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        for packet in stream.encode(frame):  # type: ignore[union-attr]
            container.mux(packet)
        for packet in stream.encode(None):  # type: ignore[union-attr]
            container.mux(packet)


def _pcd(points: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cloud = o3d.t.geometry.PointCloud()
    cloud.point.positions = o3d.core.Tensor.from_numpy(np.ascontiguousarray(points[:, :3]))
    cloud.point.intensity = o3d.core.Tensor.from_numpy(np.ascontiguousarray(points[:, 3:]))
    assert o3d.t.io.write_point_cloud(path, cloud)


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
        _png(image, tmp_path / "images" / f"{k}.png")
        _pcd(points, tmp_path / f"pc/{k}.pcd")
        (tmp_path / f"labels/{k}.json").parent.mkdir(exist_ok=True)
        (tmp_path / f"labels/{k}.json").write_text(json.dumps(label))
        frame = {
            "topic": "/cam",
            "frame_idx": k,
            "time_ns": k,
            "dt_ns": 0,
            "path": f"images/{k}.png",
        }
        rows.append(
            {"sample_id": f"s{k}", "drive_id": "d", "seg_idx": 0, "split": split,
             "reference_topic": "/lidar", "reference_time_ns": k, "pointcloud_path": f"pc/{k}.pcd",
             "label_path": f"labels/{k}.json", "frames": [frame], "tags": {"x": str(k)}}
        )  # fmt: skip
        truth.append({"image": image, "points": points, "label": label, "split": split})
    pq.write_table(pa.Table.from_pylist(rows, schema=SAMPLES_SCHEMA), tmp_path / "samples.parquet")
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
