"""Training checkpoints: weights as safetensors, optimizer and loader state, committed atomically.

A checkpoint is a directory ``step-NNNNNNNN/`` holding ``model.safetensors`` (HF key names),
``optimizer.pt`` (AdamW state keyed by parameter name; read back with ``weights_only=True``) and
``trainer.json`` (step, model and train config, the loader state, the tokenizer the data was made
with). ``uvd.format.checkpoints`` commits it, as it does tokenizer training's: written as
``.step-NNNNNNNN.tmp/``, fsynced, renamed into place, then ``latest`` names it, so a ``kill -9`` at
any moment leaves the previous checkpoint intact and loadable.

State dicts go through torch.distributed.checkpoint's ``get_state_dict`` / ``set_state_dict`` with
full (gathered) state, so a plain, DDP or FSDP model saves and loads the same files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict

from uvd.format import checkpoints
from uvd.model.llama import Llama, LlamaConfig

WEIGHTS = "model.safetensors"
OPTIMIZER = "optimizer.pt"
TRAINER = "trainer.json"
LATEST = checkpoints.LATEST


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    step: int
    model_config: LlamaConfig
    trainer: dict[str, Any]  # the contents of trainer.json: train config, loader state, tokenizer, ...


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
    if not is_writer:
        return Path(out_dir) / checkpoints.step_dir_name(step)

    def write_files(directory: Path) -> None:
        safetensors.torch.save_file({k: v.contiguous() for k, v in model_state.items()},
                                    str(directory / WEIGHTS), metadata={"format": "pt"})
        if optim_state is not None:
            torch.save(optim_state, directory / OPTIMIZER)
        (directory / TRAINER).write_text(json.dumps({**trainer, "step": step}, indent=2, sort_keys=True) + "\n")

    return checkpoints.commit_checkpoint(out_dir, step, write_files, keep=keep)


def latest(out_dir: str | Path) -> Path | None:
    """The newest complete checkpoint under ``out_dir``, or None."""
    return checkpoints.latest_checkpoint(out_dir, required=(TRAINER,))


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

