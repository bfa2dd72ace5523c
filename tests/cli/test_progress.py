"""Progress goes to stderr on a terminal, is erased before any result line, and never
reaches stdout; --quiet and --json hide it. Checked through a real pseudo-terminal."""

from __future__ import annotations

import io
import os
import pty
import select
import shutil
import subprocess
import sys
from pathlib import Path

from drivecat.cli.progress import StatusLine, shows_progress

REPO = Path(__file__).resolve().parents[2]
ERASE = "\r\x1b[2K"
TINY = REPO / "sample_logs" / "tiny"  # read only: ingest never writes its input


def run_with_tty_stderr(args: list[str]) -> tuple[int, str, str]:
    """Run the ``drivecat`` script with stderr on a pseudo-terminal and stdout on a pipe;
    (exit code, stdout, what the terminal got)."""
    script = shutil.which("drivecat", path=str(Path(sys.executable).parent))
    assert script is not None
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [script, *args], stdout=subprocess.PIPE, stderr=slave, cwd=REPO, env=dict(os.environ)
    )
    os.close(slave)
    terminal = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        terminal += chunk
    os.close(master)
    out, _ = proc.communicate(timeout=120)
    return proc.returncode, out.decode(), terminal.decode(errors="replace")


def test_progress_is_on_the_terminal_and_erased(tmp_path: Path) -> None:
    store = tmp_path / "store"
    code, out, terminal = run_with_tty_stderr(["ingest", "run", str(TINY), "--store", str(store)])
    assert code == 0, terminal
    assert "ingesting:" in terminal and "messages, log time" in terminal
    assert terminal.rstrip("\n").endswith(ERASE), repr(terminal[-200:])
    # stdout holds the result line and nothing else: no frame, no escape, no blank line
    assert out.count("\n") == 1 and out.startswith("ingested "), repr(out)
    assert "\x1b" not in out and "\r" not in out


def test_quiet_and_json_show_no_progress(tmp_path: Path) -> None:
    for flag in ("--quiet", "--json"):
        store = tmp_path / flag.strip("-")
        code, out, terminal = run_with_tty_stderr(
            ["ingest", "run", str(TINY), "--store", str(store), flag]
        )
        assert code == 0, terminal
        assert "ingesting:" not in terminal and "\x1b" not in terminal, repr(terminal)
        assert out.strip()


def test_a_status_line_erases_itself() -> None:
    stream = io.StringIO()
    line = StatusLine(stream, interval_s=0)
    line.clear()
    assert stream.getvalue() == ""  # nothing drawn, nothing to erase
    line.show("ingesting: 10 messages")
    line.show("ingesting: 20 messages")
    line.clear()
    text = stream.getvalue()
    assert text.count(ERASE) == 3 and text.endswith(ERASE)
    assert "20 messages" in text.split(ERASE)[-2]


def test_progress_only_when_stderr_is_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert shows_progress(True, Tty())
    assert not shows_progress(False, Tty())
    assert not shows_progress(True, io.StringIO())
