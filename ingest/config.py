"""``drivecat.toml``: segment and chunk lengths, H3 resolution, role overrides, tag settings."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivecat.ingest.errors import IngestError
from drivecat.ingest.roles import Role

CONFIG_NAME = "drivecat.toml"


@dataclass(frozen=True)
class Config:
    segment_seconds: float = 10.0
    chunk_seconds: float = 60.0
    h3_resolution: int = 9
    roles: dict[str, str] = field(default_factory=dict)
    tags: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: Path | None = None

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
    roles = raw.get("roles", {})
    valid = {r.value for r in Role}
    for topic, role in roles.items():
        if role not in valid:
            raise IngestError(f"{path}: role {role!r} for {topic!r} is not one of {sorted(valid)}")
    tags = raw.get("tags", {})
    base = Path(path).parent
    for section in tags.values():
        if isinstance(section, dict) and isinstance(section.get("map"), str):
            section["map"] = str((base / section["map"]).resolve())
    try:
        return Config(
            segment_seconds=float(raw.get("segment_seconds", 10.0)),
            chunk_seconds=float(raw.get("chunk_seconds", 60.0)),
            h3_resolution=int(raw.get("h3_resolution", 9)),
            roles=dict(roles),
            tags=dict(tags),
            source=Path(path),
        )
    except (TypeError, ValueError) as err:
        raise IngestError(f"{path}: invalid config value: {err}") from None
