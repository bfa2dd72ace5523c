"""ingest.crc: ISA-L's CRC-32 against zlib's (the reference), and the mcap writer given it."""

from __future__ import annotations

import io
import os
import random
import zlib

import mcap.writer
import pytest
from mcap.reader import make_reader
from mcap.writer import CompressionType, Writer

from drivecat.ingest import crc


@pytest.mark.parametrize("size", [0, 1, 7, 64, 1000, 4096, 65_537, 3 << 20])
def test_crc32_is_zlibs(size: int) -> None:
    data = os.urandom(size)
    assert crc.crc32(data) == zlib.crc32(data)
    assert crc.crc32(memoryview(data)[size // 3 :]) == zlib.crc32(data[size // 3 :])
    running = zlib.crc32(b"MCAP")
    assert crc.crc32(data, running) == zlib.crc32(data, running)


def _written(enable_chunking: bool) -> bytes:
    out = io.BytesIO()
    writer = Writer(
        out,
        compression=CompressionType.NONE,
        enable_crcs=True,
        enable_data_crcs=True,
        use_chunking=enable_chunking,
        chunk_size=4096,
    )
    writer.start(profile="", library="test")
    schema = writer.register_schema("s", "jsonschema", b"{}")
    channel = writer.register_channel("/t", "json", schema)
    for k in range(500):
        writer.add_message(channel, k * 1000, os.urandom(k % 97) + b"{}", k * 1000, k)
    writer.add_attachment(1, 2, "a.bin", "application/octet-stream", os.urandom(300))
    writer.finish()
    return out.getvalue()


@pytest.mark.parametrize("chunked", [True, False])
def test_the_writer_given_it_writes_the_same_checksums(
    chunked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mcap.writer, "zlib", zlib)  # the library as shipped
    monkeypatch.setattr(os, "urandom", random.Random(5).randbytes)  # the same payloads twice
    plain = _written(chunked)
    crc.install()
    assert mcap.writer.zlib is not zlib and mcap.writer.zlib.compress is zlib.compress
    monkeypatch.setattr(os, "urandom", random.Random(5).randbytes)
    faster = _written(chunked)
    assert faster == plain
    reader = make_reader(io.BytesIO(faster), validate_crcs=True)
    assert sum(1 for _ in reader.iter_messages()) == 500
    crc.install()  # again: nothing changes
    assert mcap.writer.zlib.crc32 is crc.crc32
