"""Every ``bash`` and ``python`` block of README.md runs, in order, as written (as
sqlite-utils tests its docs), against the demo store the Quick start makes.

How a block runs:

- cwd is the repository root; PATH has this venv's ``bin`` first (what ``source
  .venv/bin/activate`` does); ``.venv/bin/`` in a command means this venv's ``bin``;
- every ``/tmp/drivecat-...`` path is moved into one temporary folder for the whole README
  (``/tmp/drivecat-demo`` is the demo store), so blocks see what earlier blocks wrote;
- bash blocks run under ``set -euo pipefail``, Python blocks as a script (``__main__``);
  each has :data:`TIMEOUT_S` seconds;
- a line ``0 rows`` or ``[]`` in a block's output fails it: examples that filter must
  return rows on the demo.

Markers, an HTML comment on the line before a block:

- ``<!-- readme-test: setup -->``: the Quick start; its venv creation, ``pip install`` and
  ``source .venv/bin/activate`` are left out (the test already runs in the venv), the rest
  runs;
- ``<!-- readme-test: skip (reason) -->``: not run (needs your own drives, a cluster...);
  the reason is required;
- ``<!-- readme-test: requires MODULE -->``: skipped when MODULE cannot be imported.

Any other block of those languages must pass: a new README section is tested as it lands.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
TIMEOUT_S = 180
RUN = {"bash": "bash", "sh": "bash", "shell": "bash", "console": "bash", "python": "python"}
_MARKER = re.compile(r"<!--\s*readme-test:\s*(setup|skip|requires)\b\s*(.*?)\s*-->")
_FENCE = re.compile(r"^```(\S*)\s*$")
_SETUP_ONLY = (
    re.compile(r"^python3? -m venv "),
    re.compile(r"^(\S*/)?pip install "),
    re.compile(r"^source \.venv/bin/activate$"),
    re.compile(r"^export PATH="),
)


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    marker: str  # "", "setup", "skip", "requires"
    argument: str  # the skip reason or the required module

    @property
    def id(self) -> str:
        return f"line{self.line}-{self.language}"


def blocks(text: str) -> list[Block]:
    """Every fenced block of a runnable language, with the marker on the line before it."""
    found: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        language = fence.group(1).lower()
        before = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        marker = _MARKER.search(before)
        if language in RUN:
            found.append(
                Block(
                    i + 1,
                    language,
                    "\n".join(lines[i + 1 : end]) + "\n",
                    marker.group(1) if marker else "",
                    marker.group(2) if marker else "",
                )
            )
        i = end + 1
    return found


ALL = blocks(README.read_text())


def test_the_readme_has_runnable_blocks_and_every_skip_says_why() -> None:
    assert sum(b.marker == "" for b in ALL) >= 8
    assert sum(b.marker == "setup" for b in ALL) >= 1
    for block in ALL:
        if block.marker in ("skip", "requires"):
            assert block.argument.strip("() "), f"README line {block.line}: say why"


def setup_commands(code: str) -> str:
    """A setup block without what the test environment already did (venv, install, PATH)."""
    kept = []
    for line in code.splitlines():
        parts = [p.strip() for p in line.split("&&")]
        parts = [p.split("  #")[0].strip() for p in parts]
        parts = [p for p in parts if p and not any(r.match(p) for r in _SETUP_ONLY)]
        if parts:
            kept.append(" && ".join(parts))
    return "\n".join(kept) + "\n"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("readme")


def as_run(code: str, workspace: Path) -> str:
    bin_dir = Path(sys.executable).parent
    code = code.replace("/tmp/drivecat-", f"{workspace}/drivecat-")
    return re.sub(r"(?<![\w/.])\.venv/bin/", f"{bin_dir}/", code)


@pytest.mark.parametrize("block", ALL, ids=lambda b: b.id)
def test_readme_block(block: Block, workspace: Path) -> None:
    if block.marker == "skip":
        pytest.skip(f"README line {block.line}: {block.argument}")
    if block.marker == "requires" and importlib.util.find_spec(block.argument) is None:
        pytest.skip(f"README line {block.line}: needs {block.argument}")
    code = setup_commands(block.code) if block.marker == "setup" else block.code
    code = as_run(code, workspace)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIVECAT_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "80"  # the width the issue tried the README in
    if RUN[block.language] == "bash":
        assert shutil.which("bash")
        argv = ["bash", "-c", "set -euo pipefail\n" + code]
    else:
        script = workspace / f"block_{block.line}.py"
        script.write_text(code)
        argv = [sys.executable, str(script)]
    try:
        done = subprocess.run(
            argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"README line {block.line}: no answer in {TIMEOUT_S} s:\n{code}")
    where = f"README line {block.line} ({block.language}):\n{code}"
    assert done.returncode == 0, f"{where}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
    empty = [ln for ln in done.stdout.splitlines() if ln.strip() in ("0 rows", "[]")]
    assert not empty, f"{where}\nreturned no rows on the demo:\n{done.stdout}"
    assert "Traceback" not in done.stderr, f"{where}\n{done.stderr}"
