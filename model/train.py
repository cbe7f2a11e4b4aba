"""The training loop, readable top to bottom: data -> model -> AdamW steps -> checkpoint.

Defaults follow the LVM release's training command (README of ytongbai/LVM): AdamW,
peak lr 1.5e-4 decaying to 3e-5 on a cosine after a linear warmup, weight decay 0.1,
4096-token rows, bf16 on accelerators. One difference: EasyLM decays every parameter;
we decay only 2-D weights (matmuls and embeddings), the usual nanoGPT/LLaMA practice.

Single process for now; ``ShardDataset`` already splits data across ranks for a later
distributed launcher.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import safetensors.torch
import torch
from torch.utils.data import DataLoader

from uvd.model.data import PackedTokens, ShardDataset
from uvd.model.llama import Llama, LlamaConfig, get_config

CHECKPOINT_WEIGHTS = "model.safetensors"
CHECKPOINT_CONFIG = "config.json"  # written last: its presence marks a complete checkpoint
CHECKPOINT_OPTIMIZER = "optimizer.pt"


@dataclass
class TrainConfig:
    data_dirs: list[str] = field(default_factory=list)  # build output dirs (with manifest.parquet)
    model: str = "debug"  # a name in llama.CONFIGS
    seq_len: int = 4096  # tokens per row; LVM: 4096 = 16 images x 256
    packing: Literal["stream", "rows"] = "stream"  # see PackedTokens
    batch_size: int = 8  # rows per step
    steps: int = 1000
    lr: float = 1.5e-4  # peak learning rate
    end_lr: float = 3e-5  # reached at the end of the cosine
    warmup_steps: int = 100  # linear warmup from ~0 to lr
    lr_decay_steps: int | None = None  # step where the cosine reaches end_lr; None: steps
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0  # max global grad norm
    seed: int = 0  # model init and shard shuffling
    shuffle_shards: bool = True  # seeded, per-epoch shard order (deterministic)
    num_workers: int = 0  # DataLoader workers
    out_dir: str = "checkpoints"
    log_every: int = 10
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @classmethod
    def from_json(cls, d: dict) -> "TrainConfig":
        return cls(**{**d, "betas": tuple(d["betas"]), "data_dirs": list(d["data_dirs"])})


@dataclass
class TrainResult:
    losses: list[float]  # one per step
    final_step: int
    checkpoint_path: Path
    model: Llama  # the trained model, in eval mode, on the training device


@dataclass(frozen=True)
class CheckpointMeta:
    model_config: LlamaConfig
    train_config: TrainConfig
    step: int
    path: Path


def train(cfg: TrainConfig) -> TrainResult:
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)

    model_config = get_config(cfg.model)
    if cfg.seq_len > model_config.max_seq_len:
        raise ValueError(f"seq_len {cfg.seq_len} exceeds {cfg.model}'s max_seq_len {model_config.max_seq_len}")
    model = Llama(model_config).to(device)
    optimizer = make_optimizer(model, cfg, device)
    batches = training_batches(cfg, device)
    # bf16 autocast on GPUs only: CPU bf16 matmuls are slow and CPU runs are for tests.
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else contextlib.nullcontext())

    print(f"model {cfg.model}: {model.num_params():,} parameters on {device}", flush=True)
    model.train()
    losses: list[float] = []
    tokens_per_step = cfg.batch_size * cfg.seq_len
    last_log_time, last_log_step = time.perf_counter(), 0
    for step in range(1, cfg.steps + 1):
        lr = learning_rate(step - 1, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr

        batch = next(batches)
        input_ids, targets, loss_mask = (batch[k].to(device, non_blocking=True)
                                         for k in ("input_ids", "targets", "loss_mask"))
        with autocast:
            _, loss = model(input_ids, targets, loss_mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        losses.append(loss.item())

        if step % cfg.log_every == 0 or step == cfg.steps:
            now = time.perf_counter()
            tokens_per_s = (step - last_log_step) * tokens_per_step / max(now - last_log_time, 1e-9)
            print(f"step {step:>6}/{cfg.steps} | loss {losses[-1]:.4f} | lr {lr:.3e} | "
                  f"grad_norm {grad_norm.item():.3f} | {tokens_per_s:,.0f} tok/s", flush=True)
            last_log_time, last_log_step = now, step

    model.eval()
    path = save_checkpoint(Path(cfg.out_dir) / f"step-{cfg.steps:08d}", model, optimizer, cfg, cfg.steps)
    print(f"saved {path}", flush=True)
    return TrainResult(losses=losses, final_step=cfg.steps, checkpoint_path=path, model=model)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_optimizer(model: Llama, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on 2-D weights only (not on norm gains)."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=device.type == "cuda")


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to ``lr`` over ``warmup_steps``, then cosine to ``end_lr`` at
    ``lr_decay_steps`` (default: the last step), then flat. ``step`` counts from 0."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    decay_steps = cfg.lr_decay_steps or cfg.steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, decay_steps - cfg.warmup_steps))
    return cfg.end_lr + 0.5 * (cfg.lr - cfg.end_lr) * (1.0 + math.cos(math.pi * progress))


def training_batches(cfg: TrainConfig, device: torch.device) -> Iterator[dict[str, torch.Tensor]]:
    """Batches forever, epoch after epoch (each epoch in its own seeded shard order)."""
    if not cfg.data_dirs:
        raise ValueError("TrainConfig.data_dirs is empty")
    sentences = ShardDataset(cfg.data_dirs, shuffle_shards=cfg.shuffle_shards, seed=cfg.seed)
    rows = PackedTokens(sentences, cfg.seq_len, packing=cfg.packing)
    needed = cfg.batch_size * (cfg.seq_len + 1)
    if sentences.num_tokens < needed:
        raise ValueError(f"{cfg.data_dirs} hold {sentences.num_tokens} tokens; one batch of "
                         f"{cfg.batch_size} x {cfg.seq_len}+1 needs {needed}")
    for epoch in itertools.count():
        rows.set_epoch(epoch)
        loader = DataLoader(rows, batch_size=cfg.batch_size, drop_last=True,
                            num_workers=cfg.num_workers, pin_memory=device.type == "cuda")
        batches_this_epoch = 0
        for batch in loader:
            batches_this_epoch += 1
            yield batch
        if batches_this_epoch == 0:  # e.g. tokens spread over workers too thinly to fill a batch
            raise ValueError(f"epoch {epoch} of {cfg.data_dirs} gave no full batch of {cfg.batch_size} "
                             f"rows (packing={cfg.packing}, num_workers={cfg.num_workers}); "
                             "use fewer workers, a smaller batch or seq_len, or more data")


def _atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)``, then rename onto ``path``: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_checkpoint(path: str | Path, model: Llama, optimizer: torch.optim.Optimizer | None,
                    cfg: TrainConfig, step: int) -> Path:
    """``model.safetensors`` (weights, HF key names), ``optimizer.pt`` (our own file),
    then ``config.json`` (model + train config + step), each written atomically."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    _atomic_write(path / CHECKPOINT_WEIGHTS, lambda p: safetensors.torch.save_file(
        weights, str(p), metadata={"format": "pt"}))
    if optimizer is not None:
        _atomic_write(path / CHECKPOINT_OPTIMIZER, lambda p: torch.save(optimizer.state_dict(), p))
    config = {"model": dataclasses.asdict(model.config), "train": dataclasses.asdict(cfg), "step": step}
    _atomic_write(path / CHECKPOINT_CONFIG,
                  lambda p: p.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n"))
    return path


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[Llama, CheckpointMeta]:
    """The model of a checkpoint directory (weights via safetensors, no pickle), in eval mode."""
    path = Path(path)
    config_file = path / CHECKPOINT_CONFIG
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file} not found: not a (complete) checkpoint directory")
    config = json.loads(config_file.read_text())
    model_config = LlamaConfig(**config["model"])
    with torch.device("meta"):  # no random init: every weight comes from the file
        model = Llama(model_config)
    state = safetensors.torch.load_file(str(path / CHECKPOINT_WEIGHTS))
    model.load_state_dict(state, strict=True, assign=True)
    model.to(device).eval()
    meta = CheckpointMeta(model_config=model_config, train_config=TrainConfig.from_json(config["train"]),
                          step=int(config["step"]), path=path)
    return model, meta
