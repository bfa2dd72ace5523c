"""How two labelers agree: box matching, F1, mean IoU, Krippendorff's alpha, Cohen's kappa.

Pure functions over values; no files. Boxes are (left, top, right, bottom) in pixels.

- **Matching.** Per image and class, the two labelers' boxes are paired by optimal
  assignment (``scipy.optimize.linear_sum_assignment``) maximising the summed IoU over the
  pairs whose IoU reaches the threshold; a pair under the threshold is no match.
- **F1** of one labeler against the other is ``2 * matched / (boxes_a + boxes_b)``
  (symmetric: either labeler can be the reference). **Mean IoU** is over matched pairs.
- **Krippendorff's alpha** follows kalphacv's method for detection: boxes are first paired
  whatever their class (same optimal matching), each pair or lone box is one unit, and its
  value for a labeler is the class it gave, or "nothing" for a lone box. Alpha (nominal,
  two coders, no missing values) is computed here from the coincidence matrix; the class
  alpha is that of the binary value "this class or not" over the same units. We compute it
  ourselves rather than depend on ``kalphacv`` (which also draws images and pulls in
  heavy dependencies); ``tests/labels`` checks our alpha against the ``krippendorff``
  package.
- **Cohen's kappa** for image or sample tags: ``(p_o - p_e) / (1 - p_e)`` over the items
  both labelers tagged; None when chance agreement is already perfect (one value only).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NOTHING = "(nothing)"  # a lone box's unit value for the labeler who drew no box there

BoxXYXY = tuple[float, float, float, float]


@dataclass(frozen=True)
class Box:
    cls: str
    box: BoxXYXY


def iou(a: BoxXYXY, b: BoxXYXY) -> float:
    """Intersection over union of two boxes; 0 when either has no area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match(
    a: Sequence[BoxXYXY], b: Sequence[BoxXYXY], threshold: float
) -> list[tuple[int, int, float]]:
    """Optimal one-to-one pairs (index in a, index in b, IoU) with IoU >= threshold."""
    if not a or not b:
        return []
    from scipy.optimize import linear_sum_assignment

    m = np.array([[iou(x, y) for y in b] for x in a])
    weights = np.where(m >= threshold, m, 0.0)
    rows, cols = linear_sum_assignment(weights, maximize=True)
    return [
        (int(i), int(j), float(m[i, j]))
        for i, j in zip(rows, cols, strict=True)
        if weights[i, j] > 0
    ]


@dataclass
class Counts:
    """Box counts of one class over some images."""

    boxes_a: int = 0
    boxes_b: int = 0
    matched: int = 0
    iou_sum: float = 0.0

    def add(self, other: Counts) -> None:
        self.boxes_a += other.boxes_a
        self.boxes_b += other.boxes_b
        self.matched += other.matched
        self.iou_sum += other.iou_sum

    @property
    def f1(self) -> float | None:
        total = self.boxes_a + self.boxes_b
        return 2 * self.matched / total if total else None

    @property
    def mean_iou(self) -> float | None:
        return self.iou_sum / self.matched if self.matched else None

    @property
    def disagreements(self) -> int:
        """Boxes without a same-class partner, from either labeler."""
        return self.boxes_a + self.boxes_b - 2 * self.matched


def image_counts(a: Sequence[Box], b: Sequence[Box], threshold: float) -> dict[str, Counts]:
    """Per class, the matching of one image's boxes (class by class)."""
    out: dict[str, Counts] = {}
    for cls in sorted({x.cls for x in a} | {x.cls for x in b}):
        xa = [x.box for x in a if x.cls == cls]
        xb = [x.box for x in b if x.cls == cls]
        pairs = match(xa, xb, threshold)
        out[cls] = Counts(len(xa), len(xb), len(pairs), sum(p[2] for p in pairs))
    return out


def units(a: Sequence[Box], b: Sequence[Box], threshold: float) -> list[tuple[str, str]]:
    """kalphacv's units of one image: (class by a, class by b), NOTHING for a lone box."""
    pairs = match([x.box for x in a], [x.box for x in b], threshold)
    out = [(a[i].cls, b[j].cls) for i, j, _ in pairs]
    paired_a, paired_b = {i for i, _, _ in pairs}, {j for _, j, _ in pairs}
    out += [(x.cls, NOTHING) for i, x in enumerate(a) if i not in paired_a]
    out += [(NOTHING, x.cls) for j, x in enumerate(b) if j not in paired_b]
    return out


def nominal_alpha(pairs: Iterable[tuple[Any, Any]]) -> float | None:
    """Krippendorff's alpha, nominal, two coders who both rated every unit.

    None when there is no unit or every value is the same (no expected disagreement)."""
    o: Counter[tuple[Any, Any]] = Counter()
    for x, y in pairs:
        o[(x, y)] += 1
        o[(y, x)] += 1
    n = sum(o.values())
    if n < 2:
        return None
    marg: Counter[Any] = Counter()
    for (x, _), count in o.items():
        marg[x] += count
    observed = sum(c for (x, y), c in o.items() if x != y) / n
    expected = (n * n - sum(v * v for v in marg.values())) / (n * (n - 1))
    if expected == 0:
        return None
    return 1.0 - observed / expected


def cohen_kappa(pairs: Sequence[tuple[Any, Any]]) -> float | None:
    """Cohen's kappa of two raters over the same items; None with no items or p_e = 1."""
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(1 for x, y in pairs if x == y) / n
    ca, cb = Counter(x for x, _ in pairs), Counter(y for _, y in pairs)
    expected = sum(ca[k] * cb[k] for k in ca) / (n * n)
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


# ---------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class ClassAgreement:
    cls: str
    boxes_a: int
    boxes_b: int
    matched: int
    f1: float | None
    mean_iou: float | None
    alpha: float | None


@dataclass(frozen=True)
class ConditionAgreement:
    condition: tuple[tuple[str, Any], ...]  # (tag column, value) pairs
    cls: str
    images: int
    boxes_a: int
    boxes_b: int
    matched: int
    f1: float | None


@dataclass(frozen=True)
class ImageDisagreement:
    image: str
    disagreements: int
    by_class: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Report:
    labelers: tuple[str, str]
    threshold: float
    images: int
    classes: tuple[ClassAgreement, ...]  # least consistent first
    alpha: float | None  # over all classes
    confusions: tuple[tuple[str, str, int], ...]  # (class by a, class by b, units), a != b
    worst: tuple[ImageDisagreement, ...]
    conditions: tuple[ConditionAgreement, ...]  # lowest F1 first
    kappas: dict[str, tuple[float | None, int]] = field(default_factory=dict)  # tag -> (kappa, n)


def _rank_key(c: ClassAgreement) -> tuple[float, float]:
    alpha = c.alpha if c.alpha is not None else 1.0
    return (alpha, c.f1 if c.f1 is not None else 1.0)


def compare(
    a: Mapping[str, Sequence[Box]],
    b: Mapping[str, Sequence[Box]],
    images: Sequence[str],
    threshold: float = 0.5,
    labelers: tuple[str, str] = ("a", "b"),
    conditions: Mapping[str, Mapping[str, Any]] | None = None,
    by: Sequence[str] = (),
    tags: tuple[Mapping[str, Mapping[str, Any]], Mapping[str, Mapping[str, Any]]] | None = None,
) -> Report:
    """Agreement of ``a`` and ``b`` (image -> boxes) over ``images``.

    An image in ``images`` that a labeler has no boxes for counts as labeled empty.
    ``conditions`` maps an image to its tag values; ``by`` names the tags to break the
    agreement down by (each alone, and all together when there are several). ``tags`` is
    each labeler's item -> {tag: value}, for Cohen's kappa per tag.
    """
    per_image: dict[str, dict[str, Counts]] = {}
    all_units: list[tuple[str, str]] = []
    for image in images:
        xa, xb = a.get(image, ()), b.get(image, ())
        per_image[image] = image_counts(xa, xb, threshold)
        all_units += units(xa, xb, threshold)
    totals: dict[str, Counts] = defaultdict(Counts)
    for counts in per_image.values():
        for cls, c in counts.items():
            totals[cls].add(c)
    classes = [
        ClassAgreement(
            cls,
            c.boxes_a,
            c.boxes_b,
            c.matched,
            c.f1,
            c.mean_iou,
            nominal_alpha((x == cls, y == cls) for x, y in all_units),
        )  # fmt: skip
        for cls, c in sorted(totals.items())
    ]
    confusions = Counter((x, y) for x, y in all_units if x != y and NOTHING not in (x, y))
    worst = sorted(
        (
            ImageDisagreement(
                image,
                sum(c.disagreements for c in counts.values()),
                tuple((cls, c.disagreements) for cls, c in counts.items() if c.disagreements),
            )
            for image, counts in per_image.items()
        ),
        key=lambda w: (-w.disagreements, w.image),
    )
    return Report(
        labelers=labelers,
        threshold=threshold,
        images=len(images),
        classes=tuple(sorted(classes, key=_rank_key)),
        alpha=nominal_alpha(all_units),
        confusions=tuple(
            (x, y, n) for (x, y), n in sorted(confusions.items(), key=lambda i: (-i[1], i[0]))
        ),
        worst=tuple(w for w in worst if w.disagreements),
        conditions=_by_conditions(per_image, conditions or {}, by),
        kappas=_kappas(tags) if tags is not None else {},
    )


def _by_conditions(
    per_image: Mapping[str, Mapping[str, Counts]],
    conditions: Mapping[str, Mapping[str, Any]],
    by: Sequence[str],
) -> tuple[ConditionAgreement, ...]:
    groupings = [(c,) for c in by] + ([tuple(by)] if len(by) > 1 else [])
    rows = []
    for keys in groupings:
        groups: dict[tuple[tuple[str, Any], ...], dict[str, Counts]] = {}
        sizes: Counter[tuple[tuple[str, Any], ...]] = Counter()
        for image, counts in per_image.items():
            tagged = conditions.get(image, {})
            key = tuple((k, tagged.get(k)) for k in keys)
            sizes[key] += 1
            group = groups.setdefault(key, defaultdict(Counts))
            for cls, c in counts.items():
                group[cls].add(c)
        for key, group in groups.items():
            for cls, c in group.items():
                rows.append(
                    ConditionAgreement(key, cls, sizes[key], c.boxes_a, c.boxes_b, c.matched, c.f1)
                )
    return tuple(
        sorted(rows, key=lambda r: (r.f1 if r.f1 is not None else 1.0, -r.boxes_a - r.boxes_b))
    )


def _kappas(
    tags: tuple[Mapping[str, Mapping[str, Any]], Mapping[str, Mapping[str, Any]]],
) -> dict[str, tuple[float | None, int]]:
    ta, tb = tags
    names = sorted({k for v in ta.values() for k in v} & {k for v in tb.values() for k in v})
    out = {}
    for name in names:
        pairs = [
            (ta[item][name], tb[item][name])
            for item in sorted(set(ta) & set(tb))
            if name in ta[item] and name in tb[item]
        ]
        out[name] = (cohen_kappa(pairs), len(pairs))
    return out
