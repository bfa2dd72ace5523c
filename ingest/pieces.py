"""Inputs read in pieces: what the worker processes of ``ingest.parallel`` need of a reader.

A *piece* is a part of one input file that can be read on its own and whose time range and
contents its index states without reading it: an MCAP chunk (its chunk index entry), a
ROS 1 bag chunk (its chunk info). Workers each read the pieces that overlap their share of
the drive's output files, so a reader that can hand out pieces lets a drive of that format
be ingested by several processes.

The contract, which ``ingest.parallel`` relies on for output identical to one process:

- ``pieces()`` lists every piece in the order the reader's own ``messages()`` reads them,
  sorted by ``(start_ns, offset)``;
- ``start_ns`` and ``end_ns`` are the smallest and largest log time of the piece's messages
  (what its index says: a file whose index disagrees with its data is caught by the workers
  and the drive read by one process instead);
- ``messages_in(pieces, channels, owned)`` yields, in the order ``messages()`` would (log
  time, then piece order, then record order), the messages of ``pieces`` (a subsequence of
  ``pieces()``) on the channel ids in ``channels`` (None: all); problems, recorded
  disorder and undefined channels found while reading are kept only for the pieces
  ``owned`` accepts, so that processes sharing a file count each piece once. Reading all
  pieces with ``channels=None`` and ``owned`` always true is ``messages()`` exactly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from drivecat.ingest.source_types import Channel, ProblemKind, RawMessage, ReadProblem


@dataclass(frozen=True)
class Piece:
    """One part of an input that is read on its own (see the module's contract)."""

    offset: int  # where it starts in its file: its identity within the file
    start_ns: int  # smallest log time of its messages
    end_ns: int  # largest log time of its messages
    size: int  # bytes of its records, uncompressed
    counts: Mapping[int, int]  # channel id -> messages in the piece
    compression: str = ""  # how it is stored ("", "zstd", "lz4", "bz2"): what reading costs


class PieceSource(Protocol):
    """A reader that hands out pieces (``McapSource`` of an indexed file, ...). What
    ``messages_in`` finds of the pieces it owns is kept for the pass to gather:
    ``piece_problems`` as (piece offset, problem), and ``index_disagrees``, the offsets of
    those whose messages do not span exactly the times its index states (or that could
    not be read)."""

    path: Path
    problems: list[ReadProblem]
    out_of_order: Counter[str]
    piece_problems: list[tuple[int, ReadProblem]]
    index_disagrees: list[int]

    def pieces(self) -> list[Piece]: ...

    def channel_topics(self) -> dict[int, str]: ...

    def declared_channels(self) -> list[Channel]: ...

    def messages_in(
        self,
        pieces: Sequence[Piece],
        channels: frozenset[int] | None,
        owned: Callable[[Piece], bool],
    ) -> Iterator[RawMessage]: ...

    @property
    def unknown(self) -> dict[int, list[int]]:
        """Messages on undefined channel ids read so far: id -> [messages, bytes]."""
        ...

    def note_unknown(self, tallies: dict[int, list[int]]) -> None:
        """One UNKNOWN_CHANNEL problem per undefined channel id: [messages, bytes]."""
        ...


class UnknownTally:
    """The tally of messages on ids the input does not define, which every piece reader
    keeps (``unknown``) and turns into problems (``note_unknown``): a worker hands its
    tallies to the pass, which notes them once for the whole file. ``UNKNOWN`` words the
    problem (``{count}`` and ``{id}`` are filled in)."""

    UNKNOWN = "{count} messages on undefined channel id {id} skipped"
    path: Path
    problems: list[ReadProblem]
    _unknown: dict[int, list[int]]  # id -> [messages, bytes]

    @property
    def unknown(self) -> dict[int, list[int]]:
        """Messages on undefined ids read so far: id -> [messages, bytes] (a copy)."""
        return {key: list(v) for key, v in self._unknown.items()}

    def _whole_read(self, messages: Iterator[RawMessage]) -> Iterator[RawMessage]:
        """``messages``, a read of the whole input (``messages()``), then what it tallied
        noted as problems."""
        yield from messages
        self.note_unknown(self._unknown)
        self._unknown.clear()

    def note_unknown(self, tallies: dict[int, list[int]]) -> None:
        """One UNKNOWN_CHANNEL problem per undefined id: [messages, bytes] skipped on it."""
        for key, (count, size) in sorted(tallies.items()):
            detail = self.UNKNOWN.format(count=count, id=key)
            self.problems.append(
                ReadProblem(self.path, ProblemKind.UNKNOWN_CHANNEL, detail, size, None, count)
            )


__all__ = ["Piece", "PieceSource", "UnknownTally"]
