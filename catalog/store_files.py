"""Reading store files: each opened once with the mcap library's seeking reader.

Shared by frame access (:mod:`catalog.frames`) and both export formats.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, TypeVar

from mcap.reader import SeekingReader, make_reader
from mcap.records import Channel, ChunkIndex, Message, Schema

from drivecat.catalog.errors import CatalogError
from drivecat.catalog.store import file_in_drive

_T = TypeVar("_T")

# MCAP record layouts (spec: opcode u8, length u64, then the fields, little-endian).
_RECORD_HEAD = struct.Struct("<BQ")
_CHUNK_TIMES = struct.Struct("<QQQIi")  # start, end, uncompressed size, crc, compression len
_MESSAGE_HEAD = struct.Struct("<HIQQ")  # channel id, sequence, log_time, publish_time
_INDEX_ENTRY = struct.Struct("<QQ")  # log_time, offset in the chunk's records
_OP_MESSAGE, _OP_MESSAGE_INDEX = 0x05, 0x07


def store_file(store: Path, path: str) -> Path:
    """The absolute path of a store file named by the catalog (``drives/<drive_id>/...``),
    checked to lie inside that drive's folder: catalog rows can be edited, and a path like
    ``drives/x/../../../home/me/.ssh/id_rsa`` must never be read (and exported)."""
    parts = PurePosixPath(path).parts if isinstance(path, str) else ()
    if len(parts) < 3 or parts[0] != "drives":
        raise CatalogError(f"{Path(store) / str(path)}: not a store file (drives/<drive_id>/...)")
    return file_in_drive(store, parts[1], path)


class StoreFiles:
    """Seeking readers on store files (paths relative to the store), each opened once.

    Every read error, from a missing file to a damaged chunk, becomes a CatalogError that
    names the file. Use as a context manager: leaving it closes every file.
    """

    def __init__(self, store: Path) -> None:
        self.store = Path(store)
        self._open: dict[str, tuple[IO[bytes], SeekingReader]] = {}

    def __enter__(self) -> StoreFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for stream, _ in self._open.values():
            stream.close()
        self._open.clear()

    def reader(self, path: str) -> SeekingReader:
        found = self._open.get(path)
        if found is None:
            full = store_file(self.store, path)
            try:
                stream = open(full, "rb")  # noqa: SIM115 - closed by close()
            except OSError as err:
                raise CatalogError(
                    f"{self.store / path}: cannot open store file: {err.strerror}"
                ) from None
            reader = make_reader(stream)
            if not isinstance(reader, SeekingReader):  # pragma: no cover - files are seekable
                raise CatalogError(f"{self.store / path}: store file is not seekable")
            found = self._open[path] = (stream, reader)
        return found[1]

    @property
    def readers(self) -> dict[str, SeekingReader]:
        return {path: reader for path, (_, reader) in self._open.items()}

    def messages(
        self,
        path: str,
        topic: str,
        start_ns: int | None = None,
        end_ns: int | None = None,
        reverse: bool = False,
    ) -> Iterator[tuple[Schema | None, Channel, Message]]:
        """The topic's messages with log_time in [start_ns, end_ns), in log-time order."""
        reader = self.reader(path)
        try:
            yield from reader.iter_messages(
                topics=[topic],
                starting_at=start_ns,
                ending_before=end_ns,
                log_time_order=True,
                reverse=reverse,
            )
        except CatalogError:
            raise
        except Exception as err:  # the mcap library raises many kinds for a damaged file
            raise CatalogError(f"{self.store / path}: cannot read store file: {err}") from None

    def indexed(
        self, path: str, topic: str, start_ns: int, end_ns: int
    ) -> Iterator[tuple[Schema | None, Channel, int, bytes]]:
        """(schema, channel, log_time, data) of the topic's messages with log_time in
        [start_ns, end_ns], in file order, reading only those: the chunk index says which
        chunks overlap, their message index where each message lies. An uncompressed chunk
        is not read at all beyond those messages (a video file's chunks are mostly
        uncompressed: access units do not compress). Faster than ``iter_messages`` for a
        few messages, which parses every record of every overlapping chunk in Python.
        """
        reader = self.reader(path)
        try:
            summary = reader.get_summary()
            if summary is None:
                raise ValueError("no summary section")
            channels = [c for c in summary.channels.values() if c.topic == topic]
            chunks = sorted(
                (
                    ix
                    for ix in summary.chunk_indexes
                    if ix.message_start_time <= end_ns and ix.message_end_time >= start_ns
                ),
                key=lambda ix: ix.chunk_start_offset,
            )
            stream = self._open[path][0]
            for chunk in chunks:
                wanted: list[tuple[int, int, Channel]] = []  # offset, log_time, channel
                for channel in channels:
                    at = chunk.message_index_offsets.get(channel.id)
                    if at is None:
                        continue
                    for log_time, offset in _index_entries(stream, at):
                        if start_ns <= log_time <= end_ns:
                            wanted.append((offset, log_time, channel))
                if not wanted:
                    continue
                wanted.sort(key=lambda w: w[0])
                for _, log_time, channel, data in _chunk_messages(stream, chunk, wanted):
                    schema = summary.schemas.get(channel.schema_id)
                    yield schema, channel, log_time, data
        except CatalogError:
            raise
        except Exception as err:  # a damaged file raises many kinds
            raise CatalogError(f"{self.store / path}: cannot read store file: {err}") from None

    def call(self, path: str, what: Callable[[SeekingReader], _T]) -> _T:
        """``what(reader)`` with read errors turned into a CatalogError naming the file."""
        reader = self.reader(path)
        try:
            return what(reader)
        except Exception as err:
            raise CatalogError(f"{self.store / path}: cannot read store file: {err}") from None


def _index_entries(stream: IO[bytes], at: int) -> list[tuple[int, int]]:
    """The (log_time, offset) entries of the MessageIndex record at file offset ``at``."""
    stream.seek(at)
    opcode, length = _RECORD_HEAD.unpack(stream.read(_RECORD_HEAD.size))
    body = stream.read(length)
    if opcode != _OP_MESSAGE_INDEX or len(body) != length:
        raise ValueError(f"no message index at offset {at}")
    (size,) = struct.unpack_from("<I", body, 2)
    return list(_INDEX_ENTRY.iter_unpack(body[6 : 6 + size]))


def _chunk_messages(
    stream: IO[bytes], chunk: ChunkIndex, wanted: list[tuple[int, int, Channel]]
) -> Iterator[tuple[int, int, Channel, bytes]]:
    """(offset, log_time, channel, data) of the wanted messages of one chunk (by offset)."""
    stream.seek(chunk.chunk_start_offset + _RECORD_HEAD.size)
    head = stream.read(_CHUNK_TIMES.size)
    *_, compression_len = _CHUNK_TIMES.unpack(head)
    records_at = chunk.chunk_start_offset + _RECORD_HEAD.size + _CHUNK_TIMES.size
    records_at += compression_len + 8  # the compression name, the records' length prefix
    if chunk.compression == "":
        read = _reader_at(stream, records_at)
    else:
        stream.seek(records_at)
        records = _decompress(chunk, stream.read(chunk.compressed_size))
        read = _reader_in(records)
    for offset, log_time, channel in wanted:
        opcode, length = _RECORD_HEAD.unpack(read(offset, _RECORD_HEAD.size))
        body = read(offset + _RECORD_HEAD.size, length)
        if opcode != _OP_MESSAGE or len(body) != length:
            raise ValueError(f"no message at chunk offset {offset}")
        channel_id, _, stamp, _ = _MESSAGE_HEAD.unpack_from(body)
        if channel_id != channel.id or stamp != log_time:
            raise ValueError(f"the message index disagrees with the message at {offset}")
        yield offset, log_time, channel, body[_MESSAGE_HEAD.size :]


def _reader_at(stream: IO[bytes], base: int) -> Callable[[int, int], bytes]:
    def read(offset: int, size: int) -> bytes:
        stream.seek(base + offset)
        return stream.read(size)

    return read


def _reader_in(records: bytes) -> Callable[[int, int], bytes]:
    def read(offset: int, size: int) -> bytes:
        return records[offset : offset + size]

    return read


def _decompress(chunk: ChunkIndex, data: bytes) -> bytes:
    if chunk.compression == "zstd":
        import zstandard

        out_size = chunk.uncompressed_size
        return zstandard.ZstdDecompressor().decompress(data, max_output_size=out_size)
    if chunk.compression == "lz4":
        import lz4.frame

        out: bytes = lz4.frame.decompress(data)
        return out
    raise ValueError(f"unsupported chunk compression {chunk.compression!r}")
