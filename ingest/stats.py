"""Per-topic statistics gathered in the pass: count, bytes, rate, gaps, order problems.

The gap rule (docs/quality.md): an interval between two messages of a topic is a gap when
it is longer than both ``GAP_FACTOR`` times the topic's typical period and ``GAP_FLOOR_NS``.
The typical period is the topic's overall one, its duration over its intervals
(``(end - start) / (count - 1)``), not the median interval: a bursty sensor (a 50 Hz IMU
that sends five messages within a millisecond, then pauses) has a median interval far
below its real period, and would have every pause called a gap. The floor keeps jitter of
fast topics (``/tf`` from many publishers) from ever counting: no person calls half a
second of silence on a sensor a dropout worth a row.

Memory stays bounded however long the drive: only intervals longer than the rule with the
period known so far are kept as candidates; ``finish`` applies the rule with the final
period. (A topic that speeds up a lot during the drive may therefore miss a gap that the
final period alone would have found; one that slows down loses nothing.)

Statistics gathered in parts (worker processes each reading a share of the drive's time
windows) add up to those of the whole: a part made with ``TopicStats.part`` keeps every
interval over the floor with what the rule needs to judge it once the parts before it are
known, and ``then`` appends a part to the statistics of everything before it, exactly as
if its messages had been added one by one.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

GAP_FACTOR = 5.0
GAP_FLOOR_NS = 500_000_000
_INT64_LIMIT = 1 << 63


@dataclass(frozen=True)
class Gap:
    start_ns: int
    end_ns: int


def gap_threshold_ns(typical_period_ns: float) -> float:
    """The longest interval that is not a gap, for a topic of this typical period."""
    return max(GAP_FACTOR * typical_period_ns, GAP_FLOOR_NS)


@dataclass
class TopicStats:
    """Running statistics of one topic. Feed ``add`` every message in arrival order, then
    call ``finish`` once before reading ``gaps``."""

    topic: str
    count: int = 0
    bytes: int = 0
    start_ns: int | None = None
    end_ns: int = 0
    last_ns: int | None = None
    out_of_order: int = 0
    duplicates: int = 0
    first_out_of_order_ns: int | None = None
    first_duplicate_ns: int | None = None
    gaps: list[Gap] = field(default_factory=list)
    _candidates: list[Gap] = field(default_factory=list)
    first_ns: int | None = None  # the log time of the first message added
    # A part (``part``): every interval over the floor, as (last, log time, and the part's
    # count, start and end once that message is in), for ``then`` to judge.
    _pending: list[tuple[int, int, int, int, int]] | None = None

    @classmethod
    def part(cls, topic: str) -> TopicStats:
        """Statistics of a part of the topic's messages, to be appended with ``then``."""
        return cls(topic, _pending=[])

    @classmethod
    def part_of(cls, topic: str, times: Sequence[int], size: int) -> TopicStats:
        """The ``part`` that ``add`` of each of ``times`` in turn (``size`` bytes in all)
        makes, computed over the whole array at once (a worker's unit of one window)."""
        stats = cls.part(topic)
        if not len(times):
            return stats
        if isinstance(times, array):  # unsigned 64-bit, as a worker gathers them
            raw = np.frombuffer(times, dtype=np.uint64)
            t = raw.astype(np.int64) if int(raw.max()) < _INT64_LIMIT else None
        else:
            t = np.asarray(times, dtype=np.int64) if max(times) < _INT64_LIMIT else None
        if t is None:  # times past 2**63 ns: one by one, in Python's integers
            for log_time in times:
                stats.add(log_time, 0)
            stats.bytes = size
            return stats
        stats.count, stats.bytes = len(t), size
        stats.first_ns, stats.last_ns = int(t[0]), int(t[-1])
        stats.start_ns, stats.end_ns = int(t.min()), int(t.max())
        step = np.diff(t)
        late = np.flatnonzero(step < 0)
        same = np.flatnonzero(step == 0)
        stats.out_of_order, stats.duplicates = len(late), len(same)
        if len(late):
            stats.first_out_of_order_ns = int(t[late[0] + 1])
        if len(same):
            stats.first_duplicate_ns = int(t[same[0] + 1])
        over = np.flatnonzero(step > GAP_FLOOR_NS)
        if len(over):
            low, high = np.minimum.accumulate(t), np.maximum.accumulate(t)
            pending = stats._pending
            assert pending is not None
            for i in over.tolist():  # the interval t[i] -> t[i + 1], message i + 2
                pending.append((int(t[i]), int(t[i + 1]), i + 2, int(low[i + 1]), int(high[i + 1])))
        return stats

    def add(self, log_time_ns: int, size: int) -> None:
        if self.first_ns is None:
            self.first_ns = log_time_ns
        self.count += 1
        self.bytes += size
        if self.start_ns is None or log_time_ns < self.start_ns:
            self.start_ns = log_time_ns
        if log_time_ns > self.end_ns:
            self.end_ns = log_time_ns
        last = self.last_ns
        self.last_ns = log_time_ns
        if last is None:
            return
        if log_time_ns < last:
            self.out_of_order += 1
            if self.first_out_of_order_ns is None:
                self.first_out_of_order_ns = log_time_ns
            return
        if log_time_ns == last:
            self.duplicates += 1
            if self.first_duplicate_ns is None:
                self.first_duplicate_ns = log_time_ns
            return
        interval = log_time_ns - last
        if interval <= GAP_FLOOR_NS:
            return
        if self._pending is not None:
            assert self.start_ns is not None
            self._pending.append((last, log_time_ns, self.count, self.start_ns, self.end_ns))
        elif interval > gap_threshold_ns(self._period_so_far()):
            self._candidates.append(Gap(last, log_time_ns))

    def then(self, part: TopicStats) -> None:
        """Append ``part`` (made with ``part``, of the messages that follow all of this
        one's): the statistics become those of adding every message of both, in order."""
        assert part._pending is not None, "only a part made with TopicStats.part is appended"
        if part.first_ns is None or part.start_ns is None:
            return
        before, start_before, end_before = self.count, self.start_ns, self.end_ns
        if self.last_ns is None:  # nothing before: the part's first message opens the topic
            self.first_ns = part.first_ns
        else:  # the interval from the last message before to the part's first
            self._step(self.last_ns, part.first_ns, before + 1, start_before, end_before)
        for last, t, count, start, end in part._pending:
            self._judge(last, t, before + count, start_before, end_before, start, end)
        self.count += part.count
        self.bytes += part.bytes
        self.start_ns = part.start_ns if start_before is None else min(start_before, part.start_ns)
        self.end_ns = max(end_before, part.end_ns)
        self.last_ns = part.last_ns
        self.out_of_order += part.out_of_order
        self.duplicates += part.duplicates
        if self.first_out_of_order_ns is None:
            self.first_out_of_order_ns = part.first_out_of_order_ns
        if self.first_duplicate_ns is None:
            self.first_duplicate_ns = part.first_duplicate_ns

    def _step(self, last: int, t: int, count: int, start: int | None, end: int) -> None:
        """What ``add`` does for the interval from ``last`` to ``t``, the ``count``-th
        message, after messages spanning ``start``..``end``."""
        if t < last:
            self.out_of_order += 1
            if self.first_out_of_order_ns is None:
                self.first_out_of_order_ns = t
        elif t == last:
            self.duplicates += 1
            if self.first_duplicate_ns is None:
                self.first_duplicate_ns = t
        elif t - last > GAP_FLOOR_NS:
            self._judge(last, t, count, start, end, t, t)

    def _judge(
        self, last: int, t: int, count: int, start: int | None, end: int, s: int, e: int
    ) -> None:
        """Keep the interval ``last``..``t`` as a candidate if ``add`` would have: the
        period so far over the ``count`` messages spanning the earlier ``start``..``end``
        and the part's own ``s``..``e`` (both including ``t``)."""
        lo = s if start is None else min(start, s)
        period = (max(end, e) - lo) / max(count - 1, 1)
        if t - last > gap_threshold_ns(period):
            self._candidates.append(Gap(last, t))

    def _period_so_far(self) -> float:
        assert self.start_ns is not None  # called after a second message
        return (self.end_ns - self.start_ns) / max(self.count - 1, 1)

    @property
    def typical_period_ns(self) -> float | None:
        """The topic's overall period: its duration over its intervals (None under 2 messages)."""
        if self.start_ns is None or self.count < 2 or self.end_ns <= self.start_ns:
            return None
        return (self.end_ns - self.start_ns) / (self.count - 1)

    def finish(self) -> None:
        """Settle the gaps with the topic's final typical period (idempotent)."""
        period = self.typical_period_ns
        if period is None:
            self.gaps = []
            return
        limit = gap_threshold_ns(period)
        self.gaps = [g for g in self._candidates if g.end_ns - g.start_ns > limit]

    @property
    def rate_hz(self) -> float | None:
        period = self.typical_period_ns
        return None if period is None else 1e9 / period
