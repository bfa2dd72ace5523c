"""Schema sources -> canonical forms: .proto files, descriptor sets, ROS .msg folders, MCAPs.

A source is a path. Files are told apart by suffix: ``.proto`` is compiled with
grpcio-tools' protoc, ``.msg`` is a ROS message, ``.mcap`` is a recording whose schema
records are read, and any other file must be a serialized ``FileDescriptorSet``. A folder
contributes every ``.proto``, ``.msg`` and ``.mcap`` file below it, and its ``.proto`` files
are compiled with the folder as the import root.

Recordings show only the types that were recorded, so a set made only of recordings is
marked ``recorded_only``: a type missing from it was perhaps just not recorded.

The lock file is the other place canonical forms come from: ``dump_lock``/``write_lock``
and ``read_lock`` are here too.
"""

from __future__ import annotations

import json
import os
import re
import struct
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from google.protobuf import descriptor_pb2
from google.protobuf.message import DecodeError

from drivecat.schemas.canonical import (
    KINDS,
    Canonical,
    Form,
    jsonschema_form,
    opaque_form,
    protobuf_forms,
    ros_definition_forms,
    ros_msg_form,
    ros_type_name,
)
from drivecat.schemas.errors import SchemaError

MCAP_MAGIC = b"\x89MCAP0\r\n"
# absl's start-up notice and glog-style warnings that protoc writes around its real errors
_PROTOC_NOISE = re.compile(r"^(WARNING: All log messages before absl|[IWE]\d{4} )")
LOCK_FORMAT = 1
LOCK_COMMENT = "Written by `schemas lock`. Do not edit: re-run it once a change is agreed."


class Location(NamedTuple):
    """Where a type or member is defined: a file path as the user named it, and a line."""

    file: str
    line: int | None = None


@dataclass
class SchemaSet:
    """Canonical forms by type name, where each came from, and whether only recordings were read.

    ``locations`` is keyed by ``"Type"`` and ``"Type.member"``.
    """

    types: dict[str, Form] = field(default_factory=dict)
    locations: dict[str, Location] = field(default_factory=dict)
    recorded_only: bool = True

    def add(self, canonical: Canonical, where: Location, files: Mapping[str, str] = {}) -> int:
        """Merge forms and return how many were read; a type defined two ways raises SchemaError.

        ``files`` maps a schema's own file names (proto import paths) to paths on disk, for
        line-accurate locations; a location it cannot map is ``where``.
        """
        for name, form in sorted(canonical.forms.items()):
            known = self.types.setdefault(name, form)
            if known != form:
                other = self.locations[name].file
                raise SchemaError(f"{where.file}: {name} is defined differently in {other}")
        for key, (file, line) in sorted(canonical.locations.items()):
            if key not in self.locations:
                self.locations[key] = Location(files[file], line) if file in files else where
        for name in canonical.forms:
            self.locations.setdefault(name, where)
        return len(canonical.forms)


def load_sources(sources: Sequence[str | Path], includes: Sequence[str | Path] = ()) -> SchemaSet:
    """Read every source into one SchemaSet.

    ``includes`` are extra protoc import paths (``-I``); the well-known types are always
    available. A missing path, an unparsable file or a source with no types raises
    ``SchemaError`` naming the path and the reason (protoc's own message for a bad proto).
    """
    result = SchemaSet()
    include_paths = [Path(i) for i in includes]
    for missing in [p for p in include_paths if not p.is_dir()]:
        raise SchemaError(f"{missing}: include path is not a folder")
    for source in map(Path, sources):
        if not source.exists():
            raise SchemaError(f"{source}: no such file or folder")
        if source.is_dir():
            found = _load_folder(result, source, include_paths)
        else:
            found = _load_file(result, source, include_paths)
        if not found:
            raise SchemaError(f"{source}: no message types found")
    return result


def _load_folder(result: SchemaSet, folder: Path, includes: list[Path]) -> int:
    protos = sorted(folder.rglob("*.proto"))
    msgs = sorted(folder.rglob("*.msg"))
    recordings = sorted(folder.rglob("*.mcap"))
    if not (protos or msgs or recordings):
        raise SchemaError(f"{folder}: no .proto, .msg or .mcap files in this folder")
    found = _load_protos(result, folder, folder, protos, includes) if protos else 0
    found += sum(_load_msg(result, msg) for msg in msgs)
    return found + sum(_load_mcap(result, recording) for recording in recordings)


def _load_file(result: SchemaSet, path: Path, includes: list[Path]) -> int:
    if path.suffix == ".proto":
        root = next((i for i in includes if path.resolve().is_relative_to(i.resolve())), None)
        return _load_protos(result, path, root or path.parent, [path], includes)
    if path.suffix == ".msg":
        return _load_msg(result, path)
    if path.suffix == ".mcap":
        return _load_mcap(result, path)
    fds = descriptor_pb2.FileDescriptorSet()
    try:
        fds.ParseFromString(_read(path))
    except DecodeError:
        fds.Clear()
    if not fds.file or not all(f.name for f in fds.file):
        raise SchemaError(f"{path}: not a .proto, .msg or .mcap file, nor a FileDescriptorSet")
    result.recorded_only = False
    return result.add(_protobuf(path, fds), Location(str(path)))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise SchemaError(f"{path}: cannot read: {err.strerror}") from None


def _protobuf(path: Path, fds: descriptor_pb2.FileDescriptorSet) -> Canonical:
    try:
        return protobuf_forms(fds)
    except SchemaError as err:
        raise SchemaError(f"{path}: {err}") from None


# --- .proto -------------------------------------------------------------------------------


def compile_protos(
    root: Path, protos: Iterable[Path], includes: Sequence[Path] = (), source: Path | None = None
) -> descriptor_pb2.FileDescriptorSet:
    """Compile .proto files under ``root`` with grpcio-tools' protoc, imports included.

    The result carries source info (line numbers). A failure raises SchemaError naming
    ``source`` (default ``root``) with protoc's own words.
    """
    source = source or root
    with tempfile.TemporaryDirectory(prefix="drivecat-protoc-") as tmp:
        out = Path(tmp) / "set.binpb"
        args = [
            "protoc",
            f"--proto_path={root}",
            *(f"--proto_path={i}" for i in includes),
            f"--proto_path={_well_known()}",
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={out}",
            *(str(_under(root, p)) for p in protos),
        ]
        code, stderr = _run_protoc(args)
        if code != 0:
            lines = [line.strip() for line in stderr.splitlines() if line.strip()]
            errors = [line for line in lines if not _PROTOC_NOISE.match(line)] or lines
            raise SchemaError(f"{source}: protoc failed: {'; '.join(errors) or 'no message'}")
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _under(root: Path, proto: Path) -> Path:
    """``proto`` spelled from ``root``: protoc matches import roots by text, not by file."""
    try:
        return root / proto.resolve().relative_to(root.resolve())
    except ValueError:
        return proto


_PROTOC_LOCK = threading.Lock()


def _run_protoc(args: list[str]) -> tuple[int, str]:
    """Run grpcio-tools' protoc in this process; return its exit code and its stderr text.

    protoc writes its messages from C++ straight to file descriptor 2, where replacing
    ``sys.stderr`` cannot see them, so fd 2 points at a temporary file for the call; the
    lock keeps two threads from swapping fd 2 under each other. In process, a compile takes
    about 1 ms; ``python -m grpc_tools.protoc`` in a subprocess would take about 100 ms.
    """
    from grpc_tools import protoc

    with _PROTOC_LOCK, tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(captured.fileno(), 2)
            code = protoc.main(args)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        return code, captured.read().decode(errors="replace")


def _well_known() -> Path:
    """grpcio-tools' copy of the well-known types (google/protobuf/*.proto)."""
    import grpc_tools

    return Path(grpc_tools.__file__).parent / "_proto"


def _load_protos(
    result: SchemaSet, source: Path, root: Path, protos: list[Path], includes: list[Path]
) -> int:
    fds = compile_protos(root, protos, includes, source)
    files = {}
    for file in fds.file:
        for base in (root, *includes, _well_known()):
            if (base / file.name).is_file():
                files[file.name] = str(base / file.name)
                break
    result.recorded_only = False
    return result.add(_protobuf(source, fds), Location(str(source)), files)


# --- ROS .msg -------------------------------------------------------------------------------


def _load_msg(result: SchemaSet, path: Path) -> int:
    """``<pkg>/msg/<Type>.msg`` (or ``<pkg>/<Type>.msg``) -> the type ``pkg/msg/Type``."""
    resolved = path.resolve()
    parent = resolved.parent
    package = parent.parent.name if parent.name == "msg" else parent.name
    try:
        name = ros_type_name(f"{package}/{path.stem}")
        text = _read(path).decode()
        form = ros_msg_form(package, text)
    except (SchemaError, UnicodeDecodeError) as err:
        raise SchemaError(f"{path}: {err}") from None
    result.recorded_only = False
    return result.add(Canonical({name: form}, {}), Location(str(path)))


# --- MCAP -----------------------------------------------------------------------------------


def _load_mcap(result: SchemaSet, path: Path) -> int:
    found = 0
    for name, encoding, data in _mcap_schemas(path):
        try:
            canonical = _schema_forms(name, encoding, data)
        except SchemaError as err:
            raise SchemaError(f"{path}: schema {name!r}: {err}") from None
        found += result.add(canonical, Location(str(path)))
    return found


def _schema_forms(name: str, encoding: str, data: bytes) -> Canonical:
    if encoding == "protobuf":
        try:
            fds = descriptor_pb2.FileDescriptorSet.FromString(data)
        except DecodeError:
            raise SchemaError("protobuf schema data is not a FileDescriptorSet") from None
        return protobuf_forms(fds)
    if encoding in ("ros1msg", "ros2msg"):
        try:
            text = data.decode()
        except UnicodeDecodeError:
            raise SchemaError(f"{encoding} schema data is not UTF-8 text") from None
        return Canonical(ros_definition_forms(name, text), {})
    if encoding == "jsonschema":
        return Canonical({name: jsonschema_form(data)}, {})
    return Canonical({name: opaque_form(encoding, data)}, {})


def _mcap_schemas(path: Path) -> list[tuple[str, str, bytes]]:
    """Every schema record of an MCAP: from its summary, or by reading it through.

    A recording without a summary (a recorder crash) is read up to its last readable record.
    """
    from mcap.exceptions import McapError
    from mcap.reader import make_reader
    from mcap.records import Schema
    from mcap.stream_reader import StreamReader

    unreadable = (McapError, OSError, ValueError, EOFError, struct.error)
    with path.open("rb") as stream:
        if stream.read(len(MCAP_MAGIC)) != MCAP_MAGIC:
            raise SchemaError(f"{path}: not an MCAP file (it does not start with the MCAP magic)")
        stream.seek(0)
        try:
            summary = make_reader(stream).get_summary()
        except unreadable:
            summary = None
        if summary is not None and summary.schemas:
            found = summary.schemas.values()
            return [(s.name, s.encoding, bytes(s.data)) for s in found if s.encoding]
        stream.seek(0)
        schemas: dict[int, Schema] = {}
        try:
            for record in StreamReader(stream, skip_magic=False).records:
                if isinstance(record, Schema):
                    schemas[record.id] = record
        except unreadable:
            pass  # truncated: keep the schemas read before the cut
    return [(s.name, s.encoding, bytes(s.data)) for s in schemas.values() if s.encoding]


# --- the lock file --------------------------------------------------------------------------


def dump_lock(types: Mapping[str, Form]) -> str:
    """The lock file's text: sorted JSON, one line per field or value, ASCII, ``\\n`` ends."""
    doc = {"comment": LOCK_COMMENT, "format": LOCK_FORMAT, "types": dict(types)}
    return _json_lines(doc, "") + "\n"


def _json_lines(value: Any, pad: str) -> str:
    """Indented JSON whose innermost objects and arrays stay on one line each."""
    if isinstance(value, dict) and any(isinstance(v, dict | list) and v for v in value.values()):
        items = [
            f"{pad}  {json.dumps(k)}: {_json_lines(value[k], pad + '  ')}" for k in sorted(value)
        ]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and any(isinstance(v, dict | list) and v for v in value):
        items = [f"{pad}  {_json_lines(v, pad + '  ')}" for v in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(value, sort_keys=True, ensure_ascii=True, separators=(", ", ": "))


def write_lock(path: Path, types: Mapping[str, Form]) -> bool:
    """Write the lock atomically (temporary file, then rename); True if its text changed."""
    text = dump_lock(types)
    try:
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or err
        raise SchemaError(f"{path}: cannot write the lock: {reason}") from None
    return True


_ITEMS: dict[str, dict[str, dict[str, type]]] = {
    "protobuf.message": {"fields": {"name": str, "number": int, "type": str, "cardinality": str}},
    "protobuf.enum": {"values": {"name": str, "number": int}},
    "ros.msg": {
        "fields": {"name": str, "type": str},
        "constants": {"name": str, "type": str, "value": str},
    },
}
_KEYS: dict[str, dict[str, type]] = {
    "jsonschema": {"schema": object},
    "opaque": {"encoding": str, "sha256": str},
}


def _valid_form(form: Any) -> bool:
    if not isinstance(form, dict) or form.get("kind") not in KINDS:
        return False
    if form["kind"].startswith("protobuf.") and not isinstance(form.get("package"), str):
        return False
    for key, kind in _KEYS.get(form["kind"], {}).items():
        if key not in form or not isinstance(form[key], kind):
            return False
    for key, shape in _ITEMS.get(form["kind"], {}).items():
        items = form.get(key)
        if not isinstance(items, list):
            return False
        for item in items:
            if not isinstance(item, dict):
                return False
            if not all(isinstance(item.get(k), t) for k, t in shape.items()):
                return False
    return True


def read_lock(path: Path, relock: str = "schemas lock") -> dict[str, Form]:
    """The canonical forms in a lock file; a missing or malformed lock raises SchemaError."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SchemaError(f"{path}: lock file not found; create it with: {relock}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SchemaError(f"{path}: cannot read the lock: {err}") from None
    except ValueError as err:
        raise SchemaError(f"{path}: the lock is not valid JSON: {err}") from None
    if not isinstance(doc, dict) or doc.get("format") != LOCK_FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else None
        raise SchemaError(f"{path}: lock format {found!r} is not {LOCK_FORMAT}; re-run {relock}")
    types = doc.get("types")
    if not isinstance(types, dict):
        raise SchemaError(f"{path}: the lock has no 'types' object")
    for name, form in types.items():
        if not _valid_form(form):
            raise SchemaError(f"{path}: the lock entry for {name} is malformed")
    return types
