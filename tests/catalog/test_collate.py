"""Batching DrivecatDataset items: ``collate`` pads the point clouds and keeps detections
as lists, in a real torch DataLoader (batch size 4, two workers) when torch is here. The
dataset card describes the samples table it sits beside."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from drivecat.catalog.dataset import DrivecatDataset, collate
from drivecat.catalog.export import ExportOptions, export
from tests.catalog.handmade import write_sample, write_samples


@pytest.fixture
def ragged(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """Six samples with 10..60 points, 0..5 detections, and one without a point cloud."""
    rng = np.random.default_rng(11)
    truth, rows = [], []
    for k in range(6):
        image = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
        points = rng.normal(size=(10 * (k + 1), 4)).astype(np.float32)
        objects = [{"track_id": j} for j in range(k)]
        label = {"sample_id": f"s{k}", "detections": {"objects": objects} if k else None}
        has_cloud = k != 3
        cloud = points if has_cloud else None
        rows.append(write_sample(tmp_path, k, image, cloud, label, "tv"[k % 2], {}))
        truth.append({"image": image, "points": cloud, "objects": objects})
    write_samples(tmp_path, rows)
    return tmp_path, truth


def check_batch(batch: dict[str, Any], want: list[dict[str, Any]]) -> None:
    points, counts = np.asarray(batch["points"]), np.asarray(batch["points_count"])
    sizes = [0 if w["points"] is None else len(w["points"]) for w in want]
    assert points.shape == (len(want), max(sizes), 4)
    for i, w in enumerate(want):
        n = 0 if w["points"] is None else len(w["points"])
        assert counts[i] == n
        if n:
            np.testing.assert_array_equal(points[i, :n], w["points"])
        assert not points[i, n:].any()  # the padding is zeros
        np.testing.assert_array_equal(np.asarray(batch["frames"]["/cam"][i]), w["image"])
        assert batch["detections"][i] == w["objects"]
    assert list(np.asarray(batch["detections_count"])) == [len(w["objects"]) for w in want]


def test_collate_pads_points_and_keeps_detections(ragged: tuple[Path, Any]) -> None:
    root, truth = ragged
    ds = DrivecatDataset(root)  # split=None: every split
    assert len(ds) == 6
    batch = collate([ds[i] for i in range(4)])
    check_batch(batch, truth[:4])
    assert batch["frames"]["/cam"].shape == (4, 24, 32, 3)
    assert [s["sample_id"] for s in batch["sample"]] == ["s0", "s1", "s2", "s3"]


@pytest.mark.parametrize("workers", [0, 2])
def test_a_real_dataloader_at_batch_size_4(ragged: tuple[Path, Any], workers: int) -> None:
    torch = pytest.importorskip("torch")  # optional: the `torch` extra
    DataLoader = pytest.importorskip("torch.utils.data").DataLoader  # noqa: N806

    root, truth = ragged
    ds = DrivecatDataset(root)
    with pytest.raises((RuntimeError, TypeError)):  # the default collate cannot batch these
        next(iter(DataLoader(ds, batch_size=4)))
    loader = DataLoader(ds, batch_size=4, collate_fn=collate, num_workers=workers)
    batches = list(loader)
    assert len(batches) == math.ceil(len(ds) / 4)
    for b, batch in enumerate(batches):
        check_batch(batch, truth[4 * b : 4 * b + 4])
        tensor = torch.from_numpy(batch["points"])
        assert tensor.dtype == torch.float32 and tensor.shape[0] == len(batch["sample"])


def test_every_dataset_export_has_a_card(demo_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(demo_store, store)
    out = tmp_path / "peds"
    options = ExportOptions(where="pedestrian_count > 0", format="dataset", out=out)
    export(store, options)
    card = (out / "README.md").read_text()
    samples = pq.read_table(out / "samples.parquet").to_pylist()
    assert "pedestrian_count > 0" in card and str(store.absolute()) in card
    for split in {s["split"] for s in samples}:
        n = sum(s["split"] == split for s in samples)
        frames = sum(len(s["frames"]) for s in samples if s["split"] == split)
        assert f"| {split} | {n} | 1 | {frames} |" in card
    rain = sum(s["weather"] == "rain" for s in samples)
    assert f"| weather | rain | {rain} |" in card
    assert "DataLoader(ds, batch_size=4, collate_fn=collate" in card


def test_open3d_without_libusb_is_one_line(
    demo_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a machine without libusb-1.0 sees: open3d's import fails inside its own
    shared library. The export says what to install, in one line, and writes nothing."""
    import builtins

    from click.testing import CliRunner

    from drivecat.cli.main import drivecat

    real_import = builtins.__import__

    def no_libusb(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "open3d" or name.startswith("open3d."):
            raise ImportError("libusb-1.0.so.0: cannot open shared object file: No such file")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(__import__("sys").modules, "open3d", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_libusb)
    store = tmp_path / "store"
    shutil.copytree(demo_store, store)
    out = tmp_path / "ds"
    result = CliRunner().invoke(
        drivecat,
        ["catalog", "export", "--store", str(store), "--where", "true", "--format", "dataset",
         "--out", str(out), "--image-workers", "0"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
    assert "apt-get install libusb-1.0-0" in result.stderr
    assert not out.exists() and not list(tmp_path.glob(".ds.tmp-*"))
