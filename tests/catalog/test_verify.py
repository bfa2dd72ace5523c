"""``catalog verify`` finds a changed byte, a missing file, an extra file and a broken
MCAP, each named; an untouched store verifies clean. The damage is made by hand here, and
what is expected comes from the manifest and the mcap library, not from verify."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from mcap.reader import make_reader

from drivecat.cli.main import drivecat


def cli(*args: str) -> Any:
    return CliRunner().invoke(drivecat, list(args))


@pytest.fixture
def store(demo_store: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(demo_store, copy)
    return copy


def drive_folder(store: Path) -> Path:
    (folder,) = (store / "drives").iterdir()
    return folder


def manifest_files(store: Path) -> list[str]:
    manifest = json.loads((drive_folder(store) / "manifest.json").read_text())
    return [f["path"] for f in manifest["files"]]


def test_an_untouched_store_is_ok(store: Path) -> None:
    result = cli("catalog", "verify", "--store", str(store), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    folder = drive_folder(store)
    manifest = json.loads((folder / "manifest.json").read_text())
    # every MCAP, catalog parquet and attachment the manifest lists, hashed
    listed = len(manifest["files"]) + len(manifest["catalog"]) + len(manifest["attachments"])
    assert manifest["attachments"] and report["files_checked"] == listed
    assert report["problems"] == [] and report["drives"] == [folder.name]
    for path in manifest_files(store):  # and each really has a summary (mcap's reader)
        with (folder / path).open("rb") as f:
            assert make_reader(f).get_summary() is not None


def test_a_changed_byte_a_missing_file_and_an_extra_file(store: Path) -> None:
    folder = drive_folder(store)
    changed, missing = manifest_files(store)[:2]
    data = bytearray((folder / changed).read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, mid-file: same size, another sha256
    (folder / changed).write_bytes(bytes(data))
    (folder / missing).unlink()
    (folder / "notes.txt").write_text("who put this here\n")

    result = cli("catalog", "verify", "--store", str(store))
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    rel = f"drives/{folder.name}"
    assert any(line.startswith(f"changed: {rel}/{changed}: sha256 ") for line in lines), lines
    assert f"missing: {rel}/{missing}: listed in the manifest, not found" in lines
    assert f"extra: {rel}/notes.txt: not listed in the manifest" in lines
    assert lines[-1].startswith("3 problems: 1 drives")

    one = cli("catalog", "verify", "--store", str(store), "--drive", folder.name, "--json")
    assert one.exit_code == 1
    found = {(p["finding"], p["path"]) for p in json.loads(one.stdout)["problems"]}
    assert found == {
        ("changed", f"{rel}/{changed}"),
        ("missing", f"{rel}/{missing}"),
        ("extra", f"{rel}/notes.txt"),
    }


def test_an_mcap_without_its_summary_is_unreadable(store: Path) -> None:
    folder = drive_folder(store)
    path = folder / manifest_files(store)[0]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # cut: no summary, no footer
    result = cli("catalog", "verify", "--store", str(store), "--json")
    assert result.exit_code == 1
    findings = {p["finding"] for p in json.loads(result.stdout)["problems"]}
    assert findings == {"changed"}  # the size is checked first and already says it


def test_a_rewritten_mcap_with_a_matching_manifest_still_needs_a_summary(store: Path) -> None:
    # an MCAP that hashes as the manifest says, but has no summary: the manifest is
    # updated by hand to the cut file, so only the summary check can catch it
    folder = drive_folder(store)
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    entry = manifest["files"][0]
    path = folder / entry["path"]
    cut = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(cut)
    entry["bytes"], entry["sha256"] = len(cut), hashlib.sha256(cut).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    result = cli("catalog", "verify", "--store", str(store), "--json")
    assert result.exit_code == 1
    (problem,) = json.loads(result.stdout)["problems"]
    assert problem["finding"] == "unreadable" and problem["path"].endswith(entry["path"])


def test_a_drive_folder_gone_and_a_stray_folder(store: Path) -> None:
    folder = drive_folder(store)
    shutil.rmtree(folder)
    (store / "drives" / ".tmp-0123").mkdir()
    result = cli("catalog", "verify", "--store", str(store), "--json")
    assert result.exit_code == 1
    found = {(p["finding"], p["path"]) for p in json.loads(result.stdout)["problems"]}
    assert found == {("missing", f"drives/{folder.name}"), ("extra", "drives/.tmp-0123")}


def test_no_store_is_one_line() -> None:
    result = cli("catalog", "verify", "--store", "/nonexistent/store")
    assert result.exit_code == 2
    assert (
        result.stderr
        == "Error: /nonexistent/store: not a drivecat store (no drives/ and no catalog.duckdb)\n"
    )
