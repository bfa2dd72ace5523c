"""A third-party tagger, registered through a real ``drivecat.taggers`` entry point.

``tests/plugins`` holds the plugin package and its ``.dist-info`` (entry_points.txt), as an
installer would leave them; putting that folder on ``sys.path`` is all it takes for
``importlib.metadata`` to find it. The tagger's values are checked against counts made
here from the recorded detections (read with the mcap library's own reader and protobuf
decoder) over truth.json's segment windows, not with the tagger's code.
"""

from __future__ import annotations

import json
import math
from importlib.metadata import entry_points
from pathlib import Path

import duckdb
import pytest
from mcap.reader import make_reader
from mcap_protobuf.decoder import DecoderFactory

from drivecat.ingest.config import Config
from drivecat.ingest.run import IngestOptions, ingest_drive
from drivecat.ingest.tags.base import ENTRY_POINT_GROUP, load_taggers

PLUGINS = Path(__file__).parent.parent / "plugins"
CYCLIST = 2  # ObjectClass.CYCLIST in schemas/proto/drivecat/perception.proto
RADIUS_M = 10.0


@pytest.fixture()
def plugin_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(PLUGINS))


def expected_counts(drive: Path) -> dict[int, int | None]:
    """Per segment of truth.json: the most distinct cyclists within 10 m in one message."""
    truth = json.loads((drive / "truth.json").read_text())
    topics = [t for t, info in truth["topics"].items() if info["role"] == "detections"]
    stamped: list[tuple[int, int]] = []  # (log_time_ns, cyclists near)
    for path in sorted(drive.glob("rec_*.mcap")):
        with path.open("rb") as f:
            reader = make_reader(f, decoder_factories=[DecoderFactory()])
            for _, _, message, decoded in reader.iter_decoded_messages(topics=topics):
                near = {
                    o.track_id
                    for o in decoded.objects
                    if o.object_class == CYCLIST and math.hypot(o.x, o.y) <= RADIUS_M
                }
                stamped.append((message.log_time, len(near)))
    out: dict[int, int | None] = {}
    for seg in truth["segments"]:
        counts = [n for t, n in stamped if seg["start_ns"] <= t < seg["end_ns"]]
        out[seg["seg_idx"]] = max(counts) if counts else None
    return out


def test_the_plugin_is_found_through_its_entry_point(plugin_on_path: None) -> None:
    (ep,) = [e for e in entry_points(group=ENTRY_POINT_GROUP) if e.name == "cyclists"]
    assert ep.value == "drivecat_cyclists:CyclistTagger"
    names = [t.name for t in load_taggers(Config())]
    assert names[-1] == "cyclists"
    off = Config(tags={"cyclists": {"enabled": False}})
    assert "cyclists" not in [t.name for t in load_taggers(off)]


def test_plugin_values_land_in_segments_tags(
    small_drive: Path, tmp_path: Path, plugin_on_path: None
) -> None:
    expected = expected_counts(small_drive)
    assert any(expected.values()), "the drive should meet cyclists, or the test proves little"
    store = tmp_path / "store"
    result = ingest_drive(small_drive, IngestOptions(store=store))
    assert result.status == "ingested", result.error
    con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT seg_idx, tags['cyclists_within_10m'] FROM segments ORDER BY seg_idx"
        ).fetchall()
    finally:
        con.close()
    got = {idx: (int(value) if value is not None else None) for idx, value in rows}
    assert got == expected


def test_without_the_plugin_there_is_no_such_tag() -> None:
    assert "cyclists" not in [e.name for e in entry_points(group=ENTRY_POINT_GROUP)]
