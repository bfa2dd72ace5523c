"""The ``drivecat`` umbrella command and its groups, also installed as their own scripts."""

from __future__ import annotations

import click

from drivecat.cli.common import Group, version_option

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=Group, context_settings=CONTEXT)
@version_option
def drivecat() -> None:
    """drivecat: catalog robot and AV drive recordings, query them with SQL, export subsets.

    \b
    Examples:
      drivecat ingest run /mnt/offload/veh042_2026-06-15/ --store /data/drivecat
      drivecat catalog query "SELECT drive_id, weather FROM segments LIMIT 5" --store /data/drivecat
      drivecat schemas check proto/ --lock schemas.lock
    """


@click.group("ingest", cls=Group, context_settings=CONTEXT)
@version_option
def ingest_group() -> None:
    """Offload drives into the store and the catalog.

    \b
    Example:
      ingest run /mnt/offload/veh042_2026-06-15/ --store /data/drivecat
    """


@click.group("catalog", cls=Group, context_settings=CONTEXT)
@version_option
def catalog_group() -> None:
    """Query the catalog, fetch frames, export subsets.

    \b
    Example:
      catalog query "SELECT drive_id, start_time FROM drives" --store /data/drivecat
    """


@click.group("schemas", cls=Group, context_settings=CONTEXT)
@version_option
def schemas_group() -> None:
    """Lock message schemas and fail CI when they change.

    \b
    Example:
      schemas check proto/ --lock schemas.lock
    """


drivecat.add_command(ingest_group)
drivecat.add_command(catalog_group)
drivecat.add_command(schemas_group)

# Each group's commands live in their own module and attach themselves on import.
from drivecat.cli import (  # noqa: E402, F401
    catalog_cmd,
    export_cmd,
    frame_cmd,
    info_cmd,
    ingest_cmd,
    labels_cmd,
    report_cmd,
    schemas_cmd,
)
