"""``uvd eval ...`` and ``uvd generate ...``: using a trained model (loads the model and tokenizer only)."""

from __future__ import annotations

import json

import click
import numpy as np
import torch

from uvd.cli.options import BUILD_DIR, CHECKPOINT, InputPath, build_dir_argument
from uvd.format.reading import iter_sentences, read_sentence
from uvd.media.images import decode_image, image_grid, resize_still, write_png
from uvd.model.checkpoint import load_model
from uvd.model.evaluate import perplexity_by_task
from uvd.model.generate import analogy_context, generate_images
from uvd.model.reasoning import evaluate_reasoning
from uvd.model.train import data_tokenizer
from uvd.tokenizer import decode_frames, encode_frames, load_tokenizer
from uvd.tokenizer.frames import DEFAULT_BATCH_SIZE

MAX_IMAGE_PIXELS = 89_478_485  # the build's decompression-bomb guard (Pillow's default)


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


def _image_tokens(paths, tok):
    """Image files -> (N, 256) token ids, decoded, resized (LVM's read_image_to_tensor) and batched as the
    build does."""
    frames = [resize_still(decode_image(open(p, "rb").read(), max_pixels=MAX_IMAGE_PIXELS, name=p), 256)
              for p in paths]
    return encode_frames(tok, np.stack(frames), DEFAULT_BATCH_SIZE).astype(np.int64)


def _write_result(out_path: str, context, new, tok) -> None:
    frames = decode_frames(tok, np.concatenate([context, new]))
    frames[len(context):, :4] = frames[len(context):, -4:] = (255, 0, 0)  # a red edge marks generated images
    write_png(out_path, image_grid(frames, cols=min(len(frames), 8)))


_sampling = [
    click.option("--temperature", type=float, default=1.0, show_default=True, help="0 = greedy."),
    click.option("--top-k", type=int, default=0, show_default=True),
    click.option("--top-p", type=float, default=1.0, show_default=True),
    click.option("--seed", type=int, default=0, show_default=True),
    click.option("--tokenizer", "tokenizer_spec", help="Default: the one the checkpoint's data was made with."),
    click.option("--allow-tokenizer-mismatch", is_flag=True),
    click.option("--device", default="auto", show_default=True),
    click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="PNG grid to write."),
]


def sampling_options(f):
    for option in reversed(_sampling):
        f = option(f)
    return f


@click.group("generate")
def generate() -> None:
    """Prompt a trained model with images; its new images are decoded to a PNG (red edges)."""


@generate.command("sequential")
@click.argument("checkpoint_path", type=InputPath(CHECKPOINT))
@click.option("--frames", "frame_paths", multiple=True, type=InputPath("an image file", folder=False),
              help="Context images, in order. Repeatable.")
@click.option("--from-build", type=InputPath(BUILD_DIR, folder=True),
              help="Take the context from a stored sentence instead.")
@click.option("--index", type=int, default=0, show_default=True, help="Which sentence of --from-build.")
@click.option("--source", help="Count only sentences of this source in --from-build.")
@click.option("--context", type=int, default=8, show_default=True, help="Images of the stored sentence to use.")
@click.option("--new", "n_new", type=int, default=1, show_default=True, help="Images to generate.")
@sampling_options
def generate_sequential(checkpoint_path, frame_paths, from_build, index, source, context, n_new, temperature, top_k,
                        top_p, seed, tokenizer_spec, allow_tokenizer_mismatch, device, out_path) -> None:
    """Frames in, the next frames out."""
    net, _, tok, device = _load(checkpoint_path, tokenizer_spec, allow_tokenizer_mismatch, device)
    if from_build:
        ctx = read_sentence(from_build, index, source).tokens[:context].astype("int64")
    elif frame_paths:
        ctx = _image_tokens(frame_paths, tok)
    else:
        raise click.UsageError("give --frames or --from-build")
    new = generate_images(net, ctx, n_new, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
                          num_codes=tok.info.codebook_size, device=device)
    _write_result(out_path, ctx, new, tok)
    click.echo(f"{len(ctx)} context image(s) + {n_new} generated -> {out_path}")


@generate.command("analogy")
@click.argument("checkpoint_path", type=InputPath(CHECKPOINT))
@click.option("--pair", "pairs", multiple=True, nargs=2, type=InputPath("an image file", folder=False),
              help="An example (x, y) pair of image files. Repeatable.")
@click.option("--query", required=True, type=InputPath("an image file", folder=False), help="The x to complete.")
@sampling_options
def generate_analogy(checkpoint_path, pairs, query, temperature, top_k, top_p, seed, tokenizer_spec,
                     allow_tokenizer_mismatch, device, out_path) -> None:
    """(x, y) example pairs, then a query x: the model draws its y."""
    if not pairs:
        raise click.UsageError("give at least one --pair X Y")
    net, _, tok, device = _load(checkpoint_path, tokenizer_spec, allow_tokenizer_mismatch, device)
    tokens = _image_tokens([p for pair in pairs for p in pair] + [query], tok)
    ctx = analogy_context([(tokens[2 * i], tokens[2 * i + 1]) for i in range(len(pairs))], tokens[-1])
    new = generate_images(net, ctx, 1, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
                          num_codes=tok.info.codebook_size, device=device)
    _write_result(out_path, ctx, new, tok)
    click.echo(f"{len(pairs)} example pair(s) + query -> {out_path}")


@click.group("eval")
def evaluate() -> None:
    """Evaluate a trained model: LVM's perplexity protocol, and a synthetic reasoning test."""


@evaluate.command("perplexity")
@click.argument("checkpoint_path", type=InputPath(CHECKPOINT))
@build_dir_argument("data_dirs", nargs=-1, required=True)
@click.option("--by", type=click.Choice(["source", "layout"]), default="source", show_default=True,
              help="What a task is.")
@click.option("--max-per-task", type=int, default=0, show_default=True, help="0 = every sentence.")
@click.option("--allow-tokenizer-mismatch", is_flag=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the report here.")
def eval_perplexity(checkpoint_path, data_dirs, by, max_per_task, allow_tokenizer_mismatch, device, json_path):
    """Per task: context images, then the target image; perplexity over the target's tokens."""
    device = resolve_device(device)
    net, ckpt = load_model(checkpoint_path, device)
    recorded = (ckpt.trainer.get("tokenizer") or {}).get("sha256")
    data = data_tokenizer(list(data_dirs)).get("sha256")
    if recorded and data and recorded != data and not allow_tokenizer_mismatch:
        raise click.ClickException(f"these shards were made by tokenizer {data[:12]}, the model trained on "
                                   f"{recorded[:12]}; pass --allow-tokenizer-mismatch to evaluate anyway")
    sentences = (s for d in data_dirs for s in iter_sentences(d))
    report = perplexity_by_task(net, sentences, by=by, max_per_task=max_per_task, device=device)
    click.echo(f"{'task':<28} {'examples':>8} {'perplexity':>12} {'token ppl':>10}")
    for task, r in report.items():
        ppl = f"{r['perplexity']:.2f}" if r["perplexity"] is not None else "-"
        tok = f"{r['token_perplexity']:.2f}" if r["token_perplexity"] is not None else "-"
        click.echo(f"{task:<28} {r['examples']:>8} {ppl:>12} {tok:>10}"
                   + (f"   ({r['skipped']} single-image or too long: skipped)" if r["skipped"] else ""))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(report, f, indent=2)


@evaluate.command("reasoning")
@click.argument("checkpoint_path", type=InputPath(CHECKPOINT))
@click.option("--items", type=int, default=30, show_default=True, help="Items per task.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--tokenizer", "tokenizer_spec", help="Default: the one the checkpoint's data was made with.")
@click.option("--allow-tokenizer-mismatch", is_flag=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False))
def eval_reasoning(checkpoint_path, items, seed, tokenizer_spec, allow_tokenizer_mismatch, device, json_path):
    """Colour, shape and size change: the lowest-perplexity candidate is the answer; vs chance."""
    net, _, tok, device = _load(checkpoint_path, tokenizer_spec, allow_tokenizer_mismatch, device)
    report = evaluate_reasoning(net, tok, items_per_task=items, seed=seed, device=device)
    for task, r in report.items():
        click.echo(f"{task:<7} accuracy {100 * r['accuracy']:5.1f}% ({r['correct']}/{r['items']}, 95% CI "
                   f"{100 * r['ci95'][0]:.0f}-{100 * r['ci95'][1]:.0f}%)  chance {100 * r['chance']:.1f}%")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(report, f, indent=2)
