"""The gap rule: real dropouts are found, bursts and jitter are not (docs/quality.md)."""

from __future__ import annotations

import random
from array import array

import pytest
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


def _all_at_once(topic: str, times: list[int]) -> TopicStats:
    stats = TopicStats(topic)
    for k, t in enumerate(times):
        stats.add(t, k % 7 + 1)
    stats.finish()
    return stats


@pytest.mark.parametrize("seed", range(40))
def test_parts_appended_in_order_give_the_statistics_of_the_whole(seed: int) -> None:
    # bursts, pauses over the floor, duplicates and late messages, cut anywhere: the
    # candidate rule depends on the period so far, which a part alone does not know
    rng = random.Random(seed)
    times, t = [], 1_000_000_000
    for _ in range(rng.randint(1, 400)):
        t += rng.choice([0, 1_000_000, 20_000_000, 600_000_000, 3_000_000_000, -5_000_000])
        times.append(max(t, 0))
    cuts = sorted(rng.sample(range(len(times) + 1), min(rng.randint(0, 5), len(times) + 1)))
    pieces = [times[a:b] for a, b in zip([0, *cuts], [*cuts, len(times)], strict=True)]
    whole = TopicStats("/t")
    k = 0
    for piece in pieces:
        part = TopicStats.part("/t")
        for t in piece:
            part.add(t, k % 7 + 1)
            k += 1
        whole.then(part)
    whole.finish()
    expected = _all_at_once("/t", times)
    for name in ("count", "bytes", "start_ns", "end_ns", "last_ns", "out_of_order",
                 "duplicates", "first_out_of_order_ns", "first_duplicate_ns", "gaps"):  # fmt: skip
        assert getattr(whole, name) == getattr(expected, name), name


_FIELDS = ("count", "bytes", "start_ns", "end_ns", "last_ns", "first_ns", "out_of_order",
           "duplicates", "first_out_of_order_ns", "first_duplicate_ns", "_pending")  # fmt: skip


@pytest.mark.parametrize("seed", range(30))
def test_a_part_made_at_once_is_the_part_made_message_by_message(seed: int) -> None:
    rng = random.Random(seed)
    t = rng.choice([0, 1_000_000_000, (1 << 63) - 10**12, (1 << 64) - 10**13])
    times = []
    for _ in range(rng.randint(0, 300)):
        t = max(t + rng.choice([0, 2_000_000, 700_000_000, 4_000_000_000, -9_000_000]), 0)
        times.append(min(t, (1 << 64) - 1))
    one_by_one = TopicStats.part("/t")
    for k, x in enumerate(times):
        one_by_one.add(x, k % 5)
    size = sum(k % 5 for k in range(len(times)))
    for gathered in (times, array("Q", times)):  # a list, or the array a worker gathers
        at_once = TopicStats.part_of("/t", gathered, size)
        for name in _FIELDS:
            assert getattr(at_once, name) == getattr(one_by_one, name), name
