"""Topic roles, found from the schema name (never the topic name); config may override."""

from __future__ import annotations

from collections.abc import Mapping

from drivecat.types import Role

# Schema names as they appear in MCAP schema records. ROS names come in the ROS 1 form
# (``pkg/Type``) and the ROS 2 form (``pkg/msg/Type``); both are listed by normalising.
_BY_SCHEMA: dict[str, Role] = {
    "foxglove.CompressedVideo": Role.VIDEO,
    "foxglove_msgs/CompressedVideo": Role.VIDEO,
    "sensor_msgs/CompressedImage": Role.IMAGE,
    "sensor_msgs/Image": Role.IMAGE,
    "foxglove.CompressedImage": Role.IMAGE,
    "foxglove.RawImage": Role.IMAGE,
    "foxglove.PointCloud": Role.LIDAR,
    "sensor_msgs/PointCloud2": Role.LIDAR,
    "foxglove.LocationFix": Role.GPS,
    "sensor_msgs/NavSatFix": Role.GPS,
    "drivecat.perception.ObjectList": Role.DETECTIONS,
    "foxglove.SceneUpdate": Role.DETECTIONS,
    "vision_msgs/Detection3DArray": Role.DETECTIONS,
    "vision_msgs/Detection2DArray": Role.DETECTIONS,
    "drivecat.vehicle.State": Role.VEHICLE,
    "drivecat.vehicle.FrameTime": Role.FRAME_TIMES,
    # The contract messages as ROS 2 types (see sample_logs/ros2.py)
    "drivecat_msgs/ObjectList": Role.DETECTIONS,
    "drivecat_msgs/State": Role.VEHICLE,
    "drivecat_msgs/FrameTime": Role.FRAME_TIMES,
}


def normalise_schema_name(name: str) -> str:
    """``sensor_msgs/msg/NavSatFix`` -> ``sensor_msgs/NavSatFix``; other names unchanged."""
    parts = name.split("/")
    if len(parts) == 3 and parts[1] == "msg":
        return f"{parts[0]}/{parts[2]}"
    return name


def role_for(topic: str, schema_name: str | None, overrides: Mapping[str, str] = {}) -> Role:
    """The role of a topic: a config override by topic first, else by schema name."""
    if topic in overrides:
        return Role(overrides[topic])
    if not schema_name:
        return Role.OTHER
    return _BY_SCHEMA.get(normalise_schema_name(schema_name), Role.OTHER)


__all__ = ["Role", "normalise_schema_name", "role_for"]
