"""Clock outliers: one stray timestamp is stored, flagged, and changes nothing else."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from mcap.reader import make_reader
from mcap.writer import Writer

from drivecat.ingest.clock import ClockFilter
from drivecat.ingest.run import IngestOptions, ingest_drive
from tests.ingest.helpers import message_keys, query

YEAR_2500_NS = 16_725_225_600 * 1_000_000_000
SEGMENT_COLUMNS = "seg_idx, start_ns, end_ns, lat, lon, h3_cell, speed, weather, time_of_day"


def _with_one_more(src: Path, dst: Path, topic: str, log_time_ns: int) -> None:
    """Copy recording ``src`` to ``dst`` with one more message on ``topic`` (a copy of its
    first one) at ``log_time_ns``, written first, as a recorder before its clock sync would."""
    with open(src, "rb") as f:
        reader = make_reader(f)
        header = reader.get_header()
        metadata = list(reader.iter_metadata())
        items = list(reader.iter_messages(log_time_order=False))
    with open(dst, "wb") as out:
        writer = Writer(out)
        writer.start(profile=header.profile, library=header.library)
        for m in metadata:
            writer.add_metadata(m.name, m.metadata)
        schemas: dict[int, int] = {}
        channels: dict[int, int] = {}
        injected = False
        for schema, channel, message in items:
            if schema is not None and schema.id not in schemas:
                schemas[schema.id] = writer.register_schema(
                    schema.name, schema.encoding, schema.data
                )
            if channel.id not in channels:
                channels[channel.id] = writer.register_channel(
                    channel.topic, channel.message_encoding, schemas.get(channel.schema_id, 0)
                )
            if channel.topic == topic and not injected:
                writer.add_message(channels[channel.id], log_time_ns, message.data, log_time_ns, 0)
                injected = True
            writer.add_message(
                channels[channel.id],
                message.log_time,
                message.data,
                message.publish_time,
                message.sequence,
            )
        writer.finish()
    assert injected


def _segments(store: Path) -> list[tuple[Any, ...]]:
    return query(store, f"SELECT {SEGMENT_COLUMNS} FROM segments ORDER BY seg_idx")


@pytest.fixture(scope="module")
def baseline(small_drive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("clock_baseline")
    assert ingest_drive(small_drive, IngestOptions(store=store)).status == "ingested"
    return store


@pytest.mark.parametrize(
    "stamp",
    [0, 1_000_000_000, YEAR_2500_NS, 2**63, 2**64 - 1],
    ids=["zero", "boot-second", "year-2500", "2^63", "uint64-max"],
)
def test_one_stray_timestamp_is_stored_flagged_and_left_out(
    small_drive: Path, baseline: Path, tmp_path: Path, stamp: int
) -> None:
    drive = tmp_path / "drive"
    shutil.copytree(small_drive, drive)
    first = sorted(drive.glob("rec_*.mcap"))[0]
    _with_one_more(sorted(small_drive.glob("rec_*.mcap"))[0], first, "/gps/fix", stamp)
    store = tmp_path / "store"
    result = ingest_drive(drive, IngestOptions(store=store))
    assert result.status == "ingested" and result.drive_id is not None
    # stored, byte for byte
    stored = message_keys(sorted((store / "drives" / result.drive_id).rglob("*.mcap")))
    assert stored == message_keys(sorted(drive.glob("rec_*.mcap")))
    # flagged
    (row,) = query(store, "SELECT topic, count, detail FROM quality WHERE kind = 'clock_outlier'")
    assert row[:2] == ("/gps/fix", 1) and str(stamp) in row[2]
    # left out: the drive's times and its segments are those of the drive without it
    times = "SELECT start_ns, end_ns, status FROM drives"
    assert query(store, times) == query(baseline, times)
    assert _segments(store) == _segments(baseline)
    gps = "SELECT message_count, start_ns, end_ns FROM topics WHERE topic = '/gps/fix'"
    ((count, start, end),) = query(store, gps)
    ((base_count, base_start, base_end),) = query(baseline, gps)
    assert (count, start, end) == (base_count + 1, base_start, base_end)


def _run(times: list[int], gap: int = 100, max_run: int = 4) -> tuple[list[int], list[int]]:
    f: ClockFilter[int] = ClockFilter(gap_ns=gap, max_run=max_run)
    out = [r for t in times for r in f.push(t, t)] + list(f.finish())
    assert sorted(r.item for r in out) == sorted(times)  # everything comes out, once
    return [r.item for r in out if not r.outlier], [r.item for r in out if r.outlier]


def test_filter_keeps_a_long_run_after_a_gap_and_drops_short_ones() -> None:
    body = list(range(1000, 1010))
    later = list(range(5000, 5010))  # data again after a long pause: kept
    assert _run([0, 1, *body, *later, 10**12]) == ([*body, *later], [0, 1, 10**12])


def test_filter_takes_a_tiny_drive_as_it_is() -> None:
    assert _run([5, 6, 7]) == ([5, 6, 7], [])
