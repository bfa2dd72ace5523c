"""A minimal PyTorch-style dataset over an exported ``samples.parquet``.

``DrivecatDataset(root, split="train")`` has ``len()`` and ``ds[i]``, which is all a
``torch.utils.data.DataLoader`` needs (map-style); torch itself is never imported. Only the
sample table is read up front; each item's pictures, point cloud and label are read when it
is asked for. Pictures are decoded with PyAV (PNG or JPEG) and point clouds with open3d,
both imported on first use.

An item is a dict:

- ``sample``: the samples.parquet row (``frames`` included), paths relative to the root;
- ``frames``: camera topic -> (height, width, 3) uint8 RGB array;
- ``points``: float32 (n, 4) x, y, z, intensity, or (n, 3) when the cloud has no
  intensity; None when the sample has no point cloud;
- ``label``: the label JSON (tags, segment, nearest detections).

``transform``, when given, is applied to the item and its result is returned.

``split=None`` (the default) reads every split. Items differ in size (each sweep has its
own number of points, each sample its own detections), so torch's default collate cannot
batch them: pass ``collate_fn=collate`` to the DataLoader (see :func:`collate`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from drivecat.catalog.errors import CatalogError

SAMPLES = "samples.parquet"

Item = dict[str, Any]


class DrivecatDataset:
    """The samples of an exported dataset, optionally of one split (e.g. "train").

    CatalogError when ``root`` has no readable samples.parquet, or no sample is in
    ``split``: a typo like "tran" fails loudly instead of training on nothing.
    """

    def __init__(
        self,
        root: str | Path,
        split: str | None = None,
        transform: Callable[[Item], Any] | None = None,
    ) -> None:
        self.root = Path(root)
        path = self.root / SAMPLES
        try:
            table = pq.read_table(path)
        except (OSError, ValueError) as err:
            raise CatalogError(f"{path}: cannot read the samples table: {err}") from None
        if split is not None:
            splits = set(table.column("split").to_pylist())
            if split not in splits:
                raise CatalogError(f"{path}: no sample in split {split!r} (have {sorted(splits)})")
            table = table.filter(pc.equal(table.column("split"), split))
        self.split = split
        self.transform = transform
        self.samples = table

    def __len__(self) -> int:
        return int(self.samples.num_rows)

    def __getitem__(self, index: int) -> Any:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"sample {index} out of range for {n} samples")
        row = self.samples.slice(index % n, 1).to_pylist()[0]
        if row.get("tags") is not None:
            row["tags"] = dict(row["tags"])  # Arrow hands a MAP over as (key, value) pairs
        item: Item = {
            "sample": row,
            "frames": {f["topic"]: load_image(self.root / f["path"]) for f in row["frames"]},
            "points": (
                load_points(self.root / row["pointcloud_path"]) if row["pointcloud_path"] else None
            ),
            "label": load_label(self.root / row["label_path"]),
        }
        return self.transform(item) if self.transform is not None else item

    def __repr__(self) -> str:
        split = f", split={self.split!r}" if self.split is not None else ""
        return f"DrivecatDataset({str(self.root)!r}{split}: {len(self)} samples)"


def collate(items: Sequence[Item]) -> dict[str, Any]:
    """Batch dataset items (``DataLoader(ds, batch_size=4, collate_fn=collate)``).

    Returns numpy arrays and lists (``torch.from_numpy`` makes tensors of the arrays
    without a copy; torch is not imported here):

    - ``sample``, ``label``: lists, one entry per item;
    - ``frames``: camera topic -> uint8 (B, H, W, 3) when every item has that camera at one
      size, else a list of (H, W, 3) arrays (None where an item lacks the camera);
    - ``points``: float32 (B, N, C), each cloud zero-padded to the batch's largest N, with
      ``points_count`` int64 (B,) the real rows of each (C is 4 with intensity, else 3;
      an item without a cloud counts 0 rows);
    - ``detections``: a list per item of its nearest detection message's objects (empty when
      none), and ``detections_count`` int64 (B,).
    """
    if not items:
        raise ValueError("collate needs at least one item")
    clouds = [item["points"] for item in items]
    width = max((c.shape[1] for c in clouds if c is not None), default=3)
    counts = np.array([0 if c is None else len(c) for c in clouds], dtype=np.int64)
    points = np.zeros((len(items), int(counts.max(initial=0)), width), dtype=np.float32)
    for i, cloud in enumerate(clouds):
        if cloud is not None and len(cloud):
            points[i, : len(cloud), : cloud.shape[1]] = cloud
    topics = sorted({topic for item in items for topic in item["frames"]})
    frames: dict[str, Any] = {}
    for topic in topics:
        images = [item["frames"].get(topic) for item in items]
        shapes = {None if im is None else im.shape for im in images}
        frames[topic] = np.stack(images) if len(shapes) == 1 and None not in shapes else images
    detections = [
        list((item["label"].get("detections") or {}).get("objects") or []) for item in items
    ]
    return {
        "sample": [item["sample"] for item in items],
        "label": [item["label"] for item in items],
        "frames": frames,
        "points": points,
        "points_count": counts,
        "detections": detections,
        "detections_count": np.array([len(d) for d in detections], dtype=np.int64),
    }


def load_image(path: Path) -> np.ndarray:
    """A PNG or JPEG file as (height, width, 3) uint8 RGB. CatalogError if unreadable."""
    import av

    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
            return frame.to_ndarray(format="rgb24")
    except (OSError, av.FFmpegError, StopIteration) as err:
        raise CatalogError(f"{path}: cannot read the image: {err}") from None


def load_points(path: Path) -> np.ndarray:
    """A .pcd file as float32 (n, 4) x, y, z, intensity (or (n, 3) without intensity)."""
    o3d = import_open3d()

    if not path.is_file():
        raise CatalogError(f"{path}: no such point cloud")
    cloud = o3d.t.io.read_point_cloud(path)
    if "positions" not in cloud.point:
        return np.zeros((0, 3), dtype=np.float32)
    columns = [cloud.point.positions.numpy().astype(np.float32)]
    if "intensity" in cloud.point:
        columns.append(cloud.point.intensity.numpy().astype(np.float32).reshape(-1, 1))
    return np.concatenate(columns, axis=1)


def import_open3d() -> Any:
    """open3d, or a CatalogError saying in one line what to install: its wheels need the
    system library libusb-1.0, which minimal Linux images lack."""
    try:
        import open3d
    except ImportError as err:
        hint = ""
        if "libusb" in str(err):
            hint = (
                ": open3d needs the system library libusb-1.0 "
                "(Debian/Ubuntu: sudo apt-get install libusb-1.0-0)"
            )
        raise CatalogError(f"cannot import open3d for .pcd point clouds{hint} ({err})") from None
    return open3d


def load_label(path: Path) -> dict[str, Any]:
    import json

    try:
        label: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CatalogError(f"{path}: cannot read the label: {err}") from None
    return label
