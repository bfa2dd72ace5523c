"""Per-topic statistics gathered in the pass: count, bytes, rate, gaps, order problems.

Memory stays bounded however long the drive: the median period is estimated from the
first ``_WARMUP`` intervals, and only those timestamps are held until it is known.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

_WARMUP = 512
GAP_FACTOR = 3.0


@dataclass(frozen=True)
class Gap:
    start_ns: int
    end_ns: int


@dataclass
class TopicStats:
    """Running statistics of one topic. Feed ``add`` every message in arrival order."""

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
    median_period_ns: float | None = None
    gaps: list[Gap] = field(default_factory=list)
    _warmup: list[int] = field(default_factory=list)

    def add(self, log_time_ns: int, size: int) -> None:
        self.count += 1
        self.bytes += size
        if self.start_ns is None or log_time_ns < self.start_ns:
            self.start_ns = log_time_ns
        if log_time_ns > self.end_ns:
            self.end_ns = log_time_ns
        last = self.last_ns
        self.last_ns = log_time_ns
        if last is None:
            self._warmup.append(log_time_ns)
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
        if self.median_period_ns is None:
            self._warmup.append(log_time_ns)
            if len(self._warmup) > _WARMUP:
                self._settle()
        elif log_time_ns - last > GAP_FACTOR * self.median_period_ns:
            self.gaps.append(Gap(last, log_time_ns))

    def _settle(self) -> None:
        stamps = self._warmup
        periods = [b - a for a, b in zip(stamps, stamps[1:], strict=False) if b > a]
        if periods:
            self.median_period_ns = statistics.median(periods)
            limit = GAP_FACTOR * self.median_period_ns
            self.gaps.extend(
                Gap(a, b) for a, b in zip(stamps, stamps[1:], strict=False) if b - a > limit
            )
        self._warmup = []

    def finish(self) -> None:
        """Settle the median for short topics that never left the warm-up."""
        if self.median_period_ns is None and len(self._warmup) >= 3:
            self._settle()

    @property
    def rate_hz(self) -> float | None:
        if self.start_ns is None or self.count < 2 or self.end_ns <= self.start_ns:
            return None
        return (self.count - 1) * 1e9 / (self.end_ns - self.start_ns)
