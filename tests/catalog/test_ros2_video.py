"""Video recorded as ROS 2 messages (foxglove_msgs/msg/CompressedVideo, CDR) decodes exactly."""

from __future__ import annotations

import json
from pathlib import Path

from drivecat.catalog.frames import frame_at
from drivecat.ingest.run import IngestOptions, ingest_drive
from sample_logs.camera import read_barcode
from sample_logs.generate import generate


def test_ros2_video_frames_decode_to_their_barcodes(tmp_path: Path) -> None:
    drive = generate(tmp_path / "drive", seconds=6, seed=11, variants=("ros2",), lidar_points=300)
    store = tmp_path / "store"
    result = ingest_drive(drive, IngestOptions(store=store))
    truth = json.loads((drive / "truth.json").read_text())
    frames = truth["videos"]["/camera/front/video"]["frames"]
    for frame in frames[::13]:
        got = frame_at(store, str(result.drive_id), "/camera/front/video", frame["capture_ns"])
        assert got.row.frame_idx == frame["index"]
        assert read_barcode(got.image) == frame["index"]
