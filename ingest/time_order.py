"""Raw messages put in log-time order: the batches of one file, and several sources merged.

``merge`` interleaves whole sources by log time, as a stream. Within one file, a batch is
a chunk's messages (or a run of un-chunked ones) with its smallest log time and whether it
is already sorted. ``in_time_order`` is exact when each batch comes with a true
lower bound on the log times of every batch after it (see there).
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, pairwise
from typing import Protocol

from drivecat.ingest.source_types import RawMessage, by_log_time


class Stream(Protocol):
    """What ``merge`` needs of a source: its messages in log-time order, and a lower bound
    on their log times when known ahead (None: not known)."""

    @property
    def start_bound(self) -> int | None: ...

    def messages(self) -> Iterator[RawMessage]: ...


Batch = tuple[int, list[RawMessage], bool]  # (smallest log time, messages, already sorted)
NEVER = 1 << 64  # later than any log time


def in_time_order(batches: Iterable[tuple[Batch, int]]) -> Iterator[RawMessage]:
    """Yield the messages of ``batches`` by log time, equal times in batch order. Each batch
    comes with the smallest log time of every batch after it (its ``next_start``).

    Exact whenever that bound holds: an indexed file read in chunk-index order, or a
    recorder that wrote chunks as time went on. Only batches that overlap in time are held.
    A batch that starts before messages already yielded is merged in as well as it can be.

    A batch is sorted on its own (stably: equal times keep record order); its part before
    ``next_start`` can come out at once, merged with what earlier batches left waiting
    there; only its part at or after ``next_start`` waits, in a heap. So a drive whose
    chunks overlap a little (a recorder that interleaves topics) costs a sort per chunk,
    not a heap push and pop per message.
    """
    pending: list[tuple[int, int, RawMessage]] = []  # heap: (log time, arrival, message)
    counter = 0
    for (_, msgs, is_sorted), next_start in batches:
        if not msgs:
            continue
        if not is_sorted:
            msgs = sorted(msgs, key=by_log_time)
        cut = len(msgs)
        if msgs[-1][1] >= next_start:
            cut = bisect_left(msgs, next_start, key=by_log_time)
        if pending and pending[0][0] < next_start:
            early = []
            while pending and pending[0][0] < next_start:
                early.append(heapq.heappop(pending)[2])
            early.extend(msgs[:cut])
            early.sort(key=by_log_time)  # stable: what waited came from earlier batches
            yield from early
        elif cut == len(msgs):
            yield from msgs  # the common case: a chunk that ends before the next one starts
        else:
            yield from msgs[:cut]
        for m in msgs[cut:]:
            heapq.heappush(pending, (m[1], counter, m))
            counter += 1
    while pending:
        yield heapq.heappop(pending)[2]


def with_next_start(batches: Iterable[Batch]) -> Iterator[tuple[Batch, int]]:
    """Pair each batch with the start of the one after it (one batch of lookahead)."""
    end: Batch = (NEVER, [], True)
    nonempty = (b for b in batches if b[1])
    for batch, after in pairwise(chain(nonempty, (end,))):
        yield batch, after[0]


def batch_of(msgs: list[RawMessage]) -> Batch:
    times = [m[1] for m in msgs]
    is_sorted = all(a <= b for a, b in pairwise(times))
    return (times[0] if is_sorted else min(times)), msgs, is_sorted


def last_time(batch: Batch, current: int | None) -> int | None:
    """The largest log time seen, given the one before ``batch``."""
    msgs = batch[1]
    if not msgs:
        return current
    top = msgs[-1][1] if batch[2] else max(m[1] for m in msgs)
    return top if current is None else max(top, current)


def merge(sources: Sequence[Stream]) -> Iterator[RawMessage]:
    """Interleave the sources' streams by ``log_time_ns``; equal times keep source order.

    Streams, holding one pending message per source being read. A source whose first log
    time is known ahead (``start_bound``: an indexed MCAP file) is only opened once the
    stream reaches that time, so recordings that follow one another are read one after the
    other and memory does not grow with their number.
    """
    if len(sources) == 1:
        return sources[0].messages()
    return _merge(sources)


def _merge(sources: Sequence[Stream]) -> Iterator[RawMessage]:
    # waiting: (start, index), latest first, so the next to open is at the end
    waiting = sorted(
        ((_start_bound(s), i) for i, s in enumerate(sources)), key=lambda w: (-w[0], -w[1])
    )
    # one entry per open source: (log time, source index, message, the rest of its stream)
    heap: list[tuple[int, int, RawMessage, Iterator[RawMessage]]] = []
    while True:
        # open every source that may hold a message at or before the next one to yield
        while waiting and (not heap or waiting[-1][0] <= heap[0][0]):
            i = waiting.pop()[1]
            stream = iter(sources[i].messages())
            first = next(stream, None)
            if first is not None:
                heapq.heappush(heap, (first[1], i, first, stream))
        if not heap:
            return
        if len(heap) == 1:  # one source alone, until the next one's start
            _, i, message, stream = heap[0]
            yield message
            if not waiting:
                yield from stream
                return
            limit = waiting[-1][0]
            for message in stream:
                if message[1] >= limit:
                    heap[0] = (message[1], i, message, stream)
                    break
                yield message
            else:
                heap.clear()
            continue
        _, i, message, stream = heap[0]
        yield message
        following = next(stream, None)
        if following is None:
            heapq.heappop(heap)
        else:
            heapq.heapreplace(heap, (following[1], i, following, stream))


def _start_bound(source: Stream) -> int:
    """No message of ``source`` is older than this (-1: not known ahead)."""
    bound = source.start_bound
    return -1 if bound is None else bound
