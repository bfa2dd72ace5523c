"""catalog.agreement against a case computed by hand, sklearn and the krippendorff package."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score

from drivecat.catalog.agreement import NOTHING, Box, cohen_kappa, compare, iou, nominal_alpha

A = {
    "1.png": [
        Box("pedestrian", (0, 0, 10, 10)),
        Box("pedestrian", (20, 0, 30, 10)),
        Box("vehicle", (50, 50, 70, 70)),
    ],
    "2.png": [Box("vehicle", (0, 0, 10, 20))],
}
B = {
    "1.png": [
        Box("pedestrian", (0, 0, 10, 10)),  # IoU 1
        Box("pedestrian", (22, 0, 32, 10)),  # overlap 8x10 = 80, union 120: IoU 2/3
        Box("cyclist", (50, 50, 70, 70)),  # A's vehicle, another class
    ],
}


def test_hand_computed_case() -> None:
    report = compare(A, B, ["1.png", "2.png"], 0.5, ("a", "b"))
    by = {c.cls: c for c in report.classes}
    ped, car, cyc = by["pedestrian"], by["vehicle"], by["cyclist"]
    assert (ped.boxes_a, ped.boxes_b, ped.matched, ped.f1) == (2, 2, 2, 1.0)
    assert ped.mean_iou == pytest.approx((1 + 2 / 3) / 2)
    assert (car.boxes_a, car.boxes_b, car.matched, car.f1, car.mean_iou) == (2, 0, 0, 0.0, None)
    assert (cyc.boxes_a, cyc.boxes_b, cyc.f1) == (0, 1, 0.0)
    # Units: (ped, ped) x2, (vehicle, cyclist), (vehicle, nothing). Coincidences over 8
    # values: ped 4, vehicle 2, cyclist 1, nothing 1; 4 of 8 disagree: D_o = 1/2;
    # D_e = (64 - 16 - 4 - 1 - 1) / 56 = 3/4; alpha = 1 - (1/2) / (3/4) = 1/3.
    assert report.alpha == pytest.approx(1 / 3)
    assert ped.alpha == pytest.approx(1.0)
    # vehicle or not: (F,F) x2, (T,F) x2: D_o = 4/8, D_e = (64 - 36 - 4) / 56 = 3/7
    assert car.alpha == pytest.approx(1 - 0.5 / (3 / 7))
    assert report.confusions == (("vehicle", "cyclist", 1),)
    assert [(w.image, w.disagreements) for w in report.worst] == [("1.png", 2), ("2.png", 1)]
    assert [c.cls for c in report.classes][-1] == "pedestrian"  # most consistent last


def test_threshold_is_inclusive_and_iou_is_exact() -> None:
    assert iou((20, 0, 30, 10), (22, 0, 32, 10)) == pytest.approx(2 / 3)
    assert iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0
    strict = compare(A, B, ["1.png"], 0.7)
    assert {c.cls: c.matched for c in strict.classes}["pedestrian"] == 1


def test_matching_is_optimal_not_greedy() -> None:
    # b0 overlaps a0 best, but taking that pair leaves a1 without a partner; the optimal
    # assignment pairs a0-b1 and a1-b0, both above 0.5.
    a = {"x": [Box("p", (0, 0, 10, 10)), Box("p", (3, 0, 13, 10))]}
    b = {"x": [Box("p", (1, 0, 11, 10)), Box("p", (-2, 0, 8, 10))]}
    assert iou((0, 0, 10, 10), (1, 0, 11, 10)) > iou((0, 0, 10, 10), (-2, 0, 8, 10)) > 0.5
    assert iou((3, 0, 13, 10), (-2, 0, 8, 10)) < 0.5 < iou((3, 0, 13, 10), (1, 0, 11, 10))
    [cls] = compare(a, b, ["x"], 0.5).classes
    assert cls.matched == 2


def test_kappa_by_hand() -> None:
    # p_o = 3/4; a says yes 2 of 4, b 1 of 4: p_e = (2*1 + 2*3) / 16 = 1/2; kappa = 1/2
    assert cohen_kappa([("y", "y"), ("y", "n"), ("n", "n"), ("n", "n")]) == pytest.approx(0.5)
    assert cohen_kappa([("y", "y")]) is None


values = st.lists(
    st.tuples(st.sampled_from("abc"), st.sampled_from("abc")), min_size=2, max_size=60
)


@settings(max_examples=60, deadline=None)
@given(values)
def test_kappa_equals_sklearn(pairs: list[tuple[str, str]]) -> None:
    ours = cohen_kappa(pairs)
    xs, ys = zip(*pairs, strict=True)
    if ours is None:
        return  # sklearn answers nan when chance agreement is already perfect
    assert ours == pytest.approx(cohen_kappa_score(xs, ys))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(*[st.sampled_from(["p", "c", NOTHING])] * 2), min_size=2, max_size=60))
def test_alpha_equals_krippendorff_package(pairs: list[tuple[str, str]]) -> None:
    ours = nominal_alpha(pairs)
    codes = {"p": 0, "c": 1, NOTHING: 2}
    data = np.array([[codes[x] for x, _ in pairs], [codes[y] for _, y in pairs]], dtype=float)
    if ours is None:
        assert len({v for pair in pairs for v in pair}) == 1
        return
    assert ours == pytest.approx(krippendorff.alpha(data, level_of_measurement="nominal"))
