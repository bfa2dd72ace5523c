"""The contract message classes, generated from ``schemas/proto`` (see ``schemas.regenerate``)."""

from __future__ import annotations

from schemas.generated.drivecat.perception_pb2 import Object, ObjectClass, ObjectList
from schemas.generated.drivecat.vehicle_pb2 import FrameTime, State, WiperMode

__all__ = ["FrameTime", "Object", "ObjectClass", "ObjectList", "State", "WiperMode"]
