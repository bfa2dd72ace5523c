"""Decoding recorded messages: one decoder per distinct schema, looked up by encoding.

The mcap support packages' ``DecoderFactory`` classes do the work (protobuf, ros1, cdr);
JSON is parsed with the standard library; anything else is an unknown encoding and is never
decoded. Ingest and export both go through :class:`DecoderCache`.

The factories cache decoders by schema *id*, and ids repeat across files (each file numbers
its schemas from 1), so every distinct schema is handed over under an id of its own: two
files can never share a decoder by accident.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from mcap.records import Schema as McapSchema

Decoder = Callable[[bytes], Any]

DECODABLE = frozenset({"protobuf", "ros1", "cdr", "json"})

SchemaKey = tuple[str, str, str, bytes]  # message encoding, schema name, schema encoding, data


def _factory(message_encoding: str) -> Any:
    """The mcap support package's DecoderFactory for a message encoding (imported when
    first needed: the ROS ones pull in numpy and more, which protobuf-only drives skip)."""
    if message_encoding == "protobuf":
        from mcap_protobuf.decoder import DecoderFactory as ProtobufFactory

        return ProtobufFactory()
    if message_encoding == "ros1":
        from mcap_ros1.decoder import DecoderFactory as Ros1Factory

        return Ros1Factory()
    from mcap_ros2.decoder import DecoderFactory as Ros2Factory  # cdr

    return Ros2Factory()


class DecoderCache:
    """``decoder(...)`` is the decoder for a message encoding and schema, or None."""

    def __init__(self) -> None:
        self._cache: dict[SchemaKey, Decoder | None] = {}
        self._factories: dict[str, Any] = {}

    def decoder(
        self, message_encoding: str, schema_name: str, schema_encoding: str, schema_data: bytes
    ) -> Decoder | None:
        key = (message_encoding, schema_name, schema_encoding, schema_data)
        if key not in self._cache:
            self._cache[key] = self._make(key, len(self._cache) + 1)
        return self._cache[key]

    def _make(self, key: SchemaKey, schema_id: int) -> Decoder | None:
        encoding, name, schema_encoding, data = key
        if encoding == "json":
            return json.loads
        if encoding not in DECODABLE or not schema_encoding:
            return None
        factory = self._factories.get(encoding)
        if factory is None:
            factory = self._factories[encoding] = _factory(encoding)
        record = McapSchema(id=schema_id, name=name, encoding=schema_encoding, data=data)
        try:
            found: Decoder | None = factory.decoder_for(encoding, record)
        except Exception:  # a schema the factory cannot parse: not decodable
            found = None
        return found


def value_of(message: Any, name: str, default: Any = None) -> Any:
    """Field ``name`` of a decoded message: attribute (protobuf, ROS) or key (JSON dict).

    JSON written by protobuf's ``MessageToJson`` uses lowerCamelCase names, so a dict is
    also searched for ``outsideTempC`` when asked for ``outside_temp_c``.
    """
    if isinstance(message, dict):  # dict, not Mapping: this runs per field, ABC checks are slow
        if name in message:
            return message[name]
        return message.get(_camel(name), default)
    return getattr(message, name, default)


@lru_cache(maxsize=256)
def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def stamp_ns(decoded: Any) -> int | None:
    """The message's own timestamp in ns: ``timestamp`` (Foxglove, contract messages) or
    ``header.stamp`` (ROS); None when it has neither, or a protobuf timestamp never set."""
    stamp = getattr(decoded, "timestamp", None)
    has_field = getattr(decoded, "HasField", None)
    if stamp is not None and has_field is not None:
        try:
            if not has_field("timestamp"):
                return None
        except ValueError:
            pass  # not a message field (a scalar named timestamp)
    if stamp is None:
        header = getattr(decoded, "header", None)
        stamp = getattr(header, "stamp", None) if header is not None else None
        if stamp is None:
            return None
    seconds = getattr(stamp, "seconds", None)
    if seconds is None:
        seconds = getattr(stamp, "sec", getattr(stamp, "secs", None))
    nanos = getattr(stamp, "nanos", None)
    if nanos is None:
        nanos = getattr(stamp, "nanosec", getattr(stamp, "nsecs", 0))
    if seconds is None:
        return None
    return int(seconds) * 1_000_000_000 + int(nanos or 0)
