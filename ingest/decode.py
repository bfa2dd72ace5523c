"""Decoding in the pass: the decoder of each channel, found once and kept, and the tally of
messages that do not decode with their schema.

A message that does not decode (a corrupt protobuf, a CDR buffer too short, bytes that are
no JSON) is stored as recorded like any other; it is counted per topic, becomes one
``undecodable`` quality row and a warning, and no tagger or index sees it. It never fails
the drive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from drivecat.ingest.pass_result import QualityRow
from drivecat.ingest.sources import Channel
from drivecat.schemas.decoding import DECODABLE, Decoder, DecoderCache, stamp_ns
from drivecat.types import QualityKind

__all__ = ["DECODABLE", "UNDECODABLE", "Decoders", "Undecodable", "stamp_ns"]

#: What ``Undecodable.decode`` returns for a message its decoder rejects.
UNDECODABLE: Any = object()
_REASON_CHARS = 200


class Decoders:
    """Per-channel decoders. ``decoder(channel)`` is None when it cannot be decoded."""

    def __init__(self) -> None:
        self._by_channel: dict[int, Decoder | None] = {}
        self._cache = DecoderCache()

    def decoder(self, channel: Channel) -> Decoder | None:
        key = id(channel)
        if key not in self._by_channel:
            schema = channel.schema
            self._by_channel[key] = (
                None
                if schema is None and channel.message_encoding != "json"
                else self._cache.decoder(
                    channel.message_encoding,
                    schema.name if schema else "",
                    schema.encoding if schema else "",
                    schema.data if schema else b"",
                )
            )
        return self._by_channel[key]


@dataclass
class TopicTally:
    """The undecodable messages of one topic: how many, the first and last log time, the
    schema they failed and the first reason given (one line)."""

    schema_name: str
    count: int = 0
    first_ns: int = 0
    last_ns: int = 0
    reason: str = ""


@dataclass
class Undecodable:
    """Per topic, the messages that did not decode. Picklable (the reading child of
    ``ingest.parallel`` worker returns its own), and two tallies ``merge``."""

    topics: dict[str, TopicTally] = field(default_factory=dict)

    def decode(self, decoder: Decoder, channel: Channel, log_time_ns: int, data: bytes) -> Any:
        """``decoder(data)``, or UNDECODABLE (counted) when the decoder raises.

        Any exception counts: the decoders of the mcap support packages raise DecodeError,
        struct.error, IndexError, UnicodeDecodeError and more on bytes that do not fit.
        """
        try:
            return decoder(data)
        except Exception as err:
            name = channel.schema.name if channel.schema else channel.message_encoding
            self.add(channel.topic, name, log_time_ns, _one_line(err))
            return UNDECODABLE

    def add(self, topic: str, schema_name: str, log_time_ns: int, reason: str) -> None:
        tally = self.topics.get(topic)
        if tally is None:
            tally = self.topics[topic] = TopicTally(
                schema_name, 0, log_time_ns, log_time_ns, reason
            )
        tally.count += 1
        tally.first_ns = min(tally.first_ns, log_time_ns)
        tally.last_ns = max(tally.last_ns, log_time_ns)

    def merge(self, other: Undecodable) -> None:
        for topic, theirs in other.topics.items():
            mine = self.topics.get(topic)
            if mine is None:
                self.topics[topic] = theirs
                continue
            mine.count += theirs.count
            mine.first_ns = min(mine.first_ns, theirs.first_ns)
            mine.last_ns = max(mine.last_ns, theirs.last_ns)

    def quality(self) -> list[QualityRow]:
        """One ``undecodable`` row per topic: count, first and last log time, the reason."""
        return [
            QualityRow(
                topic,
                QualityKind.UNDECODABLE,
                t.first_ns,
                t.last_ns,
                t.count,
                f"{_messages(t.count)} not decodable as {t.schema_name}, stored as recorded, "
                f"not tagged or indexed; first error: {t.reason}",
            )
            for topic, t in sorted(self.topics.items())
        ]

    def warnings(self) -> list[str]:
        return [
            f"{topic}: {_messages(t.count)} not decodable as {t.schema_name}: "
            "stored as recorded, not tagged or indexed"
            for topic, t in sorted(self.topics.items())
        ]


def _messages(n: int) -> str:
    return f"{n} message" if n == 1 else f"{n} messages"


def _one_line(err: Exception) -> str:
    kind = type(err)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    text = " ".join(str(err).split())
    text = f"{name}: {text}" if text else name
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 3] + "..."
