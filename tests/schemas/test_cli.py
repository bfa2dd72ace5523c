"""``schemas lock`` and ``schemas check`` through click: exact output and exit codes.

Sources are built in each test: proto folders, descriptor sets, ROS .msg folders and MCAP
recordings written with the mcap writers. Expected lines are written out by hand.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from google.protobuf import descriptor_pool, message_factory
from mcap.writer import Writer as McapWriter
from mcap_protobuf.writer import Writer as ProtobufWriter

from drivecat.cli.main import drivecat
from drivecat.schemas.messages import ObjectClass, ObjectList, State, WiperMode
from drivecat.schemas.regenerate import PROTO_ROOT
from drivecat.schemas.sources import compile_protos

DEMO = """syntax = "proto3";
package demo;
enum Color { COLOR_UNSET = 0; RED = 1; }
message Point {
  double x = 1;
  double y = 2;
  Color color = 3;
}
"""
RELOCK = "schemas lock proto --lock s.lock"
NEXT = f"If the change is intended, agree it with the data consumers and run: {RELOCK}"


def run(*args: object) -> Result:
    return CliRunner().invoke(drivecat, ["schemas", *map(str, args)])


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A locked proto folder ``proto/demo.proto`` with the lock ``s.lock``, cwd = tmp_path."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "proto").mkdir()
    (tmp_path / "proto" / "demo.proto").write_text(DEMO)
    result = run("lock", "proto", "--lock", "s.lock")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Locked 2 types in s.lock (updated).\n"
    return tmp_path / "proto" / "demo.proto"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_no_change_exits_0(demo: Path) -> None:
    edit(demo, "double y = 2;", "double y = 2;  // comments are not changes")
    result = run("check", "proto", "--lock", "s.lock")
    assert result.exit_code == 0
    assert result.stdout == "No schema changes: 2 types match s.lock.\n"
    again = run("lock", "proto", "--lock", "s.lock")
    assert again.stdout == "Locked 2 types in s.lock (unchanged).\n"


def test_breaking_change_fails_in_both_modes(demo: Path) -> None:
    edit(demo, "double x = 1;", "float x = 1;")
    expected = (
        "BREAKING demo.Point.x: type double -> float (field 1): "
        "64-bit -> 32-bit on the wire: readers drop the field or decode garbage\n"
        f"1 schema change (1 breaking). {NEXT}\n"
    )
    for allow in ([], ["--allow", "compatible"]):
        result = run("check", "proto", "--lock", "s.lock", *allow)
        assert (result.exit_code, result.stdout) == (1, expected)


def test_compatible_change_fails_unless_allowed(demo: Path) -> None:
    edit(demo, "Color color = 3;", "Color color = 3;\n  string label = 4;")
    line = (
        "COMPATIBLE demo.Point.label: field added (field 4, string label): "
        "old readers skip it; new readers see its default in old data"
    )
    strict = run("check", "proto", "--lock", "s.lock")
    assert (strict.exit_code, strict.stdout) == (
        1,
        f"{line}\n1 schema change (0 breaking). {NEXT}\n",
    )
    allowed = run("check", "proto", "--lock", "s.lock", "--allow", "compatible")
    assert allowed.exit_code == 0
    assert allowed.stdout == (
        f"{line}\n1 schema change (0 breaking), allowed by --allow compatible. "
        f"To record them, run: {RELOCK}\n"
    )


def test_github_format_annotates_the_line(demo: Path) -> None:
    edit(demo, "RED = 1;", "RED = 1; GREEN = 2;")
    edit(demo, "double y = 2;", "")
    result = run(
        "check", "proto", "--lock", "s.lock", "--allow", "compatible", "--format", "github"
    )
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "::warning file=proto/demo.proto,line=3,title=compatible schema change in "
        "demo.Color.GREEN::COMPATIBLE demo.Color.GREEN: value added (GREEN = 2): "
        "old readers see an unknown value and keep it as a number",
        "::error file=proto/demo.proto,line=4,title=breaking schema change in "
        "demo.Point.y::BREAKING demo.Point.y: field removed (field 2, double y): "
        "readers that use it get nothing, and old data still carries its number",
        f"2 schema changes (1 breaking). {NEXT}",
    ]


def test_json_format(demo: Path) -> None:
    edit(demo, "double y = 2;", "double why = 2;")
    for flags in (["--format", "json"], ["--json"]):
        result = run("check", "proto", "--lock", "s.lock", *flags)
        assert result.exit_code == 1
        doc = json.loads(result.stdout)
        assert doc["exit_code"] == 1 and doc["breaking"] == 1 and doc["compatible"] == 0
        assert doc["relock"] == RELOCK
        (change,) = doc["changes"]
        assert change["severity"] == "breaking" and change["kind"] == "field_renamed"
        assert (change["type_name"], change["member"]) == ("demo.Point", "y")
        assert (change["old"], change["new"]) == ("y", "why")
        assert (change["file"], change["line"]) == ("proto/demo.proto", 6)


# --- bad input ------------------------------------------------------------------------------


def test_missing_paths_exit_2(demo: Path) -> None:
    result = run("check", "nowhere", "--lock", "s.lock")
    assert (result.exit_code, result.stderr) == (2, "Error: nowhere: no such file or folder\n")
    result = run("check", "proto", "--lock", "missing.lock")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: missing.lock: lock file not found; create it with: "
        "schemas lock proto --lock missing.lock\n"
    )
    result = run("lock", "nowhere", "--lock", "new.lock")
    assert result.exit_code == 2 and not Path("new.lock").exists()


def test_unparsable_proto_shows_protocs_message(demo: Path) -> None:
    edit(demo, "double y = 2;", "double y = 2")
    result = run("check", "proto", "--lock", "s.lock")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: proto: protoc failed: ")
    assert 'proto/demo.proto:7:3: Expected ";".' in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_files_that_are_no_schema_exit_2(demo: Path) -> None:
    Path("junk.bin").write_bytes(b"\xff\x00 not a descriptor set")
    Path("junk.mcap").write_text("hello")
    Path("empty").mkdir()
    for source, reason in [
        ("junk.bin", "not a .proto, .msg or .mcap file, nor a FileDescriptorSet"),
        ("junk.mcap", "not an MCAP file (it does not start with the MCAP magic)"),
        ("empty", "no .proto, .msg or .mcap files in this folder"),
    ]:
        result = run("check", source, "--lock", "s.lock")
        assert (result.exit_code, result.stderr) == (2, f"Error: {source}: {reason}\n")


def test_include_paths(demo: Path) -> None:
    Path("inc/units").mkdir(parents=True)
    Path("inc/units/si.proto").write_text('syntax = "proto3";\npackage units;\nmessage Metre {}\n')
    edit(demo, "package demo;", 'package demo;\nimport "units/si.proto";')
    edit(demo, "Color color = 3;", "Color color = 3;\n  units.Metre length = 4;")
    result = run("check", "proto", "--lock", "s.lock")
    assert result.exit_code == 2
    assert "units/si.proto: File not found." in result.stderr
    result = run("check", "proto", "-I", "inc", "--lock", "s.lock")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[-1].endswith("run: schemas lock proto -I inc --lock s.lock")
    assert "COMPATIBLE units.Metre: message added" in result.stdout


def test_descriptor_set_source(demo: Path) -> None:
    fds = compile_protos(Path("proto"), [demo])
    Path("demo.binpb").write_bytes(fds.SerializeToString())
    result = run("check", "demo.binpb", "--lock", "s.lock")
    assert (result.exit_code, result.stdout) == (0, "No schema changes: 2 types match s.lock.\n")


# --- MCAP recordings ------------------------------------------------------------------------


def record(path: Path, classes: dict[str, type], count: int = 5, chunk_size: int = 1 << 20) -> None:
    with path.open("wb") as stream:
        writer = ProtobufWriter(stream, chunk_size=chunk_size)
        for i in range(count):
            for topic, cls in classes.items():
                message = cls()
                if hasattr(message, "speed_mps"):
                    message.speed_mps = float(i)
                    message.wipers = WiperMode.WIPER_LOW
                else:
                    message.frame_id = "ego"
                    message.objects.add(track_id=i, object_class=ObjectClass.PEDESTRIAN)
                writer.write_message(topic, message, log_time=i * 100_000_000)
        writer.finish()


CONTRACT = {"/perception/objects": ObjectList, "/vehicle/state": State}


def _changed_object_list(tmp_path: Path) -> type:
    """ObjectList built from an edited copy of perception.proto (Object.x is a float)."""
    root = tmp_path / "edited"
    shutil.copytree(PROTO_ROOT, root)
    proto = root / "drivecat" / "perception.proto"
    proto.write_text(proto.read_text().replace("double x = 3;", "float x = 3;"))
    pool = descriptor_pool.DescriptorPool()
    for file in compile_protos(root, [proto]).file:
        pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("drivecat.perception.ObjectList")
    )


def test_lock_from_one_recording_checks_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    record(Path("a.mcap"), CONTRACT, count=3)
    record(Path("b.mcap"), dict(reversed(CONTRACT.items())), count=50, chunk_size=512)
    record(Path("c.mcap"), {"/perception/objects": _changed_object_list(tmp_path)})
    assert run("lock", "a.mcap", "--lock", "rec.lock").exit_code == 0

    same = run("check", "b.mcap", "--lock", "rec.lock")
    assert (same.exit_code, same.stdout) == (0, "No schema changes: 7 types match rec.lock.\n")

    changed = run("check", "c.mcap", "--lock", "rec.lock")
    assert changed.exit_code == 1
    assert changed.stdout.splitlines() == [
        "BREAKING drivecat.perception.Object.x: type double -> float (field 3): "
        "64-bit -> 32-bit on the wire: readers drop the field or decode garbage",
        "Note: 3 locked types are not in these recordings and were not checked: "
        "drivecat.vehicle.FrameTime, drivecat.vehicle.State, drivecat.vehicle.WiperMode",
        "1 schema change (1 breaking). If the change is intended, agree it with the data "
        "consumers and run: schemas lock c.mcap --lock rec.lock",
    ]


def test_recordings_check_against_the_proto_lock_even_when_truncated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    record(Path("full.mcap"), CONTRACT, count=200, chunk_size=1024)
    data = Path("full.mcap").read_bytes()
    Path("cut.mcap").write_bytes(data[: len(data) * 2 // 3])  # a recorder crash: no summary
    lock = PROTO_ROOT.parent / "schemas.lock"
    for source in ("full.mcap", "cut.mcap"):
        result = run("check", source, "--lock", lock)
        assert (result.exit_code, result.stdout) == (
            0,
            f"No schema changes: 7 types match {lock}.\n",
        ), source


# --- ROS and JSON schemas -----------------------------------------------------------------------

POSE = "# A pose\nstd_msgs/Header header\nfloat64 x  # metres\nfloat64 y\nuint8 FRAME_MAP=0\n"
HEADER = "builtin_interfaces/Time stamp\nstring frame_id\n"
TIME = "int32 sec\nuint32 nanosec\n"
SEP = "=" * 80


def ros_folder(root: Path, pose: str = POSE) -> None:
    for package, name, text in [
        ("nav", "Pose", pose),
        ("std_msgs", "Header", HEADER),
        ("builtin_interfaces", "Time", TIME),
    ]:
        (root / package / "msg").mkdir(parents=True, exist_ok=True)
        (root / package / "msg" / f"{name}.msg").write_text(text)


def test_ros_msg_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ros_folder(Path("ros"))
    assert run("lock", "ros", "--lock", "ros.lock").exit_code == 0
    ros_folder(Path("ros"), POSE.replace("# metres", "# metres, forward").replace("# A pose\n", ""))
    same = run("check", "ros", "--lock", "ros.lock")
    assert (same.exit_code, same.stdout) == (0, "No schema changes: 3 types match ros.lock.\n")
    ros_folder(Path("ros"), POSE.replace("float64 y", "float32 y"))
    changed = run("check", "ros", "--lock", "ros.lock", "--allow", "compatible")
    assert changed.exit_code == 1
    assert changed.stdout.splitlines()[0] == (
        "BREAKING nav/msg/Pose.y: type float64 -> float32: ROS messages are positional: "
        "old readers misread the bytes, and ROS 1 md5sums and ROS 2 type hashes no longer match"
    )


def test_ros2msg_recording_matches_the_msg_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ros_folder(Path("ros"))
    assert run("lock", "ros", "--lock", "ros.lock").exit_code == 0
    definition = "\n".join(
        [POSE, SEP, "MSG: std_msgs/Header", HEADER, SEP, "MSG: builtin_interfaces/Time", TIME]
    )
    with Path("ros2.mcap").open("wb") as stream:
        writer = McapWriter(stream)
        writer.start()
        schema = writer.register_schema("nav/msg/Pose", "ros2msg", definition.encode())
        channel = writer.register_channel("/pose", "cdr", schema)
        writer.add_message(channel, log_time=1, data=b"\x00\x01\x00\x00", publish_time=1)
        writer.finish()
    result = run("check", "ros2.mcap", "--lock", "ros.lock")
    assert (result.exit_code, result.stdout) == (0, "No schema changes: 3 types match ros.lock.\n")


def _json_recording(path: Path, schema: dict) -> None:
    with path.open("wb") as stream:
        writer = McapWriter(stream)
        writer.start()
        schema_id = writer.register_schema("Car", "jsonschema", json.dumps(schema).encode())
        channel = writer.register_channel("/car", "json", schema_id)
        writer.add_message(channel, log_time=1, data=b'{"speed": 1}', publish_time=1)
        writer.finish()


def test_jsonschema_recordings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    car: dict[str, Any] = {
        "type": "object",
        "properties": {"speed": {"type": "number"}},
        "required": ["speed"],
    }
    _json_recording(Path("a.mcap"), car)
    assert run("lock", "a.mcap", "--lock", "j.lock").exit_code == 0
    car["properties"]["gear"] = {"type": "string"}
    _json_recording(Path("b.mcap"), car)
    line = "COMPATIBLE Car.gear: optional property added: old readers ignore it"
    strict = run("check", "b.mcap", "--lock", "j.lock")
    assert strict.exit_code == 1 and strict.stdout.splitlines()[0] == line
    assert run("check", "b.mcap", "--lock", "j.lock", "--allow", "compatible").exit_code == 0


# --- the project's own CI -----------------------------------------------------------------------


def test_the_repository_lock_matches_its_protos(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # the repository
    result = run("check", "schemas/proto", "--lock", "schemas/schemas.lock")
    assert (result.exit_code, result.stdout) == (
        0,
        "No schema changes: 7 types match schemas/schemas.lock.\n",
    )
