"""What every command shares: the error boundary and the common options."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click

from drivecat import DrivecatError, __version__

F = TypeVar("F", bound=Callable[..., Any])


class Group(click.Group):
    """A click group that turns drivecat errors into one line and an exit code.

    A user never sees a traceback for bad input: a ``DrivecatError`` prints
    ``Error: <message>`` on stderr and exits with the error's ``exit_code`` (2 by default).
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DrivecatError as err:
            click.echo(f"Error: {err}", err=True)
            ctx.exit(err.exit_code)
        except OSError as err:
            # The last line of defence for the machine's own faults (a full disk, a
            # read-only mount) that no stage turned into its own error: one line, the path.
            click.echo(f"Error: {os_error_line(err)}", err=True)
            ctx.exit(2)


def os_error_line(err: OSError) -> str:
    """``<path>: <reason>`` for an OSError, or its text when it names no path."""
    text = str(err).strip()
    reason = err.strerror or (text.splitlines()[0] if text else type(err).__name__)
    return f"{err.filename}: {reason}" if err.filename else reason


def version_option(f: F) -> F:
    return click.version_option(__version__, "--version", prog_name="drivecat")(f)  # type: ignore[return-value]


def _store_path(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    # Path("") is ".": an empty --store (an unset shell variable, say) would write the
    # catalog and drives/ into whatever folder the command happens to run in.
    if value is None:
        return None
    if not value.strip():
        raise click.BadParameter("must name the store folder, not be empty", ctx, param)
    return Path(value)


def store_option(f: F) -> F:
    """``--store DIR``: the drivecat store (default ``$DRIVECAT_STORE`` or ``./store``)."""
    return click.option(
        "--store",
        type=click.Path(file_okay=False),
        callback=_store_path,
        default=lambda: os.environ.get("DRIVECAT_STORE", "store"),
        show_default="$DRIVECAT_STORE or ./store",
        help="The drivecat store: a folder holding catalog.duckdb and drives/.",
    )(f)  # type: ignore[return-value]


def json_option(f: F) -> F:
    """``--json``: print the result as JSON for programs, and stay quiet otherwise."""
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(f)  # type: ignore[return-value]


def quiet_option(f: F) -> F:
    """``--quiet``: no progress display (results, warnings and errors are still printed)."""
    return click.option(  # type: ignore[return-value]
        "--quiet", "-q", is_flag=True, help="Show no progress (results and warnings still print)."
    )(f)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


class LazyChoice(click.Choice[str]):
    """A ``click.Choice`` whose values are loaded when first needed, not when the CLI loads.

    The values live in the library (``ExportFormat``, ``Mode``...), whose modules import
    duckdb, pyarrow or PyAV. Asking for them at decoration time would make every command,
    ``schemas check`` included, pay for every other command's imports; here they are loaded
    only when this option is parsed or its help is shown.
    """

    def __init__(self, load: Callable[[], Iterable[str]]) -> None:
        # click.Choice.__init__ would set the values now: that is what this class avoids.
        self._load = load
        self._values: tuple[str, ...] | None = None
        self.case_sensitive = True

    @property
    def choices(self) -> tuple[str, ...]:
        if self._values is None:
            self._values = tuple(self._load())
        return self._values

    @choices.setter
    def choices(self, values: Iterable[str]) -> None:
        self._values = tuple(values)


class LazyHelpOption(click.Option):
    """An option whose help text comes from the library, made only when help is shown (for
    the same reason as ``LazyChoice``): pass ``help_text``, a function returning it."""

    def __init__(self, *args: Any, help_text: Callable[[], str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._help_text = help_text

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        if self.help is None:
            self.help = self._help_text()
        return super().get_help_record(ctx)
