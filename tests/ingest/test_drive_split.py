"""Recordings far apart in time are separate drives; segments never bridge a long gap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from mcap.writer import Writer

from drivecat.cli.main import drivecat
from drivecat.ingest.run import IngestOptions, ingest_drive
from tests.ingest.helpers import message_keys, query

S = 1_000_000_000
T0 = 1_781_544_600 * S
HOUR = 3600 * S
FIX_SCHEMA = json.dumps({"title": "foxglove.LocationFix", "type": "object"}).encode()


def _recording(path: Path, pieces: list[tuple[int, int, float]]) -> None:
    """GPS at 1 Hz and an IMU at 10 Hz for each (start_ns, seconds, latitude) piece; the
    vehicle drives north-east a little during each piece."""
    with open(path, "wb") as f:
        writer = Writer(f)
        writer.start(profile="", library="test")
        writer.add_metadata("device", {"device_id": "veh7", "device_version": "1.0.0"})
        fix = writer.register_channel(
            "/gps/fix",
            "json",
            writer.register_schema("foxglove.LocationFix", "jsonschema", FIX_SCHEMA),
        )
        imu = writer.register_channel(
            "/imu", "json", writer.register_schema("demo.Imu", "jsonschema", b"{}")
        )
        seq = 0
        for start, seconds, lat in pieces:
            for i in range(seconds * 10):
                t = start + i * S // 10
                if i % 10 == 0:
                    doc = {"latitude": lat + i * 1e-6, "longitude": -122.0 + i * 1e-6}
                    writer.add_message(fix, t, json.dumps(doc).encode(), t, seq)
                writer.add_message(imu, t, json.dumps({"i": i}).encode(), t, seq)
                seq += 1
        writer.finish()


@pytest.fixture(scope="module")
def days_apart(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict]]:
    """One folder: two recordings back to back (one drive), one 3 hours later, one 49 days
    later; ingested by the CLI."""
    root = tmp_path_factory.mktemp("days_apart")
    folder = root / "offload"
    folder.mkdir()
    _recording(folder / "a.mcap", [(T0, 20, 37.0)])
    _recording(folder / "b.mcap", [(T0 + 20 * S, 20, 37.0)])
    _recording(folder / "c.mcap", [(T0 + 3 * HOUR, 20, 38.0)])
    _recording(folder / "d.mcap", [(T0 + 49 * 24 * HOUR, 20, 39.0)])
    store = root / "store"
    result = CliRunner().invoke(
        drivecat, ["ingest", "run", str(folder), "--store", str(store), "--json"]
    )
    assert result.exit_code == 0, result.output
    return folder, store, json.loads(result.stdout)


def test_each_group_of_recordings_is_a_drive(days_apart: tuple[Path, Path, list[dict]]) -> None:
    folder, store, report = days_apart
    assert [r["status"] for r in report] == ["ingested"] * 3
    ids = [r["drive_id"] for r in report]
    assert len(set(ids)) == 3
    drives = query(store, "SELECT drive_id, start_ns, end_ns FROM drives ORDER BY start_ns")
    assert [d[0] for d in drives] == ids  # reported in time order
    assert [(d[1], d[2]) for d in drives] == [
        (T0, T0 + 40 * S - S // 10 + 1),
        (T0 + 3 * HOUR, T0 + 3 * HOUR + 20 * S - S // 10 + 1),
        (T0 + 49 * 24 * HOUR, T0 + 49 * 24 * HOUR + 20 * S - S // 10 + 1),
    ]
    for drive_id in ids:  # each its own folder and manifest
        manifest = json.loads((store / "drives" / drive_id / "manifest.json").read_text())
        assert manifest["drive_id"] == drive_id
    stored = message_keys(sorted((store / "drives").rglob("*.mcap")))
    assert stored == message_keys(sorted(folder.glob("*.mcap")))


def test_segments_stay_inside_their_drive(days_apart: tuple[Path, Path, list[dict]]) -> None:
    _, store, report = days_apart
    for drive_id, lat, seconds in zip(
        [r["drive_id"] for r in report], [37.0, 38.0, 39.0], [40, 20, 20], strict=True
    ):
        rows = query(store, f"SELECT lat FROM segments WHERE drive_id = '{drive_id}'")
        assert len(rows) == seconds // 10
        assert all(abs(r[0] - lat) < 0.01 for r in rows)


def test_a_long_gap_inside_one_recording_is_not_bridged(tmp_path: Path) -> None:
    folder = tmp_path / "offload"
    folder.mkdir()
    _recording(folder / "one.mcap", [(T0, 20, 37.0), (T0 + 5 * HOUR, 20, 38.0)])
    store = tmp_path / "store"
    result = ingest_drive(folder, IngestOptions(store=store))
    assert result.status == "ingested"
    rows = query(store, "SELECT seg_idx, start_ns, lat FROM segments ORDER BY seg_idx")
    # 2 segments before the gap, 2 after; none for the 5 hours between
    assert [r[0] for r in rows] == [0, 1, 5 * 360, 5 * 360 + 1]
    assert [round(r[2]) for r in rows] == [37, 37, 38, 38]  # nothing interpolated across
