"""Values that cross the ingest/catalog boundary: topic roles, drive status, quality kinds.

Both ``drivecat.ingest`` (which writes them) and ``drivecat.catalog`` (which reads them
back from the tables) import this module; it imports no stage. Every enum here is a
``StrEnum`` whose values are exactly what the catalog stores, so ``Role.LIDAR == "lidar"``
and a column compared with a member in Python or SQL sees the same text.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Role(StrEnum):
    """What a topic carries, found from its schema name (``topics.role``)."""

    VIDEO = "video"
    IMAGE = "image"
    LIDAR = "lidar"
    GPS = "gps"
    DETECTIONS = "detections"
    VEHICLE = "vehicle"
    FRAME_TIMES = "frame_times"
    OTHER = "other"


#: Roles whose messages get a ``sensor_index`` row (and can be a dataset's reference).
INDEXED_ROLES = frozenset({Role.LIDAR, Role.IMAGE})


class DriveStatus(StrEnum):
    """``drives.status``: how much of the drive's input could be read."""

    COMPLETE = "complete"  # every input read in full
    RECOVERED = "recovered"  # a recording was cut (recorder crash); read up to the cut
    PARTIAL = "partial"  # messages were lost elsewhere than at a cut
    EMPTY = "empty"  # no message at all


class ProblemKind(StrEnum):
    """What went wrong while reading an input. Those in ``LOSSES`` lose messages, those in
    ``SUSPECT`` keep them but maybe not as recorded; the others are notes about input that
    was still read in full. Each becomes a ``quality`` row of the same kind."""

    TRUNCATED = "truncated"  # the file ends early (recorder crash); lost_bytes after the cut
    CORRUPT = "corrupt"  # a chunk or record that cannot be decompressed or parsed: skipped
    UNKNOWN_CHANNEL = "unknown_channel"  # messages on a channel id never defined: skipped
    BAD_SUMMARY = "bad_summary"  # footer or summary unreadable: the file was streamed instead
    MISSING_DEFINITION = "missing_definition"  # no schema text found for a channel's type
    CRC_MISMATCH = "crc_mismatch"  # a chunk failed its CRC; its messages are kept, suspect
    DAMAGED_HEADER = "damaged_header"  # a chunk header is wrong; read by the index anyway
    ODD_NAME = "odd_name"  # a topic or schema name that is not UTF-8, stored escaped
    MISSING_MESSAGES = "missing_messages"  # a bag declares more messages than could be read


#: The read problems that cost messages.
LOSSES = frozenset(
    {
        ProblemKind.TRUNCATED,
        ProblemKind.CORRUPT,
        ProblemKind.UNKNOWN_CHANNEL,
        ProblemKind.MISSING_MESSAGES,
    }
)
#: Kept in full, but maybe not as recorded: the drive says so as it does for a loss.
SUSPECT = frozenset({ProblemKind.CRC_MISMATCH, ProblemKind.DAMAGED_HEADER, ProblemKind.ODD_NAME})


#: The segment tags that coverage, reports and label agreement break down by unless told
#: otherwise (``--by``); label agreement takes these only.
CONDITION_TAGS = ("weather", "time_of_day", "at_intersection")


class QualityKind(StrEnum):
    """``quality.kind``: every problem the pass records. The read problems of
    :class:`ProblemKind` are quality kinds too, with the same values."""

    # topic statistics
    GAP = "gap"
    OUT_OF_ORDER = "out_of_order"
    DUPLICATE_TIMESTAMP = "duplicate_timestamp"
    UNKNOWN_ENCODING = "unknown_encoding"
    UNDECODABLE = "undecodable"  # messages that do not decode with their schema: kept, untagged
    CLOCK_OUTLIER = "clock_outlier"  # stamped far from the drive: stored, not in segments
    # video frames
    NO_KEYFRAME = "no_keyframe"
    KEYFRAME_WITHOUT_SPS = "keyframe_without_sps"
    B_FRAMES = "b_frames"
    FRAME_TIME_BACKWARDS = "frame_time_backwards"
    UNSUPPORTED_CODEC = "unsupported_codec"
    UNPARSABLE_FRAME = "unparsable_frame"
    FRAME_COUNT_MISMATCH = "frame_count_mismatch"
    EMPTY_SIDECAR = "empty_sidecar"  # a side-car video file of zero bytes: nothing to ingest
    # a tagger's configuration cannot apply to the drive (an intersection map that does not
    # cover its GPS track): its tag is not evidence there
    TAG_NOT_APPLICABLE = "tag_not_applicable"
    # reading the inputs (ProblemKind)
    TRUNCATED = ProblemKind.TRUNCATED.value
    CORRUPT = ProblemKind.CORRUPT.value
    UNKNOWN_CHANNEL = ProblemKind.UNKNOWN_CHANNEL.value
    BAD_SUMMARY = ProblemKind.BAD_SUMMARY.value
    MISSING_DEFINITION = ProblemKind.MISSING_DEFINITION.value
    CRC_MISMATCH = ProblemKind.CRC_MISMATCH.value
    DAMAGED_HEADER = ProblemKind.DAMAGED_HEADER.value
    ODD_NAME = ProblemKind.ODD_NAME.value
    MISSING_MESSAGES = ProblemKind.MISSING_MESSAGES.value


class Codec(StrEnum):
    """A video codec as ``frames.codec`` records it."""

    H264 = "h264"
    H265 = "h265"

    @property
    def ffmpeg_name(self) -> str:
        """FFmpeg's name for it: its parser, decoder and demuxer are called this."""
        return _FFMPEG_NAMES[self]


_FFMPEG_NAMES = {Codec.H264: "h264", Codec.H265: "hevc"}


class AttachmentKind(StrEnum):
    """``attachments.kind``: what a row of the ``attachments`` table is."""

    ATTACHMENT = "attachment"  # a file the recorder attached (calibration, a map...)
    METADATA = "metadata"  # a metadata record: a name and a string map


class Profile(StrEnum):
    """An MCAP header's ``profile``: the well-known profile every channel of a file obeys,
    so that tools which check it (rosbags reads only ``ros2`` files) accept the file."""

    NONE = ""
    ROS1 = "ros1"
    ROS2 = "ros2"


#: What each profile requires of a channel: (message encoding, allowed schema encodings),
#: as the MCAP specification's well-known profiles define them.
_PROFILE_RULES = {
    Profile.ROS1: ("ros1", frozenset({"ros1msg"})),
    Profile.ROS2: ("cdr", frozenset({"ros2msg", "ros2idl"})),
}


def channel_profile(message_encoding: str, schema_encoding: str | None) -> Profile:
    """The profile a channel with these encodings satisfies; ``Profile.NONE`` for anything
    else (protobuf, JSON, a ROS channel without its message definition)."""
    for profile, (encoding, schemas) in _PROFILE_RULES.items():
        if message_encoding == encoding and schema_encoding in schemas:
            return profile
    return Profile.NONE


def common_profile(profiles: Iterable[Profile | str]) -> Profile:
    """The profile of a file holding channels of ``profiles``: theirs when they all agree,
    else ``Profile.NONE`` (a ros2 header over a protobuf channel would be a lie)."""
    found = {Profile(p) for p in profiles}
    return found.pop() if len(found) == 1 else Profile.NONE


__all__ = [
    "CONDITION_TAGS",
    "INDEXED_ROLES",
    "AttachmentKind",
    "Codec",
    "DriveStatus",
    "ProblemKind",
    "Profile",
    "QualityKind",
    "Role",
    "channel_profile",
    "common_profile",
]
