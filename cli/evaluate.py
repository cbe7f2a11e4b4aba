"""``uvd eval ...`` and ``uvd generate ...``: using a trained model (loads the model and tokenizer only).

The protocols follow LVM's release (evaluation/vqlm_demo) and talk: docs/EVAL.md.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import click
import numpy as np
import torch

from uvd.cli.options import BUILD_DIR, CHECKPOINT, InputPath
from uvd.format.reading import iter_sentences, read_sentence
from uvd.media.images import write_png
from uvd.model import downstream, raven, reasoning
from uvd.model.checkpoint import load_model
from uvd.model.choice import ITEMS, TokenCache, accuracy, evaluate_choices, load_items, save_items
from uvd.model.evaluate import perplexity_by_task
from uvd.model.generate import GenerationConfig, analogy_context, generate_frames
from uvd.model.media import MediaError, decode_images, encode_images, read_image, strip
from uvd.model.perplexity import ImageTokens, VideoConfig, records_perplexity, video_perplexity
from uvd.model.records import read_records
from uvd.model.synthetic import TASKS as SYNTHETIC_TASKS
from uvd.model.synthetic import write_sequences
from uvd.model.train import data_tokenizer
from uvd.model.video import continue_video
from uvd.tokenizer import load_tokenizer

CHECKPOINT_ARG = click.argument("checkpoint_path", type=InputPath(CHECKPOINT))
IMAGE_FILE = InputPath("an image file", folder=False)


def resolve_device(device: str) -> str:
    """``auto`` -> cuda when there is one, else cpu."""
    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _load(checkpoint_path: str, tokenizer_spec: str | None, allow_mismatch: bool, device: str):
    """The model of a checkpoint and the tokenizer its data was made with (or the one given, which
    must be the same unless allowed)."""
    device = resolve_device(device)
    net, ckpt = load_model(checkpoint_path, device)
    recorded = ckpt.trainer.get("tokenizer") or {}
    spec = tokenizer_spec or recorded.get("spec") or "bundled"
    tok = load_tokenizer(spec, device=device)
    if recorded.get("sha256") and tok.info.sha256 != recorded["sha256"] and not allow_mismatch:
        raise click.ClickException(f"{ckpt.path} was trained on tokens of tokenizer {recorded['sha256'][:12]} "
                                   f"({recorded.get('spec')}); {spec} is {tok.info.sha256[:12]}. Pass the right "
                                   "--tokenizer, or --allow-tokenizer-mismatch")
    return net, ckpt, tok, device


def _encoder(tok):
    """Pixels (N, 256, 256, 3) -> token ids, with this tokenizer."""
    return lambda images: encode_images(tok, images)


def _decoder(tok):
    """Token ids (N, 256) -> pixels, with this tokenizer."""
    return lambda tokens: decode_images(tok, tokens)


def _image_tokens(paths, tok):
    """Image files -> (N, 256) token ids, decoded and resized as the build does."""
    try:
        return _encoder(tok)(np.stack([read_image(p) for p in paths]))
    except MediaError as e:
        raise click.ClickException(str(e)) from None


def _write_result(out_path: str, context, new, tok) -> None:
    """Context images, then each candidate's new images (red edges), one row per candidate."""
    frames = decode_images(tok, np.concatenate([context, new.reshape(-1, new.shape[-1])]))
    ctx, generated = frames[:len(context)], frames[len(context):].reshape(len(new), -1, *frames.shape[1:])
    generated[:, :, :4] = generated[:, :, -4:] = (255, 0, 0)
    write_png(out_path, strip([np.concatenate([ctx, row]) for row in generated]))


_sampling = [
    click.option("--candidates", "n_candidates", type=int, default=1, show_default=True,
                 help="Independent samples per prompt (LVM's n_candidates), one row each."),
    click.option("--temperature", type=float, default=1.0, show_default=True, help="0 = greedy."),
    click.option("--top-k", type=int, default=50, show_default=True,
                 help="HF generate's default, in force in LVM's sampling; 0 = off."),
    click.option("--top-p", type=float, default=1.0, show_default=True),
    click.option("--seed", type=int, default=0, show_default=True),
    click.option("--tokenizer", "tokenizer_spec", help="Default: the one the checkpoint's data was made with."),
    click.option("--allow-tokenizer-mismatch", is_flag=True),
    click.option("--device", default="auto", show_default=True),
]


def _stack(options):
    """One decorator applying click options in the order listed."""
    def apply(f):
        for option in reversed(options):
            f = option(f)
        return f
    return apply


sampling_options = _stack(_sampling)
inputs_options = _stack([  # a model, then builds and LVM eval records to run it on
    CHECKPOINT_ARG,
    click.argument("data_dirs", nargs=-1, type=InputPath(BUILD_DIR, folder=True)),
    click.option("--jsonl", "jsonl_paths", multiple=True, type=InputPath("a JSONL file", folder=False),
                 help="LVM eval records {input: [paths], target: [paths]}. Repeatable."),
    click.option("--base-dir", type=InputPath("a folder", folder=True),
                 help="Resolve relative record paths here (default: the JSONL's folder)."),
])


def _generation(tok, n_new: int, n_candidates: int, temperature: float, top_k: int, top_p: float, seed: int):
    try:
        return GenerationConfig(n_new_frames=n_new, n_candidates=n_candidates, temperature=temperature, top_k=top_k,
                                top_p=top_p, seed=seed, num_codes=tok.info.codebook_size)
    except ValueError as e:
        raise click.UsageError(str(e)) from None


@click.group("generate")
def generate() -> None:
    """Prompt a trained model with images; its new images are decoded to a PNG (red edges)."""


@generate.command("sequential")
@CHECKPOINT_ARG
@click.option("--frames", "frame_paths", multiple=True, type=IMAGE_FILE,
              help="Context images, in order. Repeatable.")
@click.option("--from-build", type=InputPath(BUILD_DIR, folder=True),
              help="Take the context from a stored sentence instead.")
@click.option("--index", type=int, default=0, show_default=True, help="Which sentence of --from-build.")
@click.option("--source", help="Count only sentences of this source in --from-build.")
@click.option("--context", type=int, default=8, show_default=True, help="Images of the stored sentence to use.")
@click.option("--new", "n_new", type=int, default=1, show_default=True, help="Images to generate.")
@sampling_options
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="PNG to write.")
def generate_sequential(checkpoint_path, frame_paths, from_build, index, source, context, n_new, n_candidates,
                        temperature, top_k, top_p, seed, tokenizer_spec, allow_tokenizer_mismatch, device,
                        out_path) -> None:
    """Frames in, the next frames out."""
    net, _, tok, device = _load(checkpoint_path, tokenizer_spec, allow_tokenizer_mismatch, device)
    if from_build:
        ctx = read_sentence(from_build, index, source).tokens[:context].astype("int64")
    elif frame_paths:
        ctx = _image_tokens(frame_paths, tok)
    else:
        raise click.UsageError("give --frames or --from-build")
    cfg = _generation(tok, n_new, n_candidates, temperature, top_k, top_p, seed)
    _write_result(out_path, ctx, generate_frames(net, ctx, cfg, device), tok)
    click.echo(f"{len(ctx)} context image(s) + {n_new} generated x {n_candidates} -> {out_path}")


@generate.command("analogy")
@CHECKPOINT_ARG
@click.option("--pair", "pairs", multiple=True, nargs=2, type=IMAGE_FILE,
              help="An example (x, y) pair of image files. Repeatable.")
@click.option("--query", required=True, type=IMAGE_FILE, help="The x to complete.")
@sampling_options
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="PNG to write.")
def generate_analogy(checkpoint_path, pairs, query, n_candidates, temperature, top_k, top_p, seed, tokenizer_spec,
                     allow_tokenizer_mismatch, device, out_path) -> None:
    """(x, y) example pairs, then a query x: the model draws its y."""
    if not pairs:
        raise click.UsageError("give at least one --pair X Y")
    net, _, tok, device = _load(checkpoint_path, tokenizer_spec, allow_tokenizer_mismatch, device)
    tokens = _image_tokens([p for pair in pairs for p in pair] + [query], tok)
    ctx = analogy_context([(tokens[2 * i], tokens[2 * i + 1]) for i in range(len(pairs))], tokens[-1])
    cfg = _generation(tok, 1, n_candidates, temperature, top_k, top_p, seed)
    _write_result(out_path, ctx, generate_frames(net, ctx, cfg, device), tok)
    click.echo(f"{len(pairs)} example pair(s) + query -> {out_path}")


@generate.command("video")
@CHECKPOINT_ARG
@click.argument("video", type=InputPath("a video file or a folder of frames"))
@click.option("--context", "n_context", type=int, default=12, show_default=True, help="Context frames (LVM: 12).")
@click.option("--new", "n_new", type=int, default=4, show_default=True, help="Frames to generate (LVM: 4).")
@click.option("--stride", type=int, default=8, show_default=True, help="Frames apart (lowered to fit the video).")
@click.option("--start", type=int, help="First frame; default: a random start drawn from --seed, as LVM.")
@click.option("--fps", type=float, default=4.0, show_default=True, help="Of the MP4.")
@sampling_options
@click.option("--out", "out_prefix", required=True, help="Writes OUT.png (strip) and OUT.mp4.")
def generate_video(checkpoint_path, video, n_context, n_new, stride, start, fps, n_candidates, temperature, top_k,
                   top_p, seed, tokenizer_spec, allow_tokenizer_mismatch, device, out_prefix) -> None:
    """A video file or frame folder: 12 frames in, 4 new ones out, per candidate; a strip and an MP4."""
    net, _, tok, device = _load(checkpoint_path, tokenizer_spec, allow_tokenizer_mismatch, device)
    cfg = _generation(tok, n_new, n_candidates, temperature, top_k, top_p, seed)
    try:
        png, mp4 = continue_video(net, tok, video, out_prefix, cfg, n_context=n_context, stride=stride, start=start,
                                  fps=fps, device=device)
    except MediaError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"{n_context} frames of {video} + {n_new} generated x {n_candidates} -> {png}, {mp4}")


@click.group("eval")
def evaluate() -> None:
    """Evaluate a trained model as LVM does: perplexity, reasoning, Raven, downstream metrics."""


def _write_json(json_path: str | None, report: dict) -> None:
    def clean(x):  # JSON has no inf / nan
        if isinstance(x, float) and not math.isfinite(x):
            return None
        return {k: clean(v) for k, v in x.items()} if isinstance(x, dict) else x

    if json_path:
        with open(json_path, "w") as f:
            json.dump(clean(report), f, indent=2)


def _print_perplexity(title: str, report: dict) -> None:
    click.echo(f"{title}\n{'task':<28} {'examples':>8} {'perplexity':>12} {'token ppl':>10}")
    for task, r in report.items():
        ppl = f"{r['perplexity']:.2f}" if r["perplexity"] is not None else "-"
        tok = f"{r['token_perplexity']:.2f}" if r["token_perplexity"] is not None else "-"
        click.echo(f"{task:<28} {r['examples']:>8} {ppl:>12} {tok:>10}"
                   + (f"   ({r['skipped']} skipped: too short or too long)" if r["skipped"] else ""))


@evaluate.command("perplexity")
@inputs_options
@click.option("--input-key", default="input", show_default=True)
@click.option("--target-key", default="target", show_default=True)
@click.option("--videos", "video_dirs", multiple=True, type=InputPath("a folder of videos", folder=True),
              help="A folder of videos (files or frame folders): 15 frames, then the 16th. Repeatable.")
@click.option("--stride", type=int, default=8, show_default=True, help="Video frames apart.")
@click.option("--by", type=click.Choice(["source", "layout"]), default="source", show_default=True,
              help="What a task of a build is.")
@click.option("--max-per-task", type=int, default=0, show_default=True, help="0 = all.")
@click.option("--seed", type=int, default=0, show_default=True, help="Of the video clips' starts.")
@click.option("--tokenizer", "tokenizer_spec", help="Default: the one the checkpoint's data was made with.")
@click.option("--allow-tokenizer-mismatch", is_flag=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the report here.")
def eval_perplexity(checkpoint_path, data_dirs, jsonl_paths, base_dir, input_key, target_key, video_dirs, stride, by,
                    max_per_task, seed, tokenizer_spec, allow_tokenizer_mismatch, device, json_path):
    """Context images, then targets: perplexity of the targets' tokens, per task. Inputs: builds
    (DATA_DIRS: a sentence's last image given the rest), --jsonl records, --videos."""
    if not (data_dirs or jsonl_paths or video_dirs):
        raise click.UsageError("give build folders, --jsonl files or --videos folders")
    net, ckpt, tok, device = _load(checkpoint_path, tokenizer_spec, allow_tokenizer_mismatch, device)
    report = {}
    try:
        if data_dirs:
            _check_build_tokenizer(ckpt, data_dirs, allow_tokenizer_mismatch)
            report["build"] = perplexity_by_task(net, _build_sentences(data_dirs), by=by, max_per_task=max_per_task,
                                                 device=device)
        if jsonl_paths:
            records = [r for p in jsonl_paths for r in read_records(p, base_dir=base_dir, input_key=input_key,
                                                                      target_key=target_key)]
            report["records"] = records_perplexity(net, _first_per_task(records, max_per_task),
                                                   ImageTokens(_encoder(tok)), device)
        if video_dirs:
            cfg = VideoConfig(stride=stride, seed=seed, max_videos=max_per_task)
            report["videos"] = video_perplexity(net, video_dirs, _encoder(tok), cfg, device)
    except (MediaError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    for name, table in report.items():
        _print_perplexity(f"[{name}]", table)
    _write_json(json_path, report)


def _first_per_task(records, limit: int):
    counts: dict[str, int] = {}
    for r in records:
        counts[r.task] = counts.get(r.task, 0) + 1
        if not limit or counts[r.task] <= limit:
            yield r


def _check_build_tokenizer(ckpt, data_dirs, allow_mismatch: bool) -> None:
    recorded = (ckpt.trainer.get("tokenizer") or {}).get("sha256")
    data = data_tokenizer(list(data_dirs)).get("sha256")
    if recorded and data and recorded != data and not allow_mismatch:
        raise click.ClickException(f"these shards were made by tokenizer {data[:12]}, the model trained on "
                                   f"{recorded[:12]}; pass --allow-tokenizer-mismatch to evaluate anyway")


def _build_sentences(data_dirs):
    return (sentence for d in data_dirs for sentence in iter_sentences(d))


def _choice_items(items_dir, make, meta):
    """An item set: loaded from ITEMS_DIR when it holds one, else made (and saved there if given)."""
    if items_dir and (Path(items_dir) / ITEMS).exists():
        items, stored = load_items(items_dir)
        click.echo(f"{len(items)} items from {items_dir} (seed {stored.get('seed')}, {stored.get('generator')})")
        return items
    items = make()
    if items_dir:
        save_items(items, items_dir, meta)
        click.echo(f"{len(items)} items -> {items_dir}")
    return items


def _report_choices(net, tok, items, device, json_path, reference: dict[str, float] | None = None) -> None:
    results = evaluate_choices(net, TokenCache(_encoder(tok)), items, device)
    if len(results) > 1:
        total = accuracy("all", sum(r.correct for r in results.values()), sum(r.items for r in results.values()),
                         sum(r.chance * r.items for r in results.values()) / sum(r.items for r in results.values()))
        results = {**results, "all": total}
    for r in results.values():
        click.echo(r.line() + (f"  (LVM-7B in the talk: {100 * reference[r.task]:.0f}%)"
                               if reference and r.task in reference else ""))
    _write_json(json_path, {task: r.to_json() for task, r in results.items()})


_choice_options = [
    click.option("--seed", type=int, default=0, show_default=True),
    click.option("--items-dir", type=click.Path(file_okay=False),
                 help="Load the item set from here, or save the one made here, so models meet the same items."),
    click.option("--tokenizer", "tokenizer_spec", help="Default: the one the checkpoint's data was made with."),
    click.option("--allow-tokenizer-mismatch", is_flag=True),
    click.option("--device", default="auto", show_default=True),
    click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the report here."),
]


choice_options = _stack(_choice_options)


@evaluate.command("reasoning")
@CHECKPOINT_ARG
@click.option("--items", "n_items", type=int, default=900, show_default=True,
              help="Items in all, split over colour, shape and size (the talk: 900 experiments).")
@choice_options
def eval_reasoning(checkpoint_path, n_items, seed, items_dir, tokenizer_spec, allow_tokenizer_mismatch, device,
                   json_path):
    """Colour, shape and size change: the lowest-perplexity next frame is the answer; vs chance."""
    cfg = reasoning.ReasoningConfig(n_items=n_items, seed=seed)
    net, _, tok, device = _load(checkpoint_path, tokenizer_spec, allow_tokenizer_mismatch, device)
    items = _choice_items(items_dir, lambda: reasoning.make_items(cfg), reasoning.item_meta(cfg))
    _report_choices(net, tok, items, device, json_path, reasoning.TALK_LVM_7B)


@evaluate.command("raven")
@CHECKPOINT_ARG
@click.option("--items", "n_items", type=int, default=300, show_default=True,
              help="Puzzles, the configurations taking turns.")
@choice_options
def eval_raven(checkpoint_path, n_items, seed, items_dir, tokenizer_spec, allow_tokenizer_mismatch, device, json_path):
    """Generated Raven matrices: 8 panels, then 5 choices; lowest perplexity wins; vs 20 % chance."""
    net, _, tok, device = _load(checkpoint_path, tokenizer_spec, allow_tokenizer_mismatch, device)
    items = _choice_items(items_dir, lambda: raven.make_items(n_items, seed), raven.item_meta(n_items, seed))
    _report_choices(net, tok, items, device, json_path)


@evaluate.command("synthetic-data")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--sequences", type=int, default=600, show_default=True, help="The tasks take turns.")
@click.option("--frames", type=int, default=16, show_default=True, help="Frames per sequence.")
@click.option("--tasks", default=",".join(SYNTHETIC_TASKS), show_default=True,
              help="Comma-separated tasks to generate, among " + ", ".join(SYNTHETIC_TASKS) + ".")
@click.option("--seed", type=int, default=0, show_default=True)
def synthetic_data(out_dir, sequences, frames, tasks, seed):
    """Write colour / shape / size sequences as frame folders, for `uvd build --source
    synthetic_reasoning:OUT_DIR` (the learning check's training source)."""
    try:
        index = write_sequences(out_dir, sequences, seed=seed, length=frames,
                                tasks=tuple(t.strip() for t in tasks.split(",") if t.strip()))
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--tasks") from None
    click.echo(f"{sequences} sequences of {frames} frames ({tasks}) -> {out_dir} (index {index.name})")


@evaluate.command("downstream")
@inputs_options
@click.option("--kind", type=click.Choice(["image", "segmentation", "mask", "pose_coco17", "pose_jhmdb15"]),
              default="image", show_default=True, help="What --jsonl targets are (a record's 'kind' wins).")
@click.option("--shots", type=int, default=7, show_default=True, help="Example pairs before a build's query.")
@click.option("--max-per-task", type=int, default=8, show_default=True, help="Prompts per task; 0 = all.")
@click.option("--out-dir", type=click.Path(file_okay=False), help="Write each prompt's strip here.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the report here.")
@sampling_options
def eval_downstream(checkpoint_path, data_dirs, jsonl_paths, base_dir, kind, shots, max_per_task, out_dir, json_path,
                    n_candidates, temperature, top_k, top_p, seed, tokenizer_spec, allow_tokenizer_mismatch, device):
    """Batch generation on paired tasks: MSE / PSNR, mIoU for segmentation, PCKh for pose."""
    if not (data_dirs or jsonl_paths):
        raise click.UsageError("give build folders or --jsonl files")
    net, ckpt, tok, device = _load(checkpoint_path, tokenizer_spec, allow_tokenizer_mismatch, device)
    cfg = _generation(tok, 1, n_candidates, temperature, top_k, top_p, seed)
    prompts = []
    try:
        if data_dirs:
            _check_build_tokenizer(ckpt, data_dirs, allow_tokenizer_mismatch)
            prompts += list(downstream.build_prompts(_build_sentences(data_dirs), _decoder(tok), shots=shots,
                                          max_per_task=max_per_task))
        prompts += _record_prompts(jsonl_paths, base_dir, kind, max_per_task, tok)
        report = downstream.run_downstream(net, prompts, _decoder(tok), cfg, device=device,
                                on_result=_strip_writer(out_dir, tok) if out_dir else None)
    except (MediaError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    if not report:
        raise click.ClickException("no paired prompt found (a build needs sentences of alternating x, y views)")
    _print_downstream(report)
    _write_json(json_path, report)


def _record_prompts(jsonl_paths, base_dir, kind, max_per_task, tok) -> list:
    tokens = ImageTokens(_encoder(tok))
    records = [r for p in jsonl_paths for r in read_records(p, base_dir=base_dir)]
    return [downstream.Prompt(r.task, r.kind or kind, tokens(r.inputs), np.stack([read_image(p) for p in r.targets]), r.where)
            for r in _first_per_task(records, max_per_task)]


def _strip_writer(out_dir: str, tok):
    counts: dict[str, int] = {}

    def write(prompt, pixels) -> None:
        """OUT_DIR/<task>_<n>.png: the prompt and the truth, then a row per candidate."""
        context = decode_images(tok, prompt.context)
        rows = [np.concatenate([context, prompt.truth])] + [np.concatenate([context, c]) for c in pixels]
        n = counts[prompt.task] = counts.get(prompt.task, -1) + 1
        write_png(f"{out_dir}/{re.sub(r'[^A-Za-z0-9_.-]+', '_', prompt.task)}_{n}.png", strip(rows))

    return write


def _print_downstream(report: dict) -> None:
    click.echo(f"{'task':<24} {'kind':<13} {'prompts':>7} {'MSE':>8} {'PSNR dB':>8} {'mIoU':>7} {'PCKh':>7}")
    for task, r in report.items():
        click.echo(f"{task:<24} {r['kind']:<13} {r['prompts']:>7} {_number(r, 'mse', '%.4f'):>8} "
                   f"{_number(r, 'psnr', '%.2f'):>8} {_number(r, 'miou', '%.3f'):>7} {_number(r, 'pckh', '%.3f'):>7}")


def _number(row: dict, key: str, fmt: str) -> str:
    """A report figure, or '-' where the task has none (e.g. mIoU of an image task)."""
    return fmt % row[key] if row.get(key) is not None else "-"
