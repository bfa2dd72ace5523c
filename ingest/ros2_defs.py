"""ROS 2 message definitions as output schemas: one copy for every ROS 2 bag reader.

Used by ``ingest.bag_source`` (through rosbags) and ``ingest.ros2_db`` (``.db3`` through
sqlite3), which must hand out equal channels for the same database. A ``.db3`` of schema
version 4 or later carries a ``message_definitions`` table: (type name, encoding, text).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from drivecat.ingest.source_types import Schema

DEFINITION_ENCODINGS = ("ros2msg", "ros2idl")


def known_definitions(
    entries: Iterable[tuple[object, object, object]],
) -> dict[str, tuple[str, str]]:
    """Type name -> (encoding, text) of ``entries`` (name, encoding, text) in table order,
    the first of a name winning; entries of other encodings are left out. Kept for
    definitions no topic's type names exactly (a service's, for its ``_Event`` topics)."""
    out: dict[str, tuple[str, str]] = {}
    for name, encoding, text in entries:
        if encoding in DEFINITION_ENCODINGS:
            out.setdefault(str(name), (str(encoding), str(text or "")))
    return out


def service_of(msgtype: str) -> str:
    """``pkg/srv/Name`` for a service event type ``pkg/srv/Name_Event``; else ""."""
    head, _, name = msgtype.rpartition("/")
    if head.endswith("/srv") and name.endswith("_Event"):
        return f"{head}/{name.removesuffix('_Event')}"
    return ""


def ros2_schema(
    msgtype: str, encoding: str, text: str, known: Mapping[str, tuple[str, str]]
) -> Schema | None:
    """The schema of a topic of type ``msgtype`` whose own definition is ``encoding``
    ("ros2msg", "ros2idl", or "" when the bag has none) and ``text``: an IDL as it is; a
    non-empty msg as it is; else a service event takes its service's definition (as
    rosbag2 writes it to MCAP), else one generated from rosbags' type store. None when
    none of these has it: the caller reports the missing definition."""
    if encoding == "ros2idl":
        return Schema(msgtype, "ros2idl", text.encode())
    if encoding == "ros2msg" and text:
        return Schema(msgtype, "ros2msg", text.encode())
    service = service_of(msgtype)
    if service in known and known[service][1]:
        found, text = known[service]
        return Schema(msgtype, found, text.encode())
    from rosbags.typesys import Stores, get_typestore  # slow import, rarely needed

    store = get_typestore(Stores.LATEST)
    if msgtype in store.fielddefs:
        text, _ = store.generate_msgdef(msgtype, ros_version=2)
        return Schema(msgtype, "ros2msg", text.encode())
    return None


__all__ = ["DEFINITION_ENCODINGS", "known_definitions", "ros2_schema", "service_of"]
