"""The ``uvd`` command line. click parses uvd's flags; anything else goes to Beam."""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

import click

import uvd


def _echo_kv(rows: list[tuple[str, object]]) -> None:
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        click.echo(f"  {k.ljust(width)}  {v}")


@click.group()
@click.version_option(uvd.__version__, prog_name="uvd")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def main(verbose: int) -> None:
    """uvd: build LVM visual-sentence datasets and train on them."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if verbose == 0:  # Beam is chatty at WARNING about optional GCP clients; uvd's own rejects still show
        logging.getLogger("apache_beam").setLevel(logging.ERROR)
        logging.getLogger("root").setLevel(logging.ERROR)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--source", "sources", multiple=True, metavar="[NAME=]SPEC:PATH",
              help="A dataset spec read from PATH, e.g. images:data/photos, clips=videos:s3://b/v or "
                   "coco_detection:/data/coco (`uvd datasets list` shows every spec). Repeatable.")
@click.option("--root", help="A folder of datasets, each in its spec's folder (`uvd datasets list --root`): "
                             "adds every spec found there as a source.")
@click.option("--mix", help="Keep a seeded subset of each source so token shares follow UVDv1 ('uvdv1') or the "
                            "weights in a TOML/JSON file (source = weight), scaled to what the data allows.")
@click.option("--mix-tokens", type=int, help="With --mix: total tokens to aim for (default: as many as possible).")
@click.option("--out", "out_dir", required=True, help="Output directory (local, s3:// or gs://).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="Build config (TOML with a [build] table, or JSON).")
@click.option("--tokenizer", help="Tokenizer directory, or random:<config>[:<seed>] (untrained).")
@click.option("--seed", type=int, help="Global seed of every random choice.")
@click.option("--compile-tokenizer/--eager-tokenizer", "compile_tokenizer", default=None,
              help="torch.compile the tokenizer on each worker (about 1.5x on CPU; ~20 s to start). "
                   "Default: the config's compile_tokenizer (off).")
@click.option("--samples-per-shard", type=int, help="Target sentences per shard.")
@click.option("--annotator", "annotators", multiple=True, metavar="KIND=DIR",
              help="A model annotator folder (annotator.json + torch.export .pt2) for depth, normals, "
                   "segmentation, pose or edges. Repeatable.")
@click.option("--layout-arg", "layout_args", multiple=True, metavar="SOURCE.ARG=VALUE",
              help="Override a layout argument of one source, e.g. videos.epochs=4 or videos.strides=[4,8] "
                   "(VALUE is JSON). Repeatable.")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Local worker processes (DirectRunner direct_num_workers).")
@click.option("--resume/--overwrite", "resume", default=True, show_default=True,
              help="--resume: a rerun of the same build after a kill keeps its committed shards and does only "
                   "the rest (output byte-identical to an uninterrupted run); --overwrite: replace whatever "
                   "build --out holds.")
@click.option("--wave-size", type=int, default=200_000, show_default=True,
              help="Sentences per wave, the unit of work a killed build does not redo (output bytes do not "
                   "depend on it).")
@click.option("--accelerator", default="type:nvidia-l4;count:1;install-nvidia-driver", show_default=True,
              help="Beam resource hint of the tokenize step (GPU workers on Dataflow); 'none' to drop it. "
                   "Local runs ignore it.")
@click.option("--device", default="auto", show_default=True, help="Tokenizer device: auto, cpu or cuda.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar on local runs.")
@click.pass_context
def build(ctx, sources, root, mix, mix_tokens, out_dir, config_path, tokenizer, seed, compile_tokenizer,
          samples_per_shard, annotators,
          layout_args, workers, resume, wave_size, accelerator, device, progress) -> None:
    """Build visual-sentence shards from dataset folders.

    Extra arguments are passed to Beam's PipelineOptions, e.g. --runner=DataflowRunner.
    """
    from uvd.pipeline.datasets_cli import discover_sources
    from uvd.pipeline import job
    from uvd.pipeline.config import load_build_config, parse_source

    try:
        source_cfgs = [parse_source(s) for s in sources]
        config = load_build_config(config_path).replace(tokenizer=tokenizer, seed=seed,
                                                        samples_per_shard=samples_per_shard, mix=mix,
                                                        mix_tokens=mix_tokens, compile_tokenizer=compile_tokenizer)
        if root:
            found, left_out = discover_sources(root, config.mix)
            if left_out:
                click.echo(f"not in the UVDv1 table, so not in the uvdv1 mix: {', '.join(left_out)}")
            source_cfgs += [f for f in found if f.name not in {s.name for s in source_cfgs}]
        if not source_cfgs:
            raise ValueError("no sources: give --source, or --root with datasets in their spec folders")
        config = config.replace(annotators={**config.annotators, **_key_values(annotators, "--annotator")},
                                layout_args=_merge_layout_args(config.layout_args, layout_args))
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    beam_args = list(ctx.args)
    local = not any(a.startswith("--runner") for a in beam_args) or any(
        a in ("--runner=DirectRunner", "--runner=FnApiRunner") for a in beam_args)
    if local and workers > 1:
        beam_args += [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
    click.echo(f"uvd build: {len(source_cfgs)} source(s) -> {out_dir}; tokenizer {config.tokenizer}")
    try:
        with tempfile.TemporaryDirectory(prefix="uvd-progress-") as progress_dir:
            summary = job.run(source_cfgs, out_dir, config, beam_args, overwrite=not resume,
                              progress_dir=progress_dir if (local and progress) else None, device=device,
                              accelerator=None if accelerator.lower() == "none" else accelerator,
                              wave_sentences=wave_size)
    except (FileExistsError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    _print_summary(summary, out_dir)


def _key_values(pairs, flag: str) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"{flag} {pair!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _merge_layout_args(base: dict, pairs) -> dict:
    import json

    merged = {k: dict(v) for k, v in base.items()}
    for target, value in _key_values(pairs, "--layout-arg").items():
        source, dot, arg = target.partition(".")
        if not dot:
            raise ValueError(f"--layout-arg {target!r}: expected SOURCE.ARG=VALUE")
        try:
            merged.setdefault(source, {})[arg] = json.loads(value)
        except ValueError:
            merged.setdefault(source, {})[arg] = value  # a bare string, e.g. clips=all
    return merged


def _print_summary(summary: dict, out_dir: str) -> None:
    from uvd.pipeline.format import MANIFEST_NAME, REJECTS_NAME
    from uvd.pipeline.shards import read_manifest

    _, prov = read_manifest(out_dir)
    tok = prov.get("tokenizer", {})
    click.echo("\nBuild summary")
    rows = [(f"inputs[{k}]", f"{v} ({summary['items'][k]['written']} in shards, "
                              f"{summary['items'][k]['rejected']} rejected)") for k, v in summary["inputs"].items()]
    rows += [("sentences", summary["sentences"]), ("images", summary["images"]), ("tokens", summary["tokens"]),
             ("shards", summary["shards"]), ("bytes", summary["bytes"])]
    rows += [(f"rejected[{k}]", v) for k, v in summary["rejects"].items()] or [("rejected", 0)]
    rows += [("manifest", f"{out_dir}/{MANIFEST_NAME}"), ("rejects", f"{out_dir}/{REJECTS_NAME}")]
    if summary.get("unaccounted_items"):
        rows.append(("UNACCOUNTED items", f"{summary['unaccounted_items']} (neither written nor rejected: a bug)"))
    _echo_kv(rows)
    if "mixture" in summary:
        _print_mixture(summary["mixture"])
    _print_rejects(out_dir)
    if not tok.get("trained", True):
        click.secho(f"  NOTE: tokenizer {tok.get('spec')} has RANDOM, UNTRAINED weights: the tokens do not "
                    "describe the images meaningfully.", fg="yellow")


def _print_mixture(mixture: dict) -> None:
    click.echo("\nMixture: token share, target vs actual")
    rows = [(f"{name} ({v['group']})", f"{100 * v['target_share']:7.3f}% {100 * v['actual_share']:7.3f}%  "
                                      f"{v['tokens']:,} of {v['available_tokens']:,} tokens")
            for name, v in mixture["sources"].items()]
    rows += [(f"group {g}", f"{100 * v['target_share']:7.3f}% {100 * v['actual_share']:7.3f}%")
             for g, v in mixture["groups"].items()]
    _echo_kv(rows)


def _print_rejects(out_dir: str, limit: int = 10) -> None:
    """Name the first rejected files and why; the full list is in rejects.parquet."""
    from uvd.pipeline import storage
    from uvd.pipeline.format import REJECTS_NAME

    rows = storage.parquet_from_bytes(storage.read_bytes(storage.join(out_dir, REJECTS_NAME))).to_pylist()
    if rows:
        click.echo(f"\nRejected inputs ({len(rows)}):")
    for r in rows[:limit]:
        click.echo(f"  [{r['reason']}] {r['message']}")
    if len(rows) > limit:
        click.echo(f"  ... {len(rows) - limit} more in {REJECTS_NAME}")


@main.command()
@click.argument("data_dirs", nargs=-1, required=True)
@click.option("--model", "model_name", default="debug", show_default=True, help="Model size (`uvd model sizes`).")
@click.option("--steps", type=int, default=20, show_default=True)
@click.option("--seq-len", type=int, default=4096, show_default=True)
@click.option("--batch-size", type=int, default=1, show_default=True, help="Rows per micro-batch, per rank.")
@click.option("--grad-accum", type=int, default=1, show_default=True, help="Micro-batches per optimizer step.")
@click.option("--packing", type=click.Choice(["stream", "rows"]), default="stream", show_default=True,
              help="stream: LVM's concatenated token stream; rows: one sentence per row, padding masked.")
@click.option("--mix", "mixture", multiple=True, metavar="STREAM=WEIGHT",
              help="Mixture weight of a stream (a build directory's name, or a source with --mix-by source); "
                   "default: in proportion to tokens. Repeatable.")
@click.option("--mix-by", type=click.Choice(["dir", "source"]), default="dir", show_default=True)
@click.option("--lr", type=float, default=None, help="Peak learning rate (default: LVM's 1.5e-4).")
@click.option("--end-lr", type=float, default=None, help="Final learning rate (default: LVM's 3e-5).")
@click.option("--warmup-steps", type=int, default=None)
@click.option("--val-fraction", type=float, default=0.0, show_default=True,
              help="Sentences held out (by key) for validation loss.")
@click.option("--eval-every", type=int, default=0, show_default=True)
@click.option("--num-workers", type=int, default=0, show_default=True, help="DataLoader workers per rank.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--compile", "compile_model", is_flag=True, help="torch.compile the model.")
@click.option("--distributed", type=click.Choice(["none", "ddp", "fsdp"]), default="none", show_default=True,
              help="With torchrun: DistributedDataParallel or FSDP2.")
@click.option("--checkpoint-every", type=int, default=0, show_default=True, help="0 = at the end only.")
@click.option("--resume", is_flag=True, help="Continue from the latest checkpoint in --out.")
@click.option("--init-from", type=click.Path(exists=True), help="Start from these weights (a checkpoint).")
@click.option("--allow-tokenizer-mismatch", is_flag=True,
              help="Resume on shards made by another tokenizer than the checkpoint's data.")
@click.option("--log-every", type=int, default=10, show_default=True)
@click.option("--out", "out_dir", required=True, help="Checkpoint directory.")
def train(data_dirs, model_name, mixture, compile_model, **kwargs) -> None:
    """Train the LLaMA-style model on built shards (one or more build directories)."""
    from uvd.model.train import TrainConfig, train as run_training

    try:
        weights = {k: float(v) for k, v in _key_values(mixture, "--mix").items()}
        overrides = {k: kwargs.pop(k) for k in ("lr", "end_lr", "warmup_steps") if kwargs.get(k) is not None}
        for k in ("lr", "end_lr", "warmup_steps"):
            kwargs.pop(k, None)
        cfg = TrainConfig(data_dirs=list(data_dirs), model=model_name, mixture=weights, compile=compile_model,
                          **kwargs, **overrides)
        result = run_training(cfg)
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e
    if result.losses:
        click.echo(f"trained to step {result.final_step}; loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f}")
    click.echo(f"checkpoint: {result.checkpoint_path}")


@main.command()
@click.argument("shard_or_dir", type=click.Path(exists=True))
@click.option("--index", type=int, default=0, show_default=True, help="Which sentence (0-based, stored order).")
@click.option("--source", help="Count only sentences of this source.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="PNG to write.")
@click.option("--tokenizer", help="Tokenizer to decode with (default: the one the build recorded).")
@click.option("--cols", type=int, default=4, show_default=True, help="Images per grid row.")
def show(shard_or_dir, index, source, out_path, tokenizer, cols) -> None:
    """Decode one sentence back to a PNG grid of its images."""
    from uvd.pipeline.render import decode_sentence, image_grid, read_sentence, write_png
    from uvd.pipeline.shards import read_manifest
    from uvd.tokenizer import load_tokenizer

    build_dir = Path(shard_or_dir) if Path(shard_or_dir).is_dir() else Path(shard_or_dir).parent
    recorded = {}
    if (build_dir / "manifest.parquet").exists():
        recorded = read_manifest(str(build_dir))[1].get("tokenizer", {})
    spec = tokenizer or recorded.get("spec")
    if not spec:
        raise click.UsageError("no manifest next to the shard records a tokenizer; pass --tokenizer")
    try:
        sentence = read_sentence(shard_or_dir, index, source)
    except (IndexError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    model = load_tokenizer(spec)
    if recorded.get("sha256") and model.info.sha256 != recorded["sha256"]:
        click.secho("  WARNING: decoding with a tokenizer other than the one that built these shards", fg="yellow")
    write_png(out_path, image_grid(decode_sentence(sentence, model), cols=cols))
    m = sentence.meta
    click.echo(f"sentence {sentence.key}: {sentence.num_images} image(s) x {sentence.tokens_per_image} tokens, "
               f"source {m.source}, layout {m.layout}, items {list(m.item_keys)}, frames {list(m.frame_indices)}")
    if not model.info.trained:
        click.secho(f"  NOTE: tokenizer {spec} has RANDOM, UNTRAINED weights: the PNG will not resemble "
                    "the input images.", fg="yellow")
    click.echo(f"wrote {out_path}")


@main.command("sample-data")
@click.argument("dest", type=click.Path(file_okay=False))
def sample_data(dest) -> None:
    """Collect the bundled real sample photos and videos into DEST/images and DEST/videos."""
    from uvd.pipeline.demo_data import collect_sample

    found = collect_sample(dest)
    click.echo(f"{len(found['images'])} photos -> {dest}/images, {len(found['videos'])} videos -> {dest}/videos")


@main.command()
@click.argument("build_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--key", "keys", multiple=True, help="Sentence key(s) to rebuild (default: the first of each source).")
@click.option("--root", "roots", multiple=True, metavar="SOURCE=PATH",
              help="Where a source's data is now, if not where the build read it.")
def rebuild(build_dir, keys, roots) -> None:
    """Make stored sentences again from their metadata and the build's config; check the tokens match."""
    import dataclasses

    import numpy as np

    from uvd.pipeline.config import BuildConfig, SourceConfig
    from uvd.pipeline.local import rebuild_sentence
    from uvd.pipeline.render import read_sentence
    from uvd.pipeline.shards import read_manifest

    _, prov = read_manifest(build_dir)
    config = BuildConfig(**prov["build_config"])
    moved = _key_values(roots, "--root")
    sources = {s["name"]: SourceConfig(name=s["name"], spec=s["spec"], root=moved.get(s["name"], s["root"]))
               for s in prov["sources"]}
    targets = [read_sentence(build_dir, key=k) for k in keys] if keys else [
        read_sentence(build_dir, 0, name) for name in sources]
    failures = 0
    for sentence in targets:
        again = rebuild_sentence(sources[sentence.meta.source], sentence.meta, dataclasses.replace(config))
        same = again.shape == sentence.tokens.shape and np.array_equal(again, sentence.tokens)
        failures += not same
        diff = "identical" if same else f"DIFFERENT ({int((again != sentence.tokens).sum())} tokens differ)"
        click.echo(f"{sentence.key} ({sentence.meta.source}, {sentence.num_images} images): {diff}")
    if failures:
        raise click.ClickException(f"{failures} of {len(targets)} sentences did not rebuild identically")


@main.command()
@click.argument("build_dir")
@click.option("--out", "out_prefix", help="Where to write PREFIX.json and PREFIX.html (default: BUILD_DIR/stats).")
@click.option("--psnr-per-shard", type=int, default=1, show_default=True,
              help="Sentences per shard whose detokenization PSNR is measured (0 = none).")
def stats(build_dir, out_prefix, psnr_per_shard) -> None:
    """Report on a build: per-source counts, rejects, dedup, shard sizes, token ids, detokenization PSNR."""
    import json as json_module

    from uvd.pipeline import storage
    from uvd.pipeline.shards import atomic_write
    from uvd.pipeline.stats import collect, plots, render_html

    report = collect(build_dir, psnr_per_shard=psnr_per_shard)
    prefix = out_prefix or storage.join(build_dir, "stats")
    atomic_write(f"{prefix}.json", json_module.dumps(report, indent=2).encode("utf-8"))
    atomic_write(f"{prefix}.html", render_html(report, plots(report)).encode("utf-8"))
    t = report["totals"]
    click.echo(f"{t['sentences']:,} sentences, {t['tokens']:,} tokens in {t['shards']} shards "
               f"({t['bytes_per_token']:.3f} bytes/token); {report['codes_used']} codes used")
    for source, v in report["detokenization_psnr"].items():
        click.echo(f"  detokenization PSNR {source}: {v['mean_db']:.2f} dB over {v['images']} images")
    click.echo(f"wrote {prefix}.json and {prefix}.html")


@main.command("plan")
@click.option("--figures", type=click.Path(exists=True, dir_okay=False),
              help="Throughput figures: benchmarks/pipeline_bench.py --json output (default: uvd's measured ones).")
@click.option("--gpu", type=click.Choice(["nvidia-l4", "nvidia-a100", "nvidia-h100"]), default="nvidia-l4",
              show_default=True)
@click.option("--mfu", type=float, help="Assumed tokenizer FLOP utilisation when no GPU rate was measured.")
@click.option("--image-megapixels", type=float, help="Mean still size to plan for.")
@click.option("--video-megapixels", type=float, help="Mean video frame size to plan for.")
@click.option("--prices", "prices_path", type=click.Path(exists=True, dir_okay=False), help="A JSON price table.")
@click.option("--json", "as_json", is_flag=True)
def plan_command(figures, gpu, mfu, image_megapixels, video_megapixels, prices_path, as_json) -> None:
    """Estimate worker-hours, GPU-hours, storage and cost of building all of UVDv1, per runner."""
    import json as json_module

    from uvd.pipeline.estimate import PRICES, Assumptions, estimate, load_figures, with_overrides

    prices = json_module.loads(open(prices_path).read()) if prices_path else PRICES
    assumptions = with_overrides(Assumptions(), gpu=gpu, mfu=mfu, image_megapixels=image_megapixels,
                                 video_megapixels=video_megapixels)
    result = estimate(load_figures(figures), assumptions, prices)
    if as_json:
        click.echo(json_module.dumps(result, indent=2))
        return
    w = result["work"]
    click.echo(f"UVDv1: {w['tokens'] / 1e9:,.1f}B tokens = {w['stills'] / 1e9:.2f}B stills + "
               f"{w['video_frames'] / 1e9:.2f}B video frames")
    click.echo(f"figures measured {result['figures']['measured']}; tokenizer {result['tokenizer_img_s_per_gpu']:,.0f} "
               f"img/s per {gpu} ({result['tokenizer_rate_is']}); prices {result['prices_date']}")
    click.echo(f"storage: {result['storage_gb'] / 1e3:,.1f} TB of shards (${result['storage_usd_month']:,.0f}/month)")
    click.echo(f"\n{'runner':<14} {'CPU worker-hours':>17} {'GPU-hours':>10} {'compute USD':>12}")
    for runner, r in result["runners"].items():
        click.echo(f"{runner:<14} {r['cpu_worker_hours']:>17,.0f} {r['gpu_hours']:>10,.0f} {r['compute_usd']:>12,.0f}")


def _register_subgroups() -> None:
    from uvd.model.cli import evaluate, generate, jsonl, model
    from uvd.pipeline.datasets_cli import datasets
    from uvd.tokenizer.cli import tokenizer  # light: torch is imported inside its commands

    for group in (tokenizer, datasets, model, jsonl, generate, evaluate):
        main.add_command(group)


_register_subgroups()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
