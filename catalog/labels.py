"""Labels that come back from labeling tools, over an exported dataset.

``import_labels(store, dataset, labeler, file)`` reads one file and keeps its labels twice:

- beside the dataset, ``<dataset>/annotations/<labeler>/boxes.json`` or ``tags.json``
  (written under a temporary name and renamed), so the labels travel with the images and
  survive the loss of the catalog (a sibling of ``labels/``, which the export owns: a
  labeler called like a drive must not overwrite the export's label JSON);
- in the catalog's ``labels`` table, one row per box or tag, with the image's ``drive_id``,
  ``topic``, ``frame_idx``, ``time_ns`` and ``seg_idx`` taken from ``samples.parquet`` at
  import time, so SQL joins labels to ``segments`` without the dataset at hand.

Files:

- COCO JSON (``images``, ``annotations``, ``categories``): boxes. ``images[].file_name`` is
  the image path as the export wrote it (``images/<drive_id>/<camera slug>/<frame>.png``,
  relative to the dataset); ``bbox`` is COCO's ``[x, y, width, height]`` in pixels; it is
  stored as ``[left, top, right, bottom]``. Every listed image counts as labeled, boxes or
  not. A box may overhang the image by up to 1 px (clipped); more is an error.
- Tags, CSV or JSON (a list of objects): one row per item, a column ``image`` (an image
  path) or ``sample_id``, and one column per tag.

Re-importing a labeler's boxes replaces its boxes; its tags, the tags of the same names.
Errors are one line: the file and the reason (unknown image, unknown category id, a box
outside the image, malformed JSON or CSV).
"""

from __future__ import annotations

import csv
import json
import os
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from drivecat.catalog.agreement import Box
from drivecat.catalog.errors import CatalogError
from drivecat.catalog.tables import LABELS
from drivecat.types import CONDITION_TAGS

SAMPLES = "samples.parquet"
ANNOTATIONS = "annotations"
DEVICE = "device"  # reserved labeler name: the drive's on-device detections
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_OVERHANG_PX = 1.0


@dataclass(frozen=True)
class ImageRef:
    """An image of the dataset and where it came from."""

    path: str  # relative to the dataset
    sample_id: str
    drive_id: str
    topic: str
    frame_idx: int
    time_ns: int
    seg_idx: int
    label_path: str
    tags: Mapping[str, Any]


@dataclass
class DatasetIndex:
    root: Path
    images: dict[str, ImageRef] = field(default_factory=dict)
    samples: dict[str, ImageRef] = field(default_factory=dict)  # sample_id -> its first image

    @classmethod
    def load(cls, root: Path) -> DatasetIndex:
        """The images of an exported dataset; an image shared by samples belongs to the
        sample nearest it in time. CatalogError without a readable samples.parquet."""
        import pyarrow.parquet as pq

        path = root / SAMPLES
        try:
            rows = pq.read_table(path).to_pylist()
        except (OSError, ValueError) as err:
            raise CatalogError(f"{path}: not an exported dataset: {err}") from None
        index = cls(root)
        best: dict[str, int] = {}
        for row in rows:
            tags = {k: row.get(k) for k in CONDITION_TAGS}
            for f in row["frames"] or []:
                ref = ImageRef(
                    f["path"], row["sample_id"], row["drive_id"], f["topic"], f["frame_idx"],
                    f["time_ns"], row["seg_idx"], row["label_path"], tags,
                )  # fmt: skip
                index.samples.setdefault(row["sample_id"], ref)
                if f["path"] not in best or abs(f["dt_ns"]) < best[f["path"]]:
                    best[f["path"]] = abs(f["dt_ns"])
                    index.images[f["path"]] = ref
        return index

    @property
    def key(self) -> str:
        """The dataset's name in the ``labels`` table: its absolute path."""
        return str(self.root.resolve())


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG or JPEG header. CatalogError if neither."""
    try:
        with path.open("rb") as f:
            head = f.read(32)
            if head[:8] == b"\x89PNG\r\n\x1a\n":
                w, h = struct.unpack(">II", head[16:24])
                return int(w), int(h)
            if head[:2] == b"\xff\xd8":
                f.seek(2)
                while marker := f.read(4):
                    kind, length = marker[1], struct.unpack(">H", marker[2:4])[0]
                    if 0xC0 <= kind <= 0xCF and kind not in (0xC4, 0xC8, 0xCC):
                        h, w = struct.unpack(">xHH", f.read(5))
                        return int(w), int(h)
                    f.seek(length - 2, os.SEEK_CUR)
    except OSError as err:
        raise CatalogError(f"{path}: cannot read the image: {err.strerror}") from None
    raise CatalogError(f"{path}: not a PNG or JPEG image")


# ---------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Label:
    """One box (``tag`` None) or one tag (``cls`` is its value) of one item."""

    image: str | None
    sample_id: str
    cls: str | None
    box: tuple[float, float, float, float] | None = None
    tag: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)


def parse_coco(doc: Any, index: DatasetIndex, source: Path) -> tuple[list[str], list[Label]]:
    """(images listed, boxes) of a COCO document, checked against the dataset."""
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise CatalogError(f"{source}: not COCO JSON (no 'images' list)")
    cats = {}
    for c in doc.get("categories", []):
        cats[c.get("id")] = str(c.get("name"))
    images: dict[Any, str] = {}
    sizes: dict[str, tuple[int, int]] = {}
    for im in doc["images"]:
        name = str(im.get("file_name", ""))
        if name not in index.images:
            raise CatalogError(f"{source}: unknown image {name!r} (not in {index.root / SAMPLES})")
        images[im.get("id")] = name
        sizes[name] = image_size(index.root / name)
    labels = []
    for k, ann in enumerate(doc.get("annotations", [])):
        what = f"annotation {ann.get('id', k)}"
        if ann.get("image_id") not in images:
            raise CatalogError(f"{source}: {what}: unknown image id {ann.get('image_id')!r}")
        if ann.get("category_id") not in cats:
            raise CatalogError(f"{source}: {what}: unknown category id {ann.get('category_id')!r}")
        name = images[ann["image_id"]]
        box = _box(ann.get("bbox"), sizes[name], f"{source}: {what} on {name}")
        extra = {k: v for k, v in ann.items() if k not in ("id", "image_id", "category_id", "bbox")}
        extra.pop("segmentation", None)
        labels.append(
            Label(name, index.images[name].sample_id, cats[ann["category_id"]], box, None, extra)
        )
    return list(images.values()), labels


def _box(bbox: Any, size: tuple[int, int], where: str) -> tuple[float, float, float, float]:
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise CatalogError(f"{where}: bbox {bbox!r} is not [x, y, width, height]") from None
    width, height = size
    if w <= 0 or h <= 0:
        raise CatalogError(f"{where}: bbox {bbox!r} has no area")
    if (
        x < -_OVERHANG_PX
        or y < -_OVERHANG_PX
        or x + w > width + _OVERHANG_PX
        or (y + h > height + _OVERHANG_PX)
    ):
        raise CatalogError(f"{where}: box {bbox!r} outside the image ({width}x{height})")
    return (max(x, 0.0), max(y, 0.0), min(x + w, width), min(y + h, height))


def parse_tags(rows: Sequence[Mapping[str, Any]], index: DatasetIndex, source: Path) -> list[Label]:
    """Tags of images (column ``image``) or samples (column ``sample_id``)."""
    labels = []
    for k, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping):
            raise CatalogError(f"{source}: row {k} is not an object")
        if row.get("image") is not None:
            image = str(row["image"])
            if image not in index.images:
                raise CatalogError(f"{source}: row {k}: unknown image {image!r}")
            item: tuple[str | None, str] = (image, index.images[image].sample_id)
        elif row.get("sample_id") is not None:
            sample = str(row["sample_id"])
            if sample not in index.samples:
                raise CatalogError(f"{source}: row {k}: unknown sample {sample!r}")
            item = (None, sample)
        else:
            raise CatalogError(f"{source}: row {k} has neither 'image' nor 'sample_id'")
        for tag, value in row.items():
            if tag in ("image", "sample_id") or value is None or value == "":
                continue
            labels.append(Label(item[0], item[1], str(value), None, str(tag)))
    return labels


def read_file(path: Path, index: DatasetIndex) -> tuple[str, list[str], list[Label]]:
    """("boxes" or "tags", images listed (boxes only), labels) of a labeling tool's file."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise CatalogError(f"{path}: cannot read: {err}") from None
    if path.suffix.lower() == ".csv":
        try:
            rows = list(csv.DictReader(text.splitlines()))
        except csv.Error as err:
            raise CatalogError(f"{path}: malformed CSV: {err}") from None
        return "tags", [], parse_tags(rows, index, path)
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise CatalogError(f"{path}: malformed JSON: {err}") from None
    if isinstance(doc, list):
        return "tags", [], parse_tags(doc, index, path)
    images, labels = parse_coco(doc, index, path)
    return "boxes", images, labels


# ---------------------------------------------------------------------------- storing


@dataclass(frozen=True)
class Imported:
    dataset: str
    labeler: str
    kind: str
    images: int
    labels: int
    path: str  # where the labels are kept beside the dataset


def check_labeler(name: str) -> str:
    if not _NAME.match(name) or name == DEVICE:
        raise CatalogError(
            f"labeler {name!r}: use letters, digits, '_', '.', '-' ({DEVICE!r} is reserved for "
            "the on-device detections)"
        )
    return name


def import_labels(store: Path, dataset: Path, labeler: str, file: Path) -> Imported:
    """Read ``file``, keep its labels beside ``dataset`` and in the store's catalog."""
    from drivecat.catalog import db

    check_labeler(labeler)
    index = DatasetIndex.load(dataset)
    kind, images, labels = read_file(file, index)
    folder = dataset / ANNOTATIONS / labeler
    target = folder / f"{kind}.json"
    doc: dict[str, Any] = {"labeler": labeler, "source": str(file), "images": images}
    if kind == "tags" and target.exists():  # keep the tags of other names
        names = {x.tag for x in labels}
        old = json.loads(target.read_text())["labels"]
        doc["labels"] = [x for x in old if x["tag"] not in names]
    doc.setdefault("labels", [])
    doc["labels"] += [_as_json(x) for x in labels]
    now = datetime.now(UTC)
    con = db.connect(store)
    try:
        with db.transaction(con):
            if kind == "boxes":
                con.execute(
                    "DELETE FROM labels WHERE dataset = ? AND labeler = ? AND tag IS NULL",
                    [index.key, labeler],
                )
            else:
                con.execute(
                    "DELETE FROM labels WHERE dataset = ? AND labeler = ? "
                    "AND list_contains(?, tag)",
                    [index.key, labeler, sorted({str(x.tag) for x in labels})],
                )
            rows = _rows(index, labeler, labels, now)
            if rows.num_rows:
                con.register("_incoming_labels", rows)
                con.execute("INSERT INTO labels BY NAME SELECT * FROM _incoming_labels")
                con.unregister("_incoming_labels")
            _journal(store, index.key, labeler, kind, rows)
            _write_atomic(target, doc)  # last: a failed write rolls the catalog back
    finally:
        con.close()
    return Imported(index.key, labeler, kind, len(images), len(labels), str(target))


def _journal(store: Path, dataset: str, labeler: str, kind: str, rows: pa.Table) -> None:
    """Keep the rows in the store's journal too, so that ``catalog rebuild`` restores them
    (the catalog alone must never hold them): one record per labeler's boxes of a dataset,
    one per tag name, each replaced by a re-import exactly as the DELETE above replaces it."""
    from drivecat.catalog import journal

    records = rows.to_pylist()
    if kind == "boxes":
        journal.record_labels(store, records, key=f"{dataset}\0{labeler}\0boxes")
        return
    for tag in sorted({str(r["tag"]) for r in records}):
        same = [r for r in records if str(r["tag"]) == tag]
        journal.record_labels(store, same, key=f"{dataset}\0{labeler}\0tag\0{tag}")


def _as_json(x: Label) -> dict[str, Any]:
    return {
        "image": x.image, "sample_id": x.sample_id, "class": x.cls,
        "box": list(x.box) if x.box else None, "tag": x.tag, "attributes": dict(x.attributes),
    }  # fmt: skip


def _rows(index: DatasetIndex, labeler: str, labels: list[Label], now: datetime) -> pa.Table:
    out: dict[str, list[Any]] = {c: [] for c in LABELS.names}
    for x in labels:
        ref = index.images[x.image] if x.image else index.samples[x.sample_id]
        row = {
            "dataset": index.key, "sample_id": x.sample_id, "frame": x.image, "labeler": labeler,
            "class": x.cls, "box": list(x.box) if x.box else None,
            "attributes": json.dumps(dict(x.attributes)) if x.attributes else None,
            "imported_at": now, "drive_id": ref.drive_id,
            "topic": ref.topic if x.image else None,
            "frame_idx": ref.frame_idx if x.image else None,
            "time_ns": ref.time_ns, "seg_idx": ref.seg_idx, "tag": x.tag,
        }  # fmt: skip
        for c in LABELS.names:
            out[c].append(row.get(c))
    return pa.table(out, schema=LABELS.arrow_schema)


def _write_atomic(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------- reading back


@dataclass(frozen=True)
class LabelSet:
    """One labeler's labels over a dataset, as agreement needs them."""

    images: tuple[str, ...]  # images the labeler looked at (listed in its COCO file)
    boxes: dict[str, list[Box]]
    tags: dict[str, dict[str, str]]  # image or sample id -> {tag: value}


def load_labeler(dataset: Path, labeler: str) -> LabelSet:
    """A labeler's imported labels from beside the dataset. CatalogError if it has none."""
    folder = dataset / ANNOTATIONS / labeler
    boxes: dict[str, list[Box]] = {}
    tags: dict[str, dict[str, str]] = {}
    images: list[str] = []
    if not folder.is_dir():
        raise CatalogError(f"{folder}: no labels imported for labeler {labeler!r}")
    if (folder / "boxes.json").exists():
        doc = json.loads((folder / "boxes.json").read_text())
        images = list(doc["images"])
        for x in doc["labels"]:
            boxes.setdefault(x["image"], []).append(Box(x["class"], tuple(x["box"])))  # type: ignore[arg-type]
    if (folder / "tags.json").exists():
        for x in json.loads((folder / "tags.json").read_text())["labels"]:
            tags.setdefault(x["image"] or x["sample_id"], {})[x["tag"]] = x["class"]
    return LabelSet(tuple(images), boxes, tags)
