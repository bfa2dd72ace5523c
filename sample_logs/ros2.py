"""The ``ros2`` variant: the same messages as ROS 2 CDR with ``ros2msg`` schemas.

``convert`` turns one generated message (protobuf, or the IMU's JSON) into the ROS 2 type a
ROS 2 car would record, serialized with mcap_ros2's CDR encoder. Values are carried over
exactly: the float32 fields (rain intensity, temperature, confidence) stay float32, so the
tags of a ROS 2 drive equal those of the protobuf drive of the same seed.

| generated | ROS 2 type | notes |
|---|---|---|
| foxglove.CompressedVideo | foxglove_msgs/msg/CompressedVideo | same fields |
| foxglove.PointCloud | sensor_msgs/msg/PointCloud2 | height 1, x y z intensity float32 |
| foxglove.LocationFix | sensor_msgs/msg/NavSatFix | header.stamp is the fix time |
| drivecat.perception.ObjectList | drivecat_msgs/msg/ObjectList | header + objects, same fields |
| drivecat.vehicle.State | drivecat_msgs/msg/State | header + the State fields |
| drivecat.vehicle.FrameTime | drivecat_msgs/msg/FrameTime | same fields |
| drivecat.Imu (JSON) | sensor_msgs/msg/Imu | orientation unknown (covariance[0] = -1) |
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from foxglove_schemas_protobuf.CompressedVideo_pb2 import CompressedVideo
from foxglove_schemas_protobuf.LocationFix_pb2 import LocationFix
from foxglove_schemas_protobuf.PointCloud_pb2 import PointCloud
from mcap_ros2._dynamic import serialize_dynamic

# A data definition generated from schemas/proto, not logic of the code under test.
from drivecat.schemas.messages import FrameTime, ObjectList, State

_SEP = "\n" + "=" * 80 + "\n"
_TIME = "MSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec"
_HEADER = "MSG: std_msgs/Header\nbuiltin_interfaces/Time stamp\nstring frame_id"
_VECTOR3 = "MSG: geometry_msgs/Vector3\nfloat64 x\nfloat64 y\nfloat64 z"
_QUATERNION = "MSG: geometry_msgs/Quaternion\nfloat64 x\nfloat64 y\nfloat64 z\nfloat64 w"

MSGDEFS: dict[str, str] = {
    "foxglove_msgs/msg/CompressedVideo": _SEP.join(
        ["builtin_interfaces/Time timestamp\nstring frame_id\nuint8[] data\nstring format", _TIME]
    ),
    "sensor_msgs/msg/PointCloud2": _SEP.join(
        [
            "std_msgs/Header header\nuint32 height\nuint32 width\nsensor_msgs/PointField[] fields\n"
            "bool is_bigendian\nuint32 point_step\nuint32 row_step\nuint8[] data\nbool is_dense",
            _HEADER,
            _TIME,
            "MSG: sensor_msgs/PointField\nuint8 INT8=1\nuint8 UINT8=2\nuint8 INT16=3\n"
            "uint8 UINT16=4\nuint8 INT32=5\nuint8 UINT32=6\nuint8 FLOAT32=7\nuint8 FLOAT64=8\n"
            "string name\nuint32 offset\nuint8 datatype\nuint32 count",
        ]
    ),
    "sensor_msgs/msg/NavSatFix": _SEP.join(
        [
            "std_msgs/Header header\nsensor_msgs/NavSatStatus status\nfloat64 latitude\n"
            "float64 longitude\nfloat64 altitude\nfloat64[9] position_covariance\n"
            "uint8 COVARIANCE_TYPE_UNKNOWN=0\nuint8 COVARIANCE_TYPE_APPROXIMATED=1\n"
            "uint8 COVARIANCE_TYPE_DIAGONAL_KNOWN=2\nuint8 COVARIANCE_TYPE_KNOWN=3\n"
            "uint8 position_covariance_type",
            _HEADER,
            _TIME,
            "MSG: sensor_msgs/NavSatStatus\nint8 STATUS_NO_FIX=-1\nint8 STATUS_FIX=0\n"
            "int8 STATUS_SBAS_FIX=1\nint8 STATUS_GBAS_FIX=2\nint8 status\nuint16 SERVICE_GPS=1\n"
            "uint16 SERVICE_GLONASS=2\nuint16 SERVICE_COMPASS=4\nuint16 SERVICE_GALILEO=8\n"
            "uint16 service",
        ]
    ),
    "drivecat_msgs/msg/ObjectList": _SEP.join(
        [
            "std_msgs/Header header\ndrivecat_msgs/Object[] objects",
            _HEADER,
            _TIME,
            "MSG: drivecat_msgs/Object\nuint8 UNKNOWN=0\nuint8 PEDESTRIAN=1\nuint8 CYCLIST=2\n"
            "uint8 VEHICLE=3\nuint8 ANIMAL=4\nuint8 OTHER=5\nuint64 track_id\nuint8 object_class\n"
            "float64 x\nfloat64 y\nfloat64 z\nfloat32 confidence",
        ]
    ),
    "drivecat_msgs/msg/State": _SEP.join(
        [
            "std_msgs/Header header\nfloat64 speed_mps\nfloat64 yaw_rate\nuint8 WIPER_OFF=0\n"
            "uint8 WIPER_INTERMITTENT=1\nuint8 WIPER_LOW=2\nuint8 WIPER_HIGH=3\nuint8 wipers\n"
            "float32 rain_intensity\nbool fog_lights\nbool headlights\nfloat32 outside_temp_c",
            _HEADER,
            _TIME,
        ]
    ),
    "drivecat_msgs/msg/FrameTime": _SEP.join(
        ["uint64 frame_index\nbuiltin_interfaces/Time timestamp", _TIME]
    ),
    "sensor_msgs/msg/Imu": _SEP.join(
        [
            "std_msgs/Header header\ngeometry_msgs/Quaternion orientation\n"
            "float64[9] orientation_covariance\ngeometry_msgs/Vector3 angular_velocity\n"
            "float64[9] angular_velocity_covariance\ngeometry_msgs/Vector3 linear_acceleration\n"
            "float64[9] linear_acceleration_covariance",
            _HEADER,
            _TIME,
            _QUATERNION,
            _VECTOR3,
        ]
    ),
}


def _time(ts: Any) -> dict[str, int]:
    return {"sec": int(ts.seconds), "nanosec": int(ts.nanos)}


def _header(ts: Any, frame_id: str) -> dict[str, Any]:
    return {"stamp": _time(ts), "frame_id": frame_id}


def _video(data: bytes) -> dict[str, Any]:
    m = CompressedVideo.FromString(data)
    return {
        "timestamp": _time(m.timestamp),
        "frame_id": m.frame_id,
        "data": m.data,
        "format": m.format,
    }


def _cloud(data: bytes) -> dict[str, Any]:
    m = PointCloud.FromString(data)
    n = len(m.data) // m.point_stride
    fields = [{"name": f.name, "offset": f.offset, "datatype": 7, "count": 1} for f in m.fields]
    return {
        "header": _header(m.timestamp, m.frame_id),
        "height": 1,
        "width": n,
        "fields": fields,
        "is_bigendian": False,
        "point_step": m.point_stride,
        "row_step": m.point_stride * n,
        "data": m.data,
        "is_dense": True,
    }


def _fix(data: bytes) -> dict[str, Any]:
    m = LocationFix.FromString(data)
    return {
        "header": _header(m.timestamp, m.frame_id),
        "status": {"status": 0, "service": 1},
        "latitude": m.latitude,
        "longitude": m.longitude,
        "altitude": m.altitude,
        "position_covariance": list(m.position_covariance),
        "position_covariance_type": int(m.position_covariance_type),
    }


def _objects(data: bytes) -> dict[str, Any]:
    m = ObjectList.FromString(data)
    fields = ("track_id", "object_class", "x", "y", "z", "confidence")
    objects = [{f: getattr(o, f) for f in fields} for o in m.objects]
    return {"header": _header(m.timestamp, m.frame_id), "objects": objects}


def _state(data: bytes) -> dict[str, Any]:
    m = State.FromString(data)
    fields = ("speed_mps", "yaw_rate", "wipers", "rain_intensity", "fog_lights", "headlights")
    out: dict[str, Any] = {f: getattr(m, f) for f in (*fields, "outside_temp_c")}
    return {"header": _header(m.timestamp, "base_link"), **out}


def _frame_time(data: bytes) -> dict[str, Any]:
    m = FrameTime.FromString(data)
    return {"frame_index": m.frame_index, "timestamp": _time(m.timestamp)}


def _imu(data: bytes) -> dict[str, Any]:
    j = json.loads(data)
    ts = j["timestamp"]
    acc, gyro = j["linear_acceleration"], j["angular_velocity"]
    return {
        "header": {"stamp": {"sec": ts["sec"], "nanosec": ts["nsec"]}, "frame_id": "imu"},
        "orientation": {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0},
        "orientation_covariance": [-1.0] + [0.0] * 8,
        "angular_velocity": dict(zip("xyz", gyro, strict=True)),
        "angular_velocity_covariance": [0.0] * 9,
        "linear_acceleration": dict(zip("xyz", acc, strict=True)),
        "linear_acceleration_covariance": [0.0] * 9,
    }


_CONVERT: dict[str, tuple[str, Callable[[bytes], dict[str, Any]]]] = {
    "foxglove.CompressedVideo": ("foxglove_msgs/msg/CompressedVideo", _video),
    "foxglove.PointCloud": ("sensor_msgs/msg/PointCloud2", _cloud),
    "foxglove.LocationFix": ("sensor_msgs/msg/NavSatFix", _fix),
    "drivecat.perception.ObjectList": ("drivecat_msgs/msg/ObjectList", _objects),
    "drivecat.vehicle.State": ("drivecat_msgs/msg/State", _state),
    "drivecat.vehicle.FrameTime": ("drivecat_msgs/msg/FrameTime", _frame_time),
    "drivecat.Imu": ("sensor_msgs/msg/Imu", _imu),
}
_encoders: dict[str, Callable[[Any], bytes]] = {}


def convert(schema: str, data: bytes) -> tuple[str, bytes]:
    """(ROS 2 type name, CDR bytes) of one generated message. KeyError for an unknown schema."""
    name, to_dict = _CONVERT[schema]
    if name not in _encoders:
        _encoders[name] = serialize_dynamic(name, MSGDEFS[name])[name]
    return name, _encoders[name](to_dict(data))
