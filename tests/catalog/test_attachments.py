"""The generated drive's ``calibration.json`` attachment and its metadata records survive
ingest, ``catalog rebuild`` and both export formats.

The expected records are read from the input recordings with the mcap library; the store,
the exports and the catalog are read with the mcap reader, ``json``, file reads and DuckDB.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest
from mcap.reader import make_reader

from drivecat.catalog import store as store_fs
from drivecat.catalog.errors import CatalogError
from drivecat.catalog.export import ExportOptions, export


def _recorded(drive: Path) -> tuple[list[tuple[Any, ...]], list[tuple[str, dict[str, str]]]]:
    """(attachments, metadata records) of the input recordings, in input order."""
    attachments, metadata = [], []
    for path in sorted(drive.glob("rec_*.mcap")):
        with path.open("rb") as f:
            reader = make_reader(f)
            attachments += [
                (a.name, a.media_type, a.log_time, a.create_time, a.data)
                for a in reader.iter_attachments()
            ]
            metadata += [(m.name, dict(m.metadata)) for m in reader.iter_metadata()]
    return attachments, metadata


@pytest.fixture(scope="module")
def store(small_and_sidecar_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shared store (exports and rebuilds write to it)."""
    out = tmp_path_factory.mktemp("attachments") / "store"
    shutil.copytree(small_and_sidecar_store, out)
    return out


def _drive_id(store: Path, drive: Path) -> str:
    truth = json.loads((drive / "truth.json").read_text())
    return str(truth["drive_id"])


def _rows(store: Path, drive_id: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    try:
        return con.execute(
            "SELECT kind, name, media_type, log_time_ns, create_time_ns, bytes, sha256, path, "
            "metadata FROM attachments WHERE drive_id = ? ORDER BY kind, path",
            [drive_id],
        ).fetchall()
    finally:
        con.close()


def _check_rows(store: Path, drive_id: str, small_drive: Path) -> None:
    attachments, metadata = _recorded(small_drive)
    assert [a[0] for a in attachments] == ["calibration.json"]
    rows = _rows(store, drive_id)
    kept = [r for r in rows if r[0] == "attachment"]
    data = [(store / r[7]).read_bytes() for r in kept]
    assert [(r[1], r[2], r[3], r[4], d) for r, d in zip(kept, data, strict=True)] == attachments
    assert [(r[5], r[6]) for r in kept] == [(len(d), hashlib.sha256(d).hexdigest()) for d in data]
    got = sorted((r[1], sorted(dict(r[8]).items())) for r in rows if r[0] == "metadata")
    assert got == sorted((n, sorted(m.items())) for n, m in metadata)
    assert len(got) == 2  # one device record per recording, both kept


def test_ingest_keeps_the_calibration(store: Path, small_drive: Path) -> None:
    drive_id = _drive_id(store, small_drive)
    _check_rows(store, drive_id, small_drive)
    _, metadata = _recorded(small_drive)
    manifest = json.loads((store / "drives" / drive_id / "manifest.json").read_text())
    assert [(m["name"], m["metadata"]) for m in manifest["metadata"]] == metadata
    assert [m["source"] for m in manifest["metadata"]] == ["rec_0000.mcap", "rec_0001.mcap"]


def test_rebuild_restores_the_attachments_rows(store: Path, small_drive: Path) -> None:
    drive_id = _drive_id(store, small_drive)
    before = _rows(store, drive_id)
    (store / "catalog.duckdb").unlink()
    report = store_fs.rebuild(store)
    assert drive_id in report.drive_ids and not report.skipped
    assert _rows(store, drive_id) == before
    _check_rows(store, drive_id, small_drive)


def test_mcap_export_embeds_attachments_and_metadata(
    store: Path, small_drive: Path, tmp_path: Path
) -> None:
    drive_id = _drive_id(store, small_drive)
    attachments, metadata = _recorded(small_drive)
    out = tmp_path / "mcap"
    where = f"drive_id = '{drive_id}' AND seg_idx = 1"
    export(store, ExportOptions(where=where, format="mcap", out=out, topics=("/gps/fix",)))
    [path] = out.glob("*.mcap")
    with path.open("rb") as f:
        reader = make_reader(f, validate_crcs=True)
        got = [
            (a.name, a.media_type, a.log_time, a.create_time, a.data)
            for a in reader.iter_attachments()
        ]
        records = [(m.name, dict(m.metadata)) for m in reader.iter_metadata()]
    assert got == attachments
    assert records[:-1] == metadata and records[-1][0] == "device"
    lineage = json.loads((out / "lineage.json").read_text())
    assert [(a["name"], a["sha256"], a["path"]) for a in lineage["attachments"]] == [
        (a[0], hashlib.sha256(a[4]).hexdigest(), path.name) for a in attachments
    ]


def test_dataset_export_carries_the_attachments(
    store: Path, small_drive: Path, tmp_path: Path
) -> None:
    drive_id = _drive_id(store, small_drive)
    attachments, _ = _recorded(small_drive)
    out = tmp_path / "dataset"
    where = f"drive_id = '{drive_id}' AND seg_idx = 1"
    export(store, ExportOptions(where=where, format="dataset", out=out, image_workers=0))
    lineage = json.loads((out / "lineage.json").read_text())
    listed = lineage["attachments"]
    assert [(a["name"], a["media_type"]) for a in listed] == [(a[0], a[1]) for a in attachments]
    for entry, recorded in zip(listed, attachments, strict=True):
        data = (out / entry["path"]).read_bytes()
        assert data == recorded[4]
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["path"].startswith(f"attachments/{drive_id}/")


def test_an_attachment_changed_in_the_store_fails_the_export(
    store: Path, small_drive: Path, tmp_path: Path
) -> None:
    drive_id = _drive_id(store, small_drive)
    [stored] = (store / "drives" / drive_id / "attachments").iterdir()
    original = stored.read_bytes()
    stored.write_bytes(original + b" ")
    try:
        where = f"drive_id = '{drive_id}' AND seg_idx = 1"
        out = tmp_path / "x"
        options = ExportOptions(where=where, format="mcap", out=out, topics=("/gps/fix",))
        with pytest.raises(CatalogError, match="attachment changed since ingest"):
            export(store, options)
        assert not out.exists()
    finally:
        stored.write_bytes(original)
