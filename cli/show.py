"""``uvd show``: one sentence back to pixels, read through uvd.format and decoded with the tokenizer;
it loads nothing of the build."""

from __future__ import annotations

import posixpath

import click

from uvd.cli.options import build_dir_argument
from uvd.format import storage
from uvd.format.reading import ShardError, read_sentence
from uvd.format.tables import NotABuild, read_manifest
from uvd.media.images import image_grid, write_png
from uvd.tokenizer import decode_frames, load_tokenizer


def _recorded_tokenizer(shard_or_dir: str) -> dict:
    """The tokenizer the build recorded (for a shard file: the build folder it sits in), or {}."""
    build_dir = shard_or_dir if storage.dir_exists(shard_or_dir) else posixpath.dirname(shard_or_dir) or "."
    try:
        return read_manifest(build_dir).tokenizer
    except NotABuild:
        if build_dir == shard_or_dir:
            raise
        return {}


@click.command()
@build_dir_argument("shard_or_dir", shard_ok=True)
@click.option("--index", type=int, default=0, show_default=True, help="Which sentence (0-based, stored order).")
@click.option("--source", help="Count only sentences of this source.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="PNG to write.")
@click.option("--tokenizer", help="Tokenizer to decode with (default: the one the build recorded).")
@click.option("--cols", type=int, default=4, show_default=True, help="Images per grid row.")
def show(shard_or_dir, index, source, out_path, tokenizer, cols) -> None:
    """Decode one sentence back to a PNG grid of its images."""
    try:
        recorded = _recorded_tokenizer(shard_or_dir)
        spec = tokenizer or recorded.get("spec")
        if not spec:
            raise click.UsageError("no manifest next to the shard records a tokenizer; pass --tokenizer")
        sentence = read_sentence(shard_or_dir, index, source)
    except (IndexError, ValueError, NotABuild, ShardError) as e:
        raise click.ClickException(str(e)) from e
    model = load_tokenizer(spec)
    if recorded.get("sha256") and model.info.sha256 != recorded["sha256"]:
        click.secho("  WARNING: decoding with a tokenizer other than the one that built these shards", fg="yellow")
    write_png(out_path, image_grid(decode_frames(model, sentence.tokens), cols=cols))
    m = sentence.meta
    click.echo(f"sentence {sentence.key}: {sentence.num_images} image(s) x {sentence.tokens_per_image} tokens, "
               f"source {m.source}, layout {m.layout}, items {list(m.item_keys)}, frames {list(m.frame_indices)}")
    if not model.info.trained:
        click.secho(f"  NOTE: tokenizer {spec} has RANDOM, UNTRAINED weights: the PNG will not resemble "
                    "the input images.", fg="yellow")
    click.echo(f"wrote {out_path}")
