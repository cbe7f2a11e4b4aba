"""Train a VQGAN tokenizer on image and video folders (``uvd tokenizer train``).

Losses: L1 + L2 reconstruction; the quantizer's codebook term plus beta * commitment (beta on
the commitment term, see modules.py); optionally a hinge PatchGAN from ``disc_start`` with
taming's adaptive weight, and LPIPS when the user gives its weights. Codebook: optional EMA
updates and dead-code restart. AdamW, gradient clipping, warmup + cosine learning rate, a tqdm
progress bar, validation PSNR and codebook usage over the whole held-out set, checkpoints with
exact resume (model as a uvd checkpoint plus our own ``train_state.pt`` for the optimizer,
scheduler, step, RNG and codebook statistics).

Training runs on random crops (``crop`` x ``crop``) of the 256x256 frames: the network is fully
convolutional, so this only shrinks each step; validation always runs on whole 256x256 frames
through the same ``encode``/``decode_code`` the pipeline uses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from tqdm import tqdm

from uvd.tokenizer.checkpoint import WEIGHTS_NAME, save_tokenizer
from uvd.tokenizer.config import VQGANConfig, get_config
from uvd.tokenizer.data import CropSampler, list_media_files, load_frames, split_files, to_tensor
from uvd.tokenizer.losses import (
    LPIPS,
    NLayerDiscriminator,
    adaptive_weight,
    generator_adversarial_loss,
    hinge_d_loss,
    psnr,
    reconstruction_loss,
)
from uvd.tokenizer.vqgan import VQGAN

STATE_NAME = "train_state.pt"
METRICS_NAME = "metrics.json"


@dataclass
class TokenizerTrainConfig:
    image_dirs: tuple[str, ...] = ()
    video_dirs: tuple[str, ...] = ()
    holdout: tuple[str, ...] = ()  # file names held out for validation (whole files)
    val_fraction: float = 0.0  # used only when holdout is empty: a seeded fraction of the files
    config: str = "tiny"  # a tokenizer.config.CONFIGS name
    num_embeddings: int = 0  # overrides the config's codebook size when > 0
    steps: int = 1000
    batch_size: int = 8
    crop: int = 128  # training crop side (<= resolution); validation uses whole frames
    frame_stride: int = 4  # every k-th video frame
    max_frames_per_video: int = 0  # 0 = no limit
    lr: float = 2e-4
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1  # cosine decay to lr * min_lr_ratio
    betas: tuple[float, float] = (0.5, 0.9)  # taming's Adam betas
    weight_decay: float = 0.01  # not applied to norms, biases or the codebook
    grad_clip: float = 1.0  # max grad norm; 0 = off
    seed: int = 0
    eval_every: int = 250
    eval_batch_size: int = 8
    checkpoint_every: int = 250
    log_every: int = 10
    disc_weight: float = 0.0  # 0 = no discriminator
    disc_start: int = 0
    disc_lr: float = 0.0  # 0 = same as lr
    disc_ndf: int = 32
    disc_layers: int = 3
    lpips_weights: str | None = None  # a safetensors file (see losses.LPIPS); None = no LPIPS
    lpips_weight: float = 1.0
    ema: bool = False
    ema_decay: float = 0.99
    dead_code_steps: int = 0  # restart codes unused for this many steps; 0 = off
    out_dir: str = "tokenizer-out"  # the finished tokenizer (config.json, model.safetensors, metrics.json)
    work_dir: str | None = None  # checkpoints for resume; default out_dir/checkpoint
    resume: bool = False
    stop_after: int = 0  # stop (with a checkpoint) after this many steps in this call; 0 = run to ``steps``
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    device: str = "cpu"
    amp: bool = False  # bf16 autocast on CUDA (the quantizer stays fp32)
    progress: bool = True
    notes: str = ""

    def __post_init__(self) -> None:
        self.image_dirs = tuple(str(d) for d in self.image_dirs)
        self.video_dirs = tuple(str(d) for d in self.video_dirs)
        self.holdout = tuple(self.holdout)
        self.betas = tuple(float(b) for b in self.betas)
        problems = []
        for name in ("steps", "batch_size", "crop", "frame_stride", "eval_every", "checkpoint_every", "log_every",
                     "eval_batch_size"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive")
        if not 0.0 <= self.val_fraction < 1.0:
            problems.append("val_fraction must be in [0, 1)")
        if self.lr <= 0:
            problems.append("lr must be positive")
        if min(self.dead_code_steps, self.disc_start, self.warmup_steps, self.stop_after) < 0:
            problems.append("dead_code_steps, disc_start, warmup_steps and stop_after must be >= 0")
        if problems:
            raise ValueError("invalid TokenizerTrainConfig: " + "; ".join(problems))

    @property
    def state_dir(self) -> Path:
        return Path(self.work_dir) if self.work_dir else Path(self.out_dir) / "checkpoint"

    def model_config(self) -> VQGANConfig:
        cfg = get_config(self.config)
        if self.num_embeddings > 0:
            cfg = dataclasses.replace(cfg, num_embeddings=self.num_embeddings)
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


@dataclass
class TrainResult:
    out_dir: Path
    step: int
    losses: list[float] = field(default_factory=list)  # total generator loss per step run in this call
    history: list[dict[str, Any]] = field(default_factory=list)  # validation records
    final: dict[str, Any] | None = None


# --- pieces ---------------------------------------------------------------------------------

def forward_any_size(model: VQGAN, images01: torch.Tensor):
    """The training forward on any side divisible by the downsample factor (crops included).
    Returns (reconstruction in model space, target in model space, z (B, D, h, w), QuantizerOutput)."""
    target = model.to_model_space(images01)
    z = model.quant_conv(model.encoder(target))
    q = model.quantize(z)  # distances and VQ losses in fp32 even under autocast
    reconstruction = model.decoder(model.post_quant_conv(q.quantized))
    return reconstruction, target, z, q


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name or "embedding" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _lr_lambda(cfg: TokenizerTrainConfig):
    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        span = max(1, cfg.steps - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return f


@torch.no_grad()
def evaluate(model: VQGAN, frames: torch.Tensor, *, batch_size: int = 8) -> dict[str, Any]:
    """PSNR of decode(encode(x)) over every frame, and codebook usage over every token."""
    was_training = model.training
    model.eval()
    k = model.config.num_embeddings
    counts = torch.zeros(k, dtype=torch.long)
    psnrs = []
    try:
        for batch in frames.split(batch_size):
            codes = model.encode(batch)
            recon = model.decode_code(codes).cpu()
            psnrs.append(psnr(recon, batch))
            counts += torch.bincount(codes.flatten().cpu(), minlength=k)
    finally:
        model.train(was_training)
    values = torch.cat(psnrs)
    probs = counts.double() / counts.sum()
    entropy = -(probs[probs > 0] * probs[probs > 0].log()).sum()
    used = int((counts > 0).sum())
    return {"frames": int(frames.shape[0]), "tokens": int(counts.sum()), "psnr": float(values.mean()),
            "psnr_min": float(values.min()), "codes_used": used, "usage": used / k,
            "perplexity": float(entropy.exp()), "codebook_size": k}


def _atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _latest_checkpoint(state_dir: Path) -> Path | None:
    for name in ("last", "last.old"):
        d = state_dir / name
        if (d / STATE_NAME).is_file() and (d / WEIGHTS_NAME).is_file():
            return d
    return None


# --- the loop -------------------------------------------------------------------------------

def train_tokenizer(cfg: TokenizerTrainConfig) -> TrainResult:
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = torch.device(cfg.device)
    model_cfg = cfg.model_config()
    if cfg.crop > model_cfg.resolution or cfg.crop % model_cfg.downsample_factor:
        raise ValueError(f"crop {cfg.crop} must be <= {model_cfg.resolution} and divisible by "
                         f"{model_cfg.downsample_factor}")

    # Data: split by file, then frames in memory.
    files = list_media_files(cfg.image_dirs, cfg.video_dirs)
    train_files, val_files = split_files(files, holdout=cfg.holdout, val_fraction=cfg.val_fraction, seed=cfg.seed)
    load = dict(size=model_cfg.resolution, frame_stride=cfg.frame_stride, max_frames_per_video=cfg.max_frames_per_video)
    train_frames = to_tensor(load_frames(train_files, **load))
    val_frames = to_tensor(load_frames(val_files, **load)) if val_files else None
    sampler = CropSampler(train_frames, crop=cfg.crop, seed=cfg.seed + 1)
    restart_gen = torch.Generator().manual_seed(cfg.seed + 2)

    # Model, optional discriminator and LPIPS, optimizers.
    torch.manual_seed(cfg.seed)
    model = VQGAN(config=model_cfg).to(device)
    if cfg.ema:
        model.quantize.enable_ema(decay=cfg.ema_decay)
    disc = (NLayerDiscriminator(ndf=cfg.disc_ndf, n_layers=cfg.disc_layers).to(device)
            if cfg.disc_weight > 0 else None)
    lpips = LPIPS.from_file(cfg.lpips_weights).to(device) if cfg.lpips_weights else None
    opt = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg))
    disc_opt = (torch.optim.AdamW(disc.parameters(), lr=cfg.disc_lr or cfg.lr, betas=cfg.betas,
                                  weight_decay=0.0) if disc is not None else None)

    state_dir = cfg.state_dir
    step, history = 0, []
    if cfg.resume and (ckpt := _latest_checkpoint(state_dir)) is not None:
        state = torch.load(ckpt / STATE_NAME, map_location="cpu", weights_only=True)
        if state["model_config"] != model_cfg.to_dict():
            raise ValueError(f"{ckpt}: checkpoint config differs from this run's tokenizer config")
        model.load_state_dict(load_file(ckpt / WEIGHTS_NAME))
        model.quantize.load_training_state(state["quantizer"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        if disc is not None:
            if "disc" not in state:
                raise ValueError(f"{ckpt}: no discriminator state to resume")
            disc.load_state_dict(state["disc"])
            disc_opt.load_state_dict(state["disc_optimizer"])
        sampler.load_state(state["sampler_rng"])
        restart_gen.set_state(state["restart_rng"])
        torch.set_rng_state(state["torch_rng"])
        step, history = int(state["step"]), list(state["history"])
    elif not cfg.resume and state_dir.exists() and _latest_checkpoint(state_dir) is not None:
        raise FileExistsError(f"{state_dir} already holds a checkpoint: pass resume=True (--resume) to go on, "
                              f"or remove it to start over")

    def save_checkpoint() -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp, last, old = state_dir / "last.tmp", state_dir / "last", state_dir / "last.old"
        shutil.rmtree(tmp, ignore_errors=True)
        save_tokenizer(model, tmp, trained=True, notes=f"training checkpoint at step {step}")
        state = {"step": step, "model_config": model_cfg.to_dict(), "train_config": json.dumps(cfg.to_dict()),
                 "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                 "quantizer": model.quantize.training_state(), "sampler_rng": sampler.state(),
                 "restart_rng": restart_gen.get_state(), "torch_rng": torch.get_rng_state(), "history": history}
        if disc is not None:
            state["disc"], state["disc_optimizer"] = disc.state_dict(), disc_opt.state_dict()
        _atomic_torch_save(state, tmp / STATE_NAME)
        shutil.rmtree(old, ignore_errors=True)
        if last.exists():
            os.replace(last, old)
        os.replace(tmp, last)
        shutil.rmtree(old, ignore_errors=True)

    autocast = (torch.autocast(device_type=device.type, dtype=torch.bfloat16)
                if cfg.amp and device.type == "cuda" else contextlib.nullcontext())
    last_layer = model.decoder.conv_out.weight
    model.train()
    losses: list[float] = []
    start = time.perf_counter()

    bar = tqdm(total=cfg.steps, initial=step, disable=not cfg.progress, desc="tokenizer", dynamic_ncols=True)
    running: dict[str, float] = {}
    end = min(cfg.steps, step + cfg.stop_after) if cfg.stop_after else cfg.steps
    while step < end:
        images = sampler.sample(cfg.batch_size).to(device)
        with autocast:
            recon, target, z, q = forward_any_size(model, images)
        nll = reconstruction_loss(recon, target)
        if lpips is not None:
            nll = nll + cfg.lpips_weight * lpips(recon.float(), target)
        loss = nll + q.commitment_loss + (0.0 if cfg.ema else q.codebook_loss)
        use_disc = disc is not None and step >= cfg.disc_start
        g_loss = d_w = None
        if use_disc:
            g_loss = generator_adversarial_loss(disc(recon.float()))
            d_w = adaptive_weight(nll, g_loss, last_layer, disc_weight=cfg.disc_weight)
            loss = loss + d_w * g_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = (torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip) if cfg.grad_clip > 0
                     else None)
        opt.step()
        sched.step()

        # Codebook maintenance, in fp32 on the encoder outputs of this batch.
        z_flat = z.detach().float().permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        if cfg.ema:
            model.quantize.ema_update(z_flat, q.indices)
        restarted = 0
        if cfg.dead_code_steps > 0:
            dead = model.quantize.restart_dead_codes(z_flat, q.indices, dead_after=cfg.dead_code_steps,
                                                     generator=restart_gen)
            restarted = int(dead.numel())
            weight = model.quantize.embedding.weight
            if restarted and weight in opt.state:  # fresh codes start with fresh Adam moments
                for key in ("exp_avg", "exp_avg_sq"):
                    opt.state[weight][key][dead.to(weight.device)] = 0.0

        d_loss = None
        if use_disc:
            logits_real = disc(target.detach().float())
            logits_fake = disc(recon.detach().float())
            d_loss = hinge_d_loss(logits_real, logits_fake)
            disc_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(disc.parameters(), cfg.grad_clip)
            disc_opt.step()

        step += 1
        losses.append(float(loss.detach()))
        for key, value in (("loss", loss), ("rec", nll), ("commit", q.commitment_loss), ("codebook", q.codebook_loss),
                           ("g", g_loss), ("d", d_loss), ("d_weight", d_w), ("grad_norm", grad_norm)):
            if value is not None:
                running[key] = running.get(key, 0.0) + float(value.detach() if torch.is_tensor(value) else value)
        running["restarted"] = running.get("restarted", 0.0) + restarted
        running["_n"] = running.get("_n", 0.0) + 1
        if step % cfg.log_every == 0 or step == cfg.steps:
            n = running.pop("_n")
            bar.set_postfix({k: (f"{v / n:.4f}" if k != "restarted" else int(v)) for k, v in running.items()
                             if k in ("loss", "rec", "restarted")}, refresh=False)
            running = {}
        bar.update(1)

        if val_frames is not None and (step % cfg.eval_every == 0 or step == cfg.steps):
            record = {"step": step, "elapsed_s": round(time.perf_counter() - start, 1),
                      "lr": sched.get_last_lr()[0], "train_loss": losses[-1],
                      **evaluate(model, val_frames, batch_size=cfg.eval_batch_size)}
            history.append(record)
            bar.write(f"step {step}: val PSNR {record['psnr']:.2f} dB, codebook usage {record['codes_used']}/"
                      f"{record['codebook_size']} ({100 * record['usage']:.1f}%), perplexity {record['perplexity']:.1f}")
        if step % cfg.checkpoint_every == 0 or step == end:
            save_checkpoint()
    bar.close()
    wall = time.perf_counter() - start
    if step < cfg.steps:  # stopped early on purpose: the checkpoint is the output
        return TrainResult(out_dir=Path(cfg.out_dir), step=step, losses=losses, history=history)

    out_dir = Path(cfg.out_dir)
    notes = cfg.notes or f"trained by uvd tokenizer train for {step} steps"
    save_tokenizer(model, out_dir, trained=True, notes=notes)
    final = history[-1] if history and history[-1]["step"] == step else None
    metrics = {"steps": step, "wall_time_s_this_run": round(wall, 1), "torch": torch.__version__,
               "threads": torch.get_num_threads(), "num_params": model.num_params,
               "weights_mb": round((out_dir / WEIGHTS_NAME).stat().st_size / 1e6, 2),
               "model_config": model_cfg.to_dict(), "train_config": cfg.to_dict(),
               "train_files": [f.path.name for f in train_files], "val_files": [f.path.name for f in val_files],
               "train_frames": int(train_frames.shape[0]),
               "val_frames": int(val_frames.shape[0]) if val_frames is not None else 0,
               "final_validation": final, "history": history}
    (out_dir / METRICS_NAME).write_text(json.dumps(metrics, indent=2) + "\n")
    return TrainResult(out_dir=out_dir, step=step, losses=losses, history=history, final=final)
