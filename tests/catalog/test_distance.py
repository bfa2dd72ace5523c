"""PSI, Jensen-Shannon, the chi-square gate and the number bins, against hand-computed values."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivecat.catalog import distance


def test_psi_matches_a_hand_computed_case() -> None:
    # shares 0.5/0.3/0.2 against 0.3/0.3/0.4, no smoothing:
    # (0.3-0.5)*ln(0.3/0.5) + 0 + (0.4-0.2)*ln(0.4/0.2) = 0.2*ln(5/3) + 0.2*ln(2)
    expected = 0.2 * math.log(5 / 3) + 0.2 * math.log(2)
    assert distance.psi([50, 30, 20], [30, 30, 40], smoothing=0) == pytest.approx(expected)
    assert expected == pytest.approx(0.240795, abs=1e-6)


def test_psi_smoothing_keeps_an_empty_bin_finite() -> None:
    # counts + 0.5: baseline 4.5/0.5 -> 0.9/0.1, current 0.5/4.5 -> 0.1/0.9
    expected = (0.1 - 0.9) * math.log(0.1 / 0.9) + (0.9 - 0.1) * math.log(0.9 / 0.1)
    assert distance.psi([4, 0], [0, 4]) == pytest.approx(expected)


def test_js_distance_matches_a_hand_computed_case() -> None:
    # P = (1, 0), Q = (0.5, 0.5), M = (0.75, 0.25), base 2:
    # KL(P||M) = log2(4/3); KL(Q||M) = 0.5*log2(2/3) + 0.5*log2(2)
    kl_p = math.log2(4 / 3)
    kl_q = 0.5 * math.log2(2 / 3) + 0.5
    assert distance.js_distance([10, 0], [5, 5]) == pytest.approx(math.sqrt((kl_p + kl_q) / 2))
    assert distance.js_distance([3, 0], [0, 7]) == pytest.approx(1.0)


counts = st.lists(st.integers(0, 1000), min_size=2, max_size=8).filter(lambda c: sum(c) > 0)


@given(counts)
def test_a_distribution_has_no_distance_to_itself(c: list[int]) -> None:
    assert distance.psi(c, c) == pytest.approx(0.0, abs=1e-12)
    assert distance.js_distance(c, c) == pytest.approx(0.0, abs=1e-6)
    assert distance.p_value(c, c) == pytest.approx(1.0)


@given(counts, counts)
def test_distances_are_bounded_and_symmetric(a: list[int], b: list[int]) -> None:
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    if sum(a) == 0 or sum(b) == 0:
        return
    assert distance.psi(a, b) >= 0
    assert distance.psi(a, b) == pytest.approx(distance.psi(b, a))
    assert 0 <= distance.js_distance(a, b) <= 1 + 1e-9
    assert 0 <= distance.p_value(a, b) <= 1


def test_the_chi_square_gate() -> None:
    # Six against six, fully separated: Yates' chi2 = 4 * (3 - 0.5)^2 / 3 = 8.33, p = 0.0039.
    assert distance.p_value([6, 0], [0, 6]) == pytest.approx(0.003892, abs=1e-5)
    # 3 of 4 against 2 of 4 is nothing.
    assert distance.p_value([3, 1], [2, 2]) > 0.5
    assert distance.p_value([5, 0, 0], [0, 0, 0]) == 1.0


def test_a_nearly_constant_number_is_one_bin() -> None:
    rates = [9.98, 9.99, 10.0, 10.01, 10.02]
    edges = distance.edges(rates)
    assert len(edges) == 2  # below, the baseline's own range, above
    assert edges[0] < 9.98 and edges[1] > 10.02
    assert edges[0] == pytest.approx(9.98 - 0.5) and edges[1] == pytest.approx(10.02 + 0.5)


def test_spread_numbers_keep_their_deciles() -> None:
    values = [float(v) for v in range(0, 101, 10)]  # deciles 0, 10, ..., 100; median 50
    edges = distance.edges(values)  # width 2.5: every inner decile stays
    assert edges == [-2.5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 102.5]
    assert distance.bin_labels([1.5, 2.0]) == ["<1.5", "1.5-2", ">=2"]
