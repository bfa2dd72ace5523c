"""A simulated human labeler over an exported dataset, from the generator's true boxes.

``simulate(dataset, drives, noise)`` returns a COCO document for the dataset's images: each
true box (``sample_logs.boxes``) a person could see is drawn with jitter, some are missed,
and planted confusions relabel a class under chosen conditions (for example cyclists boxed
as pedestrians in fog). Conditions are the frame's own truth (the weather and light the
renderer drew), never drivecat's tags. Deterministic from ``noise.seed``.

It reads the dataset's ``samples.parquet`` with pyarrow and never imports drivecat's
ingest or catalog code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from sample_logs.boxes import read_boxes

CATEGORIES = ("pedestrian", "cyclist", "vehicle")


@dataclass(frozen=True)
class Confusion:
    """Boxes of ``source`` labeled ``target`` with probability ``rate`` when the frame's
    truth has every ``when`` value (e.g. {"weather": "fog"})."""

    source: str
    target: str
    rate: float
    when: Mapping[str, str]


@dataclass(frozen=True)
class Noise:
    seed: int = 0
    jitter: float = 0.03  # box edge noise, standard deviation as a share of box size
    miss_rate: float = 0.05
    confusions: tuple[Confusion, ...] = ()
    min_visible: float = 0.5  # a person does not box what they cannot see
    min_height_px: float = 8.0


def dataset_frames(dataset: Path) -> dict[str, tuple[str, str, int]]:
    """image path -> (drive_id, topic, frame_idx) from samples.parquet."""
    rows = pq.read_table(dataset / "samples.parquet", columns=["drive_id", "frames"]).to_pylist()
    return {
        f["path"]: (r["drive_id"], f["topic"], int(f["frame_idx"]))
        for r in rows
        for f in r["frames"]
    }


def truth_by_image(dataset: Path, drives: Sequence[Path]) -> dict[str, dict[str, Any]]:
    """image path -> its boxes.json frame entry (conditions and true boxes)."""
    by_drive = {}
    for drive in drives:
        drive_id = json.loads((drive / "truth.json").read_text())["drive_id"]
        by_drive[drive_id] = read_boxes(drive)
    out = {}
    for image, (drive_id, topic, k) in dataset_frames(dataset).items():
        frames = by_drive[drive_id]["videos"][topic]["frames"]
        out[image] = {
            **frames[k],
            "size": (by_drive[drive_id]["width"], by_drive[drive_id]["height"]),
        }
    return out


def labelable(box: Mapping[str, Any], noise: Noise) -> bool:
    return (
        box["visible"] >= noise.min_visible and box["box"][3] - box["box"][1] >= noise.min_height_px
    )


def simulate(dataset: Path, drives: Sequence[Path], noise: Noise) -> dict[str, Any]:
    """A COCO document (images, annotations, categories) for every image of the dataset."""
    rng = np.random.default_rng(noise.seed)
    truth = truth_by_image(dataset, drives)
    cat_ids = {name: i + 1 for i, name in enumerate(CATEGORIES)}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, (path, frame) in enumerate(sorted(truth.items()), start=1):
        width, height = frame["size"]
        images.append({"id": image_id, "file_name": path, "width": width, "height": height})
        for box in frame["boxes"]:
            if not labelable(box, noise) or rng.random() < noise.miss_rate:
                continue
            cls = box["class"]
            for c in noise.confusions:
                when = all(frame.get(k) == v for k, v in c.when.items())
                if c.source == cls and when and rng.random() < c.rate:
                    cls = c.target
            left, top, right, bottom = box["box"]
            w, h = right - left, bottom - top
            dl, dr = rng.normal(0, noise.jitter * w, 2)
            dt, db = rng.normal(0, noise.jitter * h, 2)
            x0, x1 = min(max(left + dl, 0), width - 1), min(max(right + dr, 1), width)
            y0, y1 = min(max(top + dt, 0), height - 1), min(max(bottom + db, 1), height)
            if x1 <= x0 or y1 <= y0:
                continue
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": cat_ids[cls],
                "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                "area": round((x1 - x0) * (y1 - y0), 2), "iscrowd": 0,
            })  # fmt: skip
    categories = [{"id": i, "name": n} for n, i in cat_ids.items()]
    return {"images": images, "annotations": annotations, "categories": categories}


def simulate_tags(
    dataset: Path, drives: Sequence[Path], seed: int, flip_rate: float
) -> list[dict[str, str]]:
    """Image tags: ``crowded`` ("yes" with 2+ visible pedestrians in the truth), flipped at
    ``flip_rate``; rows for a tags CSV or JSON."""
    rng = np.random.default_rng(seed)
    rows = []
    for path, frame in sorted(truth_by_image(dataset, drives).items()):
        peds = sum(
            1 for b in frame["boxes"] if b["class"] == "pedestrian" and labelable(b, Noise())
        )
        value = peds >= 2
        if rng.random() < flip_rate:
            value = not value
        rows.append({"image": path, "crowded": "yes" if value else "no"})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sample_logs.labeler``: a simulated labeler's COCO boxes (or, with
    ``--tags``, a tags CSV) over an exported dataset of generated drives."""
    import argparse
    import csv
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m sample_logs.labeler",
        description=main.__doc__,
        epilog="example: python -m sample_logs.labeler --dataset /tmp/ds --drive sample_logs/tiny "
        "--seed 2 --confuse cyclist=pedestrian:0.8 --out bob.json",
    )
    parser.add_argument("--dataset", type=Path, required=True, help="a dataset export")
    parser.add_argument(
        "--drive", type=Path, action="append", required=True,
        help="a generated drive folder behind the dataset (truth.json, boxes.json); repeatable",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--miss-rate", type=float, default=0.05)
    parser.add_argument(
        "--confuse", action="append", default=[], metavar="SOURCE=TARGET[:RATE]",
        help="label SOURCE boxes as TARGET at RATE (default 1); repeatable",
    )  # fmt: skip
    parser.add_argument("--tags", action="store_true", help="write image tags (CSV) instead")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.tags:
        rows = simulate_tags(args.dataset, args.drive, args.seed, flip_rate=args.miss_rate)
        with args.out.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["image", "crowded"])
            writer.writeheader()
            writer.writerows(rows)
        return 0
    confusions = []
    for spec in args.confuse:
        pair, _, rate = spec.partition(":")
        source, _, target = pair.partition("=")
        if source not in CATEGORIES or target not in CATEGORIES:
            print(f"--confuse {spec!r}: classes are {', '.join(CATEGORIES)}", file=sys.stderr)
            return 2
        confusions.append(Confusion(source, target, float(rate or 1.0), {}))
    noise = Noise(seed=args.seed, miss_rate=args.miss_rate, confusions=tuple(confusions))
    args.out.write_text(json.dumps(simulate(args.dataset, args.drive, noise)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
