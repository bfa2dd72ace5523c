"""Device identity of a drive, and its drive id.

Identity comes, key by key, from the CLI flags, then ``drive.json``, then an MCAP ``device``
metadata record (or a ``foxglove`` one). A drive with no device version still ingests and
is marked ``unknown``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime

UNKNOWN = "unknown"
KEYS = ("device_id", "device_version", "vehicle_id", "operator")


@dataclass(frozen=True)
class DeviceIdentity:
    device_id: str | None = None
    device_version: str | None = None
    vehicle_id: str | None = None
    operator: str | None = None

    def as_metadata(self) -> dict[str, str]:
        """The ``device`` metadata record written into every output file."""
        return {f.name: getattr(self, f.name) or "" for f in fields(self)}

    def fill(self, values: Mapping[str, object]) -> DeviceIdentity:
        """Fill the keys still missing from ``values`` (lower precedence)."""
        updates = {
            k: str(values[k])
            for k in KEYS
            if getattr(self, k) is None and values.get(k) not in (None, "")
        }
        return replace(self, **updates) if updates else self


def resolve_identity(
    flags: DeviceIdentity,
    drive_json: Mapping[str, object],
    metadata_records: Iterable[Mapping[str, Mapping[str, str]]],
) -> DeviceIdentity:
    identity = flags.fill(drive_json)
    for records in metadata_records:
        for name in ("device", "foxglove"):
            if name in records:
                identity = identity.fill(records[name])
    if identity.device_version is None:
        identity = replace(identity, device_version=UNKNOWN)
    return identity


def default_drive_id(identity: DeviceIdentity, start_ns: int | None, fingerprint: str = "") -> str:
    """``<device_id>_<UTC start, ISO, no colons>``, e.g. ``veh042_2026-06-15T173000Z``.

    Without a device id, two unrelated recordings can start in the same second, so the
    id of an ``unknown`` device ends with the first 8 hex digits of the inputs' fingerprint.
    A drive without a message has no start: ``<device_id>_empty_<fingerprint[:8]>``.
    """
    device = identity.device_id or identity.vehicle_id
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in device or "").lstrip(".")
    if start_ns is None:
        return f"{safe or UNKNOWN}_empty_{fingerprint[:8]}"
    start = datetime.fromtimestamp(start_ns // 1_000_000_000, tz=UTC)
    drive_id = f"{safe or UNKNOWN}_{start.strftime('%Y-%m-%dT%H%M%SZ')}"
    if not safe and fingerprint:
        drive_id += f"_{fingerprint[:8]}"
    return drive_id
