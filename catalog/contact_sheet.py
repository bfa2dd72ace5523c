"""A contact sheet of the worst disagreements per class: one self-contained HTML page.

For each class (least consistent first), the images where the two labelers disagree most
about it, each drawn as an ``<img>`` (relative link into the dataset, copied next to the
page so the folder stands alone) under an SVG overlay: labeler A's boxes in orange, B's in
blue, dashed where a box found no same-class partner. A person reads it to rewrite the
labeling instructions.
"""

from __future__ import annotations

import html
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from drivecat.catalog.agreement import Box, Report, image_counts, match
from drivecat.catalog.labels import DatasetIndex, LabelSet, image_size

COLOURS = ("#ff8c00", "#1e90ff")
PAGE = "index.html"
_CSS = (
    "body{font-family:sans-serif;margin:16px}.grid{display:flex;flex-wrap:wrap;gap:12px}"
    "figure{margin:0;position:relative}figure img{display:block;width:480px}"
    "figure svg{position:absolute;left:0;top:0;width:480px}"
    "figcaption{font-size:12px;max-width:480px;word-break:break-all}"
)


def write_contact_sheet(
    out: Path,
    report: Report,
    index: DatasetIndex,
    sets: tuple[LabelSet, LabelSet],
    per_class: int = 6,
) -> Path:
    """Write ``out/index.html`` and ``out/images/...``; return the page's path."""
    out.mkdir(parents=True, exist_ok=True)
    a, b = sets
    sections = []
    for cls in report.classes:
        ranked = sorted(
            (
                (image_counts(a.boxes.get(w.image, ()), b.boxes.get(w.image, ()), report.threshold)
                 .get(cls.cls), w.image)
                for w in report.worst
            ),
            key=lambda x: (-(x[0].disagreements if x[0] else 0), x[1]),
        )  # fmt: skip
        chosen = [image for counts, image in ranked if counts and counts.disagreements][:per_class]
        if not chosen:
            continue
        thr = report.threshold
        cards = [
            _card(out, index, image, a.boxes.get(image, []), b.boxes.get(image, []), thr)
            for image in chosen
        ]
        alpha = "n/a" if cls.alpha is None else f"{cls.alpha:.2f}"
        f1 = "n/a" if cls.f1 is None else f"{cls.f1:.2f}"
        sections.append(
            f"<section><h2>{html.escape(cls.cls)}: alpha {alpha}, F1 {f1}, "
            f"{cls.boxes_a} vs {cls.boxes_b} boxes, {cls.matched} matched</h2>"
            f'<div class="grid">{"".join(cards)}</div></section>'
        )
    la, lb = (html.escape(x) for x in report.labelers)
    page = out / PAGE
    page.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>Label disagreements</title>"
        f"<style>{_CSS}.a{{color:{COLOURS[0]}}}.b{{color:{COLOURS[1]}}}</style></head><body>"
        f"<h1>Worst disagreements per class: <span class='a'>{la}</span> vs "
        f"<span class='b'>{lb}</span> (IoU &ge; {report.threshold})</h1>"
        f"<p>Dashed: a box with no same-class partner.</p>{''.join(sections)}</body></html>\n"
    )
    return page


def _card(
    out: Path, index: DatasetIndex, image: str, a: Sequence[Box], b: Sequence[Box], thr: float
) -> str:
    src = index.root / image
    dest = out / image
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    width, height = image_size(src)
    shapes = []
    for boxes, other, colour in ((a, b, COLOURS[0]), (b, a, COLOURS[1])):
        for cls in sorted({x.cls for x in boxes}):
            mine = [x.box for x in boxes if x.cls == cls]
            theirs = [x.box for x in other if x.cls == cls]
            paired = {i for i, _, _ in match(mine, theirs, thr)}
            for i, (left, t, r, btm) in enumerate(mine):
                dash = "" if i in paired else ' stroke-dasharray="4 3"'
                shapes.append(
                    f'<rect x="{left:.1f}" y="{t:.1f}" width="{r - left:.1f}" '
                    f'height="{btm - t:.1f}" '
                    f'fill="none" stroke="{colour}" stroke-width="2"{dash}/>'
                    f'<text x="{left:.1f}" y="{max(t - 2, 8):.1f}" fill="{colour}" font-size="10">'
                    f"{html.escape(cls)}</text>"
                )
    ref = index.images[image]
    return (
        f'<figure><img src="{html.escape(os.path.relpath(dest, out))}" alt="">'
        f'<svg viewBox="0 0 {width} {height}" preserveAspectRatio="none">{"".join(shapes)}</svg>'
        f"<figcaption>{html.escape(ref.sample_id)} frame {ref.frame_idx} "
        f"({html.escape(str(dict(ref.tags)))})</figcaption></figure>"
    )
