"""``uvd stats``: a report on a build (counts, rejects, shard sizes, token ids, detokenization PSNR).

Its PSNR draws the frames again from the sources, with the build's own steps (pipeline/steps.py).
"""

from __future__ import annotations

import json

import click

from uvd.cli.options import build_dir_argument
from uvd.format import storage
from uvd.format.reading import ShardError
from uvd.format.tables import NotABuild
from uvd.pipeline.tools.stats import collect, plots, render_html


@click.command()
@build_dir_argument()
@click.option("--out", "out_prefix", help="Where to write PREFIX.json and PREFIX.html (default: BUILD_DIR/stats).")
@click.option("--psnr-per-shard", type=int, default=1, show_default=True,
              help="Sentences per shard whose detokenization PSNR is measured (0 = none).")
def stats(build_dir, out_prefix, psnr_per_shard) -> None:
    """Report on a build: per-source counts, rejects, dedup, shard sizes, token ids, detokenization PSNR."""
    try:
        report = collect(build_dir, psnr_per_shard=psnr_per_shard)
    except (NotABuild, ShardError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    prefix = out_prefix or storage.join(build_dir, "stats")
    storage.atomic_write(f"{prefix}.json", json.dumps(report, indent=2).encode("utf-8"))
    storage.atomic_write(f"{prefix}.html", render_html(report, plots(report)).encode("utf-8"))
    t = report["totals"]
    click.echo(f"{t['sentences']:,} sentences, {t['tokens']:,} tokens in {t['shards']} shards "
               f"({t['bytes_per_token']:.3f} bytes/token); {report['codes_used']} codes used")
    for source, v in report["detokenization_psnr"].items():
        click.echo(f"  detokenization PSNR {source}: {v['mean_db']:.2f} dB over {v['images']} images")
    click.echo(f"wrote {prefix}.json and {prefix}.html")
