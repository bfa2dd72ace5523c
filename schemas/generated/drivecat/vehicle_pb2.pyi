import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WiperMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WIPER_OFF: _ClassVar[WiperMode]
    WIPER_INTERMITTENT: _ClassVar[WiperMode]
    WIPER_LOW: _ClassVar[WiperMode]
    WIPER_HIGH: _ClassVar[WiperMode]
WIPER_OFF: WiperMode
WIPER_INTERMITTENT: WiperMode
WIPER_LOW: WiperMode
WIPER_HIGH: WiperMode

class State(_message.Message):
    __slots__ = ("timestamp", "speed_mps", "yaw_rate", "wipers", "rain_intensity", "fog_lights", "headlights", "outside_temp_c")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SPEED_MPS_FIELD_NUMBER: _ClassVar[int]
    YAW_RATE_FIELD_NUMBER: _ClassVar[int]
    WIPERS_FIELD_NUMBER: _ClassVar[int]
    RAIN_INTENSITY_FIELD_NUMBER: _ClassVar[int]
    FOG_LIGHTS_FIELD_NUMBER: _ClassVar[int]
    HEADLIGHTS_FIELD_NUMBER: _ClassVar[int]
    OUTSIDE_TEMP_C_FIELD_NUMBER: _ClassVar[int]
    timestamp: _timestamp_pb2.Timestamp
    speed_mps: float
    yaw_rate: float
    wipers: WiperMode
    rain_intensity: float
    fog_lights: bool
    headlights: bool
    outside_temp_c: float
    def __init__(self, timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., speed_mps: _Optional[float] = ..., yaw_rate: _Optional[float] = ..., wipers: _Optional[_Union[WiperMode, str]] = ..., rain_intensity: _Optional[float] = ..., fog_lights: _Optional[bool] = ..., headlights: _Optional[bool] = ..., outside_temp_c: _Optional[float] = ...) -> None: ...

class FrameTime(_message.Message):
    __slots__ = ("frame_index", "timestamp")
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    frame_index: int
    timestamp: _timestamp_pb2.Timestamp
    def __init__(self, frame_index: _Optional[int] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
