"""The committed generated code in ``schemas/generated`` matches the .proto files.

Each contract proto is compiled by protoc here, and its FileDescriptorProto is compared
with the one embedded in the committed ``*_pb2.py`` module, so that the protoc version
banner in the generated text does not matter. Run ``python -m drivecat.schemas.regenerate`` to fix
a failure.
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

from google.protobuf import descriptor_pb2

from drivecat.schemas.regenerate import PROTO_ROOT, contract_protos
from drivecat.schemas.sources import compile_protos


def _default_json_name(name: str) -> str:
    # protobuf's rule: drop each underscore and upper-case the letter after it.
    out, upper = [], False
    for char in name:
        if char == "_":
            upper = True
        else:
            out.append(char.upper() if upper else char)
            upper = False
    return "".join(out)


def _normalized(file: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    """Without what protoc adds to descriptor sets but not to generated code."""
    file = descriptor_pb2.FileDescriptorProto.FromString(file.SerializeToString())
    file.ClearField("source_code_info")
    todo = list(file.message_type)
    while todo:
        message = todo.pop()
        todo.extend(message.nested_type)
        for field in message.field:
            if field.json_name == _default_json_name(field.name):
                field.ClearField("json_name")
    return file


def _compiled(root: Path) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    protos = [root / p for p in contract_protos()]
    return {f.name: _normalized(f) for f in compile_protos(root, protos).file}


def _committed(proto: Path) -> descriptor_pb2.FileDescriptorProto:
    module = "drivecat.schemas.generated." + ".".join(proto.with_suffix("").parts) + "_pb2"
    serialized = importlib.import_module(module).DESCRIPTOR.serialized_pb
    return descriptor_pb2.FileDescriptorProto.FromString(serialized)


def test_there_are_contract_protos() -> None:
    assert {str(p) for p in contract_protos()} >= {
        "drivecat/perception.proto",
        "drivecat/vehicle.proto",
    }


def test_committed_generated_code_matches_the_protos() -> None:
    compiled = _compiled(PROTO_ROOT)
    for proto in contract_protos():
        assert compiled[str(proto)] == _committed(proto), (
            f"schemas/generated is stale for {proto}: run python -m drivecat.schemas.regenerate"
        )


def test_an_edited_proto_no_longer_matches(tmp_path: Path) -> None:
    root = tmp_path / "proto"
    shutil.copytree(PROTO_ROOT, root)
    perception = root / "drivecat" / "perception.proto"
    text = perception.read_text()
    assert "double x = 3;" in text
    perception.write_text(text.replace("double x = 3;", "float x = 3;"))
    compiled = _compiled(root)
    assert compiled["drivecat/perception.proto"] != _committed(Path("drivecat/perception.proto"))
    assert compiled["drivecat/vehicle.proto"] == _committed(Path("drivecat/vehicle.proto"))
