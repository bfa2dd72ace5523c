"""Topics named to collide with the drive's own files or to leave its folder are stored
like any other, and the drive's own files stay intact."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mcap.writer import Writer

from drivecat.catalog.store import read_manifest
from drivecat.ingest.run import IngestOptions, ingest_drive
from drivecat.naming import ATTACHMENTS_DIR, CATALOG_DIR, MANIFEST_NAME
from tests.ingest.helpers import message_keys, query

HOSTILE = [
    MANIFEST_NAME,
    CATALOG_DIR,
    ATTACHMENTS_DIR,
    f"{CATALOG_DIR}/drives",
    ".",
    "..",
    "",
    "/../../etc",
    "a/../../b",
    "../../../../tmp/escape",
    "x" * 300,  # over 255 bytes: no file system takes it as one name
    "/é/日本/🚗",
    "nul\x00byte",
    "%",
    "+",
    "%2F",
    ".tmp-1",
    ".manifest.json.partial",
    "/ordinary/topic",
]
START_NS = 1_781_544_600_000_000_000


def _write_recording(path: Path) -> None:
    with open(path, "wb") as f:
        writer = Writer(f)
        writer.start(profile="", library="test")
        schema = writer.register_schema("T", "jsonschema", b"{}")
        channels = [writer.register_channel(t, "json", schema) for t in HOSTILE]
        for i in range(30):  # 3 s at 10 Hz per topic
            for c, channel in enumerate(channels):
                t = START_NS + i * 100_000_000 + c
                data = json.dumps({"i": i, "c": c}).encode()
                writer.add_message(channel, t, data, t, i)
        writer.finish()


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    root = tmp_path_factory.mktemp("hostile")
    drive = root / "offload"
    drive.mkdir()
    _write_recording(drive / "rec.mcap")
    store = root / "store"
    result = ingest_drive(drive, IngestOptions(store=store))
    assert result.status == "ingested", result
    assert result.drive_id is not None
    return drive, store, result.drive_id


def test_every_message_is_stored(hostile_store: tuple[Path, Path, str]) -> None:
    drive, store, drive_id = hostile_store
    stored = sorted((store / "drives" / drive_id).rglob("*.mcap"))
    assert message_keys(stored) == message_keys([drive / "rec.mcap"])
    topics = {t for (t,) in query(store, "SELECT topic FROM topics")}
    assert topics == set(HOSTILE)


def test_the_drives_own_files_are_intact(hostile_store: tuple[Path, Path, str]) -> None:
    _, store, drive_id = hostile_store
    folder = store / "drives" / drive_id
    manifest = read_manifest(folder)  # still the drive's manifest, not a topic's folder
    assert manifest["drive_id"] == drive_id
    assert sorted(p.name for p in (folder / CATALOG_DIR).iterdir()) == sorted(
        f"{name}.parquet" for name in manifest["catalog"]
    )
    for entry in manifest["catalog"].values():
        assert (folder / entry["path"]).is_file()
    # each topic has exactly one folder of its own, directly in the drive's folder
    paths = [Path(p).parts for (p,) in query(store, "SELECT path FROM files")]
    assert {parts[:2] for parts in paths} == {("drives", drive_id)}
    assert all(len(parts) == 4 for parts in paths)  # drives/<id>/<slug>/<file>
    slugs = {parts[2] for parts in paths}
    assert len(slugs) == len(HOSTILE)
    assert not slugs & {MANIFEST_NAME, CATALOG_DIR, ATTACHMENTS_DIR}


def test_nothing_is_written_outside_the_drive(hostile_store: tuple[Path, Path, str]) -> None:
    _, store, drive_id = hostile_store
    folder = (store / "drives" / drive_id).resolve()
    for dirpath, _dirs, filenames in os.walk(store):
        for name in filenames:
            path = (Path(dirpath) / name).resolve()
            # the store's own files (the catalog, its writer lock), else the drive's folder
            own = {(store / "catalog.duckdb").resolve(), (store / ".lock").resolve()}
            assert path in own or path.is_relative_to(folder)
    for (path,) in query(store, "SELECT path FROM files"):
        assert (store / path).resolve().is_relative_to(folder)
        assert (store / path).resolve().parent.parent == folder
