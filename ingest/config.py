"""``drivecat.toml``: segment and chunk lengths, H3 resolution, role overrides, tag settings."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from drivecat.ingest.errors import IngestError
from drivecat.ingest.roles import Role

CONFIG_NAME = "drivecat.toml"


class ConfigError(IngestError):
    """A setting that cannot be used; the message names it and what it may be."""


# What each number may be: wide enough for any real recording, narrow enough that a slip
# (0, a negative, 1e300, NaN) is an error rather than a hang, an overflow or a memory blow-up.
_RANGES: dict[str, tuple[float, float]] = {
    "segment_seconds": (0.1, 86_400.0),
    "chunk_seconds": (1.0, 86_400.0),
    "drive_gap_seconds": (1.0, 365 * 86_400.0),
}


@dataclass(frozen=True)
class Config:
    """Settings of one ingest. Invalid values raise IngestError (``ConfigError``) naming
    the setting, the value and what it may be."""

    segment_seconds: float = 10.0
    chunk_seconds: float = 60.0
    h3_resolution: int = 9
    drive_gap_seconds: float = 1800.0  # recordings further apart are separate drives
    roles: dict[str, str] = field(default_factory=dict)
    tags: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: Path | None = None

    def __post_init__(self) -> None:
        for name, (low, high) in _RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{name} must be a number of seconds, not {value!r}")
            if not (math.isfinite(value) and low <= value <= high):
                raise ConfigError(f"{name} must be between {low:g} and {high:g}, not {value!r}")
        res = self.h3_resolution
        if isinstance(res, bool) or not isinstance(res, int) or not 0 <= res <= 15:
            raise ConfigError(f"h3_resolution must be an integer 0..15, not {res!r}")
        if not isinstance(self.roles, dict):
            raise ConfigError(f"roles must be a table of topic = role, not {self.roles!r}")
        valid = sorted(r.value for r in Role)
        for topic, role in self.roles.items():
            if role not in valid:
                raise ConfigError(f"role {role!r} for {topic!r} is not one of {valid}")
        if not isinstance(self.tags, dict) or not all(
            isinstance(s, dict) for s in self.tags.values()
        ):
            raise ConfigError(f"tags must be a table of [tags.<name>] tables, not {self.tags!r}")

    @property
    def segment_ns(self) -> int:
        return int(self.segment_seconds * 1e9)

    @property
    def chunk_ns(self) -> int:
        return int(self.chunk_seconds * 1e9)


def load_config(path: Path | None, store: Path | None = None) -> Config:
    """Read ``path``, else ``<store>/drivecat.toml`` if present, else the defaults.

    Relative paths inside the file (such as the intersection map) are resolved against the
    file's folder. Raises IngestError naming the file for unreadable or invalid TOML.
    """
    if path is None and store is not None and (Path(store) / CONFIG_NAME).is_file():
        path = Path(store) / CONFIG_NAME
    if path is None:
        return Config()
    try:
        raw = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise IngestError(f"{path}: cannot read config: {err}") from None
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting {', '.join(map(repr, unknown))}; "
            f"the settings are {', '.join(sorted(_KEYS))}"
        )
    tags = raw.get("tags", {})
    base = Path(path).parent
    if isinstance(tags, dict):
        for section in tags.values():
            if isinstance(section, dict) and isinstance(section.get("map"), str):
                section["map"] = str((base / section["map"]).resolve())
    try:
        return Config(**raw, source=Path(path))
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


_KEYS = {f.name for f in fields(Config)} - {"source"}
