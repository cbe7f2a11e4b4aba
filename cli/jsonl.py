"""``uvd jsonl ...``: LVM's JSONL token files to and from shards."""

from __future__ import annotations

import click

from uvd.cli.options import InputPath, build_dir_argument
from uvd.format.reading import ShardError
from uvd.format.tables import NotABuild
from uvd.pipeline.tools.lvm_jsonl import export_jsonl, import_jsonl


@click.group("jsonl")
def jsonl() -> None:
    """LVM's JSONL token files ({"tokens": base64 int32}) to and from shards."""


@jsonl.command("export")
@build_dir_argument()
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False))
@click.option("--pack", type=int, default=0, show_default=True,
              help="Cut the concatenated token stream into lines of this many tokens (e.g. 4096) instead of "
                   "one sentence per line.")
def export_jsonl_cmd(build_dir: str, out_path: str, pack: int) -> None:
    """Write a build's sentences as LVM JSONL."""
    try:
        lines = export_jsonl(build_dir, out_path, pack=pack)
    except (NotABuild, ShardError) as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"{lines} lines -> {out_path}")


@jsonl.command("import")
@click.argument("files", nargs=-1, required=True, type=InputPath("an LVM JSONL file", folder=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--source", default="lvm_jsonl", show_default=True, help="Source name the sentences get.")
@click.option("--group", default="unpaired_images", show_default=True, help="UVDv1 group they belong to.")
@click.option("--samples-per-shard", type=int, default=256, show_default=True)
def import_jsonl_cmd(files, out_dir: str, source: str, group: str, samples_per_shard: int) -> None:
    """Make shards (one sentence per line, in order) from LVM JSONL files."""
    try:
        counts = import_jsonl(list(files), out_dir, source=source, group=group, samples_per_shard=samples_per_shard)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"{counts['sentences']} sentences, {counts['tokens']:,} tokens in {counts['shards']} shard(s) -> "
               f"{out_dir}")
