"""Training checkpoints: weights as safetensors, optimizer and loader state, committed atomically.

A checkpoint is a directory ``step-NNNNNNNN/`` holding ``model.safetensors`` (HF key names),
``optimizer.pt`` (AdamW state keyed by parameter name; read back with ``weights_only=True``) and
``trainer.json`` (step, model and train config, the loader state, the tokenizer the data was made
with). It is written as ``.step-NNNNNNNN.tmp/`` and renamed into place, then ``latest`` names it:
a ``kill -9`` at any moment leaves the previous checkpoint intact and loadable.

State dicts go through torch.distributed.checkpoint's ``get_state_dict`` / ``set_state_dict`` with
full (gathered) state, so a plain, DDP or FSDP model saves and loads the same files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict

from uvd.model.llama import Llama, LlamaConfig

WEIGHTS = "model.safetensors"
OPTIMIZER = "optimizer.pt"
TRAINER = "trainer.json"  # written last in the temporary directory
LATEST = "latest"


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    step: int
    model_config: LlamaConfig
    trainer: dict[str, Any]  # train config, loader state, tokenizer, ...


def _options(**kw):
    return StateDictOptions(full_state_dict=True, cpu_offload=True, **kw)


def full_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None):
    """(model state, optimizer state) gathered to full tensors on the CPU, keyed by parameter name."""

    model_state, optim_state = get_state_dict(model, optimizers=optimizer or [], options=_options())
    return model_state, (optim_state if optimizer is not None else None)


def save(out_dir: str | Path, step: int, model: torch.nn.Module, optimizer, trainer: dict, *,
         is_writer: bool = True, keep: int = 2) -> Path:
    """Commit ``step-NNNNNNNN/`` under ``out_dir`` and point ``latest`` at it (every rank calls this:
    gathering full state is collective; only ``is_writer`` writes)."""
    model_state, optim_state = full_state(model, optimizer)
    out_dir = Path(out_dir)
    final = out_dir / f"step-{step:08d}"
    if not is_writer:
        return final
    tmp = out_dir / f".step-{step:08d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    safetensors.torch.save_file({k: v.contiguous() for k, v in model_state.items()}, str(tmp / WEIGHTS),
                                metadata={"format": "pt"})
    if optim_state is not None:
        torch.save(optim_state, tmp / OPTIMIZER)
    (tmp / TRAINER).write_text(json.dumps({**trainer, "step": step}, indent=2, sort_keys=True) + "\n")
    _fsync_dir(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    latest_tmp = out_dir / f".{LATEST}.tmp"
    latest_tmp.write_text(final.name + "\n")
    os.replace(latest_tmp, out_dir / LATEST)
    _prune(out_dir, keep, final)
    return final


def _fsync_dir(path: Path) -> None:
    for f in path.iterdir():
        with open(f, "rb") as handle:
            os.fsync(handle.fileno())


def _prune(out_dir: Path, keep: int, current: Path) -> None:
    steps = sorted(p for p in out_dir.glob("step-*") if p.is_dir() and p != current)
    for old in steps[: max(0, len(steps) - (keep - 1))]:
        shutil.rmtree(old, ignore_errors=True)


def latest(out_dir: str | Path) -> Path | None:
    """The newest complete checkpoint under ``out_dir``, or None."""
    pointer = Path(out_dir) / LATEST
    if pointer.is_file():
        path = Path(out_dir) / pointer.read_text().strip()
        if (path / TRAINER).is_file():
            return path
    return None


def read(path: str | Path) -> Checkpoint:
    """The metadata of a checkpoint (a ``step-*`` directory, or a training directory's latest)."""
    path = Path(path)
    if not (path / TRAINER).is_file():
        found = latest(path)
        if found is None:
            raise FileNotFoundError(f"{path}: not a checkpoint (no {TRAINER}) and holds no '{LATEST}' checkpoint")
        path = found
    trainer = json.loads((path / TRAINER).read_text())
    return Checkpoint(path=path, step=int(trainer["step"]), model_config=LlamaConfig(**trainer["model"]),
                      trainer=trainer)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[Llama, Checkpoint]:
    """The model of a checkpoint (weights via safetensors, no pickle), in eval mode."""
    ckpt = read(path)
    with torch.device("meta"):  # no random init: every weight comes from the file
        model = Llama(ckpt.model_config)
    model.load_state_dict(safetensors.torch.load_file(str(ckpt.path / WEIGHTS)), strict=True, assign=True)
    return model.to(device).eval(), ckpt


def restore(ckpt: Checkpoint, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
    """Load weights (and optimizer state) into an already wrapped (DDP/FSDP) or plain model."""

    model_state = safetensors.torch.load_file(str(ckpt.path / WEIGHTS))
    optim_state = None
    if optimizer is not None:
        optim_state = torch.load(ckpt.path / OPTIMIZER, map_location="cpu", weights_only=True)
    set_state_dict(model, optimizers=optimizer or [], model_state_dict=model_state,
                   optim_state_dict=optim_state or {}, options=_options(strict=True))


def config_json(model_config: LlamaConfig) -> dict:
    return dataclasses.asdict(model_config)
