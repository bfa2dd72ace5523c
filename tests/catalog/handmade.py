"""Datasets written by hand in the tests: the files of one sample and the samples table,
laid out as ``catalog export --format dataset`` lays them out (images through PyAV, point
clouds through open3d, both independent of drivecat's exporter)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np
import open3d as o3d
import pyarrow as pa
import pyarrow.parquet as pq

from drivecat.catalog.export_dataset import SAMPLES_SCHEMA


def write_png(image: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = image.shape[1], image.shape[0], "rgb24"  # type: ignore[union-attr]
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        for packet in stream.encode(frame):  # type: ignore[union-attr]
            container.mux(packet)
        for packet in stream.encode(None):  # type: ignore[union-attr]
            container.mux(packet)


def write_pcd(points: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cloud = o3d.t.geometry.PointCloud()
    cloud.point.positions = o3d.core.Tensor.from_numpy(np.ascontiguousarray(points[:, :3]))
    cloud.point.intensity = o3d.core.Tensor.from_numpy(np.ascontiguousarray(points[:, 3:]))
    assert o3d.t.io.write_point_cloud(path, cloud)


def write_sample(
    root: Path,
    k: int,
    image: np.ndarray,
    points: np.ndarray | None,
    label: Mapping[str, Any],
    split: str,
    tags: Mapping[str, str],
) -> dict[str, Any]:
    """Write sample ``k``'s image, point cloud (unless None) and label under ``root``;
    return its samples.parquet row."""
    write_png(image, root / "images" / f"{k}.png")
    if points is not None:
        write_pcd(points, root / f"pc/{k}.pcd")
    (root / "labels").mkdir(exist_ok=True)
    (root / f"labels/{k}.json").write_text(json.dumps(label))
    frame = {"topic": "/cam", "frame_idx": k, "time_ns": k, "dt_ns": 0, "path": f"images/{k}.png"}
    return {
        "sample_id": f"s{k}", "drive_id": "d", "seg_idx": 0, "split": split,
        "reference_topic": "/lidar", "reference_time_ns": k,
        "pointcloud_path": None if points is None else f"pc/{k}.pcd",
        "label_path": f"labels/{k}.json", "frames": [frame], "tags": dict(tags),
    }  # fmt: skip


def write_samples(root: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    table = pa.Table.from_pylist(list(rows), schema=SAMPLES_SCHEMA)
    pq.write_table(table, root / "samples.parquet")
