"""Output files other tools accept: the header profile, CRCs, and the readers that check them.

The per-topic files of the real ROS bags (ingested once for the session) are read with the
tools users read ROS data with: rosbags (which opens only MCAP files whose profile is
``ros2``) and the mcap project's ROS 1 and ROS 2 decoders; every file must also pass the
mcap readers with CRC validation, the streaming one checking the data-section CRC.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcap.reader import make_reader
from mcap.stream_reader import StreamReader
from mcap_ros1.decoder import DecoderFactory as Ros1DecoderFactory
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import Reader as Ros2Reader

from drivecat.types import Profile, channel_profile, common_profile
from tests.ingest.conftest import REAL, REAL_BAGS

pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real is not here")

# Topics whose recorded message definitions rosbags itself can parse and deserialize from
# the input bag (the others' definitions, a ros2idl text and rosbag2's service-event
# definitions, fail in rosbags on the input as well, and ``rosbag2_talker_sqlite3``'s
# /rosout carries no definition of its own): every message of these must deserialize.
DESERIALIZED = {
    "event_camera_test_events_1_db3": {"/event_camera/events"},
    "rosbag2_service_events_sqlite3": {"/test_topic1", "/test_topic2"},
    "rosbag2_service_events_mcap": {"/test_topic1", "/test_topic2"},
    "rosbag2_talker_sqlite3": {"/topic"},
}


@pytest.mark.parametrize(
    ("encoding", "schema", "profile"),
    [
        ("ros1", "ros1msg", Profile.ROS1),
        ("cdr", "ros2msg", Profile.ROS2),
        ("cdr", "ros2idl", Profile.ROS2),
        ("cdr", None, Profile.NONE),  # a ROS 2 channel without its definition
        ("ros1", None, Profile.NONE),
        ("cdr", "jsonschema", Profile.NONE),
        ("protobuf", "protobuf", Profile.NONE),
        ("json", "jsonschema", Profile.NONE),
    ],
)
def test_channel_profile_follows_the_mcap_well_known_profiles(
    encoding: str, schema: str | None, profile: Profile
) -> None:
    assert channel_profile(encoding, schema) is profile


def test_a_file_of_mixed_channels_claims_no_profile() -> None:
    assert common_profile([Profile.ROS2, Profile.ROS2]) is Profile.ROS2
    assert common_profile([Profile.ROS2, Profile.NONE]) is Profile.NONE
    assert common_profile([]) is Profile.NONE


def _drives(real_ingest: tuple[Path, list[dict[str, Any]]]) -> Iterator[tuple[str, Path]]:
    """(input name, drive folder) of every real bag."""
    store, report = real_ingest
    for path, entry in zip(REAL_BAGS, report, strict=True):
        yield path.name, store / "drives" / entry["drive_id"]


def _outputs(drive: Path) -> list[Path]:
    files = sorted(p for p in drive.rglob("*.mcap") if not p.name.startswith("."))
    assert files, drive
    return files


def _mcap_messages(path: Path) -> list[tuple[str, int, bytes]]:
    with path.open("rb") as f:
        return [(c.topic, m.log_time, m.data) for _, c, m in make_reader(f).iter_messages()]


def test_every_output_file_passes_crc_validation(
    real_ingest: tuple[Path, list[dict[str, Any]]],
) -> None:
    checked = 0
    for _, drive in _drives(real_ingest):
        for path in _outputs(drive):
            with path.open("rb") as f:
                reader = make_reader(f, validate_crcs=True)
                summary = reader.get_summary()
                assert summary is not None and summary.chunk_indexes
                n = sum(1 for _ in reader.iter_messages())
                assert summary.statistics is not None and n == summary.statistics.message_count
            with path.open("rb") as f:
                # reaching the end checks every chunk CRC and the data-section CRC
                records = list(StreamReader(f, validate_crcs=True).records)
            data_end = [r for r in records if type(r).__name__ == "DataEnd"]
            assert data_end and data_end[0].data_section_crc != 0  # written, not left at 0
            checked += 1
    assert checked > 20


def test_rosbags_reads_every_message_of_the_ros2_outputs(
    real_ingest: tuple[Path, list[dict[str, Any]]],
) -> None:
    drives = [(name, d) for name, d in _drives(real_ingest) if not name.endswith(".bag")]
    assert len(drives) == 5
    deserialized = 0
    for name, drive in drives:
        for path in _outputs(drive):
            with path.open("rb") as f:
                assert make_reader(f).get_header().profile == "ros2"
            with Ros2Reader(path) as reader:  # refuses a file whose profile is not ros2
                got = [(c.topic, t, bytes(raw)) for c, t, raw in reader.messages()]
            assert got == _mcap_messages(path)
            topic = got[0][0]
            if topic in DESERIALIZED.get(name, set()):
                with AnyReader([path]) as reader:
                    for connection, _, raw in reader.messages():
                        assert reader.deserialize(raw, connection.msgtype) is not None
                        deserialized += 1
    assert deserialized == 517 + 2 * 2 + 10  # every message of the listed topics


def test_ros1_outputs_say_ros1_and_every_message_decodes(
    real_ingest: tuple[Path, list[dict[str, Any]]],
) -> None:
    """rosbags reads no ``ros1`` MCAP (its MCAP reader is for ROS 2 bags only), so the mcap
    project's ROS 1 decoder, which needs the ros1msg definition, is the reader here."""
    decoded = 0
    for name, drive in _drives(real_ingest):
        if not name.endswith(".bag"):
            continue
        for path in _outputs(drive):
            with path.open("rb") as f:
                reader = make_reader(f, decoder_factories=[Ros1DecoderFactory()])
                assert reader.get_header().profile == "ros1"
                for _, channel, _, message in reader.iter_decoded_messages():
                    assert channel.message_encoding == "ros1" and message is not None
                    decoded += 1
    assert decoded >= 989 + 11865 + 3952 + 5 + 89 + 151 + 517
