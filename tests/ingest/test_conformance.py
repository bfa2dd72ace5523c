"""The MCAP project's conformance suite, ingested: the store keeps every record it lists.

Each of the 416 files of ``../shared/data/real/mcap-conformance`` comes with a ``.json``
that lists the records it holds. Every file is ingested into one store (a drive each), and
then, for each file, what the store holds is read back with the mcap library's readers (the
output files), ``json`` (the manifest), plain file reads (the attachments folder) and DuckDB
(the catalog), never with drivecat's code, and compared with the ``.json``:
- every message: topic, log_time, publish_time, sequence, data, and its schema's name,
  encoding and data;
- every attachment: name, media type, log_time, create_time and its bytes;
- every metadata record: name and map, in order, in the manifest, the catalog and every
  output file.
Every output file must also pass the mcap readers with CRC validation.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest
from mcap.reader import make_reader
from mcap.stream_reader import StreamReader

from drivecat.catalog import db
from drivecat.ingest.run import IngestOptions, commit_prepared, prepare_drive
from tests.ingest.conftest import REAL

SUITE = REAL / "mcap-conformance"
FILES = sorted(SUITE.glob("*/*.mcap"))


def _drive_id(path: Path) -> str:
    return path.stem.replace("-", "_")


def _fields(record: dict[str, Any]) -> dict[str, Any]:
    return dict(record["fields"])


def _bytes(values: list[str]) -> bytes:
    return bytes(int(v) for v in values)


class Expected:
    """What one file's ``.json`` says it holds."""

    def __init__(self, spec: dict[str, Any]) -> None:
        records = spec["records"]
        schemas = {f["id"]: f for r in records if r["type"] == "Schema" for f in [_fields(r)]}
        channels = {f["id"]: f for r in records if r["type"] == "Channel" for f in [_fields(r)]}
        self.messages: Counter[tuple[Any, ...]] = Counter()
        self.attachments: list[tuple[Any, ...]] = []
        self.metadata: list[tuple[str, dict[str, str]]] = []
        for record in records:
            f = _fields(record)
            if record["type"] == "Message":
                channel = channels[f["channel_id"]]
                schema = schemas.get(channel["schema_id"])
                self.messages[
                    (
                        channel["topic"],
                        int(f["log_time"]),
                        int(f["publish_time"]),
                        int(f["sequence"]),
                        _bytes(f["data"]),
                        None if schema is None else schema["name"],
                        None if schema is None else schema["encoding"],
                        None if schema is None else _bytes(schema["data"]),
                    )
                ] += 1
            elif record["type"] == "Attachment":
                self.attachments.append(
                    (
                        f["name"],
                        f["media_type"],
                        int(f["log_time"]),
                        int(f["create_time"]),
                        _bytes(f["data"]),
                    )
                )
            elif record["type"] == "Metadata":
                self.metadata.append((f["name"], dict(f["metadata"])))


@pytest.fixture(scope="session")
def conformance_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every conformance file ingested into one store, drive id = file stem.

    ``ingest_drive`` opens and closes the catalog for every drive (its write lock is held
    for a commit, not a pass); for 416 tiny drives that is most of the time, so this does
    its two halves, ``prepare_drive`` and ``commit_prepared``, on one connection.
    """
    if not FILES:
        pytest.skip("../shared/data/real/mcap-conformance is not here")
    store = tmp_path_factory.mktemp("conformance")
    con = db.connect(store)
    try:
        for path in FILES:
            options = IngestOptions(store=store, drive_id=_drive_id(path))
            result = commit_prepared(con, store, prepare_drive(path, options), force=False)
            assert result.status == "ingested", (path.name, result)
    finally:
        con.close()
    return store


@pytest.fixture(scope="session")
def catalog_rows(conformance_store: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The ``attachments`` rows of every drive, read with DuckDB, in table order."""
    con = duckdb.connect(str(conformance_store / "catalog.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT drive_id, kind, name, media_type, log_time_ns, create_time_ns, bytes, "
            "sha256, path, metadata FROM attachments ORDER BY drive_id, kind, path"
        ).fetchall()
    finally:
        con.close()
    out: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        out.setdefault(row[0], []).append(row[1:])
    return out


def _outputs(drive: Path) -> list[Path]:
    return sorted(p for p in drive.rglob("*.mcap") if not p.name.startswith("."))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_the_store_keeps_every_record(
    path: Path, conformance_store: Path, catalog_rows: dict[str, list[tuple[Any, ...]]]
) -> None:
    want = Expected(json.loads(path.with_suffix(".json").read_text()))
    drive = conformance_store / "drives" / _drive_id(path)
    manifest = json.loads((drive / "manifest.json").read_text())

    got: Counter[tuple[Any, ...]] = Counter()
    for out in _outputs(drive):
        with out.open("rb") as f:
            reader = make_reader(f, validate_crcs=True)
            for schema, channel, m in reader.iter_messages():
                got[
                    (
                        channel.topic,
                        m.log_time,
                        m.publish_time,
                        m.sequence,
                        m.data,
                        None if schema is None else schema.name,
                        None if schema is None else schema.encoding,
                        None if schema is None else schema.data,
                    )
                ] += 1
            records = [(r.name, dict(r.metadata)) for r in reader.iter_metadata()]
        # the inputs' records in order, then the drive's own identity
        assert records[:-1] == want.metadata and records[-1][0] == "device"
        with out.open("rb") as f:  # the streaming reader checks the data-section CRC too
            assert sum(1 for _ in StreamReader(f, validate_crcs=True).records) > 0
    assert got == want.messages

    stored = []
    for entry in manifest["attachments"]:
        data = (drive / entry["path"]).read_bytes()
        assert (entry["bytes"], entry["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
        assert (drive / entry["path"]).parent == drive / "attachments"
        assert entry["source"] == path.name
        times = (entry["log_time_ns"], entry["create_time_ns"])
        stored.append((entry["name"], entry["media_type"], *times, data))
    assert stored == want.attachments
    assert [(m["name"], m["metadata"]) for m in manifest["metadata"]] == want.metadata

    rows = catalog_rows.get(_drive_id(path), [])
    prefix = f"drives/{_drive_id(path)}/"
    assert [
        (r[1], r[2], r[3], r[4], (conformance_store / r[7]).read_bytes())
        for r in rows
        if r[0] == "attachment" and r[7].startswith(prefix)
    ] == want.attachments
    assert sorted((r[1], dict(r[8])) for r in rows if r[0] == "metadata") == sorted(want.metadata)
