"""ROS 1 bags and ROS 2 sqlite3 bags read through ``rosbags`` (``RosbagSource``).

Messages come in record-time order with the bag's own definitions as schemas; damage ends a
file's stream with a ``ReadProblem``, as ``ingest.sources`` describes. A ROS 1 bag whose
index is missing or cut is read by ``ingest.ros1_scan`` instead (see ``open_ros1``).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from rosbags.interfaces import Connection, MessageDefinitionFormat
from rosbags.rosbag1 import Reader as Ros1Reader
from rosbags.rosbag2 import Reader as Ros2Reader

from drivecat.ingest.declared import shortfall
from drivecat.ingest.errors import IngestError
from drivecat.ingest.ros2_defs import known_definitions, ros2_schema
from drivecat.ingest.source_types import (
    Channel,
    NoSideRecords,
    ProblemKind,
    RawMessage,
    ReadProblem,
    Schema,
    by_log_time,
    raw_message,
)

_FORMATS = {MessageDefinitionFormat.MSG: "ros2msg", MessageDefinitionFormat.IDL: "ros2idl"}


class RosbagSource(NoSideRecords):
    """A ROS 1 bag, or ROS 2 sqlite3 storage, read through ``rosbags``.

    ``targets`` are what rosbags opens: the ``.bag`` file, a ROS 2 bag's ``.db3`` files
    one by one, or (file-compressed bags only) the ROS 2 bag folder. A ``.db3`` is read
    through rosbags' storage reader, which yields every topic the database holds; its
    folder reader would drop a topic whose QoS string in ``metadata.yaml`` differs from the
    database's. ``decompress`` undoes per-message compression. Each target comes in
    record-time order; several are merged. ``publish_time_ns`` is the record time and
    ``sequence`` is 0: bags store neither.

    ``declared``: messages per topic that ``metadata.yaml`` promises; once the stream is
    read, each topic that came up short is a MISSING_MESSAGES problem.

    Schemas follow the MCAP conventions: ROS 1 types as ``pkg/Name`` with the bag's full
    ``ros1msg`` definition text; ROS 2 types as ``pkg/msg/Name`` with the ``ros2msg`` or
    ``ros2idl`` text the bag carries (a service event ``pkg/srv/Name_Event`` takes the
    text of ``pkg/srv/Name``, as rosbag2 writes it to MCAP), else one generated from
    rosbags' type store. Connections that share topic, type and definition become one
    channel.
    """

    start_bound: int | None = None  # a bag's first time is only known once it is opened

    def __init__(
        self,
        path: Path,
        targets: Sequence[Path],
        *,
        ros1: bool,
        declared: Mapping[str, int] | None = None,
        decompress: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self.path = Path(path)
        self.problems: list[ReadProblem] = []
        self.out_of_order: Counter[str] = Counter()  # bags are read in time order
        self._targets = list(targets)
        self._ros1 = ros1
        self._declared = declared
        self._decompress = decompress
        self._counted: Counter[str] = Counter()
        self._channels: list[dict[int, Channel]] = []
        pool: dict[Channel, Channel] = {}
        for target in self._targets:
            reader = self._open(target)
            try:
                known = _definitions(reader)
                chans = {c.id: self._channel(c, known) for c in reader.connections}
            finally:
                reader.close()
            self._channels.append({k: pool.setdefault(v, v) for k, v in chans.items()})

    def _open(self, target: Path) -> Any:
        try:
            reader = Ros1Reader(target) if self._ros1 else Ros2Reader(target)
            reader.open()
        except Exception as err:  # rosbags raises several types on bad input
            kind = "ROS 1 bag" if self._ros1 else "ROS 2 bag"
            reason = " ".join(str(err).split()) or type(err).__name__
            raise IngestError(f"{target}: not a readable {kind}: {reason}") from None
        return reader

    def _channel(self, conn: Connection, known: Mapping[str, tuple[str, str]]) -> Channel:
        if not self._ros1:
            schema = self._ros2_schema(conn, known)
            return Channel(
                conn.topic, str(getattr(conn.ext, "serialization_format", "cdr")), schema
            )
        name = conn.msgtype.replace("/msg/", "/", 1)
        meta = {"md5sum": conn.digest}
        if getattr(conn.ext, "latching", None):
            meta["latching"] = "1"
        return Channel(conn.topic, "ros1", Schema(name, "ros1msg", conn.msgdef.data.encode()), meta)

    def _ros2_schema(self, conn: Connection, known: Mapping[str, tuple[str, str]]) -> Schema:
        encoding = _FORMATS.get(conn.msgdef.format, "")
        schema = ros2_schema(conn.msgtype, encoding, conn.msgdef.data, known)
        if schema is not None:
            return schema
        detail = f"{conn.topic}: the bag carries no definition of {conn.msgtype}"
        self.problems.append(ReadProblem(self.path, ProblemKind.MISSING_DEFINITION, detail))
        return Schema(conn.msgtype, "ros2msg", b"")

    def messages(self) -> Iterator[RawMessage]:
        """Every message in record-time order (per target; merged across targets). Once
        exhausted, topics read fewer times than declared are MISSING_MESSAGES problems."""
        streams = [self._target_messages(i) for i in range(len(self._targets))]
        yield from streams[0] if len(streams) == 1 else heapq.merge(*streams, key=by_log_time)
        if self._declared is not None:
            self.problems.extend(shortfall(self.path, self._declared, self._counted))

    def _target_messages(self, index: int) -> Iterator[RawMessage]:
        """One target's messages. Damage met on the way (a chunk that will not decompress, a
        bad database page) ends the stream there with a CORRUPT problem, as for MCAP."""
        channels = self._channels[index]
        target = self._targets[index]
        reader = self._open(target)
        t: int | None = None
        counted = self._counted
        decompress = self._decompress
        try:
            for conn, t, data in reader.messages(reader.connections):
                channel = channels[conn.id]
                counted[channel.topic] += 1
                if decompress is not None:
                    data = decompress(data)
                yield raw_message((channel, t, t, 0, data))
        except Exception as err:  # rosbags raises several types on damaged input
            reason = " ".join(str(err).split()) or type(err).__name__
            detail = f"{target.name}: reading stopped: {reason}"
            self.problems.append(
                ReadProblem(self.path, ProblemKind.CORRUPT, detail, at_log_time_ns=t)
            )
        finally:
            reader.close()


def _definitions(reader: Any) -> dict[str, tuple[str, str]]:
    """Every definition a ROS 2 ``.db3`` holds (see ``known_definitions``), from rosbags'
    storage reader (``msgtypes``); {} for other readers."""
    storage = getattr(reader, "storage", None)
    entries = getattr(storage, "msgtypes", None) or []
    return known_definitions((e.get("name"), e.get("encoding"), e.get("msgdef")) for e in entries)
