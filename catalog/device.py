"""The on-device detections as a labeler: 3D objects projected into the exported images.

Each sample's label JSON carries the detections nearest it (ego frame: x forward, y left,
z up, metres, the object's centre). An object becomes a box through a pinhole camera from a
calibration document (the generator's ``calibration.json`` shape: ``cameras.<name>`` with
``fx, fy, cx, cy``, ``translation`` [x, y, z] in the ego frame and ``yaw_deg``), standing on
the ground (z = 0) with a typical size for its class (:data:`CLASS_SIZE_M`): the detections
carry no extent, so the size is an assumption, and mean IoU against people measures it too.

The camera of an image's topic is the calibration camera whose name's words all appear in
the topic (``camera_front`` for ``/camera/front/video``). Without a calibration for an
image's camera there is no box to compare: CatalogError names the topic.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from drivecat.catalog.agreement import Box
from drivecat.catalog.errors import CatalogError
from drivecat.catalog.labels import DatasetIndex

# width, height in metres of a road user as a camera sees it; an assumption, see above.
CLASS_SIZE_M = {
    "pedestrian": (0.5, 1.75),
    "cyclist": (0.6, 1.8),
    "vehicle": (1.8, 1.5),
    "animal": (0.6, 0.6),
}
_NEAREST_M = 1.0


def camera_for(topic: str, calibration: Mapping[str, Any]) -> Mapping[str, Any] | None:
    words = set(re.split(r"[/_.]+", topic)) - {""}
    found = [
        cam
        for name, cam in calibration.get("cameras", {}).items()
        if set(re.split(r"[/_.]+", name)) - {""} <= words
    ]
    return found[0] if len(found) == 1 else None


def project(
    obj: Mapping[str, Any], cam: Mapping[str, Any]
) -> tuple[float, float, float, float] | None:
    """The image box of one detection, clipped; None when behind or outside the image."""
    cls = str(obj["class"]).lower()
    width_m, height_m = CLASS_SIZE_M.get(cls, (1.0, 1.0))
    tx, ty, tz = (float(v) for v in cam.get("translation", (0.0, 0.0, 0.0)))
    yaw = math.radians(float(cam.get("yaw_deg", 0.0)))
    dx, dy = float(obj["x"]) - tx, float(obj["y"]) - ty
    depth = dx * math.cos(yaw) + dy * math.sin(yaw)
    lateral = -dx * math.sin(yaw) + dy * math.cos(yaw)
    if depth <= _NEAREST_M:
        return None
    fx, fy, cx, cy = (float(cam[k]) for k in ("fx", "fy", "cx", "cy"))
    left = cx - fx * (lateral + width_m / 2) / depth
    right = cx - fx * (lateral - width_m / 2) / depth
    bottom = cy + fy * tz / depth  # the ground, tz below the camera
    top = cy - fy * (height_m - tz) / depth
    w, h = float(cam["width"]), float(cam["height"])
    box = (max(left, 0.0), max(top, 0.0), min(right, w), min(bottom, h))
    return box if box[2] > box[0] and box[3] > box[1] else None


def device_boxes(index: DatasetIndex, calibration: Mapping[str, Any]) -> dict[str, list[Box]]:
    """image -> projected boxes of the detections nearest its sample."""
    out: dict[str, list[Box]] = {}
    for image, ref in index.images.items():
        cam = camera_for(ref.topic, calibration)
        if cam is None:
            raise CatalogError(
                f"{index.root}: no calibration camera matches topic {ref.topic!r}: cannot "
                "project the device detections"
            )
        label = json.loads((index.root / ref.label_path).read_text())
        detections = label.get("detections") or {}
        boxes = []
        for obj in detections.get("objects", []):
            box = project(obj, cam)
            if box is not None:
                boxes.append(Box(str(obj["class"]).lower(), box))
        out[image] = boxes
    return out


def load_calibration(path: Path) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CatalogError(f"{path}: cannot read the calibration: {err}") from None
    if not isinstance(doc.get("cameras"), dict):
        raise CatalogError(f"{path}: no 'cameras' in the calibration")
    return doc
