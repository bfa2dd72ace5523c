"""The diff between two sets of canonical schema forms, and what each change means.

``diff_forms`` compares the forms of a lock with those of the sources and classifies every
difference as ``breaking`` (old and new readers or writers stop understanding each other) or
``compatible`` (nothing that works today stops working):

- protobuf: a removed message, enum, field or enum value, a changed field number or type,
  a changed cardinality or oneof, and a new required field are breaking; an added message,
  enum, field or enum value is compatible, and so is giving a scalar explicit presence
  (``optional``). Renames of fields, enum values and types are reported as renames, and are
  breaking: the bytes are the same, but JSON, text format, generated code, MCAP schema
  names and topic roles all go by name.
- ROS: messages are positional and ROS 1 hashes the definition, so any change to fields or
  constants is breaking; only a changed ROS 2 default value is compatible.
- JSON schema: an added optional property or a dropped ``required`` entry is compatible;
  any other change is breaking.
- A locked type that a set of recordings does not show is not a removal (it was perhaps
  just not recorded); it is listed as unchecked.

Pure: forms in, ``Change`` records out, no files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple

from drivecat.schemas.canonical import Form


class Severity(Enum):
    BREAKING = "breaking"
    COMPATIBLE = "compatible"


@dataclass(frozen=True)
class Change:
    """One difference between the lock and the sources.

    ``member`` is a field, enum value, constant or JSON property path ("" for the type
    itself); ``old``/``new`` are the values before and after, as text. ``file``/``line``
    say where the sources define it (the lock file for what exists only there).
    """

    severity: Severity
    kind: str
    type_name: str
    member: str
    summary: str
    why: str
    old: str | None = None
    new: str | None = None
    file: str | None = None
    line: int | None = None

    @property
    def path(self) -> str:
        return f"{self.type_name}.{self.member}" if self.member else self.type_name

    @property
    def message(self) -> str:
        return f"{self.severity.name} {self.path}: {self.summary}: {self.why}"


B, C = Severity.BREAKING, Severity.COMPATIBLE

_ROS = "and ROS 1 md5sums and ROS 2 type hashes no longer match"
WHY = {
    "type_added": "nothing depends on it yet; lock it so later changes are caught",
    "type_removed": "data and code that use it lose it",
    "type_renamed": "the bytes are unchanged, but consumers find types by name "
    "(MCAP schema names, topic roles, Any type URLs, generated code)",
    "kind_changed": "the two are encoded differently",
    "schema_changed": "readers may reject or misread data",
    "field_added": "old readers skip it; new readers see its default in old data",
    "field_removed": "readers that use it get nothing, and old data still carries its number",
    "field_renamed": "the bytes are unchanged, but JSON, text format and generated code go by name",
    "field_number_changed": "the number is what goes on the wire: old data's value lands nowhere",
    "oneof_changed": "oneof membership decides which fields clear each other when set",
    "value_added": "old readers see an unknown value and keep it as a number",
    "value_removed": "old data still holds the number; readers see an unknown value",
    "value_renamed": "the bytes are unchanged, but JSON, text format and generated code go by name",
    "value_renumbered": "the number is what goes on the wire: old data decodes as another value",
    "ros_field": f"ROS messages are positional: old readers misread the bytes, {_ROS}",
    "ros_renamed": f"the bytes line up, but code and name-based conversions break, {_ROS}",
    "constant_changed": "constants are not on the wire, but code uses them and ROS 1 md5sums do",
    "default_changed": "defaults are not on the wire; only newly built messages differ",
}
_WORD = {"protobuf.message": "message", "protobuf.enum": "enum", "ros.msg": "message"}
_ENCODING = {
    **dict.fromkeys(("int32", "int64", "uint32", "uint64", "bool"), "varint"),
    **dict.fromkeys(("sint32", "sint64"), "zigzag varint"),
    **dict.fromkeys(("fixed32", "sfixed32", "float"), "32-bit"),
    **dict.fromkeys(("fixed64", "sfixed64", "double"), "64-bit"),
}


def _change(
    severity: Severity,
    kind: str,
    type_name: str,
    member: str,
    summary: str,
    why: str = "",
    old: object = None,
    new: object = None,
) -> Change:
    """A Change; ``why`` defaults to the reason for its ``kind`` (ROS kinds use ``ros_*``)."""
    text = lambda v: None if v is None else str(v)  # noqa: E731
    return Change(
        severity, kind, type_name, member, summary, why or WHY[kind], text(old), text(new)
    )


class Diff(NamedTuple):
    changes: list[Change]
    unchecked: list[str]


# --- diff -----------------------------------------------------------------------------------


def diff_forms(
    old: Mapping[str, Form], new: Mapping[str, Form], *, recorded_only: bool = False
) -> Diff:
    """Every change from ``old`` (the lock) to ``new`` (the sources), sorted by type name.

    With ``recorded_only``, a type missing from ``new`` is unchecked rather than removed,
    unless it was renamed.
    """
    removed = sorted(old.keys() - new.keys())
    added = sorted(new.keys() - old.keys())
    renames = _match_renames(old, new, removed, added)
    changes: list[Change] = []
    for name in sorted(old.keys() & new.keys()):
        changes.extend(_diff_type(name, old[name], new[name], _Types(old, new, renames)))
    for was, now in renames.items():
        summary = (
            f"{_WORD.get(old[was]['kind'], 'schema')} renamed {was} -> {now}, otherwise the same"
        )
        changes.append(_change(B, "type_renamed", was, "", summary, old=was, new=now))
    gone = [name for name in removed if name not in renames]
    for name in [] if recorded_only else gone:
        what = _WORD.get(old[name]["kind"], "schema")
        changes.append(_change(B, "type_removed", name, "", f"{what} removed", old=name))
    for name in (n for n in added if n not in renames.values()):
        what = _WORD.get(new[name]["kind"], "schema")
        changes.append(_change(C, "type_added", name, "", f"{what} added", new=name))
    changes.sort(key=lambda c: c.type_name)
    return Diff(changes, gone if recorded_only else [])


def _shape(form: Form, renames: Mapping[str, str]) -> Form:
    """A form without its package and with type references renamed, for rename matching."""
    shape = {k: v for k, v in form.items() if k != "package"}
    if "fields" in shape:
        shape["fields"] = [{**f, "type": _rename_refs(f["type"], renames)} for f in form["fields"]]
    return shape


def _rename_refs(kind: str, renames: Mapping[str, str]) -> str:
    return re.sub(r"[A-Za-z_][\w./]*", lambda m: renames.get(m.group(0), m.group(0)), kind)


def _match_renames(
    old: Mapping[str, Form], new: Mapping[str, Form], removed: list[str], added: list[str]
) -> dict[str, str]:
    """Pair removed and added types that are the same but for their names.

    A pair counts only when neither side matches anything else; renaming an outer type
    renames its nested types, so matching repeats until nothing new pairs up.
    """
    renames: dict[str, str] = {}
    while True:
        free_old = [n for n in removed if n not in renames]
        free_new = [n for n in added if n not in renames.values()]
        pairs = [
            (was, now)
            for was in free_old
            for now in free_new
            if old[was]["kind"] == new[now]["kind"]
            and _shape(old[was], renames) == _shape(new[now], {})
        ]
        unique = [
            (was, now)
            for was, now in pairs
            if sum(p[0] == was for p in pairs) == 1 and sum(p[1] == now for p in pairs) == 1
        ]
        if not unique:
            return renames
        renames.update(unique)


class _Types(NamedTuple):
    """Both sides' forms and the type renames, for questions about referenced types."""

    old: Mapping[str, Form]
    new: Mapping[str, Form]
    renames: Mapping[str, str]

    def encoding(self, kind: str) -> str:
        if kind in _ENCODING:
            return _ENCODING[kind]
        if kind.startswith("group "):
            return "start/end group"
        form = self.new.get(kind) or self.old.get(kind) or {}
        return "varint" if form.get("kind") == "protobuf.enum" else "length-delimited"


def _diff_type(name: str, old: Form, new: Form, types: _Types) -> Iterator[Change]:
    if old["kind"] != new["kind"]:
        yield _change(B, "kind_changed", name, "", f"kind {old['kind']} -> {new['kind']}")
    elif old["kind"] == "protobuf.message":
        yield from _diff_message(name, old, new, types)
    elif old["kind"] == "protobuf.enum":
        yield from _diff_enum(name, old["values"], new["values"])
    elif old["kind"] == "ros.msg":
        yield from _diff_ros(name, old, new)
        yield from _diff_ros_constants(name, old["constants"], new["constants"])
    elif old["kind"] == "jsonschema":
        yield from _diff_json(name, "", old["schema"], new["schema"])
    elif old != new:
        why = f"drivecat cannot read {old.get('encoding')} schemas, so any change may break readers"
        yield _change(B, "schema_changed", name, "", "schema bytes changed", why)


def _describe(field: Form) -> str:
    label = "" if field["cardinality"] == "singular" else f"{field['cardinality']} "
    return f"field {field['number']}, {label}{field['type']} {field['name']}"


def _diff_message(name: str, old: Form, new: Form, types: _Types) -> Iterator[Change]:
    olds = {f["number"]: f for f in old["fields"]}
    news = {f["number"]: f for f in new["fields"]}
    for number in sorted(olds.keys() & news.keys()):
        yield from _diff_field(name, olds[number], news[number], types)
    fresh = {f["name"]: f for number, f in news.items() if number not in olds}
    for number in sorted(olds.keys() - news.keys()):
        field = olds[number]
        moved = fresh.pop(field["name"], None)
        if moved is None:
            summary = f"field removed ({_describe(field)})"
            yield _change(B, "field_removed", name, field["name"], summary, old=_describe(field))
            continue
        summary = f"number {number} -> {moved['number']}"
        yield _change(
            B, "field_number_changed", name, field["name"], summary, "", number, moved["number"]
        )
        yield from _diff_field(name, field, moved, types)
    for field in sorted(fresh.values(), key=lambda f: f["number"]):
        summary = f"field added ({_describe(field)})"
        if field["cardinality"] == "required":
            why = "old data does not have it, so new readers reject old data"
            yield _change(B, "field_added", name, field["name"], summary, why, new=_describe(field))
        else:
            yield _change(C, "field_added", name, field["name"], summary, new=_describe(field))


def _diff_field(name: str, old: Form, new: Form, types: _Types) -> Iterator[Change]:
    member, number = old["name"], new["number"]
    if old["name"] != new["name"]:
        summary = f"renamed {old['name']} -> {new['name']} (field {number})"
        yield _change(B, "field_renamed", name, member, summary, "", old["name"], new["name"])
    if _rename_refs(old["type"], types.renames) != new["type"]:
        was, now = types.encoding(old["type"]), types.encoding(new["type"])
        if was == now:
            why = f"both are {was} on the wire, so old data parses, but values are reinterpreted"
        else:
            why = f"{was} -> {now} on the wire: readers drop the field or decode garbage"
        summary = f"type {old['type']} -> {new['type']} (field {number})"
        yield _change(B, "field_type_changed", name, member, summary, why, old["type"], new["type"])
    was, now = old["cardinality"], new["cardinality"]
    if was != now:
        summary = f"cardinality {was} -> {now} (field {number})"
        if (was, now) == ("singular", "optional"):
            why = "same bytes; readers can now tell an unset field from its default"
            yield _change(C, "cardinality_changed", name, member, summary, why, was, now)
        elif (was, now) == ("optional", "singular"):
            why = "same bytes, but readers can no longer tell unset from zero, and has-checks break"
            yield _change(B, "cardinality_changed", name, member, summary, why, was, now)
        else:
            why = f"{was} and {now} fields decode differently: values are lost or merged"
            yield _change(B, "cardinality_changed", name, member, summary, why, was, now)
    if old.get("oneof") != new.get("oneof"):
        was, now = old.get("oneof", "none"), new.get("oneof", "none")
        summary = f"oneof {was} -> {now} (field {number})"
        yield _change(B, "oneof_changed", name, member, summary, "", was, now)


def _diff_enum(name: str, old: list[Form], new: list[Form]) -> Iterator[Change]:
    olds = {v["name"]: v["number"] for v in old}
    news = {v["name"]: v["number"] for v in new}
    fresh = sorted(news.keys() - olds.keys())
    for value in sorted(olds.keys() - news.keys()):
        number = olds[value]
        twins = [v for v in fresh if news[v] == number]
        if len(twins) == 1:
            fresh.remove(twins[0])
            summary = f"value renamed {value} -> {twins[0]} (number {number})"
            yield _change(B, "value_renamed", name, value, summary, "", value, twins[0])
        else:
            summary = f"value removed ({value} = {number})"
            yield _change(B, "value_removed", name, value, summary, old=number)
    for value in sorted(olds.keys() & news.keys()):
        if olds[value] != news[value]:
            summary = f"number {olds[value]} -> {news[value]}"
            yield _change(B, "value_renumbered", name, value, summary, "", olds[value], news[value])
    for value in fresh:
        summary = f"value added ({value} = {news[value]})"
        yield _change(C, "value_added", name, value, summary, new=news[value])


def _diff_ros(name: str, old: Form, new: Form) -> Iterator[Change]:
    olds = {f["name"]: (i, f) for i, f in enumerate(old["fields"])}
    news = {f["name"]: (i, f) for i, f in enumerate(new["fields"])}
    fresh = {n: v for n, v in news.items() if n not in olds}
    for field, (i, was) in olds.items():
        if field in news:
            now = news[field][1]
            if was["type"] != now["type"]:
                summary = f"type {was['type']} -> {now['type']}"
                yield _change(
                    B,
                    "field_type_changed",
                    name,
                    field,
                    summary,
                    WHY["ros_field"],
                    was["type"],
                    now["type"],
                )
            if was.get("default") != now.get("default"):
                was_default, now_default = was.get("default", "none"), now.get("default", "none")
                summary = f"default {was_default} -> {now_default}"
                yield _change(
                    C, "default_changed", name, field, summary, "", was_default, now_default
                )
            continue
        twin = next((n for n, (j, f) in fresh.items() if j == i and f["type"] == was["type"]), None)
        if twin is not None:
            del fresh[twin]
            summary = f"renamed {field} -> {twin} (position {i})"
            yield _change(B, "field_renamed", name, field, summary, WHY["ros_renamed"], field, twin)
        else:
            summary = f"field removed ({was['type']} {field}, position {i})"
            yield _change(B, "field_removed", name, field, summary, WHY["ros_field"], was["type"])
    for field, (i, now) in fresh.items():
        summary = f"field added ({now['type']} {field}, position {i})"
        yield _change(B, "field_added", name, field, summary, WHY["ros_field"], new=now["type"])
    order_was = [f for f in olds if f in news]
    order_now = [f for f in news if f in olds]
    if order_was != order_now:
        summary = f"field order {', '.join(order_was)} -> {', '.join(order_now)}"
        yield _change(B, "field_order_changed", name, "", summary, WHY["ros_field"])


def _diff_ros_constants(name: str, old: list[Form], new: list[Form]) -> Iterator[Change]:
    olds = {c["name"]: c for c in old}
    news = {c["name"]: c for c in new}
    for const in sorted(olds.keys() | news.keys()):
        was, now = olds.get(const), news.get(const)
        if was != now:
            text_was = f"{was['type']} {const}={was['value']}" if was else "none"
            text_now = f"{now['type']} {const}={now['value']}" if now else "none"
            summary = f"constant {text_was} -> {text_now}"
            yield _change(B, "constant_changed", name, const, summary, "", text_was, text_now)


def _diff_json(name: str, path: str, old: Any, new: Any) -> Iterator[Change]:
    """JSON schema changes below ``path`` (a dotted property path, ``[]`` for items)."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        if old != new:
            yield _change(B, "schema_changed", name, path, "schema changed")
        return
    if old.get("type") != new.get("type"):
        summary = f"type {json.dumps(old.get('type'))} -> {json.dumps(new.get('type'))}"
        why = "readers that expect the old JSON type reject or misread the value"
        yield _change(
            B, "field_type_changed", name, path, summary, why, old.get("type"), new.get("type")
        )
    req_old, req_new = set(old.get("required", [])), set(new.get("required", []))
    props_old, props_new = old.get("properties", {}), new.get("properties", {})
    for prop in sorted(props_old.keys() | props_new.keys()):
        sub = f"{path}.{prop}" if path else prop
        if prop not in props_new:
            yield _change(
                B, "field_removed", name, sub, "property removed", "readers that use it get nothing"
            )
        elif prop not in props_old and prop in req_new:
            why = "old data does not have it, so validation fails on old data"
            yield _change(B, "field_added", name, sub, "required property added", why)
        elif prop not in props_old:
            yield _change(
                C, "field_added", name, sub, "optional property added", "old readers ignore it"
            )
        else:
            if prop in req_new and prop not in req_old:
                why = "old data may lack it, so validation fails on old data"
                yield _change(B, "required_changed", name, sub, "now required", why)
            elif prop in req_old and prop not in req_new:
                why = "readers must now cope with it missing"
                yield _change(C, "required_changed", name, sub, "no longer required", why)
            yield from _diff_json(name, sub, props_old[prop], props_new[prop])
    if "items" in old or "items" in new:
        yield from _diff_json(name, f"{path}[]", old.get("items"), new.get("items"))
    for key in sorted((old.keys() | new.keys()) - {"type", "required", "properties", "items"}):
        if old.get(key) != new.get(key):
            yield _change(B, "schema_changed", name, path, f"{key} changed")
