"""Reading store files: each opened once, read with the mcap library's seeking reader or,
for a few messages by their index, with :mod:`catalog.mcap_index`.

Shared by frame access (:mod:`catalog.frames`) and both export formats.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, TypeVar

import numpy as np
from mcap.reader import SeekingReader, make_reader
from mcap.records import Channel, ChunkIndex, Message, Schema

from drivecat.catalog import mcap_index
from drivecat.catalog.errors import CatalogError
from drivecat.catalog.store import file_in_drive

_T = TypeVar("_T")


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
        self._streams: dict[str, IO[bytes]] = {}
        self._readers: dict[str, SeekingReader] = {}

    def __enter__(self) -> StoreFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for stream in self._streams.values():
            stream.close()
        self._streams.clear()
        self._readers.clear()

    def stream(self, path: str) -> IO[bytes]:
        """The open file (the path checked to lie in its drive's folder)."""
        stream = self._streams.get(path)
        if stream is None:
            full = store_file(self.store, path)
            try:
                stream = open(full, "rb")  # noqa: SIM115 - closed by close()
            except OSError as err:
                raise CatalogError(
                    f"{self.store / path}: cannot open store file: {err.strerror}"
                ) from None
            self._streams[path] = stream
        return stream

    def reader(self, path: str) -> SeekingReader:
        found = self._readers.get(path)
        if found is None:
            made = make_reader(self.stream(path))
            if not isinstance(made, SeekingReader):  # pragma: no cover - files are seekable
                raise CatalogError(f"{self.store / path}: store file is not seekable")
            found = self._readers[path] = made
        return found

    @property
    def readers(self) -> dict[str, SeekingReader]:
        return dict(self._readers)

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
        is read only over the span of those messages, in one read (a video file's chunks
        are mostly uncompressed: access units do not compress). Faster than
        ``iter_messages`` for a few messages, which parses every record of every
        overlapping chunk in Python; the file's summary is parsed once per process.
        """
        stream = self.stream(path)
        try:
            fd = stream.fileno()
            summary = _summary(fd)
            channels = {c.id: c for c in summary.channels.values() if c.topic == topic}
            chunks = sorted(
                (
                    ix
                    for ix in summary.chunk_indexes
                    if ix.message_start_time <= end_ns and ix.message_end_time >= start_ns
                ),
                key=lambda ix: ix.chunk_start_offset,
            )
            for chunk in chunks:
                for cid, log_time, data in _chunk_messages(fd, chunk, channels, start_ns, end_ns):
                    channel = channels[cid]
                    yield summary.schemas.get(channel.schema_id), channel, log_time, data
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


# Summaries read by ``indexed``, by file identity (device, inode, size, mtime): a store file
# is never changed in place (it is written under a temporary name, then renamed), so an
# entry holds while the file it was read from is the one open.
_SUMMARIES: dict[tuple[int, int, int, int], mcap_index.FileSummary] = {}
_SUMMARIES_MAX = 64


def _summary(fd: int) -> mcap_index.FileSummary:
    st = os.fstat(fd)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    found = _SUMMARIES.get(key)
    if found is None:
        found = mcap_index.read_summary(lambda at, size: os.pread(fd, size, at), st.st_size)
        if len(_SUMMARIES) >= _SUMMARIES_MAX:
            _SUMMARIES.pop(next(iter(_SUMMARIES)))
        _SUMMARIES[key] = found
    return found


def _chunk_messages(
    fd: int, chunk: ChunkIndex, channels: dict[int, Channel], start_ns: int, end_ns: int
) -> list[tuple[int, int, bytes]]:
    """(channel id, log_time, data) of one chunk's messages of ``channels`` with log_time in
    [start_ns, end_ns], in file order, checked against the message index."""
    ids = [cid for cid in channels if cid in chunk.message_index_offsets]
    if not ids:
        return []
    # The chunk's message indexes follow it: one read for all of them.
    base = chunk.chunk_start_offset + chunk.chunk_length
    indexes = os.pread(fd, chunk.message_index_length, base)
    found = [
        (cid, mcap_index.index_entries(indexes, base, chunk.message_index_offsets[cid]))
        for cid in ids
    ]
    times = np.concatenate([entries["log_time"] for _, entries in found])
    offsets = np.concatenate([entries["offset"] for _, entries in found])
    cids = np.concatenate([np.full(len(entries), cid) for cid, entries in found])
    order = np.argsort(offsets, kind="stable")  # file order
    times, offsets, cids = times[order], offsets[order], cids[order]
    picked = np.flatnonzero((times >= max(start_ns, 0)) & (times <= end_ns))
    if not picked.size:
        return []
    wanted = [(int(offsets[i]), int(times[i]), int(cids[i])) for i in picked]
    records_at = mcap_index.records_offset(chunk)
    if chunk.compression == "":
        # From the first wanted message to the record after the last one (or the end).
        first, after = wanted[0][0], int(picked[-1]) + 1
        stop = int(offsets[after]) if after < offsets.size else chunk.uncompressed_size
        span, span_at = os.pread(fd, stop - first, records_at + first), first
    else:
        span = _decompress(chunk, os.pread(fd, chunk.compressed_size, records_at))
        span_at = 0
    read = mcap_index.messages_in(span, span_at, [offset for offset, _, _ in wanted])
    for (offset, log_time, cid), (channel_id, stamp, _) in zip(wanted, read, strict=True):
        if channel_id != cid or stamp != log_time:
            raise ValueError(f"the message index disagrees with the message at {offset}")
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
