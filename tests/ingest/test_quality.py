"""Quality rows for what a recording got wrong, and unknown encodings stored as they came."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from mcap.writer import Writer

from drivecat.ingest.run import IngestOptions, ingest_drive
from tests.ingest.helpers import message_keys, store_files

S = 1_000_000_000
T0 = 1_781_544_600 * S


def _recording(path: Path) -> dict[str, list[int]]:
    """A recording with known defects: a 2 s gap, one late message, one repeated time."""
    times = {
        "/regular": [T0 + i * S // 10 for i in range(100)],  # 10 Hz, clean
        "/gappy": [T0 + i * S // 10 for i in range(30)]
        + [T0 + 5 * S + i * S // 10 for i in range(20)],
        "/custom": [T0 + i * S for i in range(10)],
    }
    with open(path, "wb") as f:
        writer = Writer(f)
        writer.start()
        writer.add_metadata("device", {"device_id": "veh900", "device_version": "1.0.0"})
        js = writer.register_schema("demo.Value", "jsonschema", b'{"type":"object"}')
        channels = {
            "/regular": writer.register_channel("/regular", "json", js),
            "/gappy": writer.register_channel("/gappy", "json", js),
            "/custom": writer.register_channel("/custom", "x-secret-codec", 0),
        }
        events = sorted((t, topic) for topic, ts in times.items() for t in ts)
        # one message arrives late (written after a later one) and one repeats its time
        late = events.pop(40)
        events.insert(45, late)
        events.insert(60, events[59])
        for seq, (t, topic) in enumerate(events):
            data = b"\x00\x01opaque" if topic == "/custom" else json.dumps({"v": seq}).encode()
            writer.add_message(channels[topic], t, data, t, seq)
        writer.finish()
    return times


def test_quality_rows_and_unknown_encoding(tmp_path: Path) -> None:
    drive = tmp_path / "drive"
    drive.mkdir()
    _recording(drive / "rec.mcap")
    store = tmp_path / "store"
    result = ingest_drive(drive, IngestOptions(store=store))
    con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    quality = con.execute("SELECT topic, kind, count, start_ns, end_ns FROM quality").fetchall()
    encodings = dict(con.execute("SELECT topic, encoding FROM topics").fetchall())
    con.close()
    kinds = {(q[0], q[1]) for q in quality}
    gaps = [q for q in quality if q[1] == "gap"]
    assert [(g[0], g[3], g[4]) for g in gaps] == [("/gappy", T0 + 29 * S // 10, T0 + 5 * S)]
    assert ("/custom", "unknown_encoding") in kinds
    assert [q[2] for q in quality if q[1] == "unknown_encoding"] == [10]
    assert {q[1] for q in quality if q[1] in ("out_of_order", "duplicate_timestamp")} == {
        "out_of_order",
        "duplicate_timestamp",
    }
    assert encodings["/custom"] == "x-secret-codec"
    assert result.drive_id is not None
    assert message_keys(store_files(store, result.drive_id)) == message_keys([drive / "rec.mcap"])
