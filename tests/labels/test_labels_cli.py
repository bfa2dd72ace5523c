"""catalog labels import/agreement through the CLI, against simulated labelers whose
noise and planted confusions come from the generator's true boxes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

from drivecat.cli.main import drivecat
from sample_logs.labeler import Confusion, Noise, simulate, simulate_tags


def run(*args: Any) -> Any:
    return CliRunner().invoke(drivecat, ["catalog", "labels", *map(str, args)])


@pytest.fixture
def ds(labels_dataset: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    store, dataset = labels_dataset
    shutil.copytree(store, tmp_path / "store")
    shutil.copytree(dataset, tmp_path / "ds", symlinks=True)
    return tmp_path / "store", tmp_path / "ds"


def _import(store: Path, dataset: Path, name: str, doc: Any, suffix: str = ".json") -> None:
    path = dataset.parent / f"{name}{suffix}"
    path.write_text(json.dumps(doc))
    result = run("import", "--dataset", dataset, "--labeler", name, path, "--store", store)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("source", "target", "weather"),
    [("pedestrian", "cyclist", "clear"), ("vehicle", "pedestrian", "fog")],
    ids=["pedestrian-as-cyclist-in-clear", "vehicle-as-pedestrian-in-fog"],
)
def test_agreement_finds_the_planted_confusion(
    ds: tuple[Path, Path], small_drive: Path, source: str, target: str, weather: str
) -> None:
    store, dataset = ds
    _import(store, dataset, "ann", simulate(dataset, [small_drive], Noise(seed=1)))
    planted = Noise(seed=2, confusions=(Confusion(source, target, 0.8, {"weather": weather}),))
    _import(store, dataset, "bob", simulate(dataset, [small_drive], planted))
    result = run("agreement", "--dataset", dataset, "--labelers", "ann,bob", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    top = report["confusions"][0]
    assert (top["a"], top["b"]) == (source, target) and top["count"] >= 10
    by = {c["cls"]: c for c in report["classes"]}
    # the planted class is less consistent than an untouched one
    untouched = ({"pedestrian", "vehicle", "cyclist"} - {source, target}).pop()
    assert by[source]["alpha"] < by[untouched]["alpha"]
    rows = {
        c["condition"]["weather"]: c["f1"]
        for c in report["conditions"]
        if c["cls"] == source and list(c["condition"]) == ["weather"]
    }
    other = "fog" if weather == "clear" else "clear"
    assert rows[weather] + 0.15 < rows[other] and rows[other] > 0.85, rows


def test_labels_table_joins_segments_and_tags_give_kappa(
    ds: tuple[Path, Path], small_drive: Path
) -> None:
    store, dataset = ds
    coco = simulate(dataset, [small_drive], Noise(seed=1))
    _import(store, dataset, "ann", coco)
    _import(store, dataset, "ann", simulate_tags(dataset, [small_drive], 3, 0.0))
    _import(store, dataset, "bob", simulate_tags(dataset, [small_drive], 4, 0.2))
    con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    n = con.execute(
        "SELECT count(*) FROM labels l JOIN segments s USING (drive_id, seg_idx) "
        "WHERE l.labeler = 'ann' AND l.tag IS NULL AND s.weather IN ('fog', 'clear')"
    ).fetchone()
    frames = con.execute("SELECT DISTINCT topic FROM labels WHERE tag IS NULL").fetchall()
    con.close()
    assert n is not None and n[0] == len(coco["annotations"])
    assert frames == [("/camera/front/video",)]
    (dataset / "annotations" / "bob" / "boxes.json").unlink(missing_ok=True)
    _import(store, dataset, "bob", coco)  # same boxes: perfect agreement
    report = json.loads(
        run("agreement", "--dataset", dataset, "--labelers", "ann,bob", "--json").output
    )
    assert all(c["f1"] == 1.0 for c in report["classes"]) and report["alpha"] == 1.0
    kappa = report["tags"]["crowded"]
    assert kappa["items"] == len(coco["images"]) and 0.3 < kappa["kappa"] < 0.9


def test_bad_files_get_one_line_errors(ds: tuple[Path, Path], small_drive: Path) -> None:
    store, dataset = ds
    good = simulate(dataset, [small_drive], Noise(seed=1))
    image = good["images"][0]
    cases = {
        "unknown image": {**good, "images": [{**image, "file_name": "images/nope.png"}]},
        "unknown category id 99": {
            **good, "annotations": [{**good["annotations"][0], "category_id": 99}]
        },
        "outside the image (640x360)": {
            **good,
            "annotations": [{"id": 1, "image_id": image["id"], "category_id": 1,
                             "bbox": [600, 10, 80, 20]}],
        },
    }  # fmt: skip
    for reason, doc in cases.items():
        path = dataset.parent / "bad.json"
        path.write_text(json.dumps(doc))
        result = run("import", "--dataset", dataset, "--labeler", "ann", path, "--store", store)
        assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
        assert str(path) in result.stderr and reason in result.stderr
    path = dataset.parent / "bad.json"
    path.write_text('{"images": [')
    result = run("import", "--dataset", dataset, "--labeler", "ann", path, "--store", store)
    assert result.exit_code == 2 and "malformed JSON" in result.stderr
    assert not (dataset / "annotations").exists()


def test_contact_sheet_renders(ds: tuple[Path, Path], small_drive: Path, tmp_path: Path) -> None:
    store, dataset = ds
    _import(store, dataset, "ann", simulate(dataset, [small_drive], Noise(seed=1)))
    planted = Noise(seed=2, confusions=(Confusion("pedestrian", "cyclist", 0.8, {}),))
    _import(store, dataset, "bob", simulate(dataset, [small_drive], planted))
    out = tmp_path / "sheet"
    result = run("agreement", "--dataset", dataset, "--labelers", "ann,bob", "--out", out)
    assert result.exit_code == 0, result.output
    page = (out / "index.html").read_text()
    assert page.count("<figure>") >= 6 and "#ff8c00" in page and "#1e90ff" in page
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("no chromium to render the sheet")
    png = tmp_path / "sheet.png"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", f"--user-data-dir={tmp_path / 'chrome'}", "--window-size=1000,800",
         f"--screenshot={png}", (out / "index.html").as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    from drivecat.catalog.dataset import load_image

    shot = load_image(png)
    # both labelers' colours are on screen: the boxes were drawn over the images
    orange = (
        (shot[..., 0] > 200) & (shot[..., 1] > 100) & (shot[..., 1] < 170) & (shot[..., 2] < 60)
    ).sum()
    blue = (
        (shot[..., 0] < 60) & (shot[..., 1] > 110) & (shot[..., 1] < 170) & (shot[..., 2] > 220)
    ).sum()
    assert orange > 20 and blue > 20


def test_device_detections_projected_agree_with_people(
    ds: tuple[Path, Path], small_drive: Path, tmp_path: Path
) -> None:
    from mcap.reader import make_reader

    store, dataset = ds
    with (small_drive / "rec_0000.mcap").open("rb") as f:
        [cal] = [a.data for a in make_reader(f).iter_attachments() if a.name == "calibration.json"]
    (tmp_path / "cal.json").write_bytes(cal)
    _import(store, dataset, "ann", simulate(dataset, [small_drive], Noise(seed=1, jitter=0.0)))
    args = ["agreement", "--dataset", dataset, "--labelers", "ann,device", "--json"]
    result = run(*args, "--calibration", tmp_path / "cal.json")
    assert result.exit_code == 0, result.output
    by = {c["cls"]: c for c in json.loads(result.output)["classes"]}
    # class sizes are assumptions and detections are up to 50 ms off the frame: loose bounds
    assert by["vehicle"]["f1"] > 0.7 and by["pedestrian"]["f1"] > 0.5
    missing = run(*args)
    assert missing.exit_code == 2 and "--calibration" in missing.stderr


def test_labels_survive_the_loss_of_the_catalog(ds: tuple[Path, Path], small_drive: Path) -> None:
    """Labels are journaled in the store: a rebuild restores exactly the imported rows,
    and a re-import replaces the journaled ones as it replaces them in the catalog."""
    store, dataset = ds
    first = simulate(dataset, [small_drive], Noise(seed=1))
    second = simulate(dataset, [small_drive], Noise(seed=2, miss_rate=0.5))
    _import(store, dataset, "ann", first)
    _import(store, dataset, "ann", second)  # replaces ann's boxes
    _import(store, dataset, "ann", simulate_tags(dataset, [small_drive], 3, 0.0))

    def rows() -> list[tuple[Any, ...]]:
        con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
        try:
            return con.execute(
                "SELECT labeler, sample_id, frame, class, box, tag, drive_id, seg_idx FROM labels "
                "ORDER BY ALL"
            ).fetchall()
        finally:
            con.close()

    before = rows()
    boxes = [r for r in before if r[5] is None]
    assert len(boxes) == len(second["annotations"]) < len(first["annotations"])
    (store / "catalog.duckdb").unlink()
    result = CliRunner().invoke(drivecat, ["catalog", "rebuild", "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert rows() == before
