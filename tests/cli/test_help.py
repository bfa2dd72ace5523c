"""Every command and group has help text with an example, and --version works."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from drivecat.cli.main import catalog_group, drivecat, ingest_group, schemas_group


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*prefix, name)))
        else:
            found.append((*prefix, name))
    return found


ALL = _commands(drivecat)


@pytest.mark.parametrize("path", ALL, ids=lambda p: " ".join(p) or "drivecat")
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(drivecat, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert "Example" in result.output, f"{' '.join(path)} --help has no example"


def test_the_groups_exist_as_their_own_scripts() -> None:
    for group in (ingest_group, catalog_group, schemas_group):
        result = CliRunner().invoke(group, ["--version"])
        assert result.exit_code == 0
        assert "drivecat, version" in result.output


def test_the_jobs_are_there() -> None:
    assert ("ingest", "run") in ALL
    assert ("catalog", "query") in ALL
