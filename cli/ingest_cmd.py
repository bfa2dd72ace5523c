"""Commands of the ``ingest`` group."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from drivecat.cli.common import echo_json, json_option, quiet_option, store_option
from drivecat.cli.main import ingest_group
from drivecat.cli.progress import drive_progress

# drivecat.ingest (duckdb, pyarrow, mcap, rosbags) is imported inside the command: no other
# command pays for it.


@ingest_group.command("run")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@store_option
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="drivecat.toml (default: <store>/drivecat.toml if present).",
)
@click.option(
    "--device-version", help="The device software version (overrides drive.json and MCAP metadata)."
)
@click.option("--device-id", help="The device id (overrides drive.json and MCAP metadata).")
@click.option("--vehicle-id", help="The vehicle id.")
@click.option("--operator", help="Who drove or operated the vehicle.")
@click.option("--drive-id", help="Use this drive id (only with a single PATH).")
@click.option("--force", is_flag=True, help="Re-ingest and replace drives already in the catalog.")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    help="Processes that write one drive's output files, for drives read in pieces "
    "(indexed MCAP, ROS bags) of 64 MiB or more; others: one process. Default: one per core, "
    "where the plan estimates that workers pay; 1: all in this process.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Ingest drives in parallel on a local Dask cluster of N worker processes (127.0.0.1).",
)
@click.option(
    "--scheduler",
    metavar="tcp://HOST:PORT",
    help="Ingest drives on an existing Dask cluster; its workers must see the same paths.",
)
@click.option(
    "--debug", is_flag=True, help="Print the full traceback of a drive that fails unexpectedly."
)
@json_option
@quiet_option
def run(
    paths: tuple[Path, ...],
    store: Path,
    config_path: Path | None,
    device_version: str | None,
    device_id: str | None,
    vehicle_id: str | None,
    operator: str | None,
    drive_id: str | None,
    force: bool,
    jobs: int | None,
    workers: int | None,
    scheduler: str | None,
    debug: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Ingest drives: split each into per-topic, time-chunked MCAP files and catalog it.

    Each PATH is an offload folder (MCAP recordings, ROS bags, side-car video, drive.json)
    or a single recording. A drive that fails gets one line naming the file and the reason
    (the traceback of an unexpected failure only with --debug); the others still ingest.
    Exit code: 0 when every drive ingested, 1 when some failed and others did not, 2 when
    every drive failed (bad input). Results go to standard output; warnings, errors and the
    progress line (on a terminal, unless --quiet or --json) go to standard error.

    \b
    Examples:
      ingest run /mnt/offload/veh042_2026-06-15/ --store /data/drivecat
      ingest run run1.bag run2.bag --store /data/drivecat --device-version 4.2.1
      ingest run sample_logs/tiny --store /tmp/store --json
      ingest run /mnt/offload/*/ --store /data/drivecat --workers 2
      ingest run /mnt/offload/veh042_2026-06-15/ --store /data/drivecat --jobs 8
    """
    if drive_id and len(paths) > 1:
        raise click.UsageError("--drive-id names one drive: give a single PATH")
    from drivecat.ingest.identity import DeviceIdentity
    from drivecat.ingest.run import ingest_many, load_options

    device = DeviceIdentity(device_id, device_version, vehicle_id, operator)
    options = load_options(store, config_path, device, force, drive_id, jobs)
    results = []
    with drive_progress(enabled=not (as_json or quiet)) as progress:
        if workers or scheduler:
            from drivecat.ingest.distributed import ingest_distributed

            stream = ingest_distributed(paths, options, workers, scheduler)
        else:
            stream = ingest_many(paths, options, progress)
        for result in stream:
            results.append(result)
            if debug and result.traceback:
                click.echo(result.traceback.rstrip(), err=True)
            if as_json:
                continue
            if progress is not None:
                progress.clear()
            for warning in result.warnings:
                click.echo(f"warning: {result.drive_id}: {warning}", err=True)
            if result.status == "failed":
                click.echo(f"Error: {result.error}", err=True)
            elif result.status == "unchanged":
                click.echo(f"unchanged {result.drive_id}: already ingested with the same inputs")
            else:
                click.echo(
                    f"{result.status} {result.drive_id}: {result.message_count:,} messages, "
                    f"{result.files} files, {result.input_bytes / 1e6:.1f} MB "
                    f"in {result.seconds:.1f} s"
                    + (f" ({result.drive_status})" if result.drive_status != "complete" else "")
                )
    if as_json:
        echo_json([r.as_dict() for r in results])
    failures = sum(r.status == "failed" for r in results)
    if failures:
        sys.exit(2 if failures == len(results) else 1)
