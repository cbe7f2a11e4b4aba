"""The training loop, readable top to bottom: data -> model -> AdamW steps -> checkpoints.

Defaults follow the LVM release's training command (README of ytongbai/LVM): AdamW (0.9, 0.95),
peak lr 1.5e-4 decaying to 3e-5 on a cosine after a linear warmup, weight decay 0.1, gradient
clip 1.0, 4096-token rows, bf16 on accelerators. One difference: EasyLM decays every parameter;
we decay only 2-D weights (matmuls and embeddings), the usual nanoGPT/LLaMA practice.

Several GPUs: launch with torchrun (``torchrun --nproc-per-node 8 $(which uvd) train ...``) and
pick ``--distributed ddp`` or ``fsdp``. The loader (loader.py) gives every rank its part of one
global row order, so the data seen does not depend on the number of ranks or workers, and a run
resumes exactly (bitwise on CPU) after ``kill -9``, with any world size.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.distributed as td
import torch.nn.functional as F
from torch.distributed.fsdp import fully_shard
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from uvd.format.tables import read_manifest
from uvd.model import checkpoint
from uvd.model.llama import Llama, LlamaConfig, get_config
from uvd.model.loader import LoaderState, MixtureRows, Partition, Stream, streams_from

METRICS = "metrics.jsonl"


@dataclass
class TrainConfig:
    data_dirs: list[str] = field(default_factory=list)  # build output dirs (with manifest.parquet)
    mixture: dict[str, float] = field(default_factory=dict)  # stream -> weight; {} = by tokens
    mix_by: Literal["dir", "source"] = "dir"  # what a stream is
    model: str = "debug"  # a name in llama.CONFIGS
    seq_len: int = 4096  # tokens per row; LVM: 4096 = 16 images x 256
    packing: Literal["stream", "rows"] = "stream"  # see loader.Stream
    batch_size: int = 8  # rows per micro-batch, per rank
    grad_accum: int = 1  # micro-batches per optimizer step
    steps: int = 1000
    lr: float = 1.5e-4  # peak learning rate
    end_lr: float = 3e-5  # reached at the end of the cosine
    warmup_steps: int = 100  # linear warmup from ~0 to lr
    lr_decay_steps: int | None = None  # step where the cosine reaches end_lr; None: steps
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0  # max global grad norm
    seed: int = 0  # model init and data order
    val_fraction: float = 0.0  # sentences held out (by key hash) for validation loss
    eval_every: int = 0  # steps between validations; 0 = at the end only (if val_fraction > 0)
    num_workers: int = 0  # DataLoader workers per rank
    out_dir: str = "checkpoints"
    log_every: int = 10
    checkpoint_every: int = 0  # 0 = at the end only
    keep_checkpoints: int = 2
    resume: bool = False  # continue from out_dir's latest checkpoint
    init_from: str | None = None  # start from these weights (a checkpoint), with a fresh optimizer
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compile: bool = False  # torch.compile the model
    distributed: Literal["none", "ddp", "fsdp"] = "none"
    allow_tokenizer_mismatch: bool = False

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        self.data_dirs = [str(d) for d in self.data_dirs]
        if min(self.batch_size, self.grad_accum, self.steps, self.seq_len) < 1:
            raise ValueError("batch_size, grad_accum, steps and seq_len must be >= 1")


@dataclass
class TrainResult:
    losses: list[float]  # one per step run in this call
    final_step: int
    checkpoint_path: Path
    model: Llama  # the trained model (unwrapped), in eval mode
    validation: dict | None = None


def train(cfg: TrainConfig) -> TrainResult:
    dist = Distributed.setup(cfg)
    device = dist.device
    torch.manual_seed(cfg.seed)
    model_config = get_config(cfg.model)
    if cfg.seq_len > model_config.max_seq_len:
        raise ValueError(f"seq_len {cfg.seq_len} exceeds {cfg.model}'s max_seq_len {model_config.max_seq_len}")
    tokenizer = data_tokenizer(cfg.data_dirs)
    net = Llama(model_config).to(device)
    model = dist.wrap(net, cfg)
    optimizer = make_optimizer(model, cfg, device)
    resumed, step, start, resume_row = _restore(cfg, model, optimizer, model_config, tokenizer)
    if dist.is_writer:
        truncate_metrics(Path(cfg.out_dir) / METRICS, step)

    streams = [Stream(c, seq_len=cfg.seq_len, packing=cfg.packing, seed=cfg.seed, val_fraction=cfg.val_fraction)
               for c in streams_from(cfg.data_dirs, cfg.mixture or None, by=cfg.mix_by)]
    partition = Partition(cfg.batch_size, dist.rank, dist.world_size, cfg.grad_accum)
    batches = micro_batches(streams, partition, start, resume_row, cfg.num_workers, device)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext())
    if dist.is_writer:
        print(f"model {cfg.model}: {net.num_params():,} parameters on {device} x {dist.world_size}; "
              f"streams {', '.join(f'{s.config.name} (w {s.config.weight:g})' for s in streams)}"
              + (f"; resumed at step {step}" if resumed else ""), flush=True)

    model.train()
    losses: list[float] = []
    meter = _ThroughputMeter(step, partition.rows_per_step * cfg.seq_len, model_config.flops_per_token(cfg.seq_len),
                             log_every=cfg.log_every, steps=cfg.steps)
    path = resumed  # the latest checkpoint, if a resumed run has no step left to do
    while step < cfg.steps:
        lr = learning_rate(step, cfg)
        loss, grad_norm, loader_state = _train_step(model, optimizer, batches, lr, cfg, dist, autocast)
        step += 1
        losses.append(loss)
        if dist.is_writer:
            append_metrics(Path(cfg.out_dir) / METRICS, meter.record(step, loss, lr, grad_norm))
        if cfg.val_fraction > 0 and cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps:
            log_validation(model, cfg, step, device, dist)
        if (cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or step == cfg.steps:
            trainer_state = {"model": dataclasses.asdict(model_config), "train": dataclasses.asdict(cfg),
                             "tokenizer": tokenizer, "world_size": dist.world_size,
                             "loader": {"state": json.loads(loader_state), "resume_row":
                                        LoaderState.from_json(json.loads(loader_state)).row
                                        + partition.rows_per_step}}
            path = checkpoint.save(cfg.out_dir, step, model, optimizer, trainer_state, is_writer=dist.is_writer,
                                   keep=cfg.keep_checkpoints)

    validation = log_validation(model, cfg, step, device, dist) if cfg.val_fraction > 0 else None
    if dist.is_writer:
        print(f"saved {path}", flush=True)
    dist.close()
    net.eval()
    return TrainResult(losses=losses, final_step=step, checkpoint_path=path, model=net, validation=validation)


def _restore(cfg: TrainConfig, model, optimizer, model_config, tokenizer):
    """(latest checkpoint or None, step, loader state, resume row): a resumed run takes weights,
    optimizer and data position from its latest checkpoint; ``init_from`` takes only weights."""
    resumed = checkpoint.latest(cfg.out_dir) if cfg.resume else None
    if resumed is not None:
        ckpt = checkpoint.read(resumed)
        check_compatible(ckpt, cfg, model_config, tokenizer)
        checkpoint.restore(ckpt, model, optimizer)
        loader = ckpt.trainer["loader"]
        return resumed, ckpt.step, LoaderState.from_json(loader["state"]), loader["resume_row"]
    if cfg.init_from:
        init = checkpoint.read(cfg.init_from)
        if init.model_config != model_config:
            raise ValueError(f"{cfg.init_from} holds a {init.model_config}, not {cfg.model}")
        checkpoint.restore(init, model, None)
    return None, 0, None, None


def _train_step(model, optimizer, batches, lr: float, cfg: TrainConfig, dist, autocast) -> tuple[float, float, str]:
    """One optimizer step over ``grad_accum`` micro-batches: (mean loss over ranks, grad norm, the
    loader state at the start of the step)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    step_loss = torch.zeros((), device=dist.device)
    loader_state = None
    for micro in range(cfg.grad_accum):
        batch = next(batches)
        loader_state = batch["state"]  # the loader at the start of this step
        sync = dist.sync_gradients(model) if micro == cfg.grad_accum - 1 else dist.no_sync(model)
        with sync, autocast:
            _, loss = model(batch["input_ids"], batch["targets"], batch["loss_mask"])
        (loss / cfg.grad_accum).backward()
        step_loss += loss.detach() / cfg.grad_accum
    grad_norm = _norm(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip))
    optimizer.step()
    return dist.mean(step_loss).item(), grad_norm, loader_state


class _ThroughputMeter:
    """The metrics record of each step; every ``log_every`` steps (and the last) also tokens/s and
    model TFLOP/s since the previous log, printed."""

    def __init__(self, step: int, tokens_per_step: int, flops_per_token: float, *, log_every: int, steps: int):
        self.tokens_per_step, self.flops_per_token = tokens_per_step, flops_per_token
        self.log_every, self.steps = log_every, steps
        self.last_time, self.last_step = time.perf_counter(), step

    def record(self, step: int, loss: float, lr: float, grad_norm: float) -> dict:
        if step % self.log_every and step != self.steps:
            return {"step": step, "loss": loss, "lr": lr}
        now = time.perf_counter()
        tokens_per_s = (step - self.last_step) * self.tokens_per_step / max(now - self.last_time, 1e-9)
        print(f"step {step:>6}/{self.steps} | loss {loss:.4f} | lr {lr:.3e} | grad_norm "
              f"{grad_norm:.3f} | {tokens_per_s:,.0f} tok/s", flush=True)
        self.last_time, self.last_step = now, step
        return {"step": step, "loss": loss, "lr": lr, "grad_norm": grad_norm, "tokens_per_s": tokens_per_s,
                "model_tflops": tokens_per_s * self.flops_per_token / 1e12}


def _norm(value) -> float:
    """A gradient norm as a float (FSDP returns a DTensor)."""
    return float(value.full_tensor() if hasattr(value, "full_tensor") else value)


# --- pieces ------------------------------------------------------------------------------------

def micro_batches(streams, partition, start, resume_row, num_workers, device) -> Iterator[dict]:
    """Micro-batches of this rank, on ``device``, forever (see loader.MixtureRows)."""
    rows = MixtureRows(streams, partition, start=start, resume_row=resume_row)
    loader = DataLoader(rows, batch_size=None, num_workers=num_workers, pin_memory=device.type == "cuda",
                        persistent_workers=num_workers > 0)
    for batch in loader:
        yield {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v) for k, v in batch.items()}


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on 2-D weights only (not on norm gains); the fused kernel (one pass over
    each parameter, on CPU as on CUDA) is what HF's Trainer uses by default too (adamw_torch_fused)."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=device.type in ("cpu", "cuda"))


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to ``lr`` over ``warmup_steps``, then cosine to ``end_lr`` at
    ``lr_decay_steps`` (default: the last step), then flat. ``step`` counts from 0."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    decay_steps = cfg.lr_decay_steps or cfg.steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, decay_steps - cfg.warmup_steps))
    return cfg.end_lr + 0.5 * (cfg.lr - cfg.end_lr) * (1.0 + math.cos(math.pi * progress))


def data_tokenizer(dirs: list[str]) -> dict:
    """The tokenizer the build directories were made with; they must agree."""
    if not dirs:
        raise ValueError("no data: give at least one build output directory")
    found = {d: read_manifest(d).tokenizer for d in dirs}
    shas = {t.get("sha256") for t in found.values()}
    if len(shas) > 1:
        raise ValueError("the build directories were tokenized by different tokenizers: "
                         + "; ".join(f"{d}: {t.get('spec')} ({str(t.get('sha256'))[:12]})" for d, t in found.items()))
    return next(iter(found.values()))


def check_compatible(ckpt: checkpoint.Checkpoint, cfg: TrainConfig, model_config: LlamaConfig, tokenizer: dict):
    """A resumed run must be the same model on data of the same tokenizer (unless allowed)."""
    if ckpt.model_config != model_config:
        raise ValueError(f"{ckpt.path}: trained a different model ({ckpt.model_config})")
    before = ckpt.trainer.get("tokenizer", {}).get("sha256")
    if before != tokenizer.get("sha256") and not cfg.allow_tokenizer_mismatch:
        raise ValueError(f"{ckpt.path} was trained on tokens of tokenizer {str(before)[:12]}, these shards come "
                         f"from {str(tokenizer.get('sha256'))[:12]}; pass --allow-tokenizer-mismatch to go on anyway")


def truncate_metrics(path: Path, step: int) -> None:
    """Drop logged steps after ``step`` (a resumed run logs them again)."""
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines() if line and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(f"{line}\n" for line in keep))


def append_metrics(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


@torch.no_grad()
def validation_loss(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> dict:
    """Mean next-token loss over the held-out sentences (one pass over each stream's validation
    split), and the entropy of those targets' own unigram distribution: a model that uses no
    context cannot do better than that."""
    totals = {"loss_sum": 0.0, "tokens": 0}
    counts = torch.zeros(model_vocab(model), dtype=torch.float64)
    was_training = model.training
    model.eval()
    for config in streams_from(cfg.data_dirs, cfg.mixture or None, by=cfg.mix_by):
        stream = Stream(config, seq_len=cfg.seq_len, packing="rows", seed=cfg.seed, split="val",
                        val_fraction=cfg.val_fraction)
        rows = []
        for row, after in stream.rows():
            if after.epoch > 0 and not rows:
                break
            rows.append(row)
            if after.epoch > 0 or len(rows) == cfg.batch_size:
                _accumulate(model, rows, totals, counts, device)
                rows = []
            if after.epoch > 0:
                break
    model.train(was_training)
    probs = counts[counts > 0] / counts.sum()
    entropy = float(-(probs * probs.log()).sum())
    return {"val_loss": totals["loss_sum"] / max(totals["tokens"], 1), "val_tokens": totals["tokens"],
            "val_unigram_entropy": entropy}


def _accumulate(model, rows, totals, counts, device) -> None:
    tokens = torch.from_numpy(np.stack([r["tokens"] for r in rows])).to(device)
    mask = torch.from_numpy(np.stack([r["target_mask"] for r in rows])).to(device)
    logits, _ = model(tokens[:, :-1])
    nll = F.cross_entropy(logits.float().flatten(0, 1), tokens[:, 1:].flatten(), reduction="none")
    totals["loss_sum"] += float((nll * mask.flatten()).sum())
    totals["tokens"] += int(mask.sum())
    counts += torch.bincount(tokens[:, 1:][mask].cpu(), minlength=len(counts)).double()


def model_vocab(model: torch.nn.Module) -> int:
    return (model.module if hasattr(model, "module") else model).config.vocab_size


def log_validation(model, cfg: TrainConfig, step: int, device, dist) -> dict:
    """Every rank evaluates (an FSDP forward is collective); the writer reports."""
    result = validation_loss(model, cfg, device)
    if dist.is_writer:
        print(f"step {step:>6} | val loss {result['val_loss']:.4f} over {result['val_tokens']:,} tokens "
              f"(their unigram entropy {result['val_unigram_entropy']:.4f})", flush=True)
        append_metrics(Path(cfg.out_dir) / METRICS, {"step": step, **result})
    return result


# --- distributed -------------------------------------------------------------------------------

@dataclass
class Distributed:
    """torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK), or a single process."""
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    kind: str = "none"

    @property
    def is_writer(self) -> bool:
        return self.rank == 0

    @classmethod
    def setup(cls, cfg: TrainConfig) -> Distributed:
        device = torch.device(cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
        if cfg.distributed == "none":
            return cls(device=device)
        if "RANK" not in os.environ:
            raise ValueError(f"--distributed {cfg.distributed} needs torchrun (RANK, WORLD_SIZE and LOCAL_RANK)")

        local_rank = int(os.environ["LOCAL_RANK"])
        if device.type == "cuda":
            torch.cuda.set_device(local_rank)
            device = torch.device("cuda", local_rank)
        td.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        return cls(rank=td.get_rank(), world_size=td.get_world_size(), device=device, kind=cfg.distributed)

    def wrap(self, net: Llama, cfg: TrainConfig) -> torch.nn.Module:
        model: torch.nn.Module = net
        if self.kind == "ddp":
            model = DistributedDataParallel(net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        elif self.kind == "fsdp":
            for layer in net.model.layers:
                fully_shard(layer)
            model = fully_shard(net)
        if cfg.compile:
            model = torch.compile(model)
        return model

    def no_sync(self, model):
        """Skip the gradient all-reduce on micro-steps that are not the last of a step."""
        if self.kind == "ddp":
            return model.no_sync()
        if self.kind == "fsdp":
            model.set_requires_gradient_sync(False)
        return contextlib.nullcontext()

    def sync_gradients(self, model):
        if self.kind == "fsdp":
            model.set_requires_gradient_sync(True)
        return contextlib.nullcontext()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        if self.world_size == 1:
            return value

        value = value.clone()
        td.all_reduce(value)
        return value / self.world_size

    def barrier(self) -> None:
        if self.world_size > 1:
            td.barrier()

    def close(self) -> None:
        if self.world_size > 1:
            td.destroy_process_group()

