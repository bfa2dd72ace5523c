"""Raw messages put in log-time order, batch by batch, holding only batches that overlap.

A batch is a chunk's messages (or a run of un-chunked ones) with its smallest log time and
whether it is already sorted. ``in_time_order`` is exact when each batch comes with a true
lower bound on the log times of every batch after it (see there).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from itertools import chain, pairwise

from drivecat.ingest.source_types import RawMessage

Batch = tuple[int, list[RawMessage], bool]  # (smallest log time, messages, already sorted)
NEVER = 1 << 64  # later than any log time


def in_time_order(batches: Iterable[tuple[Batch, int]]) -> Iterator[RawMessage]:
    """Yield the messages of ``batches`` by log time, equal times in batch order. Each batch
    comes with the smallest log time of every batch after it (its ``next_start``).

    Exact whenever that bound holds: an indexed file read in chunk-index order, or a
    recorder that wrote chunks as time went on. Only batches that overlap in time are held.
    A batch that starts before messages already yielded is merged in as well as it can be.
    """
    pending: list[tuple[int, int, RawMessage]] = []
    counter = 0
    for (_, msgs, is_sorted), next_start in batches:
        if not msgs:
            continue
        if not pending and is_sorted and msgs[-1][1] <= next_start:
            yield from msgs  # the common case: a sorted chunk that ends before the next one
            continue
        for m in msgs:
            heapq.heappush(pending, (m[1], counter, m))
            counter += 1
        while pending and pending[0][0] < next_start:
            yield heapq.heappop(pending)[2]
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
