"""Every output file is read by the TypeScript ``@mcap/core`` indexed reader (what Foxglove uses).

``tests/ts/read_mcap.mjs`` opens each file with ``McapIndexedReader.Initialize`` over a
file-backed readable, reads every message through the message indexes (with CRCs checked),
every attachment and metadata record, checks the statistics against what it read, and prints a
digest per file. The same digest is computed here with the Python mcap library's seeking reader
(which reads chunks whole, not through the message indexes) and, for the message count, its
stream reader (which needs no summary at all). The stores read are:
- a generated drive with a side-car H.264 camera, and an MCAP export of it;
- every real ROS 1 and ROS 2 bag of ``../shared/data/real``;
- a sample of the MCAP conformance suite covering every variant and the summary layouts
  (repeated channels without schemas, no summary, padding, statistics, chunk indexes).
A file the TypeScript reader rejects, or reads differently, fails the test.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from mcap.reader import make_reader

from drivecat.catalog import db
from drivecat.catalog.export import ExportOptions, export
from drivecat.ingest.run import IngestOptions, commit_prepared, ingest_drive, prepare_drive
from tests.ingest.conftest import REAL
from tests.ingest.helpers import message_keys, query

TS = Path(__file__).resolve().parents[1] / "ts"
SUITE = REAL / "mcap-conformance"

# The message variants of the conformance suite hold up to 154 files each (every combination
# of features); these feature sets cover each layout a reader treats differently. The
# attachment, metadata and empty variants are small and taken whole.
SAMPLED_FEATURES = {
    "",
    "ch",
    "ch-mx",
    "ch-chx-mx",
    "ch-chx-mx-pad-rch-rsh-st-sum",
    "ch-chx-mx-rch-sum",  # channels repeated in the summary, schemas not (issue 16)
    "ch-rch-st",
    "rch-st-sum",
    "pad-rsh",
    "st",
}


def _features(path: Path) -> str:
    return path.stem.removeprefix(path.parent.name).lstrip("-")


WHOLE_VARIANTS = {"NoData", "OneAttachment", "OneMetadata"}


def _conformance_sample() -> list[Path]:
    return [
        path
        for path in sorted(SUITE.glob("*/*.mcap"))
        if path.parent.name in WHOLE_VARIANTS or _features(path) in SAMPLED_FEATURES
    ]


@pytest.fixture(scope="session")
def ts_reader() -> list[str]:
    """The command that runs the TypeScript reader; installs its packages if they are missing."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH: the TypeScript MCAP reader cannot run")
    if not (TS / "node_modules" / "@mcap" / "core").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not on PATH and tests/ts/node_modules is missing")
        try:
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--silent"],
                cwd=TS,
                check=True,
                capture_output=True,
                timeout=180,
            )
        except (subprocess.SubprocessError, OSError) as error:
            pytest.skip(f"npm ci in tests/ts failed, so @mcap/core is not installed: {error}")
    return [node, str(TS / "read_mcap.mjs")]


def _ts_read(command: list[str], paths: list[Path]) -> dict[str, dict[str, Any]]:
    done = subprocess.run([*command, *map(str, paths)], capture_output=True, text=True, timeout=120)
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["path"] for r in results] == list(map(str, paths)), done.stderr
    return {r["path"]: r for r in results}


def _u32(value: int) -> bytes:
    return struct.pack("<I", value)


def _u64(value: int) -> bytes:
    return struct.pack("<Q", value)


def _py_read(path: Path) -> dict[str, Any]:
    """What ``read_mcap.mjs`` prints for ``path``, computed with the Python mcap library."""
    with open(path, "rb") as f:
        reader = make_reader(f, validate_crcs=True)
        header = reader.get_header()
        summary = reader.get_summary()
        assert summary is not None, f"{path}: no summary"
        digest = hashlib.sha256()
        count = 0
        for _, channel, message in reader.iter_messages(log_time_order=True):
            topic = channel.topic.encode()
            digest.update(_u32(len(topic)) + topic)
            digest.update(_u64(message.log_time) + _u64(message.publish_time))
            digest.update(_u32(message.sequence) + _u64(len(message.data)) + message.data)
            count += 1
        attachments = [
            {
                "name": a.name,
                "media_type": a.media_type,
                "log_time": str(a.log_time),
                "create_time": str(a.create_time),
                "sha256": hashlib.sha256(a.data).hexdigest(),
            }
            for a in reader.iter_attachments()
        ]
        metadata = [{"name": m.name, "metadata": dict(m.metadata)} for m in reader.iter_metadata()]
    schemas = summary.schemas
    return {
        "path": str(path),
        "ok": True,
        "profile": header.profile,
        "library": header.library,
        "schemas": [
            {
                "id": s.id,
                "name": s.name,
                "encoding": s.encoding,
                "sha256": hashlib.sha256(s.data).hexdigest(),
            }
            for s in schemas.values()
        ],
        "channels": [
            {
                "id": c.id,
                "topic": c.topic,
                "encoding": c.message_encoding,
                "schema": schemas[c.schema_id].name if c.schema_id in schemas else None,
                "metadata": dict(c.metadata),
            }
            for c in summary.channels.values()
        ],
        "message_count": count,
        "messages_sha256": digest.hexdigest(),
        "attachments": attachments,
        "metadata": metadata,
        "chunk_count": len(summary.chunk_indexes),
        "has_statistics": summary.statistics is not None,
        "problems": [],
    }


def _by_id(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda item: item["id"])


def _check_store_files(command: list[str], paths: list[Path]) -> Counter[str]:
    """Every file read by the TypeScript reader exactly as the Python readers read it;
    returns the number of messages the TypeScript reader read on each topic."""
    assert paths, "no output files to read"
    ts = _ts_read(command, paths)
    rejected = {p: r["error"] for p, r in ts.items() if not r["ok"]}
    assert not rejected, f"the TypeScript reader rejects: {rejected}"
    per_topic: Counter[str] = Counter()
    for path in paths:
        got, want = ts[str(path)], _py_read(path)
        for record in (got, want):
            record["schemas"] = _by_id(record["schemas"])
            record["channels"] = _by_id(record["channels"])
        assert got == want, path
        # The indexes lead both indexed readers; the stream reader follows the records alone.
        assert got["message_count"] == sum(message_keys([path]).values()), path
        assert got["has_statistics"], f"{path}: no statistics record"
        # One topic per store file (DESIGN: <topic_slug>/<start>_<end>.mcap); exports mix them.
        topics = {c["topic"] for c in got["channels"]}
        per_topic[" + ".join(sorted(topics))] += got["message_count"]
    return per_topic


def _store_mcaps(store: Path) -> list[Path]:
    """Every MCAP under the store's drives, which must be the files the catalog lists."""
    found = sorted((store / "drives").rglob("*.mcap"))
    listed = sorted(store / path for (path,) in query(store, "SELECT path FROM files"))
    assert found == listed
    return found


def test_generated_drive_and_its_export(
    ts_reader: list[str], sidecar_drive: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    result = ingest_drive(sidecar_drive, IngestOptions(store=store))
    assert result.status == "ingested", result.error
    # The generator's truth counts every topic, the side-car camera's included.
    truth = json.loads((sidecar_drive / "truth.json").read_text())
    expected = {topic: t["message_count"] for topic, t in truth["topics"].items()}
    assert "sidecar" in truth["topics"]["/camera/rear/video"]
    assert _check_store_files(ts_reader, _store_mcaps(store)) == expected

    out = tmp_path / "export"
    export(store, ExportOptions("seg_idx >= 1", "mcap", out, with_latched=True))
    exported = sorted(out.rglob("*.mcap"))
    assert exported, "the export wrote no MCAP"
    assert sum(_check_store_files(ts_reader, exported).values()) > 0


def test_real_bags(ts_reader: list[str], real_ingest: tuple[Path, list[dict[str, Any]]]) -> None:
    store, _ = real_ingest
    assert sum(_check_store_files(ts_reader, _store_mcaps(store)).values()) > 0


def test_conformance_sample(ts_reader: list[str], tmp_path: Path) -> None:
    sample = _conformance_sample()
    if not sample:
        pytest.skip("../shared/data/real/mcap-conformance is not here")
    variants = {p.parent.name for p in sample}
    assert len(variants) == 6 and len(sample) >= 60, (variants, len(sample))
    assert any(_features(p) == "ch-chx-mx-rch-sum" for p in sample)
    store = tmp_path / "store"
    con = db.connect(store)
    try:
        for path in sample:
            options = IngestOptions(store=store, drive_id=path.stem.replace("-", "_"))
            result = commit_prepared(con, store, prepare_drive(path, options), force=False)
            assert result.status == "ingested", (path.name, result)
    finally:
        con.close()
    files = _store_mcaps(store)
    _check_store_files(ts_reader, files)
    # Each input message is in exactly one output file, read by the TypeScript reader.
    assert sum(message_keys(files).values()) == sum(message_keys(sample).values()) > 0
