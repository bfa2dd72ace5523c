"""catalog.mcap_index and StoreFiles.indexed against the mcap library's own readers.

The MCAP project's conformance files cover every layout of a summary (chunked or not,
chunk and message indexes, repeated schemas and channels, statistics, summary offsets,
padding after the known fields of each record); the mcap library's ``SeekingReader`` is
the truth for what each holds. A file written here with compressed chunks and several
channels covers the decompressing path.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from mcap.reader import NonSeekingReader, SeekingReader
from mcap.writer import CompressionType, Writer

from drivecat.catalog import mcap_index
from drivecat.catalog.errors import CatalogError
from drivecat.catalog.store_files import StoreFiles

SUITE = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "mcap-conformance"
FILES = sorted(SUITE.glob("*/*.mcap"))
needs_suite = pytest.mark.skipif(not FILES, reason="no MCAP conformance suite in ../shared")


def _summary(path: Path) -> mcap_index.FileSummary:
    fd = os.open(path, os.O_RDONLY)
    try:
        return mcap_index.read_summary(
            lambda at, size: os.pread(fd, size, at), os.fstat(fd).st_size
        )
    finally:
        os.close(fd)


@needs_suite
def test_summaries_equal_the_mcap_reader_on_the_conformance_suite() -> None:
    compared = refused = 0
    for path in FILES:
        with open(path, "rb") as f:
            truth = SeekingReader(f).get_summary()
        if truth is None:
            with pytest.raises(ValueError, match="no summary section"):
                _summary(path)
            refused += 1
            continue
        got = _summary(path)
        assert got.schemas == truth.schemas, path.name
        assert got.channels == truth.channels, path.name
        assert got.chunk_indexes == truth.chunk_indexes, path.name
        compared += 1
    assert compared > 100 and refused > 10  # both kinds are in the suite


def _in_store(tmp_path: Path, source: Path) -> tuple[Path, str]:
    """``source`` copied where a store file lies: (store, path relative to it)."""
    relative = f"drives/d/t/{source.name}"
    (tmp_path / "drives" / "d" / "t").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, tmp_path / relative)
    return tmp_path, relative


def _truth(path: Path, topic: str, lo: int, hi: int) -> list[tuple[int, bytes]]:
    """The topic's messages in [lo, hi], in file order: the whole file streamed by mcap."""
    with open(path, "rb") as f:
        return [
            (m.log_time, m.data)
            for _, _, m in NonSeekingReader(f).iter_messages(topics=[topic], log_time_order=False)
            if lo <= m.log_time <= hi
        ]


@needs_suite
def test_indexed_reads_equal_the_mcap_reader_on_the_conformance_suite(tmp_path: Path) -> None:
    # Files with chunk and message indexes and their channels in the summary, as every store
    # file has: every message of the topic, and a middle range.
    files = [p for p in FILES if "-chx-mx" in p.name and "-rch" in p.name and "Message" in p.name]
    assert files
    for source in files:
        store, relative = _in_store(tmp_path, source)
        with open(source, "rb") as f:
            summary = SeekingReader(f).get_summary()
        assert summary is not None
        for topic in {c.topic for c in summary.channels.values()}:
            everything = _truth(source, topic, 0, 2**64 - 1)
            lo, hi = everything[len(everything) // 3][0], everything[-1][0] - 1
            with StoreFiles(store) as files_:
                got_all = [(t, d) for _, _, t, d in files_.indexed(relative, topic, 0, 2**64 - 1)]
                got_mid = [(t, d) for _, _, t, d in files_.indexed(relative, topic, lo, hi)]
            assert got_all == everything, source.name
            assert got_mid == _truth(source, topic, lo, hi), source.name


@pytest.mark.parametrize("compression", [CompressionType.ZSTD, CompressionType.LZ4])
def test_indexed_reads_compressed_chunks_of_interleaved_channels(
    tmp_path: Path, compression: CompressionType
) -> None:
    path = tmp_path / "drives" / "d" / "t" / "mixed.mcap"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as f:
        writer = Writer(f, chunk_size=2000, compression=compression)
        writer.start()
        schema = writer.register_schema("s", "jsonschema", b"{}")
        channels = {
            name: writer.register_channel(name, "json", schema) for name in ("/a", "/b", "/a2")
        }
        for i in range(300):
            name = ("/a", "/b", "/a2")[i % 3]
            # /a2 shares /a's topic name through a second channel: both are read.
            topic_channel = channels["/a"] if name == "/a2" else channels[name]
            data = f'{{"i": {i}, "pad": "{"x" * (i % 50)}"}}'.encode()
            writer.add_message(
                topic_channel, log_time=1000 + 10 * (i // 2), data=data, publish_time=0, sequence=i
            )
        writer.finish()
    with open(path, "rb") as f:
        summary = SeekingReader(f).get_summary()
    assert summary is not None and len(summary.chunk_indexes) > 5
    assert _summary(path).chunk_indexes == summary.chunk_indexes
    truth = _truth(path, "/a", 1500, 2200)
    with StoreFiles(tmp_path) as files:
        got = [(t, d) for _, _, t, d in files.indexed("drives/d/t/mixed.mcap", "/a", 1500, 2200)]
    assert got == truth and len(truth) > 50


def test_a_cut_or_damaged_store_file_is_one_catalog_error(tmp_path: Path) -> None:
    path = tmp_path / "drives" / "d" / "t" / "f.mcap"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as f:
        writer = Writer(f, chunk_size=500, compression=CompressionType.NONE)
        writer.start()
        channel = writer.register_channel(
            "/a", "json", writer.register_schema("s", "jsonschema", b"{}")
        )
        for i in range(100):
            writer.add_message(channel, log_time=i, data=b'{"v": 1234567}', publish_time=i)
        writer.finish()
    whole = path.read_bytes()
    with StoreFiles(tmp_path) as files:
        assert len(list(files.indexed("drives/d/t/f.mcap", "/a", 10, 20))) == 11
    path.write_bytes(whole[: len(whole) - 40])  # the footer is gone
    with (
        StoreFiles(tmp_path) as files,
        pytest.raises(CatalogError, match=r"f\.mcap: cannot read store file: no MCAP footer"),
    ):
        list(files.indexed("drives/d/t/f.mcap", "/a", 10, 20))
    # A message index that points at bytes that are not a message: the check refuses it.
    damaged = bytearray(whole)
    first_message = whole.index(b'{"v": 1234567}') - 31  # opcode, length, the message head
    assert damaged[first_message] == 0x05
    damaged[first_message] = 0x00
    path.write_bytes(bytes(damaged))
    with (
        StoreFiles(tmp_path) as files,
        pytest.raises(
            CatalogError, match=r"f\.mcap: cannot read store file: no message at chunk offset"
        ),
    ):
        list(files.indexed("drives/d/t/f.mcap", "/a", 0, 3))
