"""The gap rule: real dropouts are found, bursts and jitter are not (docs/quality.md)."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from drivecat.ingest.stats import Gap, TopicStats

MS = 1_000_000
S = 1000 * MS
T0 = 1_781_544_600 * S


def _stats(times: list[int]) -> TopicStats:
    stats = TopicStats("/t")
    for t in times:
        stats.add(t, 10)
    stats.finish()
    return stats


def _bursty_imu(seconds: int, seed: int = 0) -> list[int]:
    """50 Hz on average, sent in bursts: 5 messages within a millisecond, then ~99 ms of
    nothing (as the sailing bag's IMU in ../shared/data/real)."""
    rng = random.Random(seed)
    times, t = [], T0
    for _ in range(seconds * 10):
        times.extend(t + i * 150_000 for i in range(5))
        t += 100 * MS + rng.randint(-30, 30) * MS
    return times


def test_bursts_are_not_gaps() -> None:
    assert _stats(_bursty_imu(60)).gaps == []


def test_a_two_second_dropout_on_a_10hz_topic_is_one_gap() -> None:
    times = [T0 + i * 100 * MS for i in range(300)]
    dropped = [t for t in times if not T0 + 10 * S < t < T0 + 12 * S]
    assert _stats(dropped).gaps == [Gap(T0 + 10 * S, T0 + 12 * S)]


def test_a_dropout_in_a_bursty_topic_is_still_found() -> None:
    times = _bursty_imu(60)
    cut = [t for t in times if not T0 + 20 * S <= t < T0 + 23 * S]
    gaps = _stats(cut).gaps
    assert len(gaps) == 1
    assert gaps[0].start_ns < T0 + 20 * S and gaps[0].end_ns >= T0 + 23 * S


@given(st.lists(st.integers(1, 400 * MS), min_size=2, max_size=300))
def test_jitter_under_half_a_second_is_never_a_gap(intervals: list[int]) -> None:
    times = [T0]
    for dt in intervals:
        times.append(times[-1] + dt)
    assert _stats(times).gaps == []


@given(st.integers(2, 50), st.integers(4, 20))
def test_seconds_of_silence_in_a_steady_topic_are_one_gap(hz: int, missing_s: int) -> None:
    period = S // hz
    before = [T0 + i * period for i in range(hz * 30)]
    resume = before[-1] + missing_s * S
    after = [resume + i * period for i in range(hz * 30)]
    assert _stats(before + after).gaps == [Gap(before[-1], resume)]
