"""``catalog labels agreement``: two labelers (or a labeler and the device) over a dataset.

Loads the labels kept beside the dataset (``catalog.labels``), the device's projected
detections when a labeler is ``device`` (``catalog.device``), and the images' segment tags
from ``samples.parquet``; compares them with ``catalog.agreement.compare``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from drivecat.catalog.agreement import Report, compare
from drivecat.catalog.errors import CatalogError
from drivecat.catalog.labels import CONDITION_TAGS, DEVICE, DatasetIndex, LabelSet, load_labeler


def agreement(
    dataset: Path,
    labelers: Sequence[str],
    threshold: float = 0.5,
    by: Sequence[str] = CONDITION_TAGS,
    calibration: Path | None = None,
) -> tuple[Report, DatasetIndex, tuple[LabelSet, LabelSet]]:
    """The report, the dataset index and both label sets (for the contact sheet).

    The images compared are those both labelers looked at (the device looks at every one).
    CatalogError for a labeler with no labels, the same labeler twice, an IoU threshold
    outside (0, 1], or ``device`` without a calibration.
    """
    if len(labelers) != 2 or labelers[0] == labelers[1]:
        raise CatalogError(f"--labelers wants two different names, got {','.join(labelers)!r}")
    if not 0 < threshold <= 1:
        raise CatalogError(f"--iou {threshold} is not in (0, 1]")
    index = DatasetIndex.load(dataset)
    unknown = [c for c in by if c not in CONDITION_TAGS]
    if unknown:
        raise CatalogError(f"--by {unknown[0]!r}: choose from {', '.join(CONDITION_TAGS)}")
    sets = tuple(_load(index, name, calibration) for name in labelers)
    a, b = sets[0], sets[1]
    images = sorted(set(a.images) & set(b.images))
    if not images:
        raise CatalogError(f"{dataset}: {labelers[0]} and {labelers[1]} share no image")
    conditions = {image: dict(index.images[image].tags) for image in images}
    report = compare(
        a.boxes, b.boxes, images, threshold, (labelers[0], labelers[1]), conditions, by,
        (a.tags, b.tags),
    )  # fmt: skip
    return report, index, (a, b)


def _load(index: DatasetIndex, name: str, calibration: Path | None) -> LabelSet:
    if name != DEVICE:
        return load_labeler(index.root, name)
    from drivecat.catalog.device import device_boxes, load_calibration

    if calibration is None:
        raise CatalogError("comparing with 'device' needs --calibration FILE (the camera model)")
    boxes = device_boxes(index, load_calibration(calibration))
    return LabelSet(tuple(sorted(index.images)), boxes, {})


def report_dict(report: Report, worst: int = 20) -> dict[str, Any]:
    """The report as JSON-ready data (conditions: the 50 lowest F1 with 5+ boxes)."""
    return {
        "labelers": list(report.labelers),
        "iou_threshold": report.threshold,
        "images": report.images,
        "alpha": report.alpha,
        "classes": [asdict(c) for c in report.classes],
        "confusions": [{"a": x, "b": y, "count": n} for x, y, n in report.confusions],
        "worst_images": [
            {"image": w.image, "disagreements": w.disagreements, "by_class": dict(w.by_class)}
            for w in report.worst[:worst]
        ],
        "conditions": [
            {**asdict(c), "condition": dict(c.condition)}
            for c in report.conditions
            if c.boxes_a + c.boxes_b >= 5
        ][:50],
        "tags": {k: {"kappa": v, "items": n} for k, (v, n) in report.kappas.items()},
    }
