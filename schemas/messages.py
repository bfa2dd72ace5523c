"""The contract message classes, generated from schemas/proto by drivecat.schemas.regenerate."""

from __future__ import annotations

from drivecat.schemas.generated.drivecat.perception_pb2 import Object, ObjectClass, ObjectList
from drivecat.schemas.generated.drivecat.vehicle_pb2 import FrameTime, State, WiperMode

__all__ = ["FrameTime", "Object", "ObjectClass", "ObjectList", "State", "WiperMode"]
