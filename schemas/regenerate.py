"""Regenerate the committed Python code for the contract .proto files.

Run ``python -m drivecat.schemas.regenerate`` after editing a file in ``schemas/proto``. It uses
grpcio-tools' protoc, a dependency of drivecat. ``tests/schemas/test_generated.py`` fails when the
committed code no longer matches what this produces.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from drivecat.schemas.errors import SchemaError

PROTO_ROOT = Path(__file__).parent / "proto"
GENERATED = Path(__file__).parent / "generated"


def contract_protos() -> list[Path]:
    """The project's own .proto files, relative to ``PROTO_ROOT``."""
    return sorted(p.relative_to(PROTO_ROOT) for p in PROTO_ROOT.rglob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Compile every contract proto into ``out_dir``; return the files written."""
    import grpc_tools
    from grpc_tools import protoc

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    protos = [str(p) for p in contract_protos()]
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SchemaError(f"protoc failed on {PROTO_ROOT}")
    return sorted([*out_dir.rglob("*_pb2.py"), *out_dir.rglob("*_pb2.pyi")])


# protoc names each module after its .proto path (``drivecat.vehicle_pb2``), a module that
# does not exist once the code lives in ``drivecat.schemas.generated``: the messages' own
# ``__module__`` would point nowhere, and pickling them fails. The module's real name is right.
_MODULE_NAME = re.compile(r"(BuildTopDescriptorsAndMessages\(DESCRIPTOR, )'[\w.]+_pb2'")


def generated_text() -> dict[str, str]:
    """What protoc produces now, keyed by path relative to the generated folder."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        return {
            str(p.relative_to(out)): _MODULE_NAME.sub(r"\1__name__", p.read_text())
            for p in generate(out)
        }


def main() -> int:
    for rel, text in generated_text().items():
        target = GENERATED / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
