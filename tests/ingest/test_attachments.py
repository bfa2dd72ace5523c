"""Attachments and metadata records are kept with the drive, whatever their names.

Inputs are written here with the mcap library's Writer; what the store holds is read back
with plain file reads, ``json``, DuckDB and the mcap reader, and compared with what was
written.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
from hypothesis import given
from hypothesis import strategies as st
from mcap.reader import make_reader
from mcap.writer import Writer

from drivecat.ingest.run import IngestOptions, ingest_drive
from drivecat.naming import (
    ATTACHMENTS_DIR,
    DRIVE_OWN_NAMES,
    attachment_file_name,
    topic_from_slug,
    topic_slug,
)

T0 = 1_750_000_000_000_000_000
HOSTILE = [
    "../../x",
    "/etc/passwd",
    "a\x00b",
    "..",
    ".",
    "",
    "x" * 10_000,
    "calibration.json",
    "calibration.json",  # the same name twice: both kept
    "caméra/ü ~%2F",
]
RECORDS = [("device", {"device_id": "v1", "device_version": "1.0"}), ("run", {"k": "1"})]


def _recording(path: Path, attachments: list[str], topic: str = "/data") -> list[bytes]:
    """An MCAP with two messages on ``topic``, one attachment per name (data: its index and
    name), the metadata ``RECORDS`` and a repeat of ``run``; returns the attachment data."""
    datas = [f"{i}:{name}".encode(errors="surrogatepass") for i, name in enumerate(attachments)]
    with path.open("wb") as f:
        writer = Writer(f)
        writer.start(profile="", library="test")
        for name, record in RECORDS:
            writer.add_metadata(name, record)
        for i, (name, data) in enumerate(zip(attachments, datas, strict=True)):
            writer.add_attachment(T0 + i, T0 + 10 + i, name, "application/octet-stream", data)
        writer.add_metadata("run", {"k": "2"})
        channel = writer.register_channel(topic, "json", 0)
        for i in range(2):
            writer.add_message(channel, T0 + i, b"{}", T0 + i, i)
        writer.finish()
    return datas


def test_hostile_names_stay_in_the_attachments_folder(tmp_path: Path) -> None:
    datas = _recording(tmp_path / "rec.mcap", HOSTILE)
    store = tmp_path / "store"
    result = ingest_drive(tmp_path / "rec.mcap", IngestOptions(store=store, drive_id="d"))
    assert result.status == "ingested" and result.drive_status == "complete", result
    drive = store / "drives" / "d"
    folder = drive / ATTACHMENTS_DIR
    stored = sorted(folder.iterdir())
    assert len(stored) == len(HOSTILE)
    assert all(p.parent == folder and len(p.name.encode()) <= 130 for p in stored)
    assert sorted(p.read_bytes() for p in stored) == sorted(datas)
    # nothing else appeared anywhere: every file is the manifest's, a catalog row or an output
    manifest = json.loads((drive / "manifest.json").read_text())
    assert [
        (a["name"], a["log_time_ns"], a["create_time_ns"], (drive / a["path"]).read_bytes())
        for a in manifest["attachments"]
    ] == [(n, T0 + 10 + i, T0 + i, d) for i, (n, d) in enumerate(zip(HOSTILE, datas, strict=True))]
    assert all(
        a["sha256"] == hashlib.sha256((drive / a["path"]).read_bytes()).hexdigest()
        for a in manifest["attachments"]
    )
    assert {p.relative_to(drive).parts[0] for p in drive.rglob("*") if p.is_file()} == {
        "manifest.json",
        "catalog",
        "attachments",
        "+data",
    }
    con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT name, path, bytes FROM attachments WHERE kind = 'attachment' ORDER BY path"
    ).fetchall()
    meta = con.execute(
        "SELECT name, metadata FROM attachments WHERE kind = 'metadata' ORDER BY name"
    ).fetchall()
    con.close()
    assert [(n, (store / p).read_bytes(), b) for n, p, b in rows] == [
        (n, d, len(d)) for n, d in zip(HOSTILE, datas, strict=True)
    ]
    recorded = [*RECORDS, ("run", {"k": "2"})]
    assert sorted((n, sorted(m.items())) for n, m in meta) == sorted(
        (n, sorted(m.items())) for n, m in recorded
    )


def test_every_metadata_record_goes_into_every_output_file(tmp_path: Path) -> None:
    _recording(tmp_path / "rec.mcap", ["calibration.json"])
    store = tmp_path / "store"
    flags = IngestOptions(store=store, drive_id="d")
    assert ingest_drive(tmp_path / "rec.mcap", flags).status == "ingested"
    manifest = json.loads((store / "drives" / "d" / "manifest.json").read_text())
    recorded = [*RECORDS, ("run", {"k": "2"})]
    assert [(m["name"], m["metadata"]) for m in manifest["metadata"]] == recorded
    assert {m["source"] for m in manifest["metadata"]} == {"rec.mcap"}
    [out] = (store / "drives" / "d").rglob("*.mcap")
    with out.open("rb") as f:
        records = [(m.name, dict(m.metadata)) for m in make_reader(f).iter_metadata()]
    assert records[:-1] == recorded  # in order, the repeated name too
    assert records[-1][0] == "device" and records[-1][1]["device_id"] == "v1"


def test_a_topic_named_like_the_drives_own_folders_gets_its_own(tmp_path: Path) -> None:
    _recording(tmp_path / "rec.mcap", ["calibration.json"], topic="attachments")
    store = tmp_path / "store"
    assert ingest_drive(tmp_path / "rec.mcap", IngestOptions(store=store, drive_id="d")).status
    drive = store / "drives" / "d"
    assert [p.name for p in (drive / ATTACHMENTS_DIR).iterdir()] == ["0000_calibration.json"]
    [out] = drive.rglob("*.mcap")
    assert out.parent.name != ATTACHMENTS_DIR
    assert topic_from_slug(out.parent.name) == "attachments"


def test_an_attachment_failing_its_crc_is_kept_and_makes_the_drive_partial(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rec.mcap"
    _recording(path, ["calibration.json"])
    raw = bytearray(path.read_bytes())
    at = raw.index(b"0:calibration.json")
    raw[at] = ord("9")  # the data changes; the recorded CRC does not
    path.write_bytes(bytes(raw))
    store = tmp_path / "store"
    result = ingest_drive(path, IngestOptions(store=store, drive_id="d"))
    assert result.drive_status == "partial"
    assert any("calibration.json" in w and "CRC" in w for w in result.warnings)
    stored = store / "drives" / "d" / ATTACHMENTS_DIR / "0000_calibration.json"
    assert stored.read_bytes() == b"9:calibration.json"


@given(st.integers(0, 20_000), st.text(max_size=300))
def test_attachment_file_names_are_one_plain_name(index: int, name: str) -> None:
    made = attachment_file_name(index, name)
    assert "/" not in made and "\\" not in made and "\x00" not in made
    assert made not in (".", "..") and made.startswith(f"{index:04d}_")
    assert len(made.encode()) <= len(f"{index:04d}_") + 120
    assert made.isascii()


@given(st.sampled_from(sorted(DRIVE_OWN_NAMES)), st.booleans())
def test_topic_slugs_never_take_the_drives_own_names(name: str, upper: bool) -> None:
    topic = name.upper() if upper else name
    slug = topic_slug(topic)
    assert slug.lower() not in DRIVE_OWN_NAMES
    assert topic_from_slug(slug) == topic
