"""Commands of the ``schemas`` group: ``lock`` and ``check``."""

from __future__ import annotations

from pathlib import Path

import click

from drivecat.cli.common import LazyChoice, echo_json, json_option
from drivecat.cli.main import schemas_group

# drivecat.schemas.check is imported inside each command (LazyChoice for its enums): the
# CLI's start-up stays the cost of click, whichever command runs.


def _allow_values() -> list[str]:
    from drivecat.schemas.check import Allow

    return [a.value for a in Allow]


def _format_values() -> list[str]:
    from drivecat.schemas.check import OutputFormat

    return [f.value for f in OutputFormat]


_SOURCES = click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
_LOCK = click.option(
    "--lock",
    "lock",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The lock file (sorted JSON).",
)
_INCLUDE = click.option(
    "-I",
    "--include",
    "includes",
    multiple=True,
    type=click.Path(path_type=Path),
    help="An extra protoc import path; repeatable. Well-known types are always available.",
)


@schemas_group.command("lock")
@_SOURCES
@_LOCK
@_INCLUDE
@json_option
def lock_cmd(
    sources: tuple[Path, ...], lock: Path, includes: tuple[Path, ...], as_json: bool
) -> None:
    """Write the canonical form of every message type in SOURCES to the lock file.

    SOURCES are .proto files or folders, FileDescriptorSet files, ROS .msg folders or MCAP
    recordings (their embedded schemas). The lock is written atomically.

    \b
    Example:
      schemas lock schemas/proto --lock schemas/schemas.lock
    """
    from drivecat.schemas.check import lock_sources

    locked = lock_sources(sources, lock, includes)
    if as_json:
        echo_json(locked._asdict())
    else:
        state = "updated" if locked.changed else "unchanged"
        click.echo(f"Locked {locked.types} types in {locked.lock} ({state}).")


@schemas_group.command("check")
@_SOURCES
@_LOCK
@_INCLUDE
@click.option(
    "--allow",
    type=LazyChoice(_allow_values),
    default="none",
    show_default=True,
    help="'compatible' fails only on breaking changes.",
)
@click.option(
    "--format",
    "fmt",
    type=LazyChoice(_format_values),
    default="text",
    show_default=True,
    help="text, json, or github (::error annotations for GitHub Actions).",
)
@json_option
@click.pass_context
def check_cmd(
    ctx: click.Context,
    sources: tuple[Path, ...],
    lock: Path,
    includes: tuple[Path, ...],
    allow: str,
    fmt: str,
    as_json: bool,
) -> None:
    """Compare the message types in SOURCES with the lock file; exit 1 on a change.

    Each change is one line: breaking or compatible, the type and field, old and new, and
    why it matters. Exit codes: 0 no change (or only compatible ones under --allow
    compatible), 1 a change, 2 bad input. --json is short for --format json.

    \b
    Example:
      schemas check schemas/proto --lock schemas/schemas.lock --allow compatible
    """
    from drivecat.schemas.check import Allow, OutputFormat, check_sources

    result = check_sources(sources, lock, includes, Allow(allow))
    click.echo(result.render(OutputFormat.JSON if as_json else OutputFormat(fmt)))
    ctx.exit(result.exit_code)
