import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ObjectClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UNKNOWN: _ClassVar[ObjectClass]
    PEDESTRIAN: _ClassVar[ObjectClass]
    CYCLIST: _ClassVar[ObjectClass]
    VEHICLE: _ClassVar[ObjectClass]
    ANIMAL: _ClassVar[ObjectClass]
    OTHER: _ClassVar[ObjectClass]
UNKNOWN: ObjectClass
PEDESTRIAN: ObjectClass
CYCLIST: ObjectClass
VEHICLE: ObjectClass
ANIMAL: ObjectClass
OTHER: ObjectClass

class Object(_message.Message):
    __slots__ = ("track_id", "object_class", "x", "y", "z", "confidence")
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_CLASS_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    track_id: int
    object_class: ObjectClass
    x: float
    y: float
    z: float
    confidence: float
    def __init__(self, track_id: _Optional[int] = ..., object_class: _Optional[_Union[ObjectClass, str]] = ..., x: _Optional[float] = ..., y: _Optional[float] = ..., z: _Optional[float] = ..., confidence: _Optional[float] = ...) -> None: ...

class ObjectList(_message.Message):
    __slots__ = ("timestamp", "frame_id", "objects")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    timestamp: _timestamp_pb2.Timestamp
    frame_id: str
    objects: _containers.RepeatedCompositeFieldContainer[Object]
    def __init__(self, timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., frame_id: _Optional[str] = ..., objects: _Optional[_Iterable[_Union[Object, _Mapping]]] = ...) -> None: ...
