"""Decoding in the pass: the decoder of each channel, found once and kept."""

from __future__ import annotations

from drivecat.ingest.sources import Channel
from drivecat.schemas.decoding import DECODABLE, Decoder, DecoderCache, stamp_ns

__all__ = ["DECODABLE", "Decoders", "stamp_ns"]


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
