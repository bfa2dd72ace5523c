"""The dataset card: a ``README.md`` written beside every exported ``samples.parquet``.

A person who finds a dataset folder should learn from it alone what it is: the query that
selected it and the store it came from, how many samples, drives and frames each split has,
how its tags are distributed, and how to load it. Everything is computed from the samples
table as written, so the card cannot disagree with the data.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa

CARD = "README.md"
#: The tag columns of samples.parquet whose values are counted (pedestrian_count as > 0).
CARD_TAGS = ("weather", "time_of_day", "at_intersection", "pedestrians_within_5m", "device_version")


def _value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return "NULL" if v is None else str(v)


def render_card(
    samples: pa.Table, *, where: str, store: Path, out: Path, created_at: str,
    tool_version: str, dropped: dict[str, int],
) -> str:  # fmt: skip
    """The card's Markdown for ``samples`` (rows of samples.parquet)."""
    rows = samples.to_pylist()
    splits = sorted({r["split"] for r in rows})
    lines = [
        f"# {out.name}: a drivecat dataset",
        "",
        f"Exported by drivecat {tool_version} on {created_at}.",
        "",
        f"- Store: `{store}`",
        f"- Query: segments where `{where}`",
        f"- Samples: {len(rows)} (one per reference message: "
        + ", ".join(sorted({r["reference_topic"] for r in rows}))
        + ")",
        "- Dropped: " + (", ".join(f"{k} {v}" for k, v in dropped.items() if v) or "none"),
        "- Lineage (every source file and its sha256): `lineage.json`",
        "",
        "## Splits",
        "",
        "The split is a hash of `drive_id`: no drive is in two splits.",
        "",
        "| split | samples | drives | frames |",
        "|---|---:|---:|---:|",
    ]
    for split in splits:
        of = [r for r in rows if r["split"] == split]
        frames = sum(len(r["frames"] or []) for r in of)
        lines.append(f"| {split} | {len(of)} | {len({r['drive_id'] for r in of})} | {frames} |")
    lines += ["", "## Tags", "", "Samples per tag value, by split.", ""]
    lines += ["| tag | value | " + " | ".join(splits) + " | all |"]
    lines += ["|---|---|" + "---:|" * (len(splits) + 1)]
    columns = [c for c in CARD_TAGS if c in samples.column_names]
    for tag in columns:
        counts = Counter((_value(r[tag]), r["split"]) for r in rows)
        for value in sorted({v for v, _ in counts}):
            per = [counts[(value, s)] for s in splits]
            lines.append(f"| {tag} | {value} | " + " | ".join(map(str, per)) + f" | {sum(per)} |")
    if "pedestrian_count" in samples.column_names:
        per = [sum(1 for r in rows if r["split"] == s and (r["pedestrian_count"] or 0) > 0)
               for s in splits]  # fmt: skip
        lines.append("| pedestrian_count | > 0 | " + " | ".join(map(str, per)) + f" | {sum(per)} |")
    first = splits[0] if splits else "train"
    lines += [
        "",
        "## Load it",
        "",
        "```python",
        "from torch.utils.data import DataLoader",
        "from drivecat.catalog.dataset import DrivecatDataset, collate",
        "",
        f'ds = DrivecatDataset("{out}", split="{first}")  # split=None: every split',
        "loader = DataLoader(ds, batch_size=4, collate_fn=collate, num_workers=2)",
        "```",
        "",
        "Files: `samples.parquet` (one row per sample), `images/` (the exact frames),",
        "`pointclouds/` (`.pcd`), `labels/` (tags and nearest on-device detections, JSON).",
        "",
    ]
    return "\n".join(lines)
