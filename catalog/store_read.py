"""Reading messages back from store files, for the exporters and anything else that needs them.

Over the store files that :class:`~catalog.store_files.StoreFiles` opens, :func:`read_at`
and :func:`read_range` fetch messages by position or by time range; :class:`Decoders`
decodes them (one decoder per distinct schema), and :func:`points_of` and
:func:`detections_of` turn point clouds and detection lists into plain values. Every read
or decode error is a CatalogError naming the store file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from mcap.records import Channel, Schema

from drivecat.catalog.errors import CatalogError
from drivecat.catalog.store_files import StoreFiles
from drivecat.schemas.decoding import DecoderCache, stamp_ns
from drivecat.schemas.messages import ObjectClass


def read_at(files: StoreFiles, wanted: list[tuple[str, str, int, int]]) -> Iterator[Any]:
    """(schema, channel, data) of each (topic, file, log_time_ns, rank) wanted, in that order.

    ``rank`` counts the messages of that file with the same log_time before the wanted one.
    Within one file the wanted messages must come in log-time order; each file is read once,
    forward, holding one message at a time. CatalogError when a message is not in its file.
    """
    spans: dict[str, tuple[int, int]] = {}
    for _, file, t, _ in wanted:
        lo, hi = spans.get(file, (t, t))
        spans[file] = (min(lo, t), max(hi, t))
    streams: dict[str, Iterator[Any]] = {}
    state: dict[str, tuple[int, int]] = {}  # file -> (log_time, messages seen at it)
    for topic, file, t, rank in wanted:
        if file not in streams:
            streams[file] = files.messages(file, topic, spans[file][0], spans[file][1] + 1)
        while True:
            item = next(streams[file], None)
            if item is None or item[2].log_time > t:
                raise CatalogError(
                    f"{files.store / file}: no message at log time {t} on {topic}; "
                    "the catalog and the store disagree"
                )
            log_time = item[2].log_time
            last, seen = state.get(file, (-1, 0))
            seen = seen + 1 if log_time == last else 1
            state[file] = (log_time, seen)
            if log_time == t and seen == rank + 1:
                yield item[0], item[1], item[2].data
                break


def read_range(
    con: duckdb.DuckDBPyConnection, files: StoreFiles, drive_id: str, topic: str, lo: int, hi: int
) -> Iterator[tuple[str, Any, Any, Any]]:
    """(path, schema, channel, message) of the topic's messages with log_time in [lo, hi)."""
    paths = con.execute(
        "SELECT path FROM files WHERE drive_id = ? AND topic = ? AND start_ns < ? AND end_ns > ? "
        "ORDER BY start_ns",
        [drive_id, topic, hi, lo],
    ).fetchall()
    for (path,) in paths:
        for schema, channel, message in files.messages(path, topic, lo, hi):
            yield path, schema, channel, message


class Decoders:
    """Decoders of store messages, one per distinct schema (``schemas.decoding``)."""

    def __init__(self) -> None:
        self._cache = DecoderCache()

    def decode(self, schema: Schema | None, channel: Channel, data: bytes, path: Path) -> Any:
        """The decoded message; CatalogError naming ``path`` when it cannot be decoded."""
        name = schema.name if schema is not None else ""
        decoder = self._cache.decoder(
            channel.message_encoding,
            name,
            schema.encoding if schema is not None else "",
            schema.data if schema is not None else b"",
        )
        if decoder is None:
            raise CatalogError(f"{path}: cannot decode {channel.topic} ({name or 'no schema'})")
        try:
            return decoder(data)
        except Exception as err:
            raise CatalogError(f"{path}: cannot decode a {channel.topic} message: {err}") from None


_FOXGLOVE_TYPES = {1: "u1", 2: "i1", 3: "u2", 4: "i2", 5: "u4", 6: "i4", 7: "f4", 8: "f8"}
_ROS_TYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}


def points_of(decoders: Decoders, schema: Any, channel: Any, data: bytes, path: Path) -> np.ndarray:
    """float32 (n, 4) x, y, z, intensity, or (n, 3) without intensity, from a
    foxglove.PointCloud or a sensor_msgs/PointCloud2 (any field layout and byte order).

    CatalogError when the schema is neither, x, y or z is missing, or the data is short.
    """
    name = schema.name if schema is not None else ""
    if name == "foxglove.PointCloud" and channel.message_encoding == "protobuf":
        from foxglove_schemas_protobuf.PointCloud_pb2 import PointCloud

        msg: Any = PointCloud.FromString(data)
        fields = [(f.name, f.offset, _FOXGLOVE_TYPES.get(f.type)) for f in msg.fields]
        stride, order, count = msg.point_stride, "<", None
    else:
        msg = decoders.decode(schema, channel, data, path)
        if not hasattr(msg, "point_step"):
            raise CatalogError(f"{path}: {channel.topic} ({name}) is not a point cloud")
        fields = [(f.name, f.offset, _ROS_TYPES.get(f.datatype)) for f in msg.fields]
        stride, order = msg.point_step, ">" if msg.is_bigendian else "<"
        count = msg.width * msg.height
    wanted = {n: (o, t) for n, o, t in fields if n in ("x", "y", "z", "intensity") and t}
    if not {"x", "y", "z"} <= wanted.keys() or stride <= 0:
        raise CatalogError(f"{path}: {channel.topic} has no x, y, z fields")
    raw = bytes(msg.data)
    n = len(raw) // stride if count is None else count
    if n * stride > len(raw):
        raise CatalogError(f"{path}: {channel.topic}: {len(raw)} bytes for {n} points")
    names = [c for c in ("x", "y", "z", "intensity") if c in wanted]
    layout = np.dtype(
        {
            "names": names,
            "formats": [order + wanted[c][1] for c in names],
            "offsets": [wanted[c][0] for c in names],
            "itemsize": stride,
        }
    )
    records = np.frombuffer(raw, dtype=layout, count=n)
    return np.stack([records[c].astype(np.float32) for c in names], axis=1)


def detections_of(
    decoders: Decoders, schema: Any, channel: Any, data: bytes, path: Path
) -> tuple[int | None, list[dict[str, Any]]] | None:
    """(stamp, objects) of an ObjectList-shaped message (drivecat.perception.ObjectList or
    its ROS twin); None for any other schema."""
    if schema is None or not schema.name.endswith("ObjectList"):
        return None
    msg = decoders.decode(schema, channel, data, path)
    objects = []
    for o in msg.objects:
        cls = int(o.object_class)
        objects.append(
            {
                "track_id": int(o.track_id),
                "class": ObjectClass.Name(cls) if cls in ObjectClass.values() else str(cls),
                "x": float(o.x),
                "y": float(o.y),
                "z": float(o.z),
                "confidence": float(o.confidence),
            }
        )
    return stamp_ns(msg), objects


__all__ = ["Decoders", "detections_of", "points_of", "read_at", "read_range"]
