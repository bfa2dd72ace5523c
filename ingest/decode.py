"""Decoding messages for the taggers and indexes: one decoder per channel, looked up by encoding.

The mcap support packages' ``DecoderFactory`` classes do the work (protobuf, ros1, cdr);
JSON is parsed with the standard library. Anything else is an unknown encoding: it is
stored as is and never decoded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mcap.records import Schema as McapSchema

from ingest.sources import Channel

Decoder = Callable[[bytes], Any]

DECODABLE = frozenset({"protobuf", "ros1", "cdr", "json"})


def _factories() -> list[Any]:
    from mcap_protobuf.decoder import DecoderFactory as ProtobufFactory
    from mcap_ros1.decoder import DecoderFactory as Ros1Factory
    from mcap_ros2.decoder import DecoderFactory as Ros2Factory

    return [ProtobufFactory(), Ros1Factory(), Ros2Factory()]


class Decoders:
    """Per-channel decoder cache. ``decoder(channel)`` is None when it cannot be decoded."""

    def __init__(self) -> None:
        self._cache: dict[int, Decoder | None] = {}
        self._factories: list[Any] | None = None
        self._schema_ids: dict[int, int] = {}

    def decoder(self, channel: Channel) -> Decoder | None:
        key = id(channel)
        if key in self._cache:
            return self._cache[key]
        found = self._make(channel)
        self._cache[key] = found
        return found

    def _make(self, channel: Channel) -> Decoder | None:
        encoding = channel.message_encoding
        if encoding == "json":
            return json.loads
        if encoding not in DECODABLE or channel.schema is None:
            return None
        if self._factories is None:
            self._factories = _factories()
        schema = channel.schema
        sid = self._schema_ids.setdefault(id(schema), len(self._schema_ids) + 1)
        record = McapSchema(id=sid, name=schema.name, encoding=schema.encoding, data=schema.data)
        for factory in self._factories:
            try:
                decoder = factory.decoder_for(encoding, record)
            except Exception:  # a schema the factory cannot parse: leave the topic undecoded
                return None
            if decoder is not None:
                return decoder  # type: ignore[no-any-return]
        return None


def stamp_ns(decoded: Any) -> int | None:
    """The message's own timestamp in ns: ``timestamp`` (Foxglove) or ``header.stamp`` (ROS)."""
    stamp = getattr(decoded, "timestamp", None)
    has_field = getattr(decoded, "HasField", None)
    if stamp is not None and has_field is not None:
        try:
            if not has_field("timestamp"):
                return None  # a protobuf message whose timestamp was never set
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
