"""One-shot GPU check: every GPU figure uvd needs, in one run of under 8 minutes.

Four checks, each with a time budget (a check that runs out of it stops and reports what it measured;
time a check leaves unused goes to the next ones):

- **loader**: tokens/s per core of the trainer's shard loader (``model.loader``: sha256-checked gzip
  shards packed into rows) against a nanoGPT-style raw memmap of the same tokens, alternating rounds,
  and at the end against the tokens/s the trainer consumes per GPU. The loader's rows must equal the
  memmap's windows.
- **tokenizer**: the LVM-size VQGAN (random weights) encode and decode images/s at batch 32, 128 and
  256 in fp32 (IEEE, TF32 off), tf32 (torch's default for cuDNN convolutions), bf16 autocast, and
  compiled (``compile_for_inference``) in bf16 and fp32; each path's codes against fp32 at the same
  batch, fp32 on the GPU against fp32 on the CPU, and the share of the card's dense bf16 peak.
- **pipeline**: ``uvd build`` of the bundled sample on the GPU (DirectRunner, in this process), the
  images/s of its tokenize step (RunInference's calls, timed), and its tokens against a CPU fp32 build
  of the same config.
- **trainer**: vqlm_1b and vqlm_300m at 4096 context under bf16 autocast: uvd's Llama eager and compiled
  (the trainer's own wrapping) and ``transformers.LlamaForCausalLM`` (sdpa) with the same weights and
  batches, in alternating rounds: tokens/s, MFU, peak memory; the first-step losses must agree.

The JSON is rewritten after every measurement, so a run cut short keeps what it measured; at the end
the markdown rows for docs/benchmarks.md are printed with the targets (``--markdown JSON`` prints them
again from a saved report). Exit status 1, with one line on stderr, when codes or tokens that must be
equal differ or a check breaks; 3 when the whole run's deadline passes.

    python benchmarks/gpu_check.py --json out/gpu_check.json      # on a CUDA machine (make gpu-check)
    python benchmarks/gpu_check.py --dry-run --json out/dry.json   # tiny sizes on CPU (make test runs it)
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import datetime as dt
import functools
import gc
import json
import logging
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import skimage
import torch
import torch.nn.functional as F
from tokenizer_bench import Reference, flops_per_image, tie_gaps
from trainer_bench import hf_twin

from uvd.cli.build import build as build_command
from uvd.format import storage
from uvd.format.reading import iter_sentences
from uvd.format.sample import SentenceMeta, VisualSentence
from uvd.format.shards import write_shard
from uvd.format.tables import MANIFEST_NAME, manifest_table, parquet_bytes
from uvd.media.images import decode_image
from uvd.model.llama import CONFIGS as LLAMA_CONFIGS
from uvd.model.llama import NUM_CODES, Llama, LlamaConfig, get_config
from uvd.model.loader import MixtureRows, Partition, Stream, StreamConfig
from uvd.model.train import Distributed, TrainConfig, make_optimizer
from uvd.pipeline.graph.inference import VQGANModelHandler
from uvd.pipeline.tools.estimate import bf16_peak_tflops
from uvd.pipeline.tools.sample_data import SKIMAGE_PHOTOS, collect_sample
from uvd.tokenizer import load_tokenizer
from uvd.tokenizer.config import CONFIGS as TOKENIZER_CONFIGS
from uvd.tokenizer.config import VQGANConfig

GIB = 2**30
CHECKS = ("loader", "tokenizer", "pipeline", "trainer")
# Tokenizer paths: name -> (precision, compiled). "fp32" must come first: the others are compared with it.
TOKENIZER_PATHS = {"fp32": ("ieee", False), "tf32": ("tf32", False), "bf16": ("bf16", False),
                   "compiled-bf16": ("bf16", True), "compiled-fp32": ("ieee", True)}
# The dry run's sizes: the smallest models that still take every code path (fewer distinct layers, fewer
# graphs to capture; its compilations use aot_eager, see dry_run_compilation). The VQGAN keeps 256 tokens
# per image (32 px at f2); the build runs at that image size.
DRY_RUN_VQGAN = ("gpu-check-dry-run", VQGANConfig(resolution=32, hidden_channels=32, channel_mult=(1, 1),
                                                  num_res_blocks=1, attn_resolutions=(), z_channels=32,
                                                  quantized_embed_dim=32, num_embeddings=64))
DRY_RUN_LLAMA = ("gpu-check-dry-run", LlamaConfig(d_model=64, ff_dim=176, n_layers=1, n_heads=2))
TIE_GAP = 1e-3  # fp32 GPU vs CPU: a differing code whose distances differ by more than this is a bug, not a tie


@dataclass(frozen=True)
class Sizes:
    """What each check runs at: ``GPU_SIZES`` for the real run, ``DRY_RUN_SIZES`` for the CPU rehearsal."""

    budgets_s: dict[str, float]  # per check, in CHECKS order; unused time carries over
    deadline_s: float  # the whole run: past it the process exits with what it measured (status 3)
    tokenizer: str
    tokenizer_batches: tuple[int, ...]
    tokenizer_paths: tuple[str, ...]
    tokenizer_repeats: int  # timed calls per batch, after one untimed warm-up (compilation, autotuning)
    cpu_agreement_images: int  # fp32 on the device vs fp32 on the CPU, on this many images
    pipeline_tokenizer: str
    pipeline_photos: int  # of the sample's 20 photos
    pipeline_videos: int  # of its 3 videos
    pipeline_batch: int  # the build's tokenizer batch
    pipeline_image_size: int  # the build's frame size (the pipeline tokenizer's resolution)
    trainer_configs: tuple[str, ...]
    target_config: str  # the config the trainer targets are read on
    trainer_batch: int
    trainer_seq_len: int
    trainer_warmup: int  # untimed steps per contender first (compilation); the first gives the loss check
    trainer_rounds: int  # alternating timed rounds (order reversed every other round)
    trainer_steps: int  # steps per contender per round
    loss_tol: float  # max |first-step loss - HF's| (bf16 autocast)
    loader_sentences: int  # of 16 images x 256 random tokens
    loader_seq_len: int
    loader_batch: int
    loader_rounds: int
    loader_round_s: float


GPU_SIZES = Sizes(
    budgets_s={"loader": 25, "tokenizer": 140, "pipeline": 65, "trainer": 170}, deadline_s=430,
    tokenizer="random:lvm", tokenizer_batches=(32, 128, 256),
    tokenizer_paths=("fp32", "bf16", "compiled-bf16", "tf32", "compiled-fp32"),
    tokenizer_repeats=2, cpu_agreement_images=8,
    pipeline_tokenizer="random:lvm", pipeline_photos=20, pipeline_videos=3, pipeline_batch=32, pipeline_image_size=256,
    trainer_configs=("vqlm_1b", "vqlm_300m"), target_config="vqlm_1b", trainer_batch=8, trainer_seq_len=4096,
    trainer_warmup=2, trainer_rounds=3, trainer_steps=2, loss_tol=1e-3,
    loader_sentences=600, loader_seq_len=4096, loader_batch=8, loader_rounds=3, loader_round_s=3.0)

DRY_RUN_SIZES = Sizes(
    # Generous: on a loaded 2-core machine the dry run's compilations and Beam's start-ups take minutes,
    # and a dry run must take every path (its budget stops are tested on their own).
    budgets_s={"loader": 300, "tokenizer": 300, "pipeline": 300, "trainer": 300}, deadline_s=1200,
    tokenizer=f"random:{DRY_RUN_VQGAN[0]}", tokenizer_batches=(2,), tokenizer_paths=("fp32", "tf32", "bf16", "compiled-bf16"),
    tokenizer_repeats=1, cpu_agreement_images=2,
    pipeline_tokenizer=f"random:{DRY_RUN_VQGAN[0]}", pipeline_photos=3, pipeline_videos=1, pipeline_batch=4,
    pipeline_image_size=32,
    trainer_configs=(DRY_RUN_LLAMA[0],), target_config=DRY_RUN_LLAMA[0], trainer_batch=2, trainer_seq_len=64,
    trainer_warmup=1, trainer_rounds=2, trainer_steps=1, loss_tol=1e-2,
    loader_sentences=24, loader_seq_len=256, loader_batch=2, loader_rounds=2, loader_round_s=0.3)


class Mismatch(Exception):
    """Codes, tokens or losses that must be equal are not; the message is the line the run ends with."""


# --- the report ------------------------------------------------------------------------------------

class Report:
    """The one JSON of a run, rewritten (atomically) after every measurement."""

    def __init__(self, path: str, header: dict):
        self.path = path
        self.data = {**header, "checks": {}, "failures": []}
        self.lock = threading.Lock()

    def check(self, name: str) -> dict:
        return self.data["checks"].setdefault(name, {"status": "running", "rows": [], "notes": []})

    def add(self, name: str, row: dict) -> None:
        self.check(name)["rows"].append(row)
        print(f"[{name}] {json.dumps(row)}", flush=True)
        self.write()

    def note(self, name: str, text: str) -> None:
        self.check(name)["notes"].append(text)
        print(f"[{name}] {text}", flush=True)
        self.write()

    def rows(self, name: str, **match) -> list[dict]:
        return [r for r in self.data["checks"].get(name, {}).get("rows", [])
                if all(r.get(k) == v for k, v in match.items())]

    def write(self) -> None:
        with self.lock:
            storage.atomic_write(self.path, (json.dumps(self.data, indent=2) + "\n").encode())


@dataclass
class Context:
    """What every check needs; ``deadline`` is when the running check's budget ends (monotonic)."""

    sizes: Sizes
    device: torch.device
    peak_tflops: float | None
    report: Report
    work: Path
    deadline: float = 0.0
    errors: list[Exception] = field(default_factory=list)  # of the running check

    @contextlib.contextmanager
    def attempt(self, check: str, unit: str = "") -> Iterator[None]:
        """Run one unit of a check (a path, a config): an exception is kept for the check's verdict, and
        the next unit still runs, so that one failure does not cost the other figures."""
        try:
            yield
        except Exception as e:
            self.errors.append(e)
            if not isinstance(e, Mismatch):
                traceback.print_exc()
                self.report.note(check, f"{unit or check} failed: {type(e).__name__}: {(str(e).splitlines() or [''])[0]}")

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def over_budget(self) -> bool:
        return self.time_left() < 0

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def timed(ctx: Context, repeats: int, fn: Callable, *args) -> tuple[float, list[float], object]:
    """(seconds of the first call, seconds of each of ``repeats`` more calls, the last output)."""
    times = []
    for _ in range(repeats + 1):
        ctx.sync()
        t0 = time.perf_counter()
        out = fn(*args)
        ctx.sync()
        times.append(time.perf_counter() - t0)
    return times[0], times[1:], out


# --- tokenizer ---------------------------------------------------------------------------------------

@contextlib.contextmanager
def precision(kind: str, device: torch.device) -> Iterator[None]:
    """fp32 as IEEE ("ieee") or TF32 ("tf32") in cuDNN convolutions and CUDA matmuls, or bf16 autocast
    (with IEEE fp32 for what autocast leaves in fp32, e.g. the code search)."""
    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    saved = conv.fp32_precision, matmul.fp32_precision
    conv.fp32_precision = matmul.fp32_precision = "tf32" if kind == "tf32" else "ieee"
    try:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=kind == "bf16"):
            yield
    finally:
        conv.fp32_precision, matmul.fp32_precision = saved


@torch.inference_mode()
def encode_codes(model, images: torch.Tensor, kind: str) -> torch.Tensor:
    """``VQGAN.encode`` with the precision chosen here rather than by the model: (B,3,R,R) -> (B, tokens)."""
    x = model.to_model_space(images).contiguous(memory_format=torch.channels_last)
    torch._dynamo.maybe_mark_dynamic(x, 0)  # compiled: one graph serves every batch size (eager: no effect)
    with precision(kind, images.device):
        z = model.quant_conv(model.encoder(x))
    flat = z.float().permute(0, 2, 3, 1).reshape(-1, z.shape[1])  # (B, D, h, w) -> (B*h*w, D)
    return model.quantize.nearest_codes(flat).reshape(z.shape[0], -1)


@torch.inference_mode()
def decode_pixels(model, codes: torch.Tensor, kind: str) -> torch.Tensor:
    """``VQGAN.decode_code`` likewise, up to the decoder's output (model space)."""
    side = model.config.latent_size
    with precision(kind, codes.device):
        quantized = model.post_quant_conv(model.quantize.lookup(codes, side, side).contiguous(
            memory_format=torch.channels_last))
        torch._dynamo.maybe_mark_dynamic(quantized, 0)
        return model.decoder(quantized)


def photo_batch(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """n distinct views of the sample's real photos (seeded random square crops, resized): [n,3,size,size]
    in [0, 1]. Distinct images, so that code agreement is not measured on a few repeated ones."""
    folder = Path(skimage.__file__).parent / "data"
    photos = [decode_image((folder / name).read_bytes(), max_pixels=10**8, name=name)
              for name in SKIMAGE_PHOTOS if (folder / name).is_file()]
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        side = int(min(h, w) * rng.uniform(0.5, 1.0))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        frames.append(cv2.resize(photo[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA))
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div(255)


def check_fp32_against_cpu(ctx: Context, model, images: torch.Tensor) -> None:
    """fp32 codes on the device must equal fp32 codes on the CPU but for numerical ties."""
    cpu_model = load_tokenizer(ctx.sizes.tokenizer, device="cpu")
    sample = images[:ctx.sizes.cpu_agreement_images]
    on_cpu = encode_codes(cpu_model, sample, "fp32")
    on_device = encode_codes(model, sample.to(ctx.device), "fp32").cpu()
    gaps = tie_gaps(Reference(cpu_model), sample, on_device, on_cpu)
    equal = int((on_device == on_cpu).sum())
    ctx.report.add("tokenizer", {"path": "fp32-vs-cpu", "batch": len(sample), "codes": on_cpu.numel(),
                                 "equal": equal, "agreement": equal / on_cpu.numel(),
                                 "max_tie_gap": max(gaps, default=0.0)})
    if max(gaps, default=0.0) > TIE_GAP:
        raise Mismatch(f"tokenizer: fp32 codes on {ctx.device} differ from the CPU's beyond numerical ties: "
                       f"{on_cpu.numel() - equal} of {on_cpu.numel()} differ, largest distance gap {max(gaps):.1e} "
                       f"> {TIE_GAP:g}")


def tokenizer_path(ctx: Context, path: str, model, images: torch.Tensor, fp32_codes: dict, flops: dict) -> None:
    """One path at every batch size: images/s of encode and decode, codes against fp32."""
    kind = TOKENIZER_PATHS[path][0]
    for batch in ctx.sizes.tokenizer_batches:
        if ctx.over_budget():
            ctx.report.note("tokenizer", f"budget spent: {path} stopped before batch {batch}")
            return
        x = images[:batch].to(ctx.device)
        repeats = ctx.sizes.tokenizer_repeats
        enc_first, enc_times, codes = timed(ctx, repeats, encode_codes, model, x, kind)
        if path == "fp32":  # it runs first; the other paths are compared with its codes
            fp32_codes[batch] = codes
        reference = fp32_codes.get(batch)
        dec_first, dec_times, _ = timed(ctx, repeats, decode_pixels, model, codes if reference is None else reference,
                                        kind)
        enc, dec = spread([batch / t for t in enc_times]), spread([batch / t for t in dec_times])
        row = {"path": path, "batch": batch, "encode_img_s": enc, "decode_img_s": dec,
               "encode_first_call_s": enc_first, "decode_first_call_s": dec_first,
               "agreement_vs_fp32": None if reference is None else float((codes == reference).float().mean())}
        if ctx.peak_tflops:
            row["encode_frac_peak"] = enc["median"] * flops["encode"] / (ctx.peak_tflops * 1e12)
            row["decode_frac_peak"] = dec["median"] * flops["decode"] / (ctx.peak_tflops * 1e12)
        ctx.report.add("tokenizer", row)


def tokenizer_check(ctx: Context) -> None:
    s = ctx.sizes
    name = s.tokenizer.split(":")[1]
    flops = flops_per_image(name)
    ctx.report.note("tokenizer", f"{s.tokenizer}: {flops['encode'] / 1e9:.1f} GFLOPs encode, "
                                 f"{flops['decode'] / 1e9:.1f} decode per image (FlopCounterMode)")
    images = photo_batch(max(s.tokenizer_batches), TOKENIZER_CONFIGS[name].resolution)
    eager = load_tokenizer(s.tokenizer, device=str(ctx.device))
    with ctx.attempt("tokenizer", "fp32 against the CPU"):  # the speed figures follow whatever it finds
        check_fp32_against_cpu(ctx, eager, images)
    # One compiled model serves both precisions: dynamo guards on the autocast state and compiles each.
    models = {False: eager, True: None}
    fp32_codes: dict[int, torch.Tensor] = {}
    for path in s.tokenizer_paths:
        if ctx.over_budget():
            ctx.report.note("tokenizer", f"budget spent: paths from {path} on not run")
            break
        compiled = TOKENIZER_PATHS[path][1]
        if models[compiled] is None:
            models[compiled] = load_tokenizer(s.tokenizer, device=str(ctx.device), compile=True)
        with ctx.attempt("tokenizer", path):
            tokenizer_path(ctx, path, models[compiled], images, fp32_codes, flops)


# --- pipeline ----------------------------------------------------------------------------------------

@contextlib.contextmanager
def timed_tokenize_calls() -> Iterator[list[tuple[int, float]]]:
    """(frames, seconds) of every RunInference call of the build's tokenize step in this process (the
    DirectRunner's in-memory mode runs the handler here; ``encode_batch`` returns codes on the CPU, so
    each call's time includes the device's work)."""
    calls: list[tuple[int, float]] = []
    original = VQGANModelHandler.run_inference

    def run_inference(self, batch, model, inference_args=None):
        t0 = time.perf_counter()
        out = original(self, batch, model, inference_args)
        calls.append((len(batch), time.perf_counter() - t0))
        return out

    VQGANModelHandler.run_inference = run_inference
    try:
        yield calls
    finally:
        VQGANModelHandler.run_inference = original


def sample_sources(ctx: Context) -> list[str]:
    """The bundled sample, cut to the sizes' smallest photos and videos: ``--source`` arguments of ``uvd build``."""
    sample = ctx.work / "sample"
    found = collect_sample(sample)
    keep = {"images": ctx.sizes.pipeline_photos, "videos": ctx.sizes.pipeline_videos}
    sources = []
    for kind, paths in found.items():
        for path in sorted(paths, key=lambda p: (p.stat().st_size, p.name))[keep[kind]:]:
            path.unlink()
        if keep[kind]:
            sources += ["--source", f"{kind}:{sample / kind}"]
    return sources


def uvd_build(ctx: Context, sources: list[str], out: Path, device: str) -> float:
    """``uvd build`` as the command line runs it (DirectRunner, one worker); its wall seconds."""
    config = ctx.work / "pipeline.toml"
    s = ctx.sizes
    config.write_text(f'[build]\ntokenizer = "{s.pipeline_tokenizer}"\nbatch_size = {s.pipeline_batch}\n'
                      f"image_size = {s.pipeline_image_size}\nsamples_per_shard = 8\nseed = 0\n")
    args = [*sources, "--out", str(out), "--config", str(config), "--device", device, "--no-progress", "--overwrite"]
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # the build summary goes with the logs, not with the rows
        build_command.main(args, prog_name="uvd build", standalone_mode=False)
    return time.perf_counter() - t0


def compare_builds(built: Path, reference: Path) -> dict:
    """Token by token, sentence by key: how much of ``built`` equals ``reference``."""
    ours = {s.key: s.tokens for s in iter_sentences(built)}
    theirs = {s.key: s.tokens for s in iter_sentences(reference)}
    tokens = sum(t.size for t in theirs.values())
    equal = sum(int((ours[k] == t).sum()) for k, t in theirs.items() if k in ours and ours[k].shape == t.shape)
    return {"sentences": len(theirs), "same_keys": set(ours) == set(theirs), "tokens": tokens, "equal": equal,
            "agreement": equal / max(tokens, 1)}


def require_same(same: dict, what: str) -> None:
    """Mismatch unless ``compare_builds`` found every sentence and every token equal."""
    if not same["same_keys"] or same["equal"] != same["tokens"]:
        raise Mismatch(f"pipeline: {what}: {same['equal']:,} of {same['tokens']:,} tokens equal "
                       f"({same['agreement']:.2%}), same sentence keys: {same['same_keys']}")


def pipeline_check(ctx: Context) -> None:
    sources = sample_sources(ctx)
    with timed_tokenize_calls() as calls:
        wall = uvd_build(ctx, sources, ctx.work / "build-device", ctx.device.type)
    if not calls:
        raise RuntimeError("the build's tokenize step never ran in this process (is the runner in-memory?)")
    frames = sum(n for n, _ in calls)
    steady = calls[1:] or calls  # the first call pays for cuDNN's algorithm search and allocator growth
    row = {"tokenizer": ctx.sizes.pipeline_tokenizer, "batch": ctx.sizes.pipeline_batch, "device": ctx.device.type,
           "images": frames, "build_wall_s": wall, "tokenize_calls": len(calls),
           "tokenize_s": sum(t for _, t in calls), "tokenize_img_s": frames / sum(t for _, t in calls),
           "tokenize_img_s_after_first": sum(n for n, _ in steady) / sum(t for _, t in steady)}
    ctx.report.add("pipeline", row)
    if ctx.device.type == "cpu":  # the dry run: the device build is a CPU fp32 build, the very one to compare with
        reference, cpu_wall = ctx.work / "build-device", wall
    elif ctx.over_budget():
        ctx.report.note("pipeline", "budget spent: the CPU fp32 reference build did not run")
        return
    else:
        reference, cpu_wall = ctx.work / "build-cpu", uvd_build(ctx, sources, ctx.work / "build-cpu", "cpu")
    same = compare_builds(ctx.work / "build-device", reference)
    ctx.report.add("pipeline", {"compared_with": "cpu fp32 build", "cpu_build_wall_s": cpu_wall, **same})
    require_same(same, f"the {ctx.device.type} build's tokens differ from the CPU fp32 build's")


# --- trainer -----------------------------------------------------------------------------------------

@dataclass
class Contender:
    """One model in the trainer race: its own weights (copied from the same start) and optimizer."""

    name: str
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    hf: bool  # LlamaForCausalLM: loss from its logits; else uvd's Llama computes it
    seconds: list[float] = field(default_factory=list)  # per timed round
    step_peak: int = 0  # bytes the device held above this contender's resting state, at most

    def step(self, rows: torch.Tensor) -> float:
        """One optimizer step as the trainer takes it: bf16 autocast forward, backward, clip, AdamW."""
        inputs, targets = rows[:, :-1], rows[:, 1:]
        with torch.autocast(rows.device.type, dtype=torch.bfloat16):
            if self.hf:
                logits = self.model(input_ids=inputs, use_cache=False).logits  # (B, T, V); no KV cache in training
                loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
            else:  # with the loader's mask, as `uvd train` calls it
                loss = self.model(inputs, targets, torch.ones_like(targets, dtype=torch.bool))[1]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.item()

    def state_bytes(self) -> int:
        """Weights and optimizer state: what this contender keeps on the device between steps."""
        tensors = [*self.model.parameters(), *(t for state in self.optimizer.state.values()
                                               for t in state.values() if torch.is_tensor(t))]
        return sum(t.numel() * t.element_size() for t in tensors)


def contenders(name: str, device: torch.device) -> list[Contender]:
    """uvd eager, HF sdpa and uvd compiled (``uvd train --compile``'s wrapping), from the same weights."""
    cfg = get_config(name)
    torch.manual_seed(0)
    with torch.device(device):  # initialised where they run: fast, and the copies never touch the host
        base = Llama(cfg)
        hf = hf_twin(base)
    compiled_cfg = TrainConfig(compile=True)
    compiled = Distributed(device=device).wrap(copy.deepcopy(base), compiled_cfg)
    return [Contender("uvd", base, make_optimizer(base, TrainConfig(), device), hf=False),
            Contender("hf", hf, make_optimizer(hf, TrainConfig(), device), hf=True),
            Contender("uvd-compiled", compiled, make_optimizer(compiled, compiled_cfg, device), hf=False)]


def run_steps(ctx: Context, player: Contender, batches: list[torch.Tensor]) -> tuple[float, list[float]]:
    """Seconds for ``batches`` (``.item()`` waits for each step, as the trainer's logging does) and the
    losses; tracks the contender's peak device memory above its resting state."""
    cuda = ctx.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        resting = torch.cuda.memory_allocated()
    t0 = time.perf_counter()
    losses = [player.step(rows) for rows in batches]
    seconds = time.perf_counter() - t0
    if cuda:
        player.step_peak = max(player.step_peak, torch.cuda.max_memory_allocated() - resting)
    return seconds, losses


def warm_up(ctx: Context, name: str, players: list[Contender], batches: list[torch.Tensor]):
    """Untimed first steps (compilation, allocator growth, optimizer state): the contenders that took
    them, their seconds and first losses. uvd and HF always run; uvd-compiled only with budget left."""
    ready, seconds, first_loss = [], {}, {}
    for player in players:
        if len(ready) >= 2 and ctx.over_budget():
            ctx.report.note("trainer", f"budget spent: {name} {player.name} not run")
            continue
        seconds[player.name], losses = run_steps(ctx, player, batches)
        first_loss[player.name] = losses[0]
        ready.append(player)
    return ready, seconds, first_loss


def race(ctx: Context, players: list[Contender], batches: list[torch.Tensor]) -> int:
    """Alternating timed rounds (order reversed every other round); stops early when the budget is spent,
    after at least one round. Returns the rounds run."""
    s = ctx.sizes
    for r in range(s.trainer_rounds):
        if r and ctx.over_budget():
            return r
        round_batches = batches[r * s.trainer_steps:(r + 1) * s.trainer_steps]
        for player in players if r % 2 == 0 else players[::-1]:
            player.seconds.append(run_steps(ctx, player, round_batches)[0])
    return s.trainer_rounds


def trainer_config(ctx: Context, name: str) -> None:
    s = ctx.sizes
    torch._dynamo.reset()  # each config compiles afresh, as in its own `uvd train` process
    players = contenders(name, ctx.device)
    gen = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, NUM_CODES, (s.trainer_batch, s.trainer_seq_len + 1), generator=gen).to(ctx.device)
               for _ in range(s.trainer_warmup + s.trainer_rounds * s.trainer_steps)]
    players, warmup, first_loss = warm_up(ctx, name, players, batches[:s.trainer_warmup])
    rounds = race(ctx, players, batches[s.trainer_warmup:])
    cfg = get_config(name)
    tokens = s.trainer_batch * s.trainer_seq_len * s.trainer_steps
    flops = cfg.flops_per_token(s.trainer_seq_len)
    hf = players[1]
    hf_rate = statistics.median(tokens / t for t in hf.seconds)
    for player in players:
        rate = spread([tokens / t for t in player.seconds])
        row = {"config": name, "params": cfg.num_params(), "batch": s.trainer_batch, "seq_len": s.trainer_seq_len,
               "contender": player.name, "rounds": rounds, "steps_per_round": s.trainer_steps,
               "tokens_s": rate, "tflops": rate["median"] * flops / 1e12, "vs_hf": rate["median"] / hf_rate,
               "vs_hf_per_round": [h / t for h, t in zip(hf.seconds, player.seconds)],
               "first_loss": first_loss[player.name], "warmup_s": warmup[player.name]}
        if ctx.peak_tflops:
            row["mfu"] = row["tflops"] / ctx.peak_tflops
        if ctx.device.type == "cuda":
            row["peak_gib"] = (player.state_bytes() + player.step_peak) / GIB
        ctx.report.add("trainer", row)
    check_losses(name, first_loss, s.loss_tol)


def check_losses(name: str, first_loss: dict[str, float], tol: float) -> None:
    """Same weights, same first batch: every contender's first loss must equal HF's within ``tol``."""
    for player, loss in first_loss.items():
        if abs(loss - first_loss["hf"]) > tol:
            raise Mismatch(f"trainer: {name} first-step loss of {player} {loss:.6f} differs from HF's "
                           f"{first_loss['hf']:.6f} by more than {tol:g}")


def trainer_check(ctx: Context) -> None:
    """Each config in turn; the next starts only with at least half the time the previous one took left
    (the configs come largest first), so that the run's deadline does not cut one short."""
    previous = 0.0
    for name in ctx.sizes.trainer_configs:
        if ctx.time_left() < previous / 2 or ctx.over_budget():
            ctx.report.note("trainer", f"budget spent: {name} not run ({ctx.time_left():.0f} s left, the "
                                       f"previous config took {previous:.0f} s)")
            return
        t0 = time.monotonic()
        with ctx.attempt("trainer", name):
            trainer_config(ctx, name)
        previous = time.monotonic() - t0
        if ctx.device.type == "cuda":
            torch.cuda.empty_cache()


# --- loader ------------------------------------------------------------------------------------------

def random_sentence(index: int, rng: np.random.Generator) -> VisualSentence:
    """16 images x 256 uniformly random codes: about as incompressible as real tokens (docs/benchmarks.md:
    1.60 bytes per token for real ones, 1.85 for uniform), so gunzip costs what it does on a real build."""
    meta = SentenceMeta(source="random", group="unpaired_images", layout="single_image",
                        item_keys=(f"item/{index}",), image_items=(0,) * 16, frame_indices=(0,) * 16,
                        views=("image",) * 16, seed=index)
    tokens = rng.integers(0, NUM_CODES, (16, 256), dtype=np.uint16)
    return VisualSentence(key=f"random_{index:06d}", tokens=tokens, meta=meta)


def write_corpus(out: Path, sentences: int, per_shard: int = 40, seed: int = 0) -> None:
    """A build directory of random sentences: gzip shards (written in parallel) and their manifest."""
    rng = np.random.default_rng(seed)
    chunks = [[random_sentence(i, rng) for i in range(start, min(start + per_shard, sentences))]
              for start in range(0, sentences, per_shard)]
    with ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:  # gzip releases the GIL
        infos = list(pool.map(lambda job: write_shard(str(out), job[0], job[1]), enumerate(chunks)))
    storage.atomic_write(str(out / MANIFEST_NAME), parquet_bytes(manifest_table(infos, {"tokenizer": {}})))


def memmap_batches(path: Path, seq_len: int, batch: int) -> Iterator[torch.Tensor]:
    """nanoGPT's ``get_batch``: random windows of one flat uint16 file, the memmap opened afresh each batch."""
    rng = np.random.default_rng(0)
    while True:
        data = np.memmap(path, dtype=np.uint16, mode="r")
        starts = rng.integers(0, len(data) - seq_len - 1, batch)
        x = torch.from_numpy(np.stack([data[i:i + seq_len].astype(np.int64) for i in starts]))
        y = torch.from_numpy(np.stack([data[i + 1:i + 1 + seq_len].astype(np.int64) for i in starts]))
        yield torch.stack([x, y])


def check_rows(rows: Iterator[dict], flat: np.ndarray, seq_len: int, batch: int, count: int) -> None:
    """The loader's first rows must be the flat token stream's windows: row r = flat[r*T : r*T + T + 1]."""
    for b in range(count):
        got = next(rows)["input_ids"].numpy()
        for i, row in enumerate(got):
            r = b * batch + i
            if not np.array_equal(row, flat[r * seq_len:r * seq_len + seq_len]):
                raise Mismatch(f"loader: row {r} differs from the memmap's tokens {r * seq_len}..{(r + 1) * seq_len}")


def rate(batches: Iterator, tokens_per_batch: int, seconds: float) -> tuple[float, float]:
    """Tokens per CPU second of this thread (per core: a shared machine's other work does not count) and
    per wall second, over ``seconds`` of pulling batches from ``batches``."""
    t0, cpu0, done = time.perf_counter(), time.thread_time(), 0
    while time.perf_counter() - t0 < seconds:
        next(batches)
        done += tokens_per_batch
    return done / (time.thread_time() - cpu0), done / (time.perf_counter() - t0)


def alternate(ctx: Context, readers: dict[str, Iterator], tokens_per_batch: int) -> dict[str, list[tuple]]:
    """(per core, per wall second) of each reader in alternating rounds, order reversed every other round,
    in this one thread with torch on one thread; stops early (after a round) when the budget is spent."""
    rates: dict[str, list[tuple]] = {name: [] for name in readers}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for r in range(ctx.sizes.loader_rounds):
            if r and ctx.over_budget():
                ctx.report.note("loader", f"budget spent after {r} rounds")
                break
            order = list(readers.items())
            for name, batches in order if r % 2 == 0 else order[::-1]:
                rates[name].append(rate(batches, tokens_per_batch, ctx.sizes.loader_round_s))
    finally:
        torch.set_num_threads(threads)
    return rates


def loader_check(ctx: Context) -> None:
    s = ctx.sizes
    corpus = ctx.work / "corpus"
    write_corpus(corpus, s.loader_sentences)
    stream = Stream(StreamConfig("corpus", (str(corpus),)), seq_len=s.loader_seq_len, seed=0)
    flat = np.concatenate([sentence.tokens.reshape(-1) for _, _, sentence in stream.sentences(0)])
    flat.tofile(ctx.work / "corpus.bin")  # the same tokens, in the loader's epoch-0 order
    check_rows(iter(MixtureRows([stream], Partition(s.loader_batch))), flat, s.loader_seq_len, s.loader_batch,
               count=min(4, (len(flat) - 1) // (s.loader_seq_len * s.loader_batch)))
    readers = {"uvd loader": iter(MixtureRows([stream], Partition(s.loader_batch))),
               "memmap (nanoGPT)": memmap_batches(ctx.work / "corpus.bin", s.loader_seq_len, s.loader_batch)}
    for name, values in alternate(ctx, readers, s.loader_batch * s.loader_seq_len).items():
        ctx.report.add("loader", {"reader": name, "seq_len": s.loader_seq_len, "batch": s.loader_batch,
                                  "corpus_tokens": int(flat.size), "tokens_s_per_core": spread([v[0] for v in values]),
                                  "tokens_s_wall": spread([v[1] for v in values])})


# --- targets and markdown ----------------------------------------------------------------------------

def best(rows: list[dict], key: Callable[[dict], float | None]) -> tuple[float | None, dict | None]:
    scored = [(key(r), r) for r in rows if key(r) is not None]
    return max(scored, key=lambda pair: pair[0], default=(None, None))


def targets(report: Report, target_config: str) -> list[dict]:
    """The goals of docs/benchmarks.md's GPU section, each with what this run measured (None: not measured)."""
    enc, enc_row = best(report.rows("tokenizer"), lambda r: r.get("encode_frac_peak"))
    bf16 = [r["agreement_vs_fp32"] for r in report.rows("tokenizer", path="bf16") if r["agreement_vs_fp32"] is not None]
    uvd_rows = [r for r in report.rows("trainer", config=target_config) if r["contender"] != "hf"]
    mfu, mfu_row = best(uvd_rows, lambda r: r.get("mfu"))
    speed, speed_row = best(uvd_rows, lambda r: r["vs_hf"])
    consumed, _ = best([r for r in report.rows("trainer") if r["contender"] != "hf"], lambda r: r["tokens_s"]["median"])
    loader = report.rows("loader", reader="uvd loader")
    feed = loader[0]["tokens_s_per_core"]["median"] / consumed if loader and consumed else None
    out = [("tokenizer encode, share of dense bf16 peak", 0.55, enc,
            enc_row and f"{enc_row['path']} at batch {enc_row['batch']}"),
           ("bf16 codes equal to fp32 (worst batch)", 0.99, min(bf16) if bf16 else None, "bf16 autocast, eager"),
           (f"trainer MFU, {target_config} at {report.data['sizes']['trainer_seq_len']} context", 0.50, mfu,
            mfu_row and mfu_row["contender"]),
           (f"trainer tokens/s vs HF Llama (sdpa), {target_config}", 1.2, speed, speed_row and speed_row["contender"]),
           ("loader tokens/s per core vs trainer tokens/s per GPU", 20.0, feed,
            "vs the fastest trainer contender measured")]
    return [{"target": t, "goal": g, "measured": m, "met": None if m is None else m >= g, "on": on}
            for t, g, m, on in out]


def fmt(value: float | None, spec: str) -> str:
    return "not measured" if value is None else format(value, spec)


def span(stats: dict, spec: str = ",.0f") -> str:
    """A ``spread`` as median (min-max)."""
    return f"{stats['median']:{spec}} ({stats['min']:{spec}}-{stats['max']:{spec}})"


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows)]


def markdown_tokenizer(report: Report) -> list[str]:
    rows = [[r["path"], str(r["batch"]), span(r["encode_img_s"]), fmt(r.get("encode_frac_peak"), ".1%"),
             span(r["decode_img_s"]), fmt(r.get("decode_frac_peak"), ".1%"), fmt(r["agreement_vs_fp32"], ".2%")]
            for r in report.rows("tokenizer") if "encode_img_s" in r]
    lines = table(["path", "batch", "encode img/s median (min-max)", "encode % of bf16 peak",
                   "decode img/s median (min-max)", "decode % of peak", "codes = fp32"], rows)
    for r in report.rows("tokenizer", path="fp32-vs-cpu"):
        lines.append(f"\nfp32 on the device vs fp32 on the CPU: {r['equal']} of {r['codes']} codes equal "
                     f"({r['agreement']:.2%}); largest distance gap of a differing code {r['max_tie_gap']:.1e}")
    return lines


def markdown_pipeline(report: Report) -> list[str]:
    same = [r for r in report.rows("pipeline") if "compared_with" in r]
    equal = f"{same[0]['equal']:,} of {same[0]['tokens']:,} ({same[0]['agreement']:.2%})" if same else "not run"
    rows = [[r["tokenizer"], str(r["batch"]), str(r["images"]), f"{r['build_wall_s']:.1f}",
             f"{r['tokenize_img_s']:.1f} ({r['tokenize_img_s_after_first']:.1f})", equal]
            for r in report.rows("pipeline", device=report.data["device_type"])]
    return table(["tokenizer", "batch", "images", "build wall s", "tokenize step img/s (after the first call)",
                  "tokens = CPU fp32 build"], rows)


def markdown_trainer(report: Report) -> list[str]:
    rows = [[r["config"], f"{r['batch']} x {r['seq_len']}", r["contender"], span(r["tokens_s"]),
             fmt(r.get("mfu"), ".1%"), f"{r['vs_hf']:.2f}x", fmt(r.get("peak_gib"), ".1f"), f"{r['first_loss']:.4f}"]
            for r in report.rows("trainer")]
    return table(["config", "batch x seq", "contender", "tokens/s median (min-max)", "MFU", "vs HF", "peak GiB",
                  "first-step loss"], rows)


def markdown_loader(report: Report) -> list[str]:
    rows = [[r["reader"], f"{r['batch']} x {r['seq_len']}", span(r["tokens_s_per_core"]),
             f"{r['tokens_s_wall']['median']:,.0f}"] for r in report.rows("loader")]
    return table(["reader", "batch x seq", "tokens per CPU second, median (min-max)", "tokens per wall second"], rows)


def markdown(report: Report) -> str:
    d = report.data
    peak = f"{d['peak_bf16_tflops']:g} TFLOP/s dense bf16" if d["peak_bf16_tflops"] else "no known peak"
    out = [f"{d['date']}, {d['device_name']} ({peak}), torch {d['torch']}, {d['machine']}"
           + (" — DRY RUN (tiny sizes on CPU)" if d["dry_run"] else "")]
    for name, rows_of in (("Tokenizer", markdown_tokenizer), ("Pipeline", markdown_pipeline),
                          ("Trainer", markdown_trainer), ("Loader", markdown_loader)):
        check = d["checks"].get(name.lower(), {"status": "not run", "notes": []})
        out += ["", f"{name} ({check['status']}{', ' + check['seconds_text'] if 'seconds_text' in check else ''})",
                "", *rows_of(report), *[f"\n- {n}" for n in check["notes"]]]
    rows = []
    for t in targets(report, d["sizes"]["target_config"]):
        spec = ".1%" if t["goal"] < 1 else ".2f"
        met = "not measured" if t["met"] is None else ("yes" if t["met"] else "**no**")
        on = f" ({t['on']})" if t["on"] and t["measured"] is not None else ""
        rows.append([t["target"], f"≥ {format(t['goal'], spec)}", fmt(t["measured"], spec) + on, met])
    return "\n".join([*out, "", *table(["target", "goal", "measured", "met"], rows)])


# --- the run -----------------------------------------------------------------------------------------

CHECK_FUNCTIONS: dict[str, Callable[[Context], None]] = {
    "loader": loader_check, "tokenizer": tokenizer_check, "pipeline": pipeline_check, "trainer": trainer_check}


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (torch.compile's C++ compiler runs)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_check(ctx: Context, name: str, ends_at: float) -> None:
    """Run one check until ``ends_at`` (monotonic); its failures are recorded and the next check still runs."""
    ctx.deadline, ctx.errors = ends_at, []
    check = ctx.report.check(name)
    t0, cpu0 = time.monotonic(), cpu_seconds()
    with ctx.attempt(name):
        CHECK_FUNCTIONS[name](ctx)
    check["status"] = "done"
    for error in ctx.errors:
        mismatch = isinstance(error, Mismatch)
        check["status"] = "mismatch" if mismatch and check["status"] != "failed" else "failed"
        first_line = (str(error).splitlines() or [""])[0]
        ctx.report.data["failures"].append(first_line if mismatch else f"{name}: {type(error).__name__}: {first_line}")
    if ctx.device.type == "cuda":  # what a check left (models, compiled graphs) must not crowd the next one
        torch._dynamo.reset()
        gc.collect()
        torch.cuda.empty_cache()
    check["seconds"], check["cpu_seconds"] = time.monotonic() - t0, cpu_seconds() - cpu0
    check["seconds_text"] = f"{check['seconds']:.0f} s of the {ends_at - t0:.0f} s left to it"
    ctx.report.write()


@contextlib.contextmanager
def dry_run_compilation() -> Iterator[None]:
    """In the dry run, every ``torch.compile`` (``load_tokenizer(compile=True)``, the trainer's wrapping;
    ``nn.Module.compile`` calls it too) uses the ``aot_eager`` backend: dynamo captures the same graphs
    and AOTAutograd differentiates them, so uvd's side of the compiled paths is exercised (graph
    capture, guards, backward), but inductor does not generate kernels. Its CPU kernels are C++ that a
    GPU run never uses (there it writes Triton), and compiling them cold cost the dry run 50 s of CPU."""
    original = torch.compile
    torch.compile = functools.partial(original, backend="aot_eager")
    try:
        yield
    finally:
        torch.compile = original


def start_deadline(report: Report, seconds: float, temporary: Path | None = None) -> threading.Timer:
    """Past the whole run's deadline, exit at once with what was measured (already in the JSON),
    removing the run's ``temporary`` work folder first (os._exit skips every ``finally``)."""
    def stop() -> None:
        report.data["deadline_passed"] = True
        report.write()
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        print(f"gpu_check: stopped at the {seconds:.0f} s deadline; what was measured is in {report.path}",
              file=sys.stderr, flush=True)
        os._exit(3)

    timer = threading.Timer(seconds, stop)
    timer.daemon = True
    timer.start()
    return timer


def header(args, sizes: Sizes, device: torch.device, peak: float | None) -> dict:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    return {"date": dt.datetime.now().isoformat(timespec="seconds"), "dry_run": args.dry_run,
            "device_type": device.type, "device_name": name, "peak_bf16_tflops": peak,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "python": platform.python_version(),
            "torch": torch.__version__, "sizes": dataclasses.asdict(sizes)}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU: every code path, in about a minute")
    ap.add_argument("--json", dest="json_path", default="out/gpu_check.json", help="the report (rewritten as it grows)")
    ap.add_argument("--checks", default=",".join(CHECKS), help=f"a subset of {','.join(CHECKS)}, run in this order")
    ap.add_argument("--device", default=None, help="default: cuda (cpu with --dry-run)")
    ap.add_argument("--markdown", metavar="JSON", help="only print the markdown rows of a saved report")
    ap.add_argument("--work-dir", help="keep the shards and builds here (default: a temporary folder)")
    ap.add_argument("--deadline", type=float, help="seconds for the whole run (default: the sizes' own)")
    args = ap.parse_args()
    args.checks = [c for c in args.checks.split(",") if c]
    if not set(args.checks) <= set(CHECKS):
        ap.error(f"--checks must name some of {', '.join(CHECKS)}")
    return args


def main() -> int:
    started = time.monotonic()
    args = parse_args()
    if args.markdown:
        report = Report(args.markdown, {})
        report.data = json.loads(Path(args.markdown).read_text())
        print(markdown(report))
        return 0
    sizes = DRY_RUN_SIZES if args.dry_run else GPU_SIZES
    if args.dry_run:  # known to load_tokenizer and get_config in this process only (the build runs here too)
        TOKENIZER_CONFIGS.setdefault(*DRY_RUN_VQGAN)
        LLAMA_CONFIGS.setdefault(*DRY_RUN_LLAMA)
    device = torch.device(args.device or ("cpu" if args.dry_run else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; use --dry-run on a CPU", file=sys.stderr)
        return 2
    peak = bf16_peak_tflops(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
    logging.getLogger("apache_beam").setLevel(logging.ERROR)  # as `uvd` does: Beam is chatty about GCP clients
    report = Report(args.json_path, header(args, sizes, device, peak))
    report.data["deadline_s"] = args.deadline or sizes.deadline_s
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="uvd-gpu-check-"))
    timer = start_deadline(report, report.data["deadline_s"] - (time.monotonic() - started),
                           None if args.work_dir else work)
    ctx = Context(sizes, device, peak, report, work)
    try:
        ends_at = started
        with dry_run_compilation() if args.dry_run else contextlib.nullcontext():
            for name in args.checks:
                ends_at += sizes.budgets_s[name]
                run_check(ctx, name, ends_at)
    finally:
        timer.cancel()
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    report.data["wall_s"], report.data["cpu_s"] = time.monotonic() - started, cpu_seconds()
    return finish(report)


def finish(report: Report) -> int:
    """Write the report, print its markdown; a failed run ends with one line on stderr and status 1."""
    report.write()
    print("\n" + markdown(report), flush=True)
    if report.data["failures"]:
        print("gpu_check: FAILED: " + "; ".join(report.data["failures"]), file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
