"""Finding a drive's inputs and fingerprinting them (ingest.drive)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from drivecat.files import sha256_file
from drivecat.ingest.drive import VideoInput, find_inputs
from drivecat.ingest.errors import IngestError

DRIVE_JSON = {
    "drive_id": "veh042_2026-06-15T173000Z",
    "device_id": "veh042",
    "device_version": "4.2.1",
    "videos": [
        {
            "file": "camera_rear.h264",
            "topic": "/camera/rear/video",
            "timestamps_topic": "/camera/rear/stamps",
        },
        {"file": "cams/side.mp4", "topic": "/camera/side/video"},
    ],
}


def make_offload(root: Path) -> dict[str, bytes]:
    """An offload folder; returns the content of every file that is an input."""
    files = {
        "a.mcap": b"\x89MCAP0\r\n" + b"a" * 100,
        "logs/b.mcap": b"\x89MCAP0\r\n" + b"b" * 50,
        "old.bag": b"#ROSBAG V2.0\n" + b"c" * 10,
        "bag2/metadata.yaml": b"rosbag2_bagfile_information: {}\n",
        "bag2/bag2_0.db3": b"sqlite" * 10,
        "camera_rear.h264": b"\x00\x00\x00\x01\x67" * 20,
        "cams/side.mp4": b"mp4" * 7,
        "front.h265": b"\x00\x00\x01\x40" * 5,
        "drive.json": json.dumps(DRIVE_JSON).encode(),
    }
    ignored = {"notes.txt": b"not an input", ".hidden.mcap": b"x", ".cache/c.mcap": b"y"}
    for rel, data in {**files, **ignored}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def test_offload_folder_inputs(tmp_path):
    files = make_offload(tmp_path)

    inputs = find_inputs(tmp_path)

    assert inputs.root == tmp_path
    assert inputs.recordings == tuple(
        sorted(
            [tmp_path / "a.mcap", tmp_path / "logs/b.mcap", tmp_path / "old.bag", tmp_path / "bag2"]
        )
    )
    assert set(inputs.videos) == {
        VideoInput(tmp_path / "camera_rear.h264", "/camera/rear/video", "/camera/rear/stamps"),
        VideoInput(
            tmp_path / "cams/side.mp4", "/camera/side/video", "/camera/side/video/frame_times"
        ),
        VideoInput(tmp_path / "front.h265", "/front", "/front/frame_times"),  # not in drive.json
    }
    assert inputs.drive_json == DRIVE_JSON
    assert dict(inputs.input_hashes) == {
        rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()
    }


def test_fingerprint_follows_content_not_location(tmp_path):
    make_offload(tmp_path / "one")
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    first = find_inputs(tmp_path / "one").fingerprint

    assert find_inputs(tmp_path / "one").fingerprint == first
    assert find_inputs(tmp_path / "two").fingerprint == first
    # one byte changed, same size
    data = bytearray((tmp_path / "two/logs/b.mcap").read_bytes())
    data[-1] ^= 1
    (tmp_path / "two/logs/b.mcap").write_bytes(bytes(data))
    assert find_inputs(tmp_path / "two").fingerprint != first
    # drive.json is an input too
    (tmp_path / "one/drive.json").write_text(json.dumps({**DRIVE_JSON, "operator": "x"}))
    assert find_inputs(tmp_path / "one").fingerprint != first


def test_single_recording_is_a_drive_of_its_own(tmp_path):
    make_offload(tmp_path)

    inputs = find_inputs(tmp_path / "logs" / "b.mcap")

    assert inputs.root == tmp_path / "logs"
    assert inputs.recordings == (tmp_path / "logs" / "b.mcap",)
    assert inputs.videos == () and inputs.drive_json == {}
    assert list(inputs.input_hashes) == ["b.mcap"]

    bag = find_inputs(tmp_path / "bag2")  # a ROS 2 bag folder given directly
    assert bag.recordings == (tmp_path / "bag2",)
    assert set(bag.input_hashes) == {"bag2/metadata.yaml", "bag2/bag2_0.db3", "drive.json"}
    assert bag.drive_json == DRIVE_JSON and bag.videos == ()


def test_large_files_hash_in_blocks(tmp_path):
    data = bytes(range(256)) * (3 * 4096 + 17)  # a little over 3 MiB
    (tmp_path / "big.mcap").write_bytes(data)
    assert sha256_file(tmp_path / "big.mcap") == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("drive_json", "match"),
    [
        ("{not json", "drive.json"),
        ("[1, 2]", "not a JSON object"),
        ('{"device_version": 4.2}', "device_version must be a string"),
        ('{"videos": {"file": "x.h264"}}', "videos must be a list"),
        ('{"videos": [{"topic": "/x"}]}', "file must be a string"),
        ('{"videos": [{"file": "missing.h264", "topic": "/x"}]}', "missing.h264"),
        ('{"videos": [{"file": "../outside.h264"}]}', "outside.h264"),
        (
            '{"videos": [{"file": "v.h264", "topic": "/v"}, {"file": "w.h264", "topic": "/v"}]}',
            "both map to topic",
        ),
    ],
    ids=[
        "syntax",
        "not-object",
        "type",
        "videos-type",
        "no-file",
        "missing",
        "outside",
        "same-topic",
    ],
)
def test_invalid_drive_json_raises_naming_it(tmp_path, drive_json, match):
    drive = tmp_path / "drive"
    drive.mkdir()
    (drive / "a.mcap").write_bytes(b"x")
    (drive / "v.h264").write_bytes(b"v")
    (drive / "w.h264").write_bytes(b"w")
    (tmp_path / "outside.h264").write_bytes(b"o")
    (drive / "drive.json").write_text(drive_json)
    with pytest.raises(IngestError, match=match) as info:
        find_inputs(drive)
    assert "drive.json" in str(info.value) and "\n" not in str(info.value)


def test_default_video_topics_that_collide_raise(tmp_path):
    (tmp_path / "a.mcap").write_bytes(b"x")
    (tmp_path / "cam.h264").write_bytes(b"1")
    (tmp_path / "cam.mp4").write_bytes(b"2")
    with pytest.raises(IngestError, match="/cam"):
        find_inputs(tmp_path)


def test_nothing_ingestible_raises_naming_the_path(tmp_path):
    with pytest.raises(IngestError, match=str(tmp_path)):
        find_inputs(tmp_path)  # empty folder
    (tmp_path / "only.h264").write_bytes(b"v")
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(IngestError, match="no recordings"):
        find_inputs(tmp_path)
    with pytest.raises(IngestError, match="readme.txt"):
        find_inputs(tmp_path / "readme.txt")
    with pytest.raises(IngestError, match="nowhere"):
        find_inputs(tmp_path / "nowhere")
