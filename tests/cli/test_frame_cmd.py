"""`catalog frame` through click's CliRunner: the PNG shows the truth-nearest barcode."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from click.testing import CliRunner

from drivecat.cli.frame_cmd import parse_time_ns
from drivecat.cli.main import catalog_group, drivecat
from drivecat.ingest.run import IngestOptions, ingest_drive
from sample_logs.camera import read_barcode

FRONT = "/camera/front/video"
REAR = "/camera/rear/video"


@pytest.fixture(scope="module")
def store(sidecar_drive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("frame_cmd_store")
    assert ingest_drive(sidecar_drive, IngestOptions(store=out)).status == "ingested"
    return out


@pytest.fixture(scope="module")
def truth(sidecar_drive: Path) -> dict[str, Any]:
    return dict(json.loads((sidecar_drive / "truth.json").read_text()))


def _png(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        image: np.ndarray = next(container.decode(video=0)).to_ndarray(format="rgb24")
    return image


def _run(*args: str) -> Any:
    return CliRunner().invoke(drivecat, ["catalog", "frame", *args])


def _iso(t_ns: int) -> str:
    seconds, nanos = divmod(t_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


@pytest.mark.parametrize("topic", [FRONT, REAR], ids=["front", "rear-sidecar"])
def test_random_times_write_the_truth_nearest_frame(
    store: Path, truth: dict[str, Any], tmp_path: Path, topic: str
) -> None:
    frames = truth["videos"][topic]["frames"]
    times = np.array([f["capture_ns"] for f in frames], dtype=np.int64)
    rng = np.random.default_rng(11)
    for n, t in enumerate(rng.integers(times[0], times[-1], 4)):
        dist = np.abs(times - t)
        want = int(np.flatnonzero(dist == dist.min())[0])
        out = tmp_path / f"{n}.png"
        time_arg = str(t) if n % 2 else _iso(int(t))  # nanoseconds or ISO 8601, exactly
        args = ["--store", str(store), "--drive", truth["drive_id"], "--topic", topic]
        result = _run(*args, "--time", time_arg, "--out", str(out))
        assert result.exit_code == 0, result.output
        dt_ms = (int(times[want]) - int(t)) / 1e6
        assert result.output == (
            f"frame {want} of {topic} at {_iso(int(times[want]))} ({times[want]} ns), "
            f"dt {dt_ms:+.3f} ms -> {out}\n"
        )
        assert read_barcode(_png(out)) == want


def test_json_and_before(store: Path, truth: dict[str, Any], tmp_path: Path) -> None:
    frames = truth["videos"][FRONT]["frames"]
    t = frames[40]["capture_ns"] - 1
    out = tmp_path / "f.png"
    result = _run(
        *["--store", str(store), "--drive", truth["drive_id"], "--topic", FRONT],
        *["--time", str(t), "--mode", "before", "--out", str(out), "--json"],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    keyframe = max(f["index"] for f in frames[:40] if f["keyframe"])
    assert doc == {
        "drive_id": truth["drive_id"],
        "topic": FRONT,
        "mode": "before",
        "requested_ns": t,
        "frame_idx": 39,
        "frame_time_ns": frames[39]["capture_ns"],
        "frame_time": _iso(frames[39]["capture_ns"]),
        "dt_ns": frames[39]["capture_ns"] - t,
        "log_time_ns": frames[39]["log_time_ns"],
        "capture_ns": frames[39]["capture_ns"],
        "is_keyframe": frames[39]["keyframe"],
        "keyframe_idx": keyframe,
        "decoded": 39 - keyframe + 1,
        "width": 640,
        "height": 360,
        "out": str(out),
    }
    assert read_barcode(_png(out)) == 39


def test_bad_input_exits_2_with_one_line(
    store: Path, truth: dict[str, Any], tmp_path: Path
) -> None:
    t0 = truth["videos"][FRONT]["frames"][0]["capture_ns"]
    base = ["--store", str(store), "--topic", FRONT, "--out", str(tmp_path / "f.png")]
    cases = [
        (["--drive", "nope", "--time", str(t0)], "Error: no drive 'nope' in the catalog\n"),
        (
            ["--drive", truth["drive_id"], "--time", str(t0 - 3600 * 10**9)],
            f"Error: {FRONT} of drive {truth['drive_id']}: time {t0 - 3600 * 10**9} ns is "
            "outside the video",
        ),
        (["--drive", truth["drive_id"], "--time", "noon"], "Invalid value for '--time'"),
    ]
    for args, message in cases:
        result = _run(*base, *args)
        assert result.exit_code == 2, result.output
        assert message in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "f.png").exists()


def test_parse_time_ns() -> None:
    assert parse_time_ns("1781544667250000001") == 1781544667250000001
    assert parse_time_ns("2026-06-15T17:31:07.250000001Z") == 1781544667250000001
    assert parse_time_ns("2026-06-15T17:31:07.25") == 1781544667250000000  # naive is UTC
    assert parse_time_ns("2026-06-15 19:31:07,25+02:00") == 1781544667250000000
    assert parse_time_ns("2026-06-15T17:31Z") == 1781544660000000000
    assert parse_time_ns("2026-06-15") == 1781481600000000000
    for bad in ("noon", "2026-06-15T17:31:07.1234567891Z", "2026-13-01T00:00:00Z"):
        with pytest.raises(ValueError):
            parse_time_ns(bad)


def test_help_has_an_example() -> None:
    result = CliRunner().invoke(catalog_group, ["frame", "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and "--time" in result.output
