"""Canonical forms of message types: what a schema says about the bytes, and nothing else.

A canonical form is a JSON-compatible dict, one per fully qualified type name. Two
definitions that encode and decode data the same way and expose the same names have equal
forms; comments, whitespace, declaration order of protobuf fields, file layout and options
never appear in them. The ``kind`` key says which shape the rest of the form has:

``protobuf.message``
    ``package``, and ``fields`` sorted by number, each ``{"name", "number", "type",
    "cardinality"}`` plus ``"oneof"`` for members of a real oneof. ``type`` is a scalar
    name (``double``), a fully qualified message or enum name without the leading dot, or
    ``map<K, V>``, or ``group <name>`` for a proto2 group or editions DELIMITED field.
    ``cardinality`` is ``singular``, ``optional``, ``repeated``, ``map`` or ``required``.
``protobuf.enum``
    ``package``, and ``values`` sorted by number then name, each ``{"name", "number"}``.
``ros.msg``
    ``fields`` in declaration order (ROS is positional), each ``{"name", "type"}`` plus
    ``"default"`` when a ROS 2 default is given; ``constants`` sorted by name, each
    ``{"name", "type", "value"}``. Types are ``pkg/msg/Type`` for every ROS flavour, so a
    ``.msg`` folder, a ROS 1 and a ROS 2 recording name the same type the same way.
``jsonschema``
    ``schema``: the parsed schema without its documentation keywords.
``opaque``
    ``encoding`` and the ``sha256`` of the schema bytes, for encodings drivecat cannot read.

Decisions, and why:

- ``optional`` is explicit presence on a scalar or enum field outside a oneof (proto2
  ``optional``, proto3 ``optional``, editions ``EXPLICIT``). Its wire format equals that of a
  ``singular`` field, but readers that test presence see a difference, so it is kept; the
  check classifies the two directions differently. Message fields and oneof members always
  have presence and are ``singular`` in every syntax.
- Packed-ness is left out: parsers must accept packed and unpacked repeated scalars alike,
  so switching it never breaks a reader.
- ``json_name``, default values of proto2 fields, reserved ranges, options and extensions
  are left out; so are comments and ``title``/``description``/``$comment``/``examples`` in
  JSON schemas.
- Map entry messages are not types of their own; the field says ``map<K, V>``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from google.protobuf import descriptor_pb2

from drivecat.schemas.errors import SchemaError

Form = dict[str, Any]
"""One type's canonical form; its shape depends on ``form["kind"]`` (see the module doc)."""

KINDS = ("protobuf.message", "protobuf.enum", "ros.msg", "jsonschema", "opaque")

_F = descriptor_pb2.FieldDescriptorProto
SCALAR_NAMES = {
    _F.TYPE_DOUBLE: "double",
    _F.TYPE_FLOAT: "float",
    _F.TYPE_INT64: "int64",
    _F.TYPE_UINT64: "uint64",
    _F.TYPE_INT32: "int32",
    _F.TYPE_FIXED64: "fixed64",
    _F.TYPE_FIXED32: "fixed32",
    _F.TYPE_BOOL: "bool",
    _F.TYPE_STRING: "string",
    _F.TYPE_BYTES: "bytes",
    _F.TYPE_UINT32: "uint32",
    _F.TYPE_SFIXED32: "sfixed32",
    _F.TYPE_SFIXED64: "sfixed64",
    _F.TYPE_SINT32: "sint32",
    _F.TYPE_SINT64: "sint64",
}
_FEATURES = descriptor_pb2.FeatureSet

# Paths into FileDescriptorProto / DescriptorProto, as source_code_info numbers them.
_FILE_MESSAGE, _FILE_ENUM = 4, 5
_MSG_FIELD, _MSG_NESTED, _MSG_ENUM = 2, 3, 4
_ENUM_VALUE = 2


class Canonical(NamedTuple):
    """Canonical forms by type name, and where each type and member is defined.

    ``locations`` maps ``"Type"`` or ``"Type.member"`` to ``(file name, 1-based line)``;
    the file name is the one the schema itself uses (a proto file's import path).
    """

    forms: dict[str, Form]
    locations: dict[str, tuple[str, int | None]]


# --- protobuf ---------------------------------------------------------------------------


def protobuf_forms(fds: descriptor_pb2.FileDescriptorSet) -> Canonical:
    """Canonical forms of every message and enum in every file of a FileDescriptorSet.

    Imported files are canonicalized only if the set holds them (``protoc --include_imports``
    and MCAP writers include them). Line numbers come from ``source_code_info`` when present.
    """
    forms: dict[str, Form] = {}
    locations: dict[str, tuple[str, int | None]] = {}
    for file in fds.file:
        lines = {
            tuple(loc.path): loc.span[0] + 1 for loc in file.source_code_info.location if loc.span
        }
        package = file.package
        prefix = f"{package}." if package else ""
        walker = _ProtoWalker(file, package, lines, forms, locations)
        for i, message in enumerate(file.message_type):
            walker.message(message, prefix, (_FILE_MESSAGE, i), (file.options.features,))
        for i, enum in enumerate(file.enum_type):
            walker.enum(enum, prefix, (_FILE_ENUM, i))
    return Canonical(forms, locations)


class _ProtoWalker:
    """Walks one FileDescriptorProto, filling ``forms`` and ``locations``."""

    def __init__(
        self,
        file: descriptor_pb2.FileDescriptorProto,
        package: str,
        lines: Mapping[tuple[int, ...], int],
        forms: dict[str, Form],
        locations: dict[str, tuple[str, int | None]],
    ) -> None:
        self.file, self.package, self.lines = file, package, lines
        self.forms, self.locations = forms, locations

    def _where(self, key: str, path: tuple[int, ...]) -> None:
        self.locations[key] = (self.file.name, self.lines.get(path))

    def message(
        self,
        message: descriptor_pb2.DescriptorProto,
        prefix: str,
        path: tuple[int, ...],
        features: tuple[descriptor_pb2.FeatureSet, ...],
    ) -> None:
        name = prefix + message.name
        features = (message.options.features, *features)
        maps = {
            f"{name}.{nested.name}": nested
            for nested in message.nested_type
            if nested.options.map_entry
        }
        fields = []
        for i, field in enumerate(message.field):
            entry: Form = {
                "name": field.name,
                "number": field.number,
                "type": self._field_type(field, maps),
                "cardinality": self._cardinality(field, maps, features),
            }
            if field.HasField("oneof_index") and not field.proto3_optional:
                entry["oneof"] = message.oneof_decl[field.oneof_index].name
            fields.append(entry)
            self._where(f"{name}.{field.name}", (*path, _MSG_FIELD, i))
        fields.sort(key=lambda f: f["number"])
        self.forms[name] = {
            "kind": "protobuf.message",
            "package": self.package,
            "fields": fields,
        }
        self._where(name, path)
        for i, nested in enumerate(message.nested_type):
            if not nested.options.map_entry:
                self.message(nested, f"{name}.", (*path, _MSG_NESTED, i), features)
        for i, enum in enumerate(message.enum_type):
            self.enum(enum, f"{name}.", (*path, _MSG_ENUM, i))

    def enum(
        self, enum: descriptor_pb2.EnumDescriptorProto, prefix: str, path: tuple[int, ...]
    ) -> None:
        name = prefix + enum.name
        values = [{"name": v.name, "number": v.number} for v in enum.value]
        values.sort(key=lambda v: (v["number"], v["name"]))
        self.forms[name] = {"kind": "protobuf.enum", "package": self.package, "values": values}
        self._where(name, path)
        for i, value in enumerate(enum.value):
            self._where(f"{name}.{value.name}", (*path, _ENUM_VALUE, i))

    @staticmethod
    def _field_type(
        field: descriptor_pb2.FieldDescriptorProto,
        maps: Mapping[str, descriptor_pb2.DescriptorProto],
    ) -> str:
        if field.type in SCALAR_NAMES:
            return SCALAR_NAMES[field.type]
        ref = field.type_name.lstrip(".")
        if field.type == _F.TYPE_GROUP:  # start/end-group encoding, unlike a message field
            return f"group {ref}"
        if ref in maps:
            key, value = maps[ref].field[0], maps[ref].field[1]
            return (
                f"map<{_ProtoWalker._field_type(key, {})}, {_ProtoWalker._field_type(value, {})}>"
            )
        return ref

    def _cardinality(
        self,
        field: descriptor_pb2.FieldDescriptorProto,
        maps: Mapping[str, descriptor_pb2.DescriptorProto],
        features: tuple[descriptor_pb2.FeatureSet, ...],
    ) -> str:
        if field.label == _F.LABEL_REPEATED:
            return "map" if field.type_name.lstrip(".") in maps else "repeated"
        if field.label == _F.LABEL_REQUIRED:
            return "required"
        in_oneof = field.HasField("oneof_index") and not field.proto3_optional
        if field.type in (_F.TYPE_MESSAGE, _F.TYPE_GROUP) or in_oneof:
            return "singular"
        syntax = self.file.syntax or "proto2"
        if syntax == "proto3":
            return "optional" if field.proto3_optional else "singular"
        if syntax == "proto2":
            return "optional"
        # Editions: presence is a feature resolved field -> messages -> file, default EXPLICIT.
        for scope in (field.options.features, *features):
            if scope.HasField("field_presence"):
                presence = scope.field_presence
                if presence == _FEATURES.IMPLICIT:
                    return "singular"
                if presence == _FEATURES.LEGACY_REQUIRED:
                    return "required"
                return "optional"
        return "optional"


def render_proto(forms: Mapping[str, Form]) -> dict[str, str]:
    """Render protobuf canonical forms back to proto3 source, one file per package.

    Returns ``{file name: text}``; file names are ``<package>.proto``. Compiling the result
    gives the same canonical forms (the round trip the tests check). Raises ``SchemaError``
    for what proto3 cannot say: ``required`` fields, groups, enums without a value numbered 0.
    """
    packages: dict[str, list[str]] = {}
    for name, form in forms.items():
        if form["kind"] in ("protobuf.message", "protobuf.enum"):
            packages.setdefault(form["package"], []).append(name)
    files: dict[str, str] = {}
    for package, names in sorted(packages.items()):
        prefix = f"{package}." if package else ""
        top = sorted(n for n in names if "." not in n[len(prefix) :])
        body: list[str] = []
        for name in top:
            body.extend(_render_type(name, forms, names, 0))
        imports = sorted(
            {
                f"{forms[ref]['package'] or '_root'}.proto"
                for name in names
                for ref in _references(forms[name])
                if ref in forms and forms[ref]["package"] != package
            }
        )
        head = ['syntax = "proto3";']
        if package:
            head.append(f"package {package};")
        head.extend(f'import "{imp}";' for imp in imports)
        files[f"{package or '_root'}.proto"] = "\n".join([*head, *body]) + "\n"
    return files


def _references(form: Form) -> Iterator[str]:
    for field in form.get("fields", ()):
        yield from re.findall(r"[A-Za-z_][\w.]*", field["type"])


def _render_type(name: str, forms: Mapping[str, Form], names: list[str], depth: int) -> list[str]:
    pad = "  " * depth
    form = forms[name]
    short = name.rsplit(".", 1)[-1]
    if form["kind"] == "protobuf.enum":
        # proto3 wants the zero value first; the form sorts values by number, negatives first.
        zeros = [v for v in form["values"] if v["number"] == 0]
        if not zeros:
            raise SchemaError(f"{name}: a proto3 enum needs a value numbered 0")
        values = [zeros[0], *(v for v in form["values"] if v is not zeros[0])]
        lines = [f"{pad}enum {short} {{"]
        if len({v["number"] for v in values}) < len(values):
            lines.append(f"{pad}  option allow_alias = true;")
        lines.extend(f"{pad}  {v['name']} = {v['number']};" for v in values)
        return [*lines, f"{pad}}}"]
    lines = [f"{pad}message {short} {{"]
    oneofs: dict[str, list[Form]] = {}
    for field in form["fields"]:
        if "oneof" in field:
            oneofs.setdefault(field["oneof"], []).append(field)
        else:
            lines.append(f"{pad}  {_render_field(name, field)}")
    for oneof, members in sorted(oneofs.items()):
        lines.append(f"{pad}  oneof {oneof} {{")
        lines.extend(f"{pad}    {_render_field(name, field)}" for field in members)
        lines.append(f"{pad}  }}")
    for nested in sorted(n for n in names if n.rsplit(".", 1)[0] == name):
        lines.extend(_render_type(nested, forms, names, depth + 1))
    return [*lines, f"{pad}}}"]


def _render_field(message: str, field: Form) -> str:
    cardinality, kind = field["cardinality"], field["type"]
    if cardinality == "required" or kind.startswith("group "):
        raise SchemaError(f"{message}.{field['name']}: proto3 has no {cardinality} or groups")
    if kind.startswith("map<"):
        key, value = kind[4:-1].split(", ")
        kind = f"map<{key}, {_qualify(value)}>"
    else:
        kind = _qualify(kind)
    label = {"repeated": "repeated ", "optional": "optional "}.get(cardinality, "")
    return f"{label}{kind} {field['name']} = {field['number']};"


def _qualify(kind: str) -> str:
    return kind if kind in SCALAR_NAMES.values() else f".{kind}"


# --- ROS ----------------------------------------------------------------------------------

ROS_BUILTINS = frozenset(
    ("bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16")
    + ("int32", "uint32", "int64", "uint64", "string", "wstring", "time", "duration")
)
_SEPARATOR = re.compile(r"^={3,}\s*$")
_IDENT = r"[A-Za-z][A-Za-z0-9_]*"
_TYPE_RE = re.compile(r"^([^\s\[]+)\s*(\[\s*(?:<=)?\s*\d*\s*\])?$")


def ros_type_name(name: str) -> str:
    """``pkg/Type`` or ``pkg/msg/Type`` -> ``pkg/msg/Type``; other names raise SchemaError."""
    parts = name.strip().split("/")
    if len(parts) == 2 and all(parts):
        return f"{parts[0]}/msg/{parts[1]}"
    if len(parts) == 3 and all(parts):
        return "/".join(parts)
    raise SchemaError(f"{name!r} is not a ROS message type name (pkg/Type or pkg/msg/Type)")


def ros_definition_forms(name: str, text: str) -> dict[str, Form]:
    """Canonical forms of a ``ros1msg``/``ros2msg`` schema: the type and its dependencies.

    The dependent definitions follow the main one, each after a line of ``=`` and a
    ``MSG: pkg/Type`` header, as rosbag and MCAP write them.
    """
    sections: list[list[str]] = [[]]
    for line in text.splitlines():
        if _SEPARATOR.match(line):
            sections.append([])
        else:
            sections[-1].append(line)
    forms = {}
    main = ros_type_name(name)
    forms[main] = ros_msg_form(main.split("/")[0], "\n".join(sections[0]))
    for lines in sections[1:]:
        body = [line for line in lines if line.strip()]
        if not body:
            continue
        header = body[0].strip()
        if not header.startswith("MSG:"):
            raise SchemaError(f"{main}: a dependent definition must start with 'MSG: pkg/Type'")
        dep = ros_type_name(header[4:])
        forms[dep] = ros_msg_form(dep.split("/")[0], "\n".join(body[1:]))
    return forms


def ros_msg_form(package: str, text: str) -> Form:
    """Canonical form of one ``.msg`` definition in ``package``; bad lines raise SchemaError."""
    fields: list[Form] = []
    constants: list[Form] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"(\S+)\s+(\S.*)$", line)
        if not match:
            raise SchemaError(f"line {number}: cannot parse {line!r}")
        kind = _ros_type(match.group(1), package, number)
        rest = match.group(2)
        constant = re.match(rf"({_IDENT})\s*=\s*(.*)$", rest)
        if constant:
            value = constant.group(2)
            value = _ros_string_value(value) if kind in ("string", "wstring") else _uncomment(value)
            constants.append({"name": constant.group(1), "type": kind, "value": value})
            continue
        field = re.match(rf"({_IDENT})(?:\s+(.*))?$", rest)
        if not field:
            raise SchemaError(f"line {number}: cannot parse {line!r}")
        entry: Form = {"name": field.group(1), "type": kind}
        default = _uncomment(field.group(2) or "")
        if default:
            entry["default"] = default
        fields.append(entry)
    constants.sort(key=lambda c: c["name"])
    return {"kind": "ros.msg", "fields": fields, "constants": constants}


def _ros_type(kind: str, package: str, number: int) -> str:
    match = _TYPE_RE.match(kind)
    if not match:
        raise SchemaError(f"line {number}: bad type {kind!r}")
    base, array = match.group(1), re.sub(r"\s+", "", match.group(2) or "")
    bounded = re.match(r"^(w?string)\s*<=\s*(\d+)$", base)
    if base in ROS_BUILTINS or bounded:
        return base.replace(" ", "") + array
    if "/" in base:
        return ros_type_name(base) + array
    if base == "Header":  # ROS 1 resolves a bare Header to std_msgs
        return "std_msgs/msg/Header" + array
    if not re.fullmatch(_IDENT, base):
        raise SchemaError(f"line {number}: bad type {kind!r}")
    return f"{package}/msg/{base}{array}"


def _uncomment(text: str) -> str:
    """Drop a trailing ``# comment`` outside quotes, and collapse whitespace."""
    quote = ""
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "#":
            text = text[:i]
            break
    return " ".join(text.split())


def _ros_string_value(text: str) -> str:
    # ROS 1 takes the whole rest of the line verbatim; ROS 2 allows a quoted literal.
    text = text.strip()
    quoted = re.match(r"""^(["'])(.*?)\1\s*(#.*)?$""", text)
    return quoted.group(2) if quoted else text


# --- JSON schema and opaque -----------------------------------------------------------------

_DOC_KEYWORDS = frozenset({"title", "description", "$comment", "examples"})
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_ONE = (
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
)


def jsonschema_form(data: bytes) -> Form:
    """Canonical form of a JSON schema (bytes); invalid JSON raises SchemaError."""
    try:
        schema = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise SchemaError(f"not valid JSON: {err}") from None
    return {"kind": "jsonschema", "schema": _strip_docs(schema)}


def _strip_docs(schema: Any) -> Any:
    """The schema without documentation keywords; property names are kept whatever they are."""
    if not isinstance(schema, dict):
        return copy.deepcopy(schema)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DOC_KEYWORDS:
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: _strip_docs(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_strip_docs(sub) for sub in value]
        elif key in _SCHEMA_ONE:
            out[key] = _strip_docs(value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def opaque_form(encoding: str, data: bytes) -> Form:
    """A schema drivecat cannot read: any change to its bytes is a change."""
    return {"kind": "opaque", "encoding": encoding, "sha256": hashlib.sha256(data).hexdigest()}
