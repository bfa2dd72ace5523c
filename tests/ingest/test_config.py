"""drivecat.toml: every setting checked, a misspelled one named, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from drivecat.cli.main import drivecat
from drivecat.ingest.config import Config, ConfigError, load_config


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("chunk_seconds = 0", "chunk_seconds must be between 1 and 86400, not 0"),
        ("chunk_seconds = -5", "chunk_seconds must be between 1 and 86400, not -5"),
        ("chunk_seconds = 1e300", "chunk_seconds must be between 1 and 86400, not 1e+300"),
        ("segment_seconds = nan", "segment_seconds must be between 0.1 and 86400, not nan"),
        ("segment_seconds = 1e-9", "segment_seconds must be between 0.1 and 86400, not 1e-09"),
        ('segment_seconds = "ten"', "segment_seconds must be a number of seconds, not 'ten'"),
        ("h3_resolution = 16", "h3_resolution must be an integer 0..15, not 16"),
        ("h3_resolution = 8.5", "h3_resolution must be an integer 0..15, not 8.5"),
        ("drive_gap_seconds = 0", "drive_gap_seconds must be between 1 and"),
        ("roles = 5", "roles must be a table of topic = role, not 5"),
        ('[roles]\n"/x" = "radar"', "role 'radar' for '/x' is not one of"),
        ("tags = 3", "tags must be a table of [tags.<name>] tables, not 3"),
        (
            "segment_secondz = 5",
            "unknown setting 'segment_secondz'; the settings are chunk_seconds, "
            "drive_gap_seconds, h3_resolution, roles, segment_seconds, tags",
        ),
    ],
)
def test_invalid_settings_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "drivecat.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: {message}")


def test_valid_settings_load(tmp_path: Path) -> None:
    path = tmp_path / "drivecat.toml"
    path.write_text("segment_seconds = 5\nchunk_seconds = 30\ndrive_gap_seconds = 600\n")
    config = load_config(path)
    assert (config.segment_ns, config.chunk_ns, config.drive_gap_seconds) == (
        5_000_000_000,
        30_000_000_000,
        600,
    )


def test_the_python_api_checks_too() -> None:
    with pytest.raises(ConfigError, match="chunk_seconds"):
        Config(chunk_seconds=0)


def test_the_cli_says_one_line_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "drivecat.toml"
    config.write_text("chunk_seconds = 0\n")
    (tmp_path / "drive").mkdir()
    result = CliRunner().invoke(
        drivecat,
        ["ingest", "run", str(tmp_path / "drive"), "--store", str(tmp_path / "s"),
         "--config", str(config)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: {config}: chunk_seconds must be between 1 and 86400, not 0"
    ]
    assert not (tmp_path / "s").exists()
