"""Damaged MCAP input: every readable message kept, every loss or doubt reported.

Each file is written by the mcap library's own Writer, then damaged byte by byte at offsets
that the library's reader finds (chunk indexes). What a source yields is compared with what
the library reads from the intact file.
"""

from __future__ import annotations

import struct
from pathlib import Path

import lz4.frame
import pytest
from mcap.reader import make_reader
from mcap.writer import CompressionType, Writer

from drivecat.ingest.mcap_source import MAX_CHUNK_BYTES, McapSource
from drivecat.ingest.source_types import ProblemKind

Key = tuple[str, int, bytes]


def write(
    path: Path,
    *,
    compression: CompressionType = CompressionType.NONE,
    topic: str = "/data",
    count: int = 100,
    chunk_size: int = 1024,
) -> list[Key]:
    with path.open("wb") as f:
        writer = Writer(f, compression=compression, chunk_size=chunk_size)
        writer.start()
        schema = writer.register_schema("S", "jsonschema", b"{}")
        channel = writer.register_channel(topic, "json", schema)
        for i in range(count):
            data = b'{"i": %d, "pad": "%s"}' % (i, b"x" * 40)
            writer.add_message(channel, log_time=1_000 + i, data=data, publish_time=1_000 + i)
        writer.finish()
    return library_messages(path)


def library_messages(path: Path) -> list[Key]:
    with path.open("rb") as f:
        return [(c.topic, m.log_time, m.data) for _, c, m in make_reader(f).iter_messages()]


def chunk_offsets(path: Path) -> list[tuple[int, int]]:
    """(offset, length) of every chunk record, from the library's reading of the index."""
    with path.open("rb") as f:
        summary = make_reader(f).get_summary()
    assert summary is not None
    return sorted((ci.chunk_start_offset, ci.chunk_length) for ci in summary.chunk_indexes)


def read(path: Path) -> tuple[list[Key], McapSource]:
    source = McapSource(path)
    got = [(m.channel.topic, m.log_time_ns, m.data) for m in source.messages()]
    return got, source


def kinds(source: McapSource) -> list[str]:
    return [p.kind for p in source.problems]


def patch(path: Path, offset: int, data: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset : offset + len(data)] = data
    path.write_bytes(bytes(raw))


# A chunk record's body: start, end, uncompressed size, CRC, then the compression string.
CHUNK_BODY = 1 + 8  # opcode and length precede it
SIZE_AT, CRC_AT = CHUNK_BODY + 16, CHUNK_BODY + 24


def test_a_flipped_byte_in_an_uncompressed_chunk_is_kept_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "flip.mcap"
    truth = write(path)
    offset, length = chunk_offsets(path)[1]
    raw = path.read_bytes()
    # Flip one byte of a message payload ('x' padding) inside the second chunk.
    pad = raw.index(b"xxxx", offset + CHUNK_BODY + 40)
    assert pad < offset + length
    patch(path, pad, b"X")
    got, source = read(path)
    assert len(got) == len(truth)
    assert sum(a != b for a, b in zip(got, truth, strict=True)) == 1
    assert kinds(source) == [ProblemKind.CRC_MISMATCH]
    assert f"offset {offset}" in source.problems[0].detail


def test_a_damaged_compressed_chunk_is_skipped_the_others_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "zstd.mcap"
    truth = write(path, compression=CompressionType.ZSTD, count=300)
    chunks = chunk_offsets(path)
    assert len(chunks) >= 3
    offset, length = chunks[1]
    patch(path, offset + length - 12, b"\xff\x00\xff\x00")
    got, source = read(path)
    assert set(got) < set(truth)
    assert ProblemKind.CORRUPT in kinds(source) or ProblemKind.CRC_MISMATCH in kinds(source)
    lost = [p for p in source.problems if p.kind == ProblemKind.CORRUPT]
    assert all(p.lost_bytes == length for p in lost)
    assert len(truth) - len(got) <= 300 // len(chunks) + 20  # one chunk's worth at most


def test_a_corrupt_chunk_length_does_not_drop_the_rest_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "length.mcap"
    truth = write(path, count=300)
    chunks = chunk_offsets(path)
    offset, _ = chunks[1]
    patch(path, offset + 1, struct.pack("<Q", 1 << 60))  # the record's length field
    got, source = read(path)
    assert got == truth
    assert kinds(source) == [ProblemKind.DAMAGED_HEADER]


def test_a_topic_name_that_is_not_utf8_keeps_its_messages(tmp_path: Path) -> None:
    path = tmp_path / "odd.mcap"
    truth = write(path, topic="/cam_QQ")
    raw = path.read_bytes().replace(b"/cam_QQ", b"/cam_\xff\xfe")
    path.write_bytes(raw)
    got, source = read(path)
    assert [(t, d) for _, t, d in got] == [(t, d) for _, t, d in truth]
    assert {topic for topic, _, _ in got} == {"/cam_\\xff\\xfe"}
    assert ProblemKind.ODD_NAME in kinds(source)


def test_a_chunk_that_claims_a_terabyte_is_skipped_not_allocated(tmp_path: Path) -> None:
    path = tmp_path / "bomb.mcap"
    truth = write(path, compression=CompressionType.ZSTD, count=300)
    offset, length = chunk_offsets(path)[0]
    patch(path, offset + SIZE_AT, struct.pack("<Q", 1 << 40))
    got, source = read(path)
    assert set(got) < set(truth) and got
    (problem,) = [p for p in source.problems if p.kind == ProblemKind.CORRUPT]
    assert f"{MAX_CHUNK_BYTES >> 20} MiB" in problem.detail and problem.lost_bytes == length


def test_an_lz4_chunk_that_inflates_past_its_size_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "lz4.mcap"
    write(path, compression=CompressionType.LZ4, count=300)
    offset, length = chunk_offsets(path)[0]
    raw = bytearray(path.read_bytes())
    body = offset + CHUNK_BODY
    (clen,) = struct.unpack_from("<I", raw, body + 28)
    records_at = body + 32 + clen + 8
    (records_len,) = struct.unpack_from("<Q", raw, records_at - 8)
    # Same compressed length, but a frame that inflates to 16 times the declared size.
    # Padding keeps every later offset valid, so only this chunk is affected.
    (size,) = struct.unpack_from("<Q", raw, offset + SIZE_AT)
    bomb = lz4.frame.compress(bytes(16 * size), store_size=False)
    assert len(bomb) <= records_len
    raw[records_at : records_at + records_len] = bomb + bytes(records_len - len(bomb))
    path.write_bytes(bytes(raw))
    got, source = read(path)
    problem = next(p for p in source.problems if p.kind == ProblemKind.CORRUPT)
    assert "inflates past" in problem.detail and problem.lost_bytes == length
    assert got  # the other chunks are read


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.9])
def test_a_file_cut_anywhere_yields_what_precedes_the_cut(tmp_path: Path, cut: float) -> None:
    path = tmp_path / "cut.mcap"
    truth = write(path, count=300)
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * cut)])
    got, source = read(path)
    assert got == truth[: len(got)] and got
    assert ProblemKind.TRUNCATED in kinds(source)


def test_a_damaged_drive_says_so_in_status_quality_and_warnings(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from drivecat.cli.main import drivecat

    from .helpers import query

    path = tmp_path / "in" / "flip.mcap"
    path.parent.mkdir()
    write(path)
    offset, _ = chunk_offsets(path)[1]
    pad = path.read_bytes().index(b"xxxx", offset + CHUNK_BODY + 40)
    patch(path, pad, b"X")
    store = tmp_path / "store"
    result = CliRunner().invoke(
        drivecat, ["ingest", "run", str(path.parent), "--store", str(store), "--drive-id", "d1"]
    )
    assert result.exit_code == 0, result.output
    assert "crc mismatch" in result.stderr and f"offset {offset}" in result.stderr
    assert query(store, "SELECT status, message_count FROM drives") == [("partial", 100)]
    kinds = [k for (k,) in query(store, "SELECT kind FROM quality")]
    assert "crc_mismatch" in kinds
