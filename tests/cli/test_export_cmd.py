"""``catalog export`` through click's CliRunner: outputs, messages and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import open3d as o3d
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from mcap.reader import make_reader

from drivecat.cli.main import catalog_group, drivecat
from drivecat.ingest.config import Config
from drivecat.ingest.run import IngestOptions, ingest_drive


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, small_drive: Path) -> Path:
    path = tmp_path_factory.mktemp("export_cli_store")
    config = Config(tags={"intersection": {"map": str(small_drive / "intersections.geojson")}})
    assert ingest_drive(small_drive, IngestOptions(store=path, config=config)).status == "ingested"
    return path


def _run(store: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(catalog_group, ["export", "--store", str(store), *args])
    return result.exit_code, result.stdout, result.stderr


def test_mcap_export_with_json(store: Path, small_drive: Path, tmp_path: Path) -> None:
    out = tmp_path / "gps"
    code, stdout, stderr = _run(
        store, "--where", "seg_idx = 0", "--format", "mcap", "--out", str(out),
        "--topics", "/gps/fix,/vehicle/state", "--json",
    )  # fmt: skip
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["format"] == "mcap" and report["out"] == str(out) and report["ranges"] == 1
    truth = json.loads((small_drive / "truth.json").read_text())
    seg = truth["segments"][0]
    expected = 0
    for rec in sorted(small_drive.glob("rec_*.mcap")):
        with rec.open("rb") as f:
            for _, _, m in make_reader(f).iter_messages(topics=["/gps/fix", "/vehicle/state"]):
                expected += seg["start_ns"] <= m.log_time < seg["end_ns"]
    assert report["sample_count"] == expected
    [path] = out.glob("*.mcap")
    assert path.name.startswith(truth["drive_id"] + "_")
    assert (out / "lineage.json").is_file()
    assert stderr == ""  # no progress bar: not a terminal


def test_exit_codes_and_messages(store: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "x")
    code, _, stderr = _run(store, "--where", "weather = 'hail'", "--format", "mcap", "--out", out)
    assert (code, stderr) == (
        1,
        "Error: --where \"weather = 'hail'\": no segment matches; nothing to do\n",
    )
    code, _, stderr = _run(store, "--where", "wether = 1", "--format", "mcap", "--out", out)
    assert code == 2
    assert stderr.startswith("Error: --where 'wether = 1': Binder Error: Referenced column")
    assert stderr.count("\n") == 1
    code, _, stderr = _run(
        store, "--where", "true", "--format", "dataset", "--out", out, "--split", "train=0.9"
    )
    assert (code, stderr) == (2, "Error: --split 'train=0.9': the fractions sum to 0.9, not 1\n")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("")
    code, _, stderr = _run(store, "--where", "true", "--format", "mcap", "--out", out)
    assert (code, stderr) == (
        2,
        f"Error: {out}: --out exists and is not empty (use --force to replace it)\n",
    )
    code, _, stderr = _run(store, "--where", "true", "--format", "zip", "--out", out)
    assert code == 2 and "Invalid value for '--format'" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]


def test_dataset_export_with_voxel_and_summary(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    result = CliRunner().invoke(
        drivecat,
        [
            "catalog", "export", "--store", str(store), "--where", "seg_idx = 2",
            "--format", "dataset", "--out", str(out), "--voxel", "2.0",
            "--camera-topics", "/camera/front/video", "--image-format", "jpg",
            "--split", "a=0.5,b=0.5", "--image-workers", "0",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    samples = pq.read_table(out / "samples.parquet").to_pylist()
    assert result.stdout.startswith(f"exported {len(samples)} samples from 1 time ranges")
    assert result.stdout.rstrip().endswith(" s") and str(out) in result.stdout
    assert {s["split"] for s in samples} <= {"a", "b"}
    row = samples[0]
    assert row["frames"][0]["path"].endswith(".jpg")
    cloud = o3d.t.io.read_point_cloud(out / row["pointcloud_path"])
    assert 0 < cloud.point.positions.shape[0] < 2000  # 2 m voxels merge the 2000 points


def test_format_choices_come_from_the_table() -> None:
    from drivecat.catalog.exporters import EXPORTERS

    result = CliRunner().invoke(catalog_group, ["export", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert f"[{'|'.join(EXPORTERS)}]" in text
    for name, entry in EXPORTERS.items():
        assert f"{name}: {entry.summary}" in text
