"""Train a VQGAN tokenizer on image and video folders (``uvd tokenizer train``).

Losses: L1 + L2 reconstruction; the quantizer's codebook term plus beta * commitment (beta on
the commitment term, see modules.py); optionally a hinge PatchGAN from ``disc_start`` with
taming's adaptive weight, and LPIPS when the user gives its weights. Codebook: optional EMA
updates and dead-code restart. AdamW, gradient clipping, warmup + cosine learning rate, a tqdm
progress bar, validation PSNR and codebook usage over the whole held-out set, checkpoints with
exact resume: ``step-NNNNNNNN/`` directories committed by ``uvd.format.checkpoints`` (as the model
trainer's are), each the model as a uvd tokenizer plus ``train_state.pt`` (optimizer, scheduler,
step, random generators, codebook statistics; tensors and plain containers only, loaded with
``weights_only=True``).

Training runs on random crops (``crop`` x ``crop``) of the 256x256 frames: the network is fully
convolutional, so this only shrinks each step; validation always runs on whole 256x256 frames
through the same ``encode``/``decode_code`` the pipeline uses.

``train_tokenizer`` reads top to bottom: set up (frames, networks, resume), then per step
``train_step`` (generator, ``codebook_upkeep``, ``discriminator_step``), progress and validation,
``save_checkpoint``; at the end ``write_tokenizer``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from tqdm import tqdm

from uvd.format.checkpoints import commit_checkpoint, latest_checkpoint
from uvd.format.storage import atomic_write
from uvd.tokenizer.checkpoint import WEIGHTS_NAME, save_tokenizer
from uvd.tokenizer.config import VQGANConfig, get_config
from uvd.tokenizer.data import CropSampler, MediaFile, list_media_files, load_frames, split_files, to_tensor
from uvd.tokenizer.losses import (
    LPIPS,
    NLayerDiscriminator,
    adaptive_weight,
    generator_adversarial_loss,
    hinge_d_loss,
    psnr,
    reconstruction_loss,
)
from uvd.tokenizer.modules import QuantizerOutput
from uvd.tokenizer.vqgan import VQGAN

STATE_NAME = "train_state.pt"
METRICS_NAME = "metrics.json"
KEEP_CHECKPOINTS = 2
EARLIER_CHECKPOINT_NAMES = ("last", "last.old")  # the work dir layout before format.checkpoints, newest first


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
class TokenizerTrainResult:
    out_dir: Path
    step: int
    losses: list[float] = field(default_factory=list)  # total generator loss per step run in this call
    validation_history: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] | None = None  # the validation at the last step, if one ran there


@dataclass(frozen=True)
class TrainingFrames:
    """The split files and their frames, (N, 3, H, W) float in [0, 1], held in memory."""

    train_files: list[MediaFile]
    val_files: list[MediaFile]
    train: torch.Tensor
    val: torch.Tensor | None


@dataclass
class TrainingState:
    """What the steps change and a checkpoint saves (LPIPS is frozen and only rides along)."""

    model: VQGAN
    optimizer: torch.optim.AdamW
    scheduler: torch.optim.lr_scheduler.LambdaLR
    sampler: CropSampler  # training batches, seeded
    restart_generator: torch.Generator  # which batch vectors replace dead codes
    discriminator: NLayerDiscriminator | None = None
    disc_optimizer: torch.optim.AdamW | None = None
    lpips: LPIPS | None = None
    step: int = 0  # steps done
    validation_history: list[dict[str, Any]] = field(default_factory=list)


# --- pieces ---------------------------------------------------------------------------------

def forward_any_size(model: VQGAN, images01: torch.Tensor):
    """The training forward on any side divisible by the downsample factor (crops included).
    Returns (reconstruction in model space, target in model space, z (B, D, h, w), QuantizerOutput)."""
    target = model.to_model_space(images01)
    z = model.quant_conv(model.encoder(target))
    quantized = model.quantize(z)  # distances and VQ losses in fp32 even under autocast
    reconstruction = model.decoder(model.post_quant_conv(quantized.quantized))
    return reconstruction, target, z, quantized


def _weight_decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name or "embedding" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _lr_factor(cfg: TokenizerTrainConfig):
    """Step -> learning-rate multiplier: linear warmup, then cosine decay to ``min_lr_ratio``."""
    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        span = max(1, cfg.steps - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


@torch.no_grad()
def validation_metrics(model: VQGAN, frames: torch.Tensor, *, batch_size: int = 8) -> dict[str, Any]:
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


# --- setup and resume -----------------------------------------------------------------------

def _prepare_torch(cfg: TokenizerTrainConfig) -> tuple[VQGANConfig, torch.device]:
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    model_cfg = cfg.model_config()
    if cfg.crop > model_cfg.resolution or cfg.crop % model_cfg.downsample_factor:
        raise ValueError(f"crop {cfg.crop} must be <= {model_cfg.resolution} and divisible by "
                         f"{model_cfg.downsample_factor}")
    return model_cfg, torch.device(cfg.device)


def load_training_frames(cfg: TokenizerTrainConfig, model_cfg: VQGANConfig) -> TrainingFrames:
    """Split by file, then every frame in memory."""
    files = list_media_files(cfg.image_dirs, cfg.video_dirs)
    train_files, val_files = split_files(files, holdout=cfg.holdout, val_fraction=cfg.val_fraction, seed=cfg.seed)
    load = dict(size=model_cfg.resolution, frame_stride=cfg.frame_stride, max_frames_per_video=cfg.max_frames_per_video)
    train = to_tensor(load_frames(train_files, **load))
    val = to_tensor(load_frames(val_files, **load)) if val_files else None
    return TrainingFrames(train_files=train_files, val_files=val_files, train=train, val=val)


def build_training(cfg: TokenizerTrainConfig, model_cfg: VQGANConfig, frames: TrainingFrames,
                   device: torch.device) -> TrainingState:
    """Fresh networks and optimizers; the model's initial weights come from ``seed``."""
    sampler = CropSampler(frames.train, crop=cfg.crop, seed=cfg.seed + 1)
    restart_generator = torch.Generator().manual_seed(cfg.seed + 2)
    torch.manual_seed(cfg.seed)
    model = VQGAN(config=model_cfg).to(device)
    if cfg.ema:
        model.quantize.enable_ema(decay=cfg.ema_decay)
    discriminator = (NLayerDiscriminator(ndf=cfg.disc_ndf, n_layers=cfg.disc_layers).to(device)
                     if cfg.disc_weight > 0 else None)
    lpips = LPIPS.from_file(cfg.lpips_weights).to(device) if cfg.lpips_weights else None
    optimizer = torch.optim.AdamW(_weight_decay_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(cfg))
    disc_optimizer = (torch.optim.AdamW(discriminator.parameters(), lr=cfg.disc_lr or cfg.lr, betas=cfg.betas,
                                        weight_decay=0.0) if discriminator is not None else None)
    return TrainingState(model=model, optimizer=optimizer, scheduler=scheduler, sampler=sampler,
                         restart_generator=restart_generator, discriminator=discriminator,
                         disc_optimizer=disc_optimizer, lpips=lpips)


def find_checkpoint(state_dir: Path) -> Path | None:
    """The newest complete checkpoint in a work dir, ``step-*`` or (written before uvd used
    ``format.checkpoints``) ``last`` / ``last.old``."""
    required = (STATE_NAME, WEIGHTS_NAME)
    found = latest_checkpoint(state_dir, required=required)
    earlier = [state_dir / name for name in EARLIER_CHECKPOINT_NAMES
               if all((state_dir / name / file).is_file() for file in required)]
    return found or (earlier[0] if earlier else None)


def resume_or_refuse(cfg: TokenizerTrainConfig, state: TrainingState, model_cfg: VQGANConfig) -> None:
    """Restore the work dir's latest checkpoint with ``resume``; without it, refuse to train over one."""
    found = find_checkpoint(cfg.state_dir)
    if found is None:
        return
    if not cfg.resume:
        raise FileExistsError(f"{cfg.state_dir} already holds a checkpoint: pass resume=True (--resume) to go on, "
                              f"or remove it to start over")
    saved = torch.load(found / STATE_NAME, map_location="cpu", weights_only=True)
    if saved["model_config"] != model_cfg.to_dict():
        raise ValueError(f"{found}: checkpoint config differs from this run's tokenizer config")
    state.model.load_state_dict(load_file(found / WEIGHTS_NAME))
    state.model.quantize.load_training_state(saved["quantizer"])
    state.optimizer.load_state_dict(saved["optimizer"])
    state.scheduler.load_state_dict(saved["scheduler"])
    if state.discriminator is not None:
        if "disc" not in saved:
            raise ValueError(f"{found}: no discriminator state to resume")
        state.discriminator.load_state_dict(saved["disc"])
        state.disc_optimizer.load_state_dict(saved["disc_optimizer"])
    state.sampler.load_state(saved["sampler_rng"])
    state.restart_generator.set_state(saved["restart_rng"])
    torch.set_rng_state(saved["torch_rng"])
    state.step, state.validation_history = int(saved["step"]), list(saved["history"])


# --- one step -------------------------------------------------------------------------------

def train_step(cfg: TokenizerTrainConfig, state: TrainingState, images: torch.Tensor,
               autocast: contextlib.AbstractContextManager) -> dict[str, float]:
    """One generator step, codebook upkeep, and a discriminator step once it has started.
    Returns the step's logged values (``loss`` is the total generator loss)."""
    use_disc = state.discriminator is not None and state.step >= cfg.disc_start
    with autocast:
        recon, target, z, quantized = forward_any_size(state.model, images)
    values = _generator_losses(cfg, state, recon, target, quantized, use_disc)
    state.optimizer.zero_grad(set_to_none=True)
    values["loss"].backward()
    if cfg.grad_clip > 0:
        values["grad_norm"] = torch.nn.utils.clip_grad_norm_(state.model.parameters(), cfg.grad_clip)
    state.optimizer.step()
    state.scheduler.step()
    values["restarted"] = codebook_upkeep(cfg, state, z, quantized.indices)
    if use_disc:
        values["d"] = discriminator_step(cfg, state, target, recon)
    state.step += 1
    return {key: float(value.detach() if torch.is_tensor(value) else value) for key, value in values.items()}


def _generator_losses(cfg: TokenizerTrainConfig, state: TrainingState, recon: torch.Tensor, target: torch.Tensor,
                      quantized: QuantizerOutput, use_disc: bool) -> dict[str, Any]:
    """The generator's loss terms; ``loss`` is their weighted sum (with the EMA codebook, the
    codebook term is left out: the EMA moves the codebook, not its gradient)."""
    rec = reconstruction_loss(recon, target)
    if state.lpips is not None:
        rec = rec + cfg.lpips_weight * state.lpips(recon.float(), target)
    loss = rec + quantized.commitment_loss + (0.0 if cfg.ema else quantized.codebook_loss)
    values = {"rec": rec, "commit": quantized.commitment_loss, "codebook": quantized.codebook_loss}
    if use_disc:
        g_loss = generator_adversarial_loss(state.discriminator(recon.float()))
        g_weight = adaptive_weight(rec, g_loss, state.model.decoder.conv_out.weight, disc_weight=cfg.disc_weight)
        loss = loss + g_weight * g_loss
        values.update(g=g_loss, d_weight=g_weight)
    return {"loss": loss, **values}


def codebook_upkeep(cfg: TokenizerTrainConfig, state: TrainingState, z: torch.Tensor, indices: torch.Tensor) -> int:
    """EMA codebook update and dead-code restart, in fp32 on this batch's encoder outputs ``z``;
    returns how many codes restarted."""
    quantizer = state.model.quantize
    z_flat = z.detach().float().permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    if cfg.ema:
        quantizer.ema_update(z_flat, indices)
    if cfg.dead_code_steps <= 0:
        return 0
    dead = quantizer.restart_dead_codes(z_flat, indices, dead_after=cfg.dead_code_steps,
                                        generator=state.restart_generator)
    weight = quantizer.embedding.weight
    if dead.numel() and weight in state.optimizer.state:  # fresh codes start with fresh Adam moments
        for key in ("exp_avg", "exp_avg_sq"):
            state.optimizer.state[weight][key][dead.to(weight.device)] = 0.0
    return int(dead.numel())


def discriminator_step(cfg: TokenizerTrainConfig, state: TrainingState, target: torch.Tensor,
                       recon: torch.Tensor) -> torch.Tensor:
    """One hinge-loss step of the PatchGAN: real = the targets, fake = the (detached) reconstructions."""
    disc = state.discriminator
    d_loss = hinge_d_loss(disc(target.detach().float()), disc(recon.detach().float()))
    state.disc_optimizer.zero_grad(set_to_none=True)
    d_loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(disc.parameters(), cfg.grad_clip)
    state.disc_optimizer.step()
    return d_loss


# --- progress, validation, checkpoints, output ----------------------------------------------

class ProgressBar:
    """The tqdm bar: the mean loss, reconstruction loss and restarted codes of the last
    ``log_every`` steps, and one line per validation."""

    def __init__(self, cfg: TokenizerTrainConfig, initial_step: int):
        self.bar = tqdm(total=cfg.steps, initial=initial_step, disable=not cfg.progress, desc="tokenizer",
                        dynamic_ncols=True)
        self.log_every, self.last_step = cfg.log_every, cfg.steps
        self.sums: dict[str, float] = {}
        self.count = 0

    def step_done(self, step: int, values: dict[str, float]) -> None:
        for key in ("loss", "rec", "restarted"):
            self.sums[key] = self.sums.get(key, 0.0) + values[key]
        self.count += 1
        if step % self.log_every == 0 or step == self.last_step:
            self.bar.set_postfix({"loss": f"{self.sums['loss'] / self.count:.4f}",
                                  "rec": f"{self.sums['rec'] / self.count:.4f}",
                                  "restarted": int(self.sums["restarted"])}, refresh=False)
            self.sums, self.count = {}, 0
        self.bar.update(1)

    def validated(self, record: dict[str, Any]) -> None:
        self.bar.write(f"step {record['step']}: val PSNR {record['psnr']:.2f} dB, codebook usage "
                       f"{record['codes_used']}/{record['codebook_size']} ({100 * record['usage']:.1f}%), "
                       f"perplexity {record['perplexity']:.1f}")

    def close(self) -> None:
        self.bar.close()


def validate(cfg: TokenizerTrainConfig, state: TrainingState, frames: torch.Tensor, *, elapsed_s: float,
             train_loss: float) -> dict[str, Any]:
    """Validate on every held-out frame and append the record to the state's history."""
    record = {"step": state.step, "elapsed_s": round(elapsed_s, 1), "lr": state.scheduler.get_last_lr()[0],
              "train_loss": train_loss, **validation_metrics(state.model, frames, batch_size=cfg.eval_batch_size)}
    state.validation_history.append(record)
    return record


def save_checkpoint(cfg: TokenizerTrainConfig, state: TrainingState, model_cfg: VQGANConfig) -> Path:
    """Commit ``step-NNNNNNNN/`` in the work dir: the model as a uvd tokenizer + ``train_state.pt``."""
    saved = {"step": state.step, "model_config": model_cfg.to_dict(), "train_config": json.dumps(cfg.to_dict()),
             "optimizer": state.optimizer.state_dict(), "scheduler": state.scheduler.state_dict(),
             "quantizer": state.model.quantize.training_state(), "sampler_rng": state.sampler.state(),
             "restart_rng": state.restart_generator.get_state(), "torch_rng": torch.get_rng_state(),
             "history": state.validation_history}
    if state.discriminator is not None:
        saved["disc"], saved["disc_optimizer"] = state.discriminator.state_dict(), state.disc_optimizer.state_dict()

    def write_files(directory: Path) -> None:
        save_tokenizer(state.model, directory, trained=True, notes=f"training checkpoint at step {state.step}")
        torch.save(saved, directory / STATE_NAME)

    return commit_checkpoint(cfg.state_dir, state.step, write_files, keep=KEEP_CHECKPOINTS)


def write_tokenizer(cfg: TokenizerTrainConfig, state: TrainingState, model_cfg: VQGANConfig, frames: TrainingFrames,
                    *, wall_s: float) -> tuple[Path, dict[str, Any] | None]:
    """The finished tokenizer in ``out_dir`` and its ``metrics.json``; returns (out_dir, final validation)."""
    out_dir = Path(cfg.out_dir)
    notes = cfg.notes or f"trained by uvd tokenizer train for {state.step} steps"
    save_tokenizer(state.model, out_dir, trained=True, notes=notes)
    history = state.validation_history
    final = history[-1] if history and history[-1]["step"] == state.step else None
    metrics = {"steps": state.step, "wall_time_s_this_run": round(wall_s, 1), "torch": torch.__version__,
               "threads": torch.get_num_threads(), "num_params": state.model.num_params,
               "weights_mb": round((out_dir / WEIGHTS_NAME).stat().st_size / 1e6, 2),
               "model_config": model_cfg.to_dict(), "train_config": cfg.to_dict(),
               "train_files": [f.path.name for f in frames.train_files],
               "val_files": [f.path.name for f in frames.val_files],
               "train_frames": int(frames.train.shape[0]),
               "val_frames": int(frames.val.shape[0]) if frames.val is not None else 0,
               "final_validation": final, "history": history}
    atomic_write(str(out_dir / METRICS_NAME), (json.dumps(metrics, indent=2) + "\n").encode())
    return out_dir, final


# --- the loop -------------------------------------------------------------------------------

def train_tokenizer(cfg: TokenizerTrainConfig) -> TokenizerTrainResult:
    model_cfg, device = _prepare_torch(cfg)
    frames = load_training_frames(cfg, model_cfg)
    state = build_training(cfg, model_cfg, frames, device)
    resume_or_refuse(cfg, state, model_cfg)
    autocast = (torch.autocast(device_type=device.type, dtype=torch.bfloat16)
                if cfg.amp and device.type == "cuda" else contextlib.nullcontext())
    state.model.train()
    losses: list[float] = []
    start = time.perf_counter()
    progress = ProgressBar(cfg, state.step)
    end = min(cfg.steps, state.step + cfg.stop_after) if cfg.stop_after else cfg.steps
    while state.step < end:
        values = train_step(cfg, state, state.sampler.sample(cfg.batch_size).to(device), autocast)
        losses.append(values["loss"])
        progress.step_done(state.step, values)
        if frames.val is not None and (state.step % cfg.eval_every == 0 or state.step == cfg.steps):
            progress.validated(validate(cfg, state, frames.val, elapsed_s=time.perf_counter() - start,
                                        train_loss=losses[-1]))
        if state.step % cfg.checkpoint_every == 0 or state.step == end:
            save_checkpoint(cfg, state, model_cfg)
    progress.close()
    wall_s = time.perf_counter() - start
    if state.step < cfg.steps:  # stopped early on purpose: the checkpoint is the output
        return TokenizerTrainResult(out_dir=Path(cfg.out_dir), step=state.step, losses=losses,
                                    validation_history=state.validation_history)
    out_dir, final = write_tokenizer(cfg, state, model_cfg, frames, wall_s=wall_s)
    return TokenizerTrainResult(out_dir=out_dir, step=state.step, losses=losses,
                                validation_history=state.validation_history, final=final)
