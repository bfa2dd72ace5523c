"""Commands of the ``catalog`` group."""

from __future__ import annotations

from pathlib import Path

import click

from catalog import query as q
from catalog import store as store_fs
from cli.common import echo_json, json_option, store_option
from cli.main import catalog_group
from cli.render import print_table


@catalog_group.command("query")
@click.argument("sql")
@store_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "parquet"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the result to this file instead of standard output.",
)
def query(sql: str, store: Path, fmt: str, out: Path | None) -> None:
    """Run SQL over the catalog (read-only). The H3 functions are available.

    \b
    Examples:
      catalog query "SELECT drive_id, start_time, device_version FROM drives"
      catalog query "SELECT weather, count(*) FROM segments GROUP BY 1" --format json
      catalog query "SELECT * FROM segments
                     WHERE h3_cell = h3_latlng_to_cell(37.7749, -122.4194, 9)"
    """
    table = q.run_query(store, sql)
    if fmt == "parquet":
        if out is None:
            raise click.UsageError("--format parquet needs --out FILE")
        import pyarrow.parquet as pq

        pq.write_table(table, out)
        return
    if fmt == "table" and out is None:
        print_table(table)
        return
    text = (
        q.to_json(table) + "\n"
        if fmt == "json"
        else q.to_csv(table)
        if fmt == "csv"
        else _plain_table(table)
    )
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)


def _plain_table(table: object) -> str:
    import io

    from rich.console import Console

    buffer = io.StringIO()
    print_table(table, Console(file=buffer, width=200))  # type: ignore[arg-type]
    return buffer.getvalue()


@catalog_group.command("rebuild")
@store_option
@json_option
def rebuild(store: Path, as_json: bool) -> None:
    """Rebuild catalog.duckdb from the drive manifests in the store.

    Losing catalog.duckdb never loses data: every drive's rows are kept beside its files.

    \b
    Example:
      catalog rebuild --store /data/drivecat
    """
    drive_ids = store_fs.rebuild(store)
    if as_json:
        echo_json({"drives": drive_ids})
    else:
        click.echo(
            f"rebuilt {store_fs.db.catalog_path(store)} from {len(drive_ids)} drive manifests"
        )
