"""Clock outliers: the few messages whose ``log_time`` lies far from the rest of the drive.

A recorder that starts before its clock is synced stamps a message at ``log_time`` 0 (or
at seconds since boot); a glitch stamps one in year 2500. Such a message is stored like
any other, but a drive that spans 1970 to 2026 is not what happened: it would make the
drive's start, its segments and its statistics follow one bad stamp (and walking 56 years
of empty segments exhausts memory).

The rule, in the merged log-time order of the stream: a *run* is a stretch of messages with
no interval over ``gap_ns`` between neighbours (``drive_gap_seconds``, default 1800 s).
A run of at most ``max_run`` messages (64) that is separated by more than ``gap_ns`` from
the drive's body, before or after it, is made of clock outliers. A longer run is data: the
body then has a gap (``body_gaps``), which segments do not bridge. A message recorded far
before the body (out of order by more than ``gap_ns``) is an outlier too.

The filter is streaming and holds at most ``max_run`` items: the run it cannot decide on
yet (the first messages of the drive, or those after a jump).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_RUN = 64


@dataclass(frozen=True)
class Release(Generic[T]):
    """An item let through the filter: ``outlier`` if its time is a clock outlier.
    ``gap_before`` is set on the first item of the body after a gap: (last before, first after)."""

    item: T
    log_time_ns: int
    outlier: bool
    gap_before: tuple[int, int] | None = None


@dataclass
class ClockFilter(Generic[T]):
    """Feed ``push`` every message's log time (and anything to carry along) in stream order;
    iterate what it returns; call ``finish`` once at the end and iterate that too."""

    gap_ns: int
    max_run: int = MAX_RUN
    body_start_ns: int | None = None
    body_end_ns: int | None = None
    outliers: int = 0
    body_gaps: list[tuple[int, int]] = field(default_factory=list)
    _run: list[tuple[int, T]] = field(default_factory=list)

    def push(self, log_time_ns: int, item: T) -> Iterator[Release[T]]:
        t = log_time_ns
        if self.body_end_ns is None or self.body_start_ns is None:  # the head
            if self._run and t - self._run[-1][0] > self.gap_ns:
                yield from self._drop_run()
            self._run.append((t, item))
            if len(self._run) > self.max_run:
                yield from self._take_run()
            return
        if self._run:  # after a jump: still undecided
            last = self._run[-1][0]
            if t - last > self.gap_ns:
                yield from self._drop_run()
                self._run.append((t, item))
            elif t < self._run[0][0] and t - self.body_end_ns <= self.gap_ns:
                yield self._body(t, item)  # late for the body, not part of the run
            else:
                self._run.append((t, item))
                if len(self._run) > self.max_run:
                    yield from self._take_run()
            return
        if t < self.body_start_ns - self.gap_ns:
            self.outliers += 1
            yield Release(item, t, True)
        elif t - self.body_end_ns > self.gap_ns:
            self._run.append((t, item))
        else:
            yield self._body(t, item)

    def through(self, log_time_ns: int) -> bool:
        """When ``push`` would let ``log_time_ns`` straight through as body (nothing is
        held, and it lies within the body's reach): record it and return True; the caller
        then treats its item as released, without a Release. Else False: call ``push``.
        The common case, at a fraction of ``push``'s cost."""
        start, end = self.body_start_ns, self.body_end_ns
        if self._run or start is None or end is None:
            return False
        t = log_time_ns
        if t < start - self.gap_ns or t - end > self.gap_ns:
            return False
        if t < start:
            self.body_start_ns = t
        elif t > end:
            self.body_end_ns = t
        return True

    def finish(self) -> Iterator[Release[T]]:
        """What is still held: the body itself for a drive of at most ``max_run`` messages
        (or its last run, if its first ones were far from it), else outliers."""
        if self.body_end_ns is None:
            yield from self._take_run()
        else:
            yield from self._drop_run()

    def _body(self, t: int, item: T, gap: tuple[int, int] | None = None) -> Release[T]:
        if self.body_start_ns is None or t < self.body_start_ns:
            self.body_start_ns = t
        if self.body_end_ns is None or t > self.body_end_ns:
            self.body_end_ns = t
        return Release(item, t, False, gap)

    def _take_run(self) -> Iterator[Release[T]]:
        run, self._run = self._run, []
        gap = None
        if run and self.body_end_ns is not None:
            gap = (self.body_end_ns, run[0][0])
            self.body_gaps.append(gap)
        for i, (t, item) in enumerate(run):
            yield self._body(t, item, gap if i == 0 else None)

    def _drop_run(self) -> Iterator[Release[T]]:
        run, self._run = self._run, []
        self.outliers += len(run)
        for t, item in run:
            yield Release(item, t, True)


__all__ = ["MAX_RUN", "ClockFilter", "Release"]
