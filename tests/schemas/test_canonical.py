"""Canonical forms: protobuf (compiled by protoc), ROS .msg text, JSON schema.

Expected forms are written out by hand or built from the generator's own model of the
proto it wrote, never read back from the code under test.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivecat.schemas.canonical import (
    jsonschema_form,
    render_proto,
    ros_definition_forms,
    ros_msg_form,
    ros_type_name,
)
from drivecat.schemas.errors import SchemaError
from drivecat.schemas.sources import dump_lock, load_sources


def compile_text(folder: Path, files: dict[str, str]) -> dict[str, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return load_sources([folder]).types


def msg(package: str, *fields: dict) -> dict:
    return {"kind": "protobuf.message", "package": package, "fields": list(fields)}


def fld(name: str, number: int, kind: str, cardinality: str = "singular", **extra: str) -> dict:
    return {"name": name, "number": number, "type": kind, "cardinality": cardinality, **extra}


# --- protobuf, by hand --------------------------------------------------------------------


def test_proto3_form_has_presence_oneofs_maps_and_flattened_nested_types(tmp_path: Path) -> None:
    text = """
    syntax = "proto3";
    package a.b;
    // comments and options are not part of the form
    option java_package = "x.y";
    message Outer {
      message Inner { enum Mode { MODE_OFF = 0; MODE_ON = 2; } Mode mode = 1; }
      optional double d = 3 [json_name = "dee"];
      repeated sint32 packed = 2 [packed = false];
      map<string, Inner> by_name = 1;
      oneof choice { bytes raw = 5; Inner inner = 6; }
      optional Inner maybe = 7;
    }
    """
    forms = compile_text(tmp_path, {"x.proto": text})
    assert forms == {
        "a.b.Outer": msg(
            "a.b",
            fld("by_name", 1, "map<string, a.b.Outer.Inner>", "map"),
            fld("packed", 2, "sint32", "repeated"),
            fld("d", 3, "double", "optional"),
            fld("raw", 5, "bytes", oneof="choice"),
            fld("inner", 6, "a.b.Outer.Inner", oneof="choice"),
            fld("maybe", 7, "a.b.Outer.Inner"),
        ),
        "a.b.Outer.Inner": msg("a.b", fld("mode", 1, "a.b.Outer.Inner.Mode")),
        "a.b.Outer.Inner.Mode": {
            "kind": "protobuf.enum",
            "package": "a.b",
            "values": [{"name": "MODE_OFF", "number": 0}, {"name": "MODE_ON", "number": 2}],
        },
    }


def test_proto2_and_editions_presence(tmp_path: Path) -> None:
    proto2 = """
    syntax = "proto2";
    package p2;
    message M { optional int32 a = 1; required string b = 2; repeated bool c = 3; }
    """
    editions = """
    edition = "2023";
    package ed;
    option features.field_presence = IMPLICIT;
    message M {
      int32 a = 1;
      int32 b = 2 [features.field_presence = EXPLICIT];
      int32 c = 3 [features.field_presence = LEGACY_REQUIRED];
    }
    """
    forms = compile_text(tmp_path, {"p2.proto": proto2, "ed.proto": editions})
    assert forms["p2.M"]["fields"] == [
        fld("a", 1, "int32", "optional"),
        fld("b", 2, "string", "required"),
        fld("c", 3, "bool", "repeated"),
    ]
    assert forms["ed.M"]["fields"] == [
        fld("a", 1, "int32", "singular"),
        fld("b", 2, "int32", "optional"),
        fld("c", 3, "int32", "required"),
    ]


def test_imports_are_included_and_located(tmp_path: Path) -> None:
    text = 'syntax = "proto3";\npackage t;\nimport "google/protobuf/duration.proto";\n\n'
    text += "message M {\n  google.protobuf.Duration d = 1;\n}\n"
    result = load_sources([_write(tmp_path, "t.proto", text)])
    assert result.types["t.M"]["fields"] == [fld("d", 1, "google.protobuf.Duration")]
    assert result.types["google.protobuf.Duration"]["fields"] == [
        fld("seconds", 1, "int64"),
        fld("nanos", 2, "int32"),
    ]
    assert result.locations["t.M"] == (str(tmp_path / "t.proto"), 5)
    assert result.locations["t.M.d"] == (str(tmp_path / "t.proto"), 6)


def _write(folder: Path, name: str, text: str) -> Path:
    (folder / name).write_text(text)
    return folder / name


def test_render_proto_refuses_what_proto3_cannot_say() -> None:
    with pytest.raises(SchemaError, match="proto3 has no required"):
        render_proto({"p.M": msg("p", fld("a", 1, "int32", "required"))})
    enum = {"kind": "protobuf.enum", "package": "p", "values": [{"name": "A", "number": 1}]}
    with pytest.raises(SchemaError, match="needs a value numbered 0"):
        render_proto({"p.E": enum})


# --- protobuf, generated -----------------------------------------------------------------

SCALARS = [
    *("double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64"),
    *("fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes"),
]
MAP_KEYS = [s for s in SCALARS if s not in ("double", "float", "bytes")]
WORDS = st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True)


@dataclass
class GenField:
    name: str
    number: int
    kind: str  # scalar or fully qualified type name
    label: str  # "", "repeated", "optional", "map"
    key: str = ""
    oneof: str = ""


@dataclass
class GenEnum:
    name: str
    values: list[tuple[str, int]]


@dataclass
class GenMessage:
    name: str
    fields: list[GenField] = field(default_factory=list)
    messages: list[GenMessage] = field(default_factory=list)
    enums: list[GenEnum] = field(default_factory=list)


@dataclass
class GenFile:
    package: str
    messages: list[GenMessage]
    enums: list[GenEnum]
    enum_names: set[str]

    def all_messages(self) -> list[tuple[str, GenMessage]]:
        out = []
        todo = [(f"{self.package}.{m.name}", m) for m in self.messages]
        while todo:
            full, message = todo.pop()
            out.append((full, message))
            todo.extend((f"{full}.{m.name}", m) for m in message.messages)
        return out


@st.composite
def enums(draw: st.DrawFn) -> GenEnum:
    name = "E" + draw(WORDS)
    words = draw(st.lists(WORDS, min_size=1, max_size=4, unique=True))
    others = st.integers(-50, 2000).filter(bool)
    numbers = [
        0,
        *draw(st.lists(others, min_size=len(words) - 1, max_size=len(words) - 1, unique=True)),
    ]
    return GenEnum(
        name, [(f"{name.upper()}_{w.upper()}", n) for w, n in zip(words, numbers, strict=True)]
    )


def _unique_by_name(items: list) -> list:
    seen: dict[str, object] = {}
    for item in items:
        seen.setdefault(item.name, item)
    return list(seen.values())


@st.composite
def messages(draw: st.DrawFn, depth: int) -> GenMessage:
    nested = draw(st.lists(messages(depth - 1), max_size=2)) if depth else []
    return GenMessage(
        "M" + draw(WORDS),
        messages=_unique_by_name(nested),
        enums=_unique_by_name(draw(st.lists(enums(), max_size=1))),
    )


@st.composite
def proto_files(draw: st.DrawFn) -> GenFile:
    package = ".".join(draw(st.lists(WORDS, min_size=1, max_size=2)))
    top = GenFile(
        package,
        _unique_by_name(draw(st.lists(messages(1), min_size=1, max_size=3))),
        _unique_by_name(draw(st.lists(enums(), max_size=2))),
        set(),
    )
    enum_names = [f"{package}.{e.name}" for e in top.enums]
    for full, message in top.all_messages():
        enum_names += [f"{full}.{e.name}" for e in message.enums]
    top.enum_names = set(enum_names)
    refs = enum_names + [full for full, _ in top.all_messages()]
    numbers = st.integers(1, 18999) | st.integers(20000, 536_870_911)
    for _, message in top.all_messages():
        names = draw(st.lists(WORDS, max_size=6, unique=True))
        nums = draw(st.lists(numbers, min_size=len(names), max_size=len(names), unique=True))
        for name, number in zip(names, nums, strict=True):
            kind = draw(st.sampled_from(SCALARS) | st.sampled_from(refs))
            label = draw(st.sampled_from(["", "", "repeated", "optional", "map", "oneof"]))
            gen = GenField(f"f_{name}", number, kind, label)
            if label == "map":
                gen.key = draw(st.sampled_from(MAP_KEYS))
            if label == "oneof":
                gen.label, gen.oneof = "", draw(st.sampled_from(["o_a", "o_b"]))
            message.fields.append(gen)
    return top


def _field_type(gen: GenField) -> str:
    kind = gen.kind if gen.kind in SCALARS else f".{gen.kind}"
    return f"map<{gen.key}, {kind}>" if gen.label == "map" else kind


def write_proto(model: GenFile, order: list[int] | None = None) -> str:
    """The model as proto3 text; ``order`` permutes field declarations (not numbers)."""

    def message(gen: GenMessage, pad: str) -> list[str]:
        lines = [f"{pad}message {gen.name} {{"]
        fields = list(gen.fields)
        if order:
            fields.sort(key=lambda f: order[f.number % len(order)])
        for f in fields:
            if not f.oneof:
                label = f"{f.label} " if f.label in ("repeated", "optional") else ""
                lines.append(f"{pad}  {label}{_field_type(f)} {f.name} = {f.number};")
        for oneof in sorted({f.oneof for f in fields if f.oneof}):
            lines.append(f"{pad}  oneof {oneof} {{")
            lines += [
                f"{pad}    {_field_type(f)} {f.name} = {f.number};"
                for f in fields
                if f.oneof == oneof
            ]
            lines.append(f"{pad}  }}")
        for nested in gen.messages:
            lines += message(nested, pad + "  ")
        for e in gen.enums:
            lines += enum(e, pad + "  ")
        return [*lines, f"{pad}}}"]

    def enum(gen: GenEnum, pad: str) -> list[str]:
        return [
            f"{pad}enum {gen.name} {{",
            *(f"{pad}  {n} = {v};" for n, v in gen.values),
            f"{pad}}}",
        ]

    lines = ['syntax = "proto3";', f"package {model.package};"]
    for m in model.messages:
        lines += message(m, "")
    for e in model.enums:
        lines += enum(e, "")
    return "\n".join(lines) + "\n"


def expected_forms(model: GenFile) -> dict[str, dict]:
    """The canonical forms the module docstring promises for this model."""
    out: dict[str, dict] = {}

    def enum_form(gen: GenEnum) -> dict:
        values = sorted(gen.values, key=lambda v: (v[1], v[0]))
        return {
            "kind": "protobuf.enum",
            "package": model.package,
            "values": [{"name": n, "number": v} for n, v in values],
        }

    for e in model.enums:
        out[f"{model.package}.{e.name}"] = enum_form(e)
    for full, gen in model.all_messages():
        fields = []
        for f in sorted(gen.fields, key=lambda f: f.number):
            is_message = f.kind not in SCALARS and f.kind not in model.enum_names
            cardinality = {
                "map": "map",
                "repeated": "repeated",
                "optional": "singular" if is_message else "optional",
            }.get(f.label, "singular")
            kind = f"map<{f.key}, {f.kind}>" if f.label == "map" else f.kind
            entry = {"name": f.name, "number": f.number, "type": kind, "cardinality": cardinality}
            if f.oneof:
                entry["oneof"] = f.oneof
            fields.append(entry)
        out[full] = {"kind": "protobuf.message", "package": model.package, "fields": fields}
        for e in gen.enums:
            out[f"{full}.{e.name}"] = enum_form(e)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=proto_files(), order=st.permutations(range(7)))
def test_generated_protos_round_trip_through_the_canonical_form(
    model: GenFile, order: list[int]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        text = write_proto(model)
        forms = compile_text(root / "a", {"gen.proto": text})
        assert forms == expected_forms(model), text

        # Declaration order and file name do not matter: the lock text is byte-identical.
        shuffled = compile_text(root / "b", {"other.proto": write_proto(model, order)})
        assert dump_lock(shuffled) == dump_lock(forms)
        assert json.loads(dump_lock(forms))["types"] == forms

        rendered = render_proto(forms)
        assert compile_text(root / "c", rendered) == forms, rendered


# --- ROS ----------------------------------------------------------------------------------


def test_ros_msg_form_keeps_order_resolves_types_and_drops_comments() -> None:
    text = """
    # A header comment
    Header header          # bare Header is std_msgs (ROS 1)
    geometry_msgs/Point[] points
    Local local
    float64[3] xyz  # fixed array
    string<=8 short
    int32[<=4] few
    int8 DEFAULT_LEVEL = 3   # constant, comment dropped
    string GREETING=hello # world
    string QUOTED="a # b"  # ROS 2 style
    uint8 level 2  # ROS 2 default
    """
    assert ros_msg_form("my_pkg", text) == {
        "kind": "ros.msg",
        "fields": [
            {"name": "header", "type": "std_msgs/msg/Header"},
            {"name": "points", "type": "geometry_msgs/msg/Point[]"},
            {"name": "local", "type": "my_pkg/msg/Local"},
            {"name": "xyz", "type": "float64[3]"},
            {"name": "short", "type": "string<=8"},
            {"name": "few", "type": "int32[<=4]"},
            {"name": "level", "type": "uint8", "default": "2"},
        ],
        "constants": [
            {"name": "DEFAULT_LEVEL", "type": "int8", "value": "3"},
            {"name": "GREETING", "type": "string", "value": "hello # world"},
            {"name": "QUOTED", "type": "string", "value": "a # b"},
        ],
    }


def test_ros_definition_splits_dependent_types() -> None:
    text = "\n".join(
        [
            "std_msgs/Header header",
            "Pose pose",
            "=" * 80,
            "MSG: std_msgs/Header",
            "uint32 seq",
            "time stamp",
            "string frame_id",
            "=" * 80,
            "MSG: nav/Pose",
            "# comment only",
            "float64 x",
        ]
    )
    assert ros_definition_forms("nav/msg/Odom", text) == {
        "nav/msg/Odom": {
            "kind": "ros.msg",
            "fields": [
                {"name": "header", "type": "std_msgs/msg/Header"},
                {"name": "pose", "type": "nav/msg/Pose"},
            ],
            "constants": [],
        },
        "std_msgs/msg/Header": {
            "kind": "ros.msg",
            "fields": [
                {"name": "seq", "type": "uint32"},
                {"name": "stamp", "type": "time"},
                {"name": "frame_id", "type": "string"},
            ],
            "constants": [],
        },
        "nav/msg/Pose": {
            "kind": "ros.msg",
            "fields": [{"name": "x", "type": "float64"}],
            "constants": [],
        },
    }


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("pkg/Type", "pkg/msg/Type"),
        ("pkg/msg/Type", "pkg/msg/Type"),
        ("Type", None),
        ("a//b", None),
    ],
)
def test_ros_type_names(name: str, ok: str | None) -> None:
    if ok is None:
        with pytest.raises(SchemaError, match="not a ROS message type name"):
            ros_type_name(name)
    else:
        assert ros_type_name(name) == ok


def test_ros_bad_line_is_an_error() -> None:
    with pytest.raises(SchemaError, match="line 2: cannot parse"):
        ros_msg_form("p", "int32 a\nlonely\n")


# --- JSON schema ------------------------------------------------------------------------------


def test_jsonschema_form_drops_documentation_but_not_properties_named_like_it() -> None:
    data = {
        "title": "Thing",
        "description": "doc",
        "type": "object",
        "properties": {
            "description": {"type": "string", "description": "a property called description"},
            "n": {"type": "array", "items": {"type": "number", "$comment": "x"}},
        },
        "required": ["n"],
    }
    assert jsonschema_form(json.dumps(data).encode()) == {
        "kind": "jsonschema",
        "schema": {
            "type": "object",
            "properties": {
                "description": {"type": "string"},
                "n": {"type": "array", "items": {"type": "number"}},
            },
            "required": ["n"],
        },
    }
    with pytest.raises(SchemaError, match="not valid JSON"):
        jsonschema_form(b"{nope")
