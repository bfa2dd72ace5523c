"""Distances between two distributions over the same bins: PSI and Jensen-Shannon.

Pure functions over counts; no catalog. Both take the baseline's and the current side's
counts over the same bins (categories, or bins of a number).

- PSI, the population stability index: sum over bins of (a - e) * ln(a / e), with e and a
  the baseline's and the current side's shares. Below 0.1 is read as no change, 0.1 to
  0.25 as a moderate change, above 0.25 as a significant one (the credit-scoring
  convention that Evidently and whylogs follow). A bin empty on one side makes ln blow up,
  so every bin gets ``smoothing`` extra counts on both sides first (0.5: Jeffreys' prior);
  that also keeps a handful of segments from reading as a huge shift.
- Jensen-Shannon distance: scipy's ``jensenshannon`` with base 2, so it lies in [0, 1]
  (0: the same shares, 1: no bin in common). It is the square root of the divergence.

A distance from a handful of samples says little: 3 of 4 segments in the rain against 2 of 4
is a PSI of 0.12 and means nothing. :func:`p_value` is the chi-square test of homogeneity
of the same counts, and drift counts a distance only when that difference is also unlikely
to be chance. With many segments every difference is significant and the thresholds
decide (Evidently makes the same switch from tests to distances as samples grow).

Numbers are binned by :func:`edges`: the baseline's deciles, widened and merged so that
bins are never narrower than a tolerance relative to the baseline's typical value, because
a rate of 9.98 Hz against 10.01 Hz is noise, not drift.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency

SMOOTHING = 0.5


def shares(counts: Sequence[float], smoothing: float = 0.0) -> np.ndarray:
    """Counts as shares that sum to 1, after adding ``smoothing`` to every bin."""
    c = np.asarray(counts, dtype=float) + smoothing
    total = c.sum()
    if total <= 0:
        raise ValueError("shares: no counts")
    return np.asarray(c / total)


def psi(baseline: Sequence[float], current: Sequence[float], smoothing: float = SMOOTHING) -> float:
    """Population stability index of ``current`` against ``baseline`` (same bins).

    ValueError when the bins differ in number or a side has no count at all.
    """
    if len(baseline) != len(current) or not baseline:
        raise ValueError("psi: both sides need the same, non-empty bins")
    if sum(baseline) <= 0 or sum(current) <= 0:
        raise ValueError("psi: a side has no counts")
    e = shares(baseline, smoothing)
    a = shares(current, smoothing)
    return float(np.sum((a - e) * np.log(a / e)))


def js_distance(baseline: Sequence[float], current: Sequence[float]) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between the two sides' shares."""
    if len(baseline) != len(current) or not baseline:
        raise ValueError("js_distance: both sides need the same, non-empty bins")
    if sum(baseline) <= 0 or sum(current) <= 0:
        raise ValueError("js_distance: a side has no counts")
    value = float(jensenshannon(shares(baseline), shares(current), base=2))
    return 0.0 if math.isnan(value) else value


def edges(quantiles: Sequence[float], tolerance: float = 0.05) -> list[float]:
    """Bin edges for a number from the baseline's quantiles (e.g. its deciles, minimum to
    maximum).

    ``width`` is ``tolerance`` times the median's magnitude. The baseline's range widened by
    ``width`` on both sides is split at the inner quantiles that lie at least ``width`` from
    its ends and from each other, so a nearly constant number is one bin and its noise
    stays inside it. Values below the first edge and from the last edge up each have a bin
    of their own: ``len(edges) + 1`` bins in all.
    """
    qs = sorted(float(q) for q in quantiles if q is not None and math.isfinite(q))
    if not qs:
        return []
    median = qs[len(qs) // 2]
    width = tolerance * abs(median) if median else tolerance
    low, high = qs[0], qs[-1]
    inner: list[float] = []
    for q in qs[1:-1]:
        if q - max(low, inner[-1] if inner else low) >= width and high - q >= width:
            inner.append(q)
    return [low - width, *inner, high + width]


def p_value(baseline: Sequence[float], current: Sequence[float]) -> float:
    """Chi-square test of homogeneity of the two sides' counts (scipy's chi2_contingency,
    with Yates' correction for two bins): how likely a difference at least this large is
    when both sides come from one distribution. Bins empty on both sides are left out; 1.0
    when fewer than two bins remain."""
    pairs = [(b, c) for b, c in zip(baseline, current, strict=True) if b + c > 0]
    if len(pairs) < 2 or sum(b for b, _ in pairs) <= 0 or sum(c for _, c in pairs) <= 0:
        return 1.0
    table = np.array(pairs, dtype=float).T
    return float(chi2_contingency(table).pvalue)


def bin_labels(bin_edges: Sequence[float]) -> list[str]:
    """Readable labels for the ``len(edges) + 1`` bins of :func:`edges`."""
    if not bin_edges:
        return ["all"]
    fmt = [_short(e) for e in bin_edges]
    inner = [f"{a}-{b}" for a, b in zip(fmt, fmt[1:], strict=False)]
    return [f"<{fmt[0]}", *inner, f">={fmt[-1]}"]


def _short(value: float) -> str:
    if value == 0:
        return "0"
    digits = max(0, 2 - int(math.floor(math.log10(abs(value)))))
    return f"{value:.{min(digits, 6)}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"
