"""``catalog labels``: import labels over an exported dataset, and measure agreement."""

from __future__ import annotations

from pathlib import Path

import click

from drivecat.cli.common import Group, echo_json, json_option, store_option
from drivecat.cli.main import CONTEXT, catalog_group
from drivecat.types import CONDITION_TAGS

_DATASET = click.option(
    "--dataset",
    required=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="An exported dataset (catalog export --format dataset).",
)


@catalog_group.group("labels", cls=Group, context_settings=CONTEXT)
def labels_group() -> None:
    """Labels from labeling tools over an exported dataset, and how labelers agree.

    \b
    Example:
      catalog labels import --dataset ./rain_xings --labeler ann coco.json
      catalog labels agreement --dataset ./rain_xings --labelers ann,bob --out ./sheet
    """


@labels_group.command("import")
@_DATASET
@click.option("--labeler", required=True, help="Who labeled (letters, digits, _ . -).")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@store_option
@json_option
def import_cmd(dataset: Path, labeler: str, file: Path, store: Path, as_json: bool) -> None:
    """Import FILE: COCO JSON boxes, or image/sample tags as CSV or a JSON list.

    \b
    Example:
      catalog labels import --dataset ./ds --labeler ann ann_coco.json --store /data/drivecat
      catalog labels import --dataset ./ds --labeler ann ann_tags.csv
    """
    from dataclasses import asdict

    from drivecat.catalog.labels import import_labels

    done = import_labels(store, dataset, labeler, file)
    if as_json:
        echo_json(asdict(done))
        return
    what = (
        f"{done.labels} boxes over {done.images} images"
        if done.kind == "boxes"
        else (f"{done.labels} tags")
    )
    click.echo(f"imported {what} by {labeler} into {done.path}")


@labels_group.command("agreement")
@_DATASET
@click.option(
    "--labelers", required=True, help="Two labelers, A,B; 'device' is the car's detections."
)
@click.option("--iou", type=float, default=0.5, show_default=True, help="IoU for a box match.")
@click.option(
    "--by",
    default=",".join(CONDITION_TAGS),
    show_default=True,
    help="Segment tags to break agreement down by (each, and all together).",
)
@click.option(
    "--calibration",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Camera calibration JSON, to project the device's detections.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write a contact sheet (index.html) of the worst disagreements per class here.",
)
@json_option
def agreement_cmd(
    dataset: Path,
    labelers: str,
    iou: float,
    by: str,
    calibration: Path | None,
    out: Path | None,
    as_json: bool,
) -> None:
    """Per class: F1, mean IoU, Krippendorff's alpha; kappa per tag; worst samples, conditions.

    Exit 0; 2 on bad input.

    \b
    Example:
      catalog labels agreement --dataset ./ds --labelers ann,bob --iou 0.5 --out ./sheet
      catalog labels agreement --dataset ./ds --labelers ann,device --calibration cal.json
    """
    from drivecat.catalog.label_agreement import agreement, report_dict

    names = [x.strip() for x in labelers.split(",")]
    columns = [x.strip() for x in by.split(",") if x.strip()]
    report, index, sets = agreement(dataset, names, iou, columns, calibration)
    data = report_dict(report)
    if out is not None:
        from drivecat.catalog.contact_sheet import write_contact_sheet

        data["contact_sheet"] = str(write_contact_sheet(out, report, index, sets))
    if as_json:
        echo_json(data)
        return
    _print(data)


def _num(x: float | None) -> str:
    return "  n/a" if x is None else f"{x:5.2f}"


def _print(data: dict) -> None:  # type: ignore[type-arg]
    a, b = data["labelers"]
    click.echo(f"{a} vs {b}: {data['images']} images, IoU >= {data['iou_threshold']}, "
               f"alpha {_num(data['alpha']).strip()}")  # fmt: skip
    click.echo("class (least consistent first)   alpha    F1  mIoU  boxes a/b  matched")
    for c in data["classes"]:
        click.echo(
            f"  {c['cls']:<30} {_num(c['alpha'])} {_num(c['f1'])} {_num(c['mean_iou'])} "
            f"{c['boxes_a']:>5}/{c['boxes_b']:<5} {c['matched']:>6}"
        )
    for x in data["confusions"][:5]:
        click.echo(f"confusion: {a} {x['a']} = {b} {x['b']}: {x['count']}")
    for name, k in data["tags"].items():
        click.echo(f"tag {name}: kappa {_num(k['kappa']).strip()} over {k['items']} items")
    click.echo("lowest agreement by condition:")
    for c in data["conditions"][:8]:
        cond = ", ".join(f"{k}={v}" for k, v in c["condition"].items())
        click.echo(
            f"  {c['cls']:<12} {cond:<50} F1 {_num(c['f1'])} ({c['boxes_a']}/{c['boxes_b']})"
        )
    click.echo("samples where they disagree most:")
    for w in data["worst_images"][:5]:
        click.echo(f"  {w['disagreements']:>3}  {w['image']}")
    if "contact_sheet" in data:
        click.echo(f"contact sheet: {data['contact_sheet']}")
