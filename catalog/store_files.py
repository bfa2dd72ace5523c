"""Reading store files: each opened once with the mcap library's seeking reader.

Shared by frame access (:mod:`catalog.frames`) and both export formats.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, TypeVar

from mcap.reader import SeekingReader, make_reader
from mcap.records import Channel, Message, Schema

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

    def call(self, path: str, what: Callable[[SeekingReader], _T]) -> _T:
        """``what(reader)`` with read errors turned into a CatalogError naming the file."""
        reader = self.reader(path)
        try:
            return what(reader)
        except Exception as err:
            raise CatalogError(f"{self.store / path}: cannot read store file: {err}") from None
