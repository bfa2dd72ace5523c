"""Hostile and broken inputs: each gives one line naming the file, exit 2, and leaves no
drive behind (no row, no folder, no ``.tmp-*``); a failure of one drive never stops the
others. Side-car videos mapped onto a recorded topic, or empty, and ``--force`` with
another drive id on inputs already ingested are here too.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer as Ros2Writer
from rosbags.typesys import Stores, get_typestore
from ruamel.yaml import YAML

from drivecat.cli.main import drivecat
from sample_logs.generate import generate
from tests.ingest.helpers import query

MCAP_MAGIC = b"\x89MCAP0\r\n"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 s generated drive (one recording, with its truth)."""
    return generate(tmp_path_factory.mktemp("tiny"), seconds=3, seed=7, lidar_points=100)


def _run(*args: str) -> Any:
    return CliRunner().invoke(drivecat, ["ingest", "run", *args])


def _assert_nothing_left(store: Path) -> None:
    drives = store / "drives"
    assert not drives.exists() or sorted(p.name for p in drives.iterdir()) == []
    if (store / "catalog.duckdb").exists():
        assert query(store, "SELECT count(*) FROM drives") == [(0,)]


def _assert_one_line_error(result: Any, *names: str) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.stderr
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


# -- one bad input, one line, exit 2, nothing left -------------------------------------------


def _deep_drive_json(folder: Path, tiny: Path) -> tuple[Path, list[str]]:
    shutil.copy(next(tiny.glob("rec_*.mcap")), folder)
    (folder / "drive.json").write_text("[" * 100_000 + "]" * 100_000)
    return folder, ["drive.json", "nested too deeply"]


def _ros2_bag(folder: Path, **changes: Any) -> Path:
    store = get_typestore(Stores.ROS2_HUMBLE)
    bag = folder / "bag"
    with Ros2Writer(bag, version=8, storage_plugin=StoragePlugin.SQLITE3) as writer:
        conn = writer.add_connection("/a", "std_msgs/msg/String", typestore=store)
        for i in range(3):
            msg = store.types["std_msgs/msg/String"](data=str(i))
            data = bytes(store.serialize_cdr(msg, "std_msgs/msg/String"))
            writer.write(conn, 1_700_000_000_000_000_000 + i, data)
    yaml = YAML()
    doc = yaml.load((bag / "metadata.yaml").read_text())
    doc["rosbag2_bagfile_information"].update(changes)
    with (bag / "metadata.yaml").open("w") as f:
        yaml.dump(doc, f)
    return bag


def _yaml_paths_int(folder: Path, tiny: Path) -> tuple[Path, list[str]]:
    bag = _ros2_bag(folder, relative_file_paths=5)
    return bag, ["metadata.yaml", "relative_file_paths"]


def _yaml_storage_list(folder: Path, tiny: Path) -> tuple[Path, list[str]]:
    bag = _ros2_bag(folder, storage_identifier=["sqlite3"])
    return bag, ["metadata.yaml", "storage_identifier"]


def _yaml_compression_int(folder: Path, tiny: Path) -> tuple[Path, list[str]]:
    bag = _ros2_bag(folder, compression_mode=3)
    return bag, ["metadata.yaml", "compression_mode"]


def _magic_and_garbage(folder: Path, tiny: Path) -> tuple[Path, list[str]]:
    (folder / "x.mcap").write_bytes(MCAP_MAGIC + b"not a record " * 20)
    return folder, ["x.mcap", "no header record"]


def _nothing_readable(folder: Path, tiny: Path) -> tuple[Path, list[str]]:
    (folder / "notes.txt").write_text("a drive folder without a recording")
    return folder, [str(folder), "no recordings found"]


def _only_a_broken_bag(folder: Path, tiny: Path) -> tuple[Path, list[str]]:
    (folder / "broken.bag").write_bytes(b"#ROSBAG V2.0\n" + b"\x00" * 64)
    return folder, ["broken.bag"]


CASES: dict[str, Callable[[Path, Path], tuple[Path, list[str]]]] = {
    "drive-json-100k-deep": _deep_drive_json,
    "metadata-yaml-paths-int": _yaml_paths_int,
    "metadata-yaml-storage-list": _yaml_storage_list,
    "metadata-yaml-compression-int": _yaml_compression_int,
    "mcap-magic-and-garbage": _magic_and_garbage,
    "folder-with-no-recording": _nothing_readable,
    "folder-with-only-a-broken-bag": _only_a_broken_bag,
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(
    case: str, tiny: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    path, names = CASES[case](folder, tiny)
    store = tmp_path / "store"
    _assert_one_line_error(_run(str(path), "--store", str(store)), *names)
    _assert_nothing_left(store)


def test_every_drive_failing_exits_2_some_failing_exits_1(tiny: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    _magic_and_garbage(bad, tiny)
    store = tmp_path / "store"
    assert _run(str(bad), str(bad), "--store", str(store)).exit_code == 2
    mixed = _run(str(bad), str(tiny), "--store", str(store))
    assert mixed.exit_code == 1, mixed.output
    assert query(store, "SELECT drive_id FROM drives") == [
        (json.loads((tiny / "truth.json").read_text())["drive_id"],)
    ]


def test_disk_full_names_the_store_and_leaves_nothing(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from drivecat.ingest import split

    def full(self: Any, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(split._HashingFile, "_write", full)
    store = tmp_path / "store"
    line = _assert_one_line_error(_run(str(tiny), "--store", str(store)), str(store))
    assert os.strerror(errno.ENOSPC) in line
    _assert_nothing_left(store)


def test_an_unexpected_error_fails_one_drive_and_the_run_goes_on(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from drivecat.ingest import run

    doomed = tmp_path / "doomed"
    shutil.copytree(tiny, doomed)
    (doomed / "drive.json").write_text('{"drive_id": "doomed"}')
    real_pass = run._run_pass

    def flaky(tmp: Path, inputs: Any, *args: Any, **kw: Any) -> Any:
        if inputs.root == doomed:
            raise RuntimeError("a bug met halfway")
        return real_pass(tmp, inputs, *args, **kw)

    monkeypatch.setattr(run, "_run_pass", flaky)
    store = tmp_path / "store"
    result = _run(str(doomed), str(tiny), "--store", str(store))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"Error: {doomed}: unexpected error: RuntimeError: a bug met halfway\n" in result.stderr
    assert len(query(store, "SELECT drive_id FROM drives")) == 1
    assert not list((store / "drives").glob(".tmp-*"))
    debug = _run(str(doomed), "--store", str(tmp_path / "store2"), "--debug")
    assert debug.exit_code == 2
    assert "Traceback" in debug.stderr and "a bug met halfway" in debug.stderr


# -- non-regular files -------------------------------------------------------------------------


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process, as a user meets it, so a hang fails the test."""
    return subprocess.run(
        [sys.executable, "-m", "drivecat", "ingest", "run", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_named_like_a_recording_is_skipped_with_a_line(tiny: Path, tmp_path: Path) -> None:
    alone = tmp_path / "alone"
    alone.mkdir()
    os.mkfifo(alone / "x.mcap")
    store = tmp_path / "store"
    out = _cli(str(alone), "--store", str(store))
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [
        f"Error: {alone}: no recordings found (.mcap, .bag or ROS 2 bag folder); "
        "skipped, not regular files: x.mcap"
    ]
    out = _cli(str(alone / "x.mcap"), "--store", str(store))
    assert out.returncode == 2 and "x.mcap: not a regular file" in out.stderr
    _assert_nothing_left(store)

    beside = tmp_path / "beside"
    shutil.copytree(tiny, beside)
    os.mkfifo(beside / "y.mcap")
    out = _cli(str(beside), "--store", str(store))
    assert out.returncode == 0, out.stderr
    assert f"{beside / 'y.mcap'}: skipped, not a regular file" in out.stderr
    truth = json.loads((tiny / "truth.json").read_text())
    (count,) = query(store, "SELECT message_count FROM drives")[0]
    assert count == sum(t["message_count"] for t in truth["topics"].values())


# -- side-car video -------------------------------------------------------------------------


def test_a_sidecar_on_a_recorded_topic_is_refused(sidecar_drive: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    shutil.copytree(sidecar_drive, folder)
    doc = json.loads((folder / "drive.json").read_text())
    doc["videos"][0]["topic"] = "/camera/front/video"  # the recorded front camera
    (folder / "drive.json").write_text(json.dumps(doc))
    store = tmp_path / "store"
    _assert_one_line_error(
        _run(str(folder), "--store", str(store)),
        str(folder / "drive.json"),
        "camera_rear.h264",
        "/camera/front/video",
    )
    _assert_nothing_left(store)


def test_an_empty_sidecar_is_a_warning_and_a_quality_row(
    sidecar_drive: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    shutil.copytree(sidecar_drive, folder)
    (folder / "camera_rear.h264").write_bytes(b"")
    truth = json.loads((folder / "truth.json").read_text())
    store = tmp_path / "store"
    result = _run(str(folder), "--store", str(store))
    assert result.exit_code == 0, result.output
    assert "camera_rear.h264: empty file (0 bytes); no video for /camera/rear/video" in (
        result.stderr
    )
    times = truth["topics"]["/camera/rear/video/frame_times"]["message_count"]
    assert query(
        store, "SELECT topic, kind, count FROM quality WHERE topic LIKE '/camera/rear%'"
    ) == [("/camera/rear/video", "empty_sidecar", times)]
    assert query(store, "SELECT count(*) FROM frames WHERE topic = '/camera/rear/video'") == [(0,)]


# -- --force with another drive id -----------------------------------------------------------


def test_force_with_another_drive_id_never_duplicates_a_drive(tiny: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert _run(str(tiny), "--store", str(store)).exit_code == 0
    ((first, fingerprint),) = query(store, "SELECT drive_id, fingerprint FROM drives")
    result = _run(str(tiny), "--store", str(store), "--force", "--drive-id", "renamed")
    line = _assert_one_line_error(result, str(tiny), f"already ingested as drive {first}")
    assert "renamed" in line
    assert query(store, "SELECT drive_id, fingerprint FROM drives") == [(first, fingerprint)]
    assert sorted(p.name for p in (store / "drives").iterdir()) == [first]
    # --force under the drive's own id still replaces it
    again = _run(str(tiny), "--store", str(store), "--force", "--drive-id", first)
    assert again.exit_code == 0 and again.stdout.startswith(f"replaced {first}")
