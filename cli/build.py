"""``uvd build``, ``uvd rebuild``, ``uvd plan`` and ``uvd sample-data``: the build's commands.

click parses uvd's flags; any flag uvd does not know goes to Beam's PipelineOptions.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections import Counter

import click
import numpy as np

from uvd.cli.options import InputPath, build_dir_argument, echo_kv, key_values, merge_layout_args
from uvd.format.reading import read_sentence
from uvd.format.tables import MANIFEST_NAME, REJECTS_NAME, read_manifest, read_rejects
from uvd.media.images import PREPROCESS_MODES
from uvd.pipeline.graph import job
from uvd.pipeline.graph import workers as workers_pool
from uvd.pipeline.planning.waves import MAX_WAVES, MIN_WAVE_SENTENCES
from uvd.pipeline.records.config import BuildConfig, SourceConfig, discover_sources, load_build_config, parse_source
from uvd.pipeline.tools.estimate import PRICES, Assumptions, FiguresError, estimate, load_figures, with_overrides
from uvd.pipeline.tools.local import rebuild_sentence
from uvd.pipeline.tools.sample_data import collect_sample
from uvd.tokenizer.vqgan import PRECISIONS


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--source", "sources", multiple=True, metavar="[NAME=]SPEC:PATH",
              help="A dataset spec read from PATH, e.g. images:data/photos, clips=videos:s3://b/v or "
                   "coco_detection:/data/coco (`uvd datasets list` shows every spec). Repeatable.")
@click.option("--root", type=InputPath("a folder of datasets, each in its spec's folder", folder=True),
              help="A folder of datasets, each in its spec's folder (`uvd datasets list --root`): "
                             "adds every spec found there as a source.")
@click.option("--mix", help="Keep a seeded subset of each source so token shares follow UVDv1 ('uvdv1') or the "
                            "weights in a TOML/JSON file (source = weight), scaled to what the data allows.")
@click.option("--mix-tokens", type=int, help="With --mix: total tokens to aim for (default: as many as possible).")
@click.option("--out", "out_dir", required=True, help="Output directory (local, s3:// or gs://).")
@click.option("--config", "config_path", type=InputPath("a build config file (TOML or JSON)", folder=False),
              help="Build config (TOML with a [build] table, or JSON).")
@click.option("--tokenizer", help="Tokenizer directory, or random:<config>[:<seed>] (untrained).")
@click.option("--seed", type=int, help="Global seed of every random choice.")
@click.option("--compile-tokenizer/--eager-tokenizer", "compile_tokenizer", default=None,
              help="torch.compile the tokenizer on each worker (1.1x to 1.5x measured on an idle CPU; ~20 s to start). "
                   "Default: the config's compile_tokenizer (off).")
@click.option("--preprocess", type=click.Choice(PREPROCESS_MODES),
              help="How files become 256x256 frames: lvm (the LVM release's pixels, the default) or fast "
                   "(faster still decoding and resizing; other pixels, see docs/benchmarks.md).")
@click.option("--tokenizer-precision", type=click.Choice(PRECISIONS),
              help="fp32 (LVM's, the default) or bf16 autocast (faster on GPUs; changes some codes).")
@click.option("--samples-per-shard", type=int, help="Target sentences per shard.")
@click.option("--annotator", "annotators", multiple=True, metavar="KIND=DIR",
              help="A model annotator folder (annotator.json + torch.export .pt2) for depth, normals, "
                   "segmentation, pose or edges. Repeatable.")
@click.option("--layout-arg", "layout_args", multiple=True, metavar="SOURCE.ARG=VALUE",
              help="Override a layout argument of one source, e.g. videos.epochs=4 or videos.strides=[4,8] "
                   "(VALUE is JSON). Repeatable.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Local worker processes (DirectRunner direct_num_workers), forked warm from one process "
                   "that imported Beam, torch and uvd once.")
@click.option("--threads-per-worker", type=click.IntRange(min=1),
              help="torch and OpenCV threads per worker process. Default on local runs: the cores this "
                   "process may use divided by --workers; on other runners: the libraries' defaults.")
@click.option("--resume/--overwrite", "resume", default=True, show_default=True,
              help="--resume: a rerun of the same build after a kill keeps its committed shards and does only "
                   "the rest (output byte-identical to an uninterrupted run); --overwrite: replace whatever "
                   "build --out holds.")
@click.option("--wave-size", type=click.IntRange(min=1),
              help="Sentences per wave. A wave is one runner job, and the work a killed build redoes. Default: "
                   f"sized from the build, at most {MAX_WAVES} waves of at least {MIN_WAVE_SENTENCES:,} sentences. "
                   "Output bytes do not depend on it.")
@click.option("--accelerator", default=job.DEFAULT_ACCELERATOR, show_default=True,
              help="Beam resource hint of the tokenize step (GPU workers on Dataflow); 'none' to drop it. "
                   "Local runs drop it (no GPU pool; decoding and tokenizing stay in one process).")
@click.option("--device", default="auto", show_default=True, help="Tokenizer device: auto, cpu or cuda.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar on local runs.")
@click.pass_context
def build(ctx, sources, root, mix, mix_tokens, out_dir, config_path, tokenizer, seed, compile_tokenizer,
          preprocess, tokenizer_precision, samples_per_shard, annotators, layout_args, workers, threads_per_worker,
          resume, wave_size, accelerator, device, progress) -> None:
    """Build visual-sentence shards from dataset folders.

    Extra arguments are passed to Beam's PipelineOptions, e.g. --runner=DataflowRunner.
    """
    beam_args = list(ctx.args)
    local = job.runs_locally(beam_args)
    if local and workers > 1:  # first, while no torch operation has run in this process (workers.py)
        workers_pool.fork_forkserver_from_launcher()
    source_cfgs, config = _sources_and_config(sources, root, config_path, annotators, layout_args,
                                              tokenizer=tokenizer, seed=seed, samples_per_shard=samples_per_shard,
                                              mix=mix, mix_tokens=mix_tokens, compile_tokenizer=compile_tokenizer,
                                              preprocess=preprocess, tokenizer_precision=tokenizer_precision)
    click.echo(f"uvd build: {len(source_cfgs)} source(s) -> {out_dir}; tokenizer {config.tokenizer}")
    try:
        with tempfile.TemporaryDirectory(prefix="uvd-progress-") as progress_dir:
            summary = job.run(source_cfgs, out_dir, config, beam_args, overwrite=not resume,
                              progress_dir=progress_dir if (local and progress) else None, device=device,
                              accelerator=None if accelerator.lower() == "none" else accelerator,
                              wave_sentences=wave_size, workers=workers, threads_per_worker=threads_per_worker)
    except (FileExistsError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    _print_summary(summary, out_dir)
    _fail_on_empty_sources(summary, out_dir)


def _fail_on_empty_sources(summary: dict, out_dir: str) -> None:
    """Exit 1 when the build, or one of its sources, had inputs and wrote none of them (every one
    rejected): the rejects are recorded and the other sources' shards are complete, but such a
    build is not a success."""
    rejects = read_rejects(out_dir)
    built = {s for s, tokens in summary["tokens_by_source"].items() if tokens}
    if rejects and not built:
        raise click.ClickException(f"every one of the {len(rejects)} inputs was rejected; nothing was written but "
                                   f"{out_dir}/{REJECTS_NAME} (reasons above)")
    # bad inputs only: not duplicates of kept inputs, not a layout's remainder (drop_last), and not a
    # source the mixture took nothing from
    rejected = Counter(r.source for r in rejects if r.stage not in ("dedup", "plan") and r.reason != "drop_last")
    empty = {s: n for s, n in sorted(rejected.items())
             if s not in built and not summary["items"].get(s, {}).get("skipped")}
    if empty:
        names = ", ".join(f"{s} ({n})" for s, n in empty.items())
        raise click.ClickException(f"every input of source(s) {names} was rejected; the other sources were built; "
                                   f"reasons in {out_dir}/{REJECTS_NAME}")


def _sources_and_config(sources, root, config_path, annotators, layout_args,
                        **overrides) -> tuple[list[SourceConfig], BuildConfig]:
    """The sources (--source, --root) and the build config (--config, then flags), checked."""
    try:
        source_cfgs = [parse_source(s) for s in sources]
        config = load_build_config(config_path).replace(**overrides)
        if root:
            found, left_out = discover_sources(root, config.mix)
            if left_out:
                click.echo(f"not in the UVDv1 table, so not in the uvdv1 mix: {', '.join(left_out)}")
            source_cfgs += [f for f in found if f.name not in {s.name for s in source_cfgs}]
        if not source_cfgs:
            raise ValueError("no sources: give --source, or --root with datasets in their spec folders")
        config = config.replace(annotators={**config.annotators, **key_values(annotators, "--annotator")},
                                layout_args=merge_layout_args(config.layout_args, layout_args))
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    return source_cfgs, config


def _print_summary(summary: dict, out_dir: str) -> None:
    tok = read_manifest(out_dir).tokenizer
    click.echo("\nBuild summary")
    rows = [(f"inputs[{k}]", f"{v} ({summary['items'][k]['written']} in shards, "
                              f"{summary['items'][k]['rejected']} rejected)") for k, v in summary["inputs"].items()]
    rows += [("sentences", summary["sentences"]), ("images", summary["images"]), ("tokens", summary["tokens"]),
             ("shards", summary["shards"]), ("bytes", summary["bytes"])]
    rows += [(f"rejected[{k}]", v) for k, v in summary["rejects"].items()] or [("rejected", 0)]
    rows += [("manifest", f"{out_dir}/{MANIFEST_NAME}"), ("rejects", f"{out_dir}/{REJECTS_NAME}")]
    if summary.get("unaccounted_items"):
        rows.append(("UNACCOUNTED items", f"{summary['unaccounted_items']} (neither written nor rejected: a bug)"))
    echo_kv(rows)
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
    echo_kv(rows)


def _print_rejects(out_dir: str, limit: int = 10) -> None:
    """Name the first rejected files and why; the full list is in rejects.parquet."""
    rejects = read_rejects(out_dir)
    if rejects:
        click.echo(f"\nRejected inputs ({len(rejects)}):")
    for r in rejects[:limit]:
        click.echo(f"  [{r.reason}] {r.message}")
    if len(rejects) > limit:
        click.echo(f"  ... {len(rejects) - limit} more in {REJECTS_NAME}")


@click.command()
@build_dir_argument()
@click.option("--key", "keys", multiple=True, help="Sentence key(s) to rebuild (default: the first of each source).")
@click.option("--root", "roots", multiple=True, metavar="SOURCE=PATH",
              help="Where a source's data is now, if not where the build read it.")
def rebuild(build_dir, keys, roots) -> None:
    """Make stored sentences again from their metadata and the build's config; check the tokens match."""
    provenance = read_manifest(build_dir).provenance
    config = BuildConfig(**provenance["build_config"])
    moved = key_values(roots, "--root")
    sources = {s["name"]: SourceConfig(name=s["name"], spec=s["spec"], root=moved.get(s["name"], s["root"]))
               for s in provenance["sources"]}
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


@click.command("sample-data")
@click.argument("dest", type=click.Path(file_okay=False))
def sample_data(dest) -> None:
    """Collect the bundled real sample photos and videos into DEST/images and DEST/videos."""
    found = collect_sample(dest)
    click.echo(f"{len(found['images'])} photos -> {dest}/images, {len(found['videos'])} videos -> {dest}/videos")


@click.command("plan")
@click.option("--figures", type=InputPath("a figures file as the benchmarks write it", folder=False),
              help="A figures file as the benchmarks write it (default: uvd's, pipeline/tools/figures.json).")
@click.option("--gpu", type=click.Choice(["nvidia-l4", "nvidia-a100", "nvidia-h100"]), default="nvidia-l4",
              show_default=True)
@click.option("--mfu", type=float, help="Assumed tokenizer FLOP utilisation when no GPU rate was measured.")
@click.option("--image-megapixels", type=float, help="Mean still size to plan for.")
@click.option("--video-megapixels", type=float, help="Mean video frame size to plan for.")
@click.option("--job-startup-min", type=float, help="Assumed start-up of one runner job, in minutes.")
@click.option("--prices", "prices_path", type=InputPath("a JSON price table", folder=False),
              help="A JSON price table.")
@click.option("--json", "as_json", is_flag=True)
def plan(figures, gpu, mfu, image_megapixels, video_megapixels, job_startup_min, prices_path, as_json) -> None:
    """Estimate worker-hours, GPU-hours, storage, cost and runner jobs of building all of UVDv1."""
    prices = json.loads(open(prices_path).read()) if prices_path else PRICES
    assumptions = with_overrides(Assumptions(), gpu=gpu, mfu=mfu, image_megapixels=image_megapixels,
                                 video_megapixels=video_megapixels, job_startup_min=job_startup_min)
    try:
        measured = load_figures(figures)
    except FiguresError as e:
        raise click.ClickException(str(e)) from e
    result = estimate(measured, assumptions, prices)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    w = result["work"]
    click.echo(f"UVDv1: {w['tokens'] / 1e9:,.1f}B tokens = {w['stills'] / 1e9:.2f}B stills + "
               f"{w['video_frames'] / 1e9:.2f}B video frames")
    click.echo(f"figures measured {result['figures']['measured']}; tokenizer {result['tokenizer_img_s_per_gpu']:,.0f} "
               f"img/s per {gpu} ({result['tokenizer_rate_is']}); prices {result['prices_date']}")
    click.echo(f"storage: {result['storage_gb'] / 1e3:,.1f} TB of shards (${result['storage_usd_month']:,.0f}/month)")
    c = result["cpu_side"]
    click.echo(f"CPU side: {c['still_img_s_per_core']:,.0f} stills/s per core at {assumptions.image_megapixels:g} MP, "
               f"so {c['cores_per_gpu']:,.1f} cores per {gpu}; decode -> tokenize: "
               f"{result['figures']['boundary_bytes_per_image']:,.0f} B/image, {c['boundary_gbit_s_per_gpu']:.1f} Gbit/s "
               "into each GPU worker")
    click.echo(f"\n{'runner':<14} {'CPU worker-hours':>17} {'GPU-hours':>10} {'compute USD':>12}")
    for runner, r in result["runners"].items():
        click.echo(f"{runner:<14} {r['cpu_worker_hours']:>17,.0f} {r['gpu_hours']:>10,.0f} {r['compute_usd']:>12,.0f}")
    _print_runner_jobs(result["runner_jobs"])


def _print_runner_jobs(j: dict) -> None:
    risk = j["at_risk_hours"]
    click.echo(f"\nRunner jobs on Dataflow: {j['jobs']} (plan, {j['waves']} waves of ~{j['sentences_per_wave'] / 1e6:,.1f} M "
               f"of {j['sentences'] / 1e6:,.0f} M sentences, records)")
    click.echo(f"  start-up overhead: {j['startup_hours']:.1f} h ({j['jobs']} x {j['job_startup_min']:g} min, assumed); "
               f"waves of a fixed 200 k sentences would be {j['fixed_200k_waves']['jobs']:,} jobs, "
               f"{j['fixed_200k_waves']['startup_hours']:,.0f} h")
    click.echo(f"  work at risk per kill (one wave, {j['at_risk_fraction']:.1%} of the build): "
               f"{risk['cpu_worker_hours']:,.0f} CPU worker-hours, {risk['gpu_hours']:,.0f} GPU-hours, "
               f"${j['at_risk_usd']:,.0f}")
