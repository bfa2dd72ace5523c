"""The diff and its classification: one test per kind of change, with the exact line.

Each test compiles a small proto (or parses a .msg / JSON schema) before and after one
edit, and compares the lines that ``diff_forms`` reports with lines written out by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drivecat.schemas.canonical import jsonschema_form, ros_msg_form
from drivecat.schemas.check import Allow, CheckResult, Severity, diff_forms
from drivecat.schemas.errors import SchemaError
from drivecat.schemas.sources import LOCK_FORMAT, dump_lock, load_sources, read_lock, write_lock

TRACK = (
    "message Track { Point where = 1; uint64 id = 2; "
    "message Note { string text = 1; } Note note = 3; }"
)
BASE = (
    """syntax = "proto3";
package demo;
enum Color { COLOR_UNSET = 0; RED = 1; GREEN = 2; }
message Point {
  double x = 1;
  double y = 2;
  optional float z = 3;
  repeated int32 tags = 4;
  Color color = 5;
  oneof id { string name = 6; int64 code = 7; }
  map<string, int32> counts = 8;
}
"""
    + TRACK
    + "\n"
)

B_NAME = "the bytes are unchanged, but JSON, text format and generated code go by name"
B_TYPE_NAME = (
    "the bytes are unchanged, but consumers find types by name "
    "(MCAP schema names, topic roles, Any type URLs, generated code)"
)
B_ROS = (
    "ROS messages are positional: old readers misread the bytes, "
    "and ROS 1 md5sums and ROS 2 type hashes no longer match"
)

# (id, old text, new text, expected lines)
PROTO_EDITS = [
    (
        "type",
        "double x = 1;",
        "float x = 1;",
        "BREAKING demo.Point.x: type double -> float (field 1): "
        "64-bit -> 32-bit on the wire: readers drop the field or decode garbage",
    ),
    (
        "type-same-wire",
        "repeated int32 tags = 4;",
        "repeated int64 tags = 4;",
        "BREAKING demo.Point.tags: type int32 -> int64 (field 4): both are varint on the wire, "
        "so old data parses, but values are reinterpreted",
    ),
    (
        "type-map-value",
        "map<string, int32> counts = 8;",
        "map<string, string> counts = 8;",
        "BREAKING demo.Point.counts: type map<string, int32> -> map<string, string> (field 8): "
        "both are length-delimited on the wire, so old data parses, but values are reinterpreted",
    ),
    (
        "number",
        "double y = 2;",
        "double y = 9;",
        "BREAKING demo.Point.y: number 2 -> 9: "
        "the number is what goes on the wire: old data's value lands nowhere",
    ),
    (
        "field-removed",
        "uint64 id = 2;",
        "",
        "BREAKING demo.Track.id: field removed (field 2, uint64 id): "
        "readers that use it get nothing, and old data still carries its number",
    ),
    (
        "cardinality",
        "double y = 2;",
        "repeated double y = 2;",
        "BREAKING demo.Point.y: cardinality singular -> repeated (field 2): "
        "singular and repeated fields decode differently: values are lost or merged",
    ),
    (
        "map-to-repeated",
        "map<string, int32> counts = 8;",
        "repeated int32 counts = 8;",
        "BREAKING demo.Point.counts: type map<string, int32> -> int32 (field 8): "
        "length-delimited -> varint on the wire: readers drop the field or decode garbage\n"
        "BREAKING demo.Point.counts: cardinality map -> repeated (field 8): "
        "map and repeated fields decode differently: values are lost or merged",
    ),
    (
        "presence-dropped",
        "optional float z = 3;",
        "float z = 3;",
        "BREAKING demo.Point.z: cardinality optional -> singular (field 3): same bytes, but "
        "readers can no longer tell unset from zero, and has-checks break",
    ),
    (
        "presence-added",
        "double x = 1;",
        "optional double x = 1;",
        "COMPATIBLE demo.Point.x: cardinality singular -> optional (field 1): "
        "same bytes; readers can now tell an unset field from its default",
    ),
    (
        "oneof",
        "oneof id { string name = 6; int64 code = 7; }",
        "oneof id { string name = 6; } int64 code = 7;",
        "BREAKING demo.Point.code: oneof id -> none (field 7): "
        "oneof membership decides which fields clear each other when set",
    ),
    (
        "field-added",
        "uint64 id = 2;",
        "uint64 id = 2; repeated string labels = 4;",
        "COMPATIBLE demo.Track.labels: field added (field 4, repeated string labels): "
        "old readers skip it; new readers see its default in old data",
    ),
    (
        "field-renamed",
        "uint64 id = 2;",
        "uint64 track_id = 2;",
        f"BREAKING demo.Track.id: renamed id -> track_id (field 2): {B_NAME}",
    ),
    (
        "message-removed",
        TRACK,
        "",
        "BREAKING demo.Track: message removed: data and code that use it lose it\n"
        "BREAKING demo.Track.Note: message removed: data and code that use it lose it",
    ),
    (
        "message-added",
        "message Track {",
        "message Lane { repeated Point line = 1; }\nmessage Track {",
        "COMPATIBLE demo.Lane: message added: "
        "nothing depends on it yet; lock it so later changes are caught",
    ),
    (
        "message-renamed",
        TRACK,
        TRACK.replace("Track", "Trace"),
        "BREAKING demo.Track: message renamed demo.Track -> demo.Trace, otherwise the same: "
        f"{B_TYPE_NAME}\nBREAKING demo.Track.Note: message renamed demo.Track.Note -> "
        f"demo.Trace.Note, otherwise the same: {B_TYPE_NAME}",
    ),
    (
        "referenced-message-renamed",
        "Point",
        "Vec",
        "BREAKING demo.Point: message renamed demo.Point -> demo.Vec, otherwise the same: "
        + B_TYPE_NAME,
    ),
    (
        "enum-value-removed",
        "GREEN = 2;",
        "",
        "BREAKING demo.Color.GREEN: value removed (GREEN = 2): "
        "old data still holds the number; readers see an unknown value",
    ),
    (
        "enum-value-renumbered",
        "GREEN = 2;",
        "GREEN = 3;",
        "BREAKING demo.Color.GREEN: number 2 -> 3: "
        "the number is what goes on the wire: old data decodes as another value",
    ),
    (
        "enum-value-renamed",
        "GREEN = 2;",
        "LIME = 2;",
        f"BREAKING demo.Color.GREEN: value renamed GREEN -> LIME (number 2): {B_NAME}",
    ),
    (
        "enum-value-added",
        "GREEN = 2;",
        "GREEN = 2; BLUE = 3;",
        "COMPATIBLE demo.Color.BLUE: value added (BLUE = 3): "
        "old readers see an unknown value and keep it as a number",
    ),
    (
        "enum-added",
        "message Point {",
        "enum Shape { SHAPE_UNSET = 0; }\nmessage Point {",
        "COMPATIBLE demo.Shape: enum added: "
        "nothing depends on it yet; lock it so later changes are caught",
    ),
    (
        "enum-removed-and-field-type",
        "enum Color { COLOR_UNSET = 0; RED = 1; GREEN = 2; }",
        "",
        "BREAKING demo.Color: enum removed: data and code that use it lose it\n"
        "BREAKING demo.Point.color: type demo.Color -> int32 (field 5): both are varint on "
        "the wire, so old data parses, but values are reinterpreted",
    ),
    (
        "comments-options-order",
        "  double x = 1;\n  double y = 2;",
        "  // a comment\n  double y = 2 [deprecated = true];\n  double x = 1;",
        "",
    ),
]


def compile_forms(folder: Path, text: str) -> dict[str, dict]:
    folder.mkdir()
    (folder / "demo.proto").write_text(text)
    return load_sources([folder]).types


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [pytest.param(b, a, e, id=i) for i, b, a, e in PROTO_EDITS],
)
def test_each_kind_of_proto_change_gets_its_line(
    tmp_path: Path, before: str, after: str, expected: str
) -> None:
    assert before in BASE
    edited = BASE.replace(before, after)
    if "demo.Color -> int32" in expected:
        edited = edited.replace("Color color = 5;", "int32 color = 5;")
    old = compile_forms(tmp_path / "old", BASE)
    new = compile_forms(tmp_path / "new", edited)
    diff = diff_forms(old, new)
    assert [c.message for c in diff.changes] == (expected.split("\n") if expected else [])


def test_severity_and_exit_codes_in_both_modes(tmp_path: Path) -> None:
    old = compile_forms(tmp_path / "old", BASE)
    compatible = compile_forms(tmp_path / "c", BASE.replace("GREEN = 2;", "GREEN = 2; BLUE = 3;"))
    breaking = compile_forms(tmp_path / "b", BASE.replace("GREEN = 2;", ""))

    def result(new: dict, allow: Allow) -> CheckResult:
        changes = tuple(diff_forms(old, new).changes)
        return CheckResult(changes, (), len(old), allow, "x.lock", "schemas lock p --lock x.lock")

    assert [c.severity for c in diff_forms(old, compatible).changes] == [Severity.COMPATIBLE]
    assert result(old, Allow.NONE).exit_code == 0
    assert result(compatible, Allow.NONE).exit_code == 1
    assert result(compatible, Allow.COMPATIBLE).exit_code == 0
    assert result(breaking, Allow.NONE).exit_code == 1
    assert result(breaking, Allow.COMPATIBLE).exit_code == 1


# --- ROS ----------------------------------------------------------------------------------

ROS_BASE = "# pose\nstd_msgs/Header header\nfloat64 x\nfloat64 y\nuint8 MODE_A=1\n"

ROS_EDITS = [
    ("comment-only", "# pose\n", "# a new comment\n\n", []),
    (
        "type",
        "float64 x",
        "float32 x",
        [f"BREAKING nav/msg/Pose.x: type float64 -> float32: {B_ROS}"],
    ),
    (
        "array",
        "float64 y",
        "float64[] y",
        [f"BREAKING nav/msg/Pose.y: type float64 -> float64[]: {B_ROS}"],
    ),
    (
        "renamed",
        "float64 x",
        "float64 px",
        [
            "BREAKING nav/msg/Pose.x: renamed x -> px (position 1): the bytes line up, but code "
            "and name-based conversions break, and ROS 1 md5sums and ROS 2 type hashes no "
            "longer match"
        ],
    ),
    (
        "added",
        "float64 y\n",
        "float64 y\nfloat64 z\n",
        [f"BREAKING nav/msg/Pose.z: field added (float64 z, position 3): {B_ROS}"],
    ),
    (
        "removed",
        "float64 y\n",
        "",
        [f"BREAKING nav/msg/Pose.y: field removed (float64 y, position 2): {B_ROS}"],
    ),
    (
        "reordered",
        "float64 x\nfloat64 y\n",
        "float64 y\nfloat64 x\n",
        [f"BREAKING nav/msg/Pose: field order header, x, y -> header, y, x: {B_ROS}"],
    ),
    (
        "constant",
        "MODE_A=1",
        "MODE_A=2",
        [
            "BREAKING nav/msg/Pose.MODE_A: constant uint8 MODE_A=1 -> uint8 MODE_A=2: "
            "constants are not on the wire, but code uses them and ROS 1 md5sums do"
        ],
    ),
    (
        "default",
        "float64 y\n",
        "float64 y 1.5\n",
        [
            "COMPATIBLE nav/msg/Pose.y: default none -> 1.5: "
            "defaults are not on the wire; only newly built messages differ"
        ],
    ),
]


@pytest.mark.parametrize(
    ("before", "after", "expected"), [pytest.param(b, a, e, id=i) for i, b, a, e in ROS_EDITS]
)
def test_each_kind_of_ros_change_gets_its_line(
    before: str, after: str, expected: list[str]
) -> None:
    assert before in ROS_BASE
    old = {"nav/msg/Pose": ros_msg_form("nav", ROS_BASE)}
    new = {"nav/msg/Pose": ros_msg_form("nav", ROS_BASE.replace(before, after))}
    assert [c.message for c in diff_forms(old, new).changes] == expected


# --- JSON schema ----------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {"speed": {"type": "number"}, "gear": {"type": "string"}},
    "required": ["speed"],
}


def _json_changes(edit: dict) -> list[tuple[str, str]]:
    new = json.loads(json.dumps(SCHEMA))
    for key, value in edit.items():
        if value is None:
            del new["properties"][key]
        elif key == "required":
            new["required"] = value
        else:
            new["properties"][key] = value
    old_forms = {"Car": jsonschema_form(json.dumps(SCHEMA).encode())}
    new_forms = {"Car": jsonschema_form(json.dumps(new).encode())}
    return [(c.severity.value, c.message) for c in diff_forms(old_forms, new_forms).changes]


def test_json_schema_changes() -> None:
    assert _json_changes({"rpm": {"type": "integer"}}) == [
        ("compatible", "COMPATIBLE Car.rpm: optional property added: old readers ignore it")
    ]
    assert _json_changes({"gear": None}) == [
        ("breaking", "BREAKING Car.gear: property removed: readers that use it get nothing")
    ]
    assert _json_changes({"speed": {"type": "string"}}) == [
        (
            "breaking",
            'BREAKING Car.speed: type "number" -> "string": '
            "readers that expect the old JSON type reject or misread the value",
        )
    ]
    assert _json_changes({"required": ["speed", "gear"]})[0][0] == "breaking"
    assert _json_changes({"required": []})[0][0] == "compatible"
    assert _json_changes({"speed": {"type": "number", "description": "m/s"}}) == []


# --- recordings, renames across a lock, the lock file itself ------------------------------------


def test_types_missing_from_recordings_are_unchecked_not_removed(tmp_path: Path) -> None:
    old = compile_forms(tmp_path / "old", BASE)
    new = {k: v for k, v in old.items() if k != "demo.Track" and k != "demo.Track.Note"}
    diff = diff_forms(old, new, recorded_only=True)
    assert diff.changes == []
    assert diff.unchecked == ["demo.Track", "demo.Track.Note"]
    assert len(diff_forms(old, new).changes) == 2


def test_lock_text_is_sorted_one_line_per_field_and_round_trips(tmp_path: Path) -> None:
    forms = compile_forms(tmp_path / "p", BASE)
    text = dump_lock(forms)
    assert text.endswith("}\n") and text.isascii()
    assert (
        '        {"cardinality": "singular", "name": "x", "number": 1, "type": "double"},' in text
    )
    doc = json.loads(text)
    assert doc["format"] == LOCK_FORMAT and list(doc["types"]) == sorted(forms)
    lock = tmp_path / "sub" / "s.lock"
    assert write_lock(lock, forms) is True
    assert write_lock(lock, forms) is False  # unchanged text is not rewritten
    assert read_lock(lock) == forms
    assert [p.name for p in lock.parent.iterdir()] == ["s.lock"]  # no temporary left


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{nope", "the lock is not valid JSON"),
        ('{"format": 99, "types": {}}', "lock format 99 is not 1"),
        ('{"format": 1}', "the lock has no 'types' object"),
        (
            '{"format": 1, "types": {"a.B": {"kind": "protobuf.message"}}}',
            "entry for a.B is malformed",
        ),
        ('{"format": 1, "types": {"a.B": {"kind": "alien"}}}', "entry for a.B is malformed"),
    ],
)
def test_malformed_locks_are_input_errors(tmp_path: Path, text: str, reason: str) -> None:
    lock = tmp_path / "bad.lock"
    lock.write_text(text)
    with pytest.raises(SchemaError, match=reason) as err:
        read_lock(lock)
    assert str(err.value).startswith(f"{lock}: ")
    assert err.value.exit_code == 2
