"""``uvd datasets list`` and ``uvd datasets show``: what each dataset spec is, and what it makes."""

from __future__ import annotations

import click

from uvd.cli.options import InputPath, key_values
from uvd.dataset_specs import all_specs, get_spec
from uvd.format import storage
from uvd.media.images import image_grid, write_png
from uvd.pipeline import steps
from uvd.pipeline.planning.layouts import get_layout
from uvd.pipeline.readers import reader_class
from uvd.pipeline.records.config import BuildConfig, SourceConfig
from uvd.pipeline.tools.local import plan_source, sentence_frames
from uvd.pipeline.views.annotators import BUILTIN
from uvd.tokenizer.frames import preview


@click.group("datasets")
def datasets() -> None:
    """The dataset specs: one per UVDv1 source, plus generic image and video folders."""


@datasets.command("list")
@click.option("--root", type=InputPath("a folder holding datasets in their spec folders", folder=True),
              help="A folder holding datasets in their own sub-folders: show which are found.")
def list_specs(root: str | None) -> None:
    """Every spec with its group, layout, UVDv1 tokens, and whether its data is under --root."""
    specs = all_specs()
    rows = [("name", "group", "layout", "UVDv1 Mtok", "folder", "found" if root else "")]
    for spec in specs.values():
        tokens = f"{spec.uvdv1_tokens_millions:,.2f}" if spec.uvdv1 else "-"
        found = ("yes" if storage.dir_exists(storage.join(root, spec.folder)) else "no") if root else ""
        rows.append((spec.name, spec.group, spec.layout, tokens, spec.folder, found))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        click.echo("  ".join(c.rjust(w) if j == 3 else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths))).rstrip())
        if i == 0:
            click.echo("  ".join("-" * w for w in widths).rstrip())
    total = sum(s.uvdv1_tokens_millions for s in specs.values())
    found_note = ""
    if root:
        found_note = f", {sum(r[5] == 'yes' for r in rows[1:])} found under {root}"
    click.echo(f"\n{len(specs)} specs, {total:,.0f}M UVDv1 tokens{found_note}")


@datasets.command("show")
@click.argument("name")
@click.option("--root", type=InputPath("the dataset's folder, or a folder holding it", folder=True),
              help="The dataset's folder (or a folder holding it): render an example sentence from it.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="PNG of the example sentence.")
@click.option("--index", type=int, default=0, show_default=True, help="Which planned sentence to show.")
@click.option("--annotator", "annotators", multiple=True, metavar="KIND=DIR", help="Model annotator folders.")
@click.option("--seed", type=int, default=0, show_default=True)
def show_spec(name: str, root: str | None, out_path: str | None, index: int, annotators, seed: int) -> None:
    """Explain one spec; with --root and --out, write one of its sentences as a PNG grid."""
    try:
        spec = get_spec(name)
    except KeyError as e:
        raise click.UsageError(e.args[0]) from e
    layout = get_layout(spec.layout)
    reader = reader_class(spec.reader)
    rows = [("title", spec.title), ("group", spec.group),
            ("reader", f"{spec.reader}: {' '.join((reader.__doc__ or '').strip().split(chr(10) * 2)[0].split())}"),
            ("reader args", dict(spec.reader_args) or "-"), ("split", spec.split),
            ("layout", f"{layout.name}: {layout.description}"),
            ("layout args", {**layout.defaults, **dict(spec.layout_args)} or "-"),
            ("views", ", ".join(spec.views)), ("annotation", spec.annotation),
            ("needs annotators", ", ".join(f"{k}{' (built-in available)' if k in BUILTIN else ''}"
                                           for k in spec.model_annotations) or "none"),
            ("folder", spec.folder), ("license", spec.license or "-"), ("citation", spec.citation or "-"),
            ("homepage", spec.homepage or "-")]
    if spec.uvdv1:
        u = spec.uvdv1
        rows.append(("UVDv1", f"{u.tokens_millions:,.2f}M tokens = {u.fraction:g} x row ({u.dataset!r}, "
                              f"{u.annotation_type!r}, {u.row.tokens_millions:,.2f}M)"
                              + (f"; {u.basis}" if u.basis else "")))
    else:
        rows.append(("UVDv1", "not a row of the UVDv1 table"))
    width = max(len(k) for k, _ in rows)
    click.echo(f"{spec.name} (v{spec.version})")
    for k, v in rows:
        click.echo(f"  {k.ljust(width)}  {v}")
    if root and out_path:
        _write_example(spec, root, out_path, index, annotators, seed)
    elif root or out_path:
        raise click.UsageError("give both --root and --out to render an example sentence")


def _write_example(spec, root: str, out_path: str, index: int, annotators, seed: int) -> None:
    folder = storage.join(root, spec.folder)
    source_root = folder if storage.dir_exists(folder) else root
    source = SourceConfig(name=spec.name, spec=spec.name, root=source_root)
    config = BuildConfig(seed=seed, annotators=key_values(annotators, "--annotator"))
    with steps.DecodeResources(config) as ctx:
        plans, items = plan_source(source, config, ctx, limit_items=0 if index else 4)
        if index >= len(plans):
            raise click.ClickException(f"{source_root}: {len(plans)} sentence(s) planned; --index {index} is out of range")
        plan = plans[index]
        frames = preview(sentence_frames(source, plan.meta, items, config, ctx))
    write_png(out_path, image_grid(frames, cols=_grid_columns(spec.layout, len(frames))))
    click.echo(f"\nexample sentence {index} ({plan.num_images} images; the pixels the tokenizer sees): {out_path}")
    for i, p in enumerate(plan.meta.positions):
        click.echo(f"  {i:2d}  {p.item_key}  frame {p.frame}  {p.view}")


def _grid_columns(layout: str, n: int) -> int:
    """Rows that read as the layout does: pairs side by side, 5 modalities per shot, 4 per class."""
    return {"pairs": 4, "colorization": 4, "inpainting": 4, "multi_sequence": 16, "co3d": 8, "multimodal": 5,
            "category": 4}.get(layout, min(n, 8))
