"""Commands of the ``catalog`` group."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from drivecat.cli.common import echo_json, json_option, store_option
from drivecat.cli.main import catalog_group

if TYPE_CHECKING:
    import pyarrow as pa

# The catalog modules are imported inside each command: `catalog query` must answer fast,
# and no command should pay for another's imports.


def format_options(f):  # type: ignore[no-untyped-def]
    """``--format`` and ``--out``, shared by every command that prints rows."""
    f = click.option(
        "--out",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write the result to this file instead of standard output.",
    )(f)
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "csv", "json", "ndjson", "parquet"]),
        default="table",
        show_default=True,
        help="Output format. table fits the terminal (columns that do not fit are left out, "
        "with a note); json is one array, ndjson one object per line. In json and ndjson, "
        "H3 cells are hex strings and integers of 2^53 or more (nanosecond times) are "
        "decimal strings, so JavaScript and jq keep them exact.",
    )(f)


def emit(table: pa.Table, fmt: str, out: Path | None) -> None:
    from drivecat.catalog import query as q
    from drivecat.cli.render import print_table

    if fmt == "parquet":
        if out is None:
            raise click.UsageError("--format parquet needs --out FILE")
        import pyarrow.parquet as pq

        pq.write_table(table, out)
        return
    if fmt == "table" and out is None:
        print_table(table)
        return
    if fmt == "json":
        text = q.to_json(table) + "\n"
    elif fmt == "ndjson":
        text = q.to_ndjson(table)
    elif fmt == "csv":
        text = q.to_csv(table)
    else:
        text = _plain_table(table)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)


def _plain_table(table: pa.Table) -> str:
    import io

    from rich.console import Console

    from drivecat.cli.render import print_table

    buffer = io.StringIO()
    print_table(table, Console(file=buffer, width=1000))
    return buffer.getvalue()


def read_sql(sql: str | None, sql_file: Path | None) -> str:
    """The SQL argument, ``-`` for standard input, or the text of ``--file``."""
    if sql_file is not None:
        if sql is not None:
            raise click.UsageError("give the SQL as an argument or with --file, not both")
        try:
            return sql_file.read_text()
        except (OSError, UnicodeDecodeError) as err:
            raise click.UsageError(f"{sql_file}: cannot read the SQL: {err}") from None
    if sql is None:
        raise click.UsageError("give the SQL as an argument, - for standard input, or --file")
    if sql == "-":
        return sys.stdin.read()
    return sql


@catalog_group.command("query")
@click.argument("sql", required=False)
@click.option(
    "--file",
    "sql_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the SQL from this file (or give SQL as - to read standard input).",
)
@store_option
@click.option(
    "--allow-read",
    "allow_read",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A directory whose files the SQL may read (for example published Parquet); "
    "repeatable. Nothing else outside the catalog is readable.",
)
@format_options
def query(
    sql: str | None,
    sql_file: Path | None,
    store: Path,
    allow_read: tuple[Path, ...],
    fmt: str,
    out: Path | None,
) -> None:
    """Run SQL over the catalog. The H3 functions and align() are available.

    The SQL runs read-only with DuckDB's file, network and extension access off: it
    cannot write or read files, attach databases or change settings.

    \b
    Examples:
      catalog query "SELECT drive_id, start_time, device_version FROM drives"
      catalog query "SELECT weather, count(*) FROM segments GROUP BY 1" --format json
      catalog query "SELECT * FROM segments
                     WHERE h3_cell = h3_latlng_to_cell(37.7749, -122.4194, 9)"
      catalog query --allow-read pub "SELECT count(*) FROM 'pub/segments/*/*/*.parquet'"
      catalog query --file report.sql --format ndjson
      echo "SELECT count(*) FROM segments" | catalog query -
    """
    from drivecat.catalog import query as q

    text = read_sql(sql, sql_file)
    if not text.strip():
        raise click.UsageError("the SQL is empty")
    emit(q.run_query(store, text, allow_read=allow_read), fmt, out)


@catalog_group.command("drives")
@store_option
@format_options
def drives(store: Path, fmt: str, out: Path | None) -> None:
    """List the drives in the catalog, newest first.

    \b
    Example:
      catalog drives --store /data/drivecat
    """
    from drivecat.catalog import query as q

    emit(q.run_query(store, q.DRIVES_SQL), fmt, out)


@catalog_group.command("segments")
@store_option
@click.option("--where", "where", default="true", help="A SQL condition on segments columns.")
@click.option("--limit", type=int, default=None, help="At most this many rows.")
@format_options
def segments(store: Path, where: str, limit: int | None, fmt: str, out: Path | None) -> None:
    """List segments (10 s windows with their tags) that match a condition.

    \b
    Example:
      catalog segments --where "weather = 'rain' AND at_intersection AND pedestrian_count >= 3"
    """
    from drivecat.catalog import query as q

    emit(q.run_query(store, q.segments_sql(where, limit)), fmt, out)


@catalog_group.command("schemas")
@store_option
@click.option("--changed", is_flag=True, help="Only topics whose schema differs across versions.")
@format_options
def schemas(store: Path, changed: bool, fmt: str, out: Path | None) -> None:
    """Which schema each device version recorded on each topic (schema drift).

    \b
    Example:
      catalog schemas --store /data/drivecat --changed
    """
    from drivecat.catalog import query as q

    emit(q.run_query(store, q.drift_sql(changed)), fmt, out)


@catalog_group.command("rebuild")
@store_option
@json_option
def rebuild(store: Path, as_json: bool) -> None:
    """Rebuild catalog.duckdb from the drive folders and the journal in the store.

    Losing catalog.duckdb never loses data: every drive's rows are kept beside its files,
    and export and label records in <store>/journal/. A drive folder that fails its checks
    (manifest, sha256 of its rows, paths outside the folder) is skipped with one line and
    the exit code is 1; the other drives are rebuilt. Other writers wait for the rebuild.

    \b
    Example:
      catalog rebuild --store /data/drivecat
    """
    from drivecat.catalog import store as store_fs

    report = store_fs.rebuild(store)
    for line in report.skipped:
        click.echo(f"Error: {line}", err=True)
    if as_json:
        echo_json(
            {
                "drives": report.drive_ids,
                "exports": report.exports,
                "labels": report.labels,
                "skipped": report.skipped,
            }
        )
    else:
        click.echo(
            f"rebuilt {store_fs.db.catalog_path(store)} from {len(report.drive_ids)} drive "
            f"manifests ({report.exports} exports, {report.labels} labels restored"
            + (f", {len(report.skipped)} skipped" if report.skipped else "")
            + ")"
        )
    if report.skipped:
        raise SystemExit(1)


@catalog_group.command("migrate")
@store_option
@json_option
def migrate(store: Path, as_json: bool) -> None:
    """Upgrade catalog.duckdb to this drivecat's catalog version (one transaction).

    Every command that writes the catalog, and `catalog query`, does this on its own; run
    it explicitly to upgrade a shared store once, as a user who can write it.

    \b
    Example:
      catalog migrate --store /data/drivecat
    """
    from drivecat.catalog import db

    upgrade = db.migrate(store)
    if as_json:
        echo_json(
            {
                "catalog": str(upgrade.path),
                "from_version": upgrade.from_version,
                "to_version": upgrade.to_version,
            }
        )
    elif upgrade.from_version is None:
        click.echo(f"created {upgrade.path} at catalog version {upgrade.to_version}")
    elif upgrade.from_version == upgrade.to_version:
        click.echo(f"{upgrade.path} is already at catalog version {upgrade.to_version}")
    else:
        click.echo(
            f"upgraded {upgrade.path} from catalog version {upgrade.from_version} "
            f"to {upgrade.to_version}"
        )


@catalog_group.command("publish")
@store_option
@click.option(
    "--parquet",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the hive-partitioned Parquet catalog into.",
)
@json_option
def publish(store: Path, out: Path, as_json: bool) -> None:
    """Write the catalog as Parquet partitioned by date and device_version (incremental).

    \b
    Example:
      catalog publish --store /data/drivecat --parquet /data/drivecat-parquet
      duckdb -c "SELECT weather, count(*) FROM read_parquet(
          '/data/drivecat-parquet/segments/*/*/*.parquet', hive_partitioning=true) GROUP BY 1"
    """
    from drivecat.catalog.publish import publish as run_publish

    report = run_publish(store, out)
    if as_json:
        echo_json(report.__dict__)
    else:
        click.echo(
            f"published {len(report.written)} drives to {out} "
            f"({report.skipped} unchanged, {len(report.removed)} removed)"
        )


@catalog_group.command("verify")
@store_option
@click.option("--drive", "drive_id", help="Check only this drive.")
@json_option
def verify(store: Path, drive_id: str | None, as_json: bool) -> None:
    """Re-check the store's files: the store's `mcap doctor`.

    Every file a drive's manifest lists is re-hashed against its sha256, every MCAP must
    open with a valid summary, and files that are missing, changed or listed nowhere
    (extra) are reported, one line each. Exit 1 on any problem.

    \b
    Examples:
      catalog verify --store /data/drivecat
      catalog verify --store /data/drivecat --drive veh042_2026-06-15T173000Z --json
    """
    from drivecat.catalog.verify import verify as run_verify

    report = run_verify(store, drive_id)
    if as_json:
        echo_json(report.as_dict())
    else:
        for problem in report.problems:
            click.echo(problem.line())
        verdict = "ok" if report.ok else f"{len(report.problems)} problems"
        click.echo(
            f"{verdict}: {len(report.drives)} drives, {report.files_checked} files, "
            f"{report.bytes_checked / 1e6:.1f} MB checked in {store}"
        )
    if not report.ok:
        sys.exit(1)
