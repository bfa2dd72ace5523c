"""True 2D boxes of the road users in every camera frame of a sample drive.

The renderer (``sample_logs.scene``) draws each road user as a few rectangles and ellipses
around a pinhole projection; the true box of an object is the union of its parts, in float
pixels (left, top, right, bottom), clipped to the image. ``visible`` is the share of the
box's pixels that the object itself paints once nearer objects and the barcode band are
drawn over it (painter's order, as the renderer does), so a labeler simulation can skip
objects a person could not see.

``boxes.json`` (written beside ``truth.json`` by :func:`write_boxes`)::

    {"width": 640, "height": 360,
     "videos": {topic: {"facing_rear": bool, "frames": [
         {"index": k, "capture_ns": ..., "weather": ..., "time_of_day": ...,
          "boxes": [{"track_id", "class", "box": [l, t, r, b], "depth_m", "visible"}]}]}}}

This module reads the generator's world and scene, never drivecat's code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drivecat.schemas.messages import ObjectClass
from sample_logs.camera import _band_layout
from sample_logs.scene import _NEAREST_M, _PARTS, CAMERA_HEIGHT_M, View, _geometry
from sample_logs.world import World

BOXES_FILE = "boxes.json"
# The classes the renderer draws, by the View field that holds them.
DRAWN = {
    "pedestrian": ObjectClass.PEDESTRIAN,
    "cyclist": ObjectClass.CYCLIST,
    "vehicle": ObjectClass.VEHICLE,
}


@dataclass(frozen=True)
class TrueBox:
    """One drawn road user: float pixel box (left, top, right, bottom), clipped."""

    track_id: int
    cls: str
    box: tuple[float, float, float, float]
    depth_m: float
    visible: float  # share of the box's pixels showing this object, 0..1

    def as_dict(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "class": self.cls,
            "box": [round(v, 3) for v in self.box],
            "depth_m": round(self.depth_m, 3),
            "visible": round(self.visible, 3),
        }


def view_boxes(
    view: View, width: int, height: int, track_ids: Mapping[str, list[int]] | None = None
) -> list[TrueBox]:
    """The box of every object ``view`` draws at this image size, near ones first.

    ``track_ids`` gives, per class name, the track id of each position in the view's tuple
    of that class (-1 when not given). Objects the renderer does not draw (behind the camera
    or nearer than 1 m along its axis) and boxes wholly outside the image are left out.
    """
    geo = _geometry(width, height)
    sign = -1.0 if view.facing_rear else 1.0
    found: list[tuple[float, str, int, tuple[float, float, float, float]]] = []
    for cls, points in (
        ("pedestrian", view.pedestrians),
        ("cyclist", view.cyclists),
        ("vehicle", view.vehicles),
    ):
        ids = (track_ids or {}).get(cls, [])
        for i, (x, y) in enumerate(points):
            depth, lateral = sign * x, sign * y
            if depth <= _NEAREST_M:
                continue
            scale = geo.focal_px / depth
            centre_u = geo.cx - lateral * scale
            ground_v = geo.cy + CAMERA_HEIGHT_M * scale
            parts = _PARTS[cls]
            left = centre_u + min(p.offset_m - p.half_w_m for p in parts) * scale
            right = centre_u + max(p.offset_m + p.half_w_m for p in parts) * scale
            top = ground_v - max(p.z1_m for p in parts) * scale
            bottom = ground_v - min(p.z0_m for p in parts) * scale
            box = (max(left, 0.0), max(top, 0.0), min(right, width), min(bottom, height))
            if box[2] - box[0] <= 0 or box[3] - box[1] <= 0:
                continue
            found.append((depth, cls, ids[i] if i < len(ids) else -1, box))
    visible = _visibility([b for _, _, _, b in found], [d for d, _, _, _ in found], width, height)
    out = [
        TrueBox(tid, cls, box, depth, vis)
        for (depth, cls, tid, box), vis in zip(found, visible, strict=True)
    ]
    return sorted(out, key=lambda b: b.depth_m)


def _visibility(
    boxes: list[tuple[float, float, float, float]], depths: list[float], width: int, height: int
) -> list[float]:
    """Share of each box left uncovered by nearer boxes and the barcode band.

    Painted far first, as the renderer does; whole boxes stand in for the parts, which is
    close enough to judge whether a person could see the object."""
    owner = np.full((height, width), -1, dtype=np.int64)
    areas = []
    for k in sorted(range(len(boxes)), key=lambda k: -depths[k]):
        left, top, right, bottom = (round(v) for v in boxes[k])
        right, bottom = max(right, left + 1), max(bottom, top + 1)
        owner[top:bottom, left:right] = k
    for left, top, right, bottom in ((round(v) for v in b) for b in boxes):
        areas.append(max(right - left, 1) * max(bottom - top, 1))
    owner[: _band_layout(width, height)[0]] = -1
    counts = np.bincount(owner[owner >= 0].ravel(), minlength=len(boxes))
    return [min(float(counts[k]) / areas[k], 1.0) for k in range(len(boxes))]


def frame_boxes(world: World, capture_ns: int, width: int, height: int, facing_rear: bool) -> dict:
    """One frame's entry of boxes.json: its conditions and true boxes, as the camera that
    captured it at ``capture_ns`` drew them (the same world.view call as the sensors)."""
    t = (capture_ns - world.origin_ns) / 1e9
    view = world.view(t, facing_rear=facing_rear)
    seen = world.objects(t, world.ego(t), max_range=50.0)
    ids = {name: [o.track_id for o in seen if o.object_class == cls] for name, cls in DRAWN.items()}
    boxes = view_boxes(view, width, height, ids)
    return {
        "capture_ns": capture_ns,
        "weather": view.weather,
        "time_of_day": view.time_of_day,
        "boxes": [b.as_dict() for b in boxes],
    }


def write_boxes(
    path: Path,
    world: World,
    videos: Mapping[str, Any],
    width: int,
    height: int,
    rear_topics: frozenset[str],
) -> None:
    """Write boxes.json for the frames of ``videos`` (truth.json's ``videos``)."""
    doc: dict[str, Any] = {"width": width, "height": height, "videos": {}}
    for topic, video in sorted(videos.items()):
        rear = topic in rear_topics
        frames = [
            {"index": f["index"], **frame_boxes(world, f["capture_ns"], width, height, rear)}
            for f in video["frames"]
        ]
        doc["videos"][topic] = {"facing_rear": rear, "frames": frames}
    path.write_text(json.dumps(doc) + "\n")


def read_boxes(drive: Path) -> dict[str, Any]:
    """boxes.json of a generated drive folder."""
    doc: dict[str, Any] = json.loads((drive / BOXES_FILE).read_text())
    return doc
