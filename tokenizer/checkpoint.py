"""uvd's tokenizer checkpoints, and the ``random:<config>[:<seed>]`` stand-in for untrained runs.

A checkpoint is a directory with ``config.json`` (a VQGANConfig plus ``format``, ``trained`` and
``notes``) and ``model.safetensors`` (taming key names; no pickle anywhere). Every loaded model
carries a TokenizerInfo whose sha256 names its exact weights, so a build's provenance can tell
which tokenizer made its tokens, and a decode can warn when the weights differ.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from .config import VQGANConfig, get_config
from .vqgan import VQGAN

FORMAT = "uvd-vqgan"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
RANDOM_PREFIX = "random:"


@dataclass(frozen=True)
class TokenizerInfo:
    spec: str  # what load_tokenizer was given
    config_name_or_path: str  # a CONFIGS name for random weights, else the checkpoint directory
    trained: bool  # False for random weights: their tokens say nothing about the images
    sha256: str  # of the weights' safetensors bytes
    codebook_size: int
    resolution: int
    tokens_per_image: int


def _safetensors_bytes(model: VQGAN) -> bytes:
    """The state dict as safetensors bytes: contiguous CPU tensors (channels_last weights are not)."""
    return save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_tokenizer(model: VQGAN, directory: str | os.PathLike, *, trained: bool, notes: str = "") -> Path:
    """Write ``model`` as a uvd checkpoint directory; each file appears whole or not at all.

    The weights are written before config.json, so a directory with a config.json always has
    the weights that go with it.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _write_atomically(directory / WEIGHTS_NAME, _safetensors_bytes(model))
    meta = {**model.config.to_dict(), "format": FORMAT, "trained": bool(trained), "notes": notes}
    _write_atomically(directory / CONFIG_NAME, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())
    return directory


def load_tokenizer(spec: str, *, device: str | torch.device = "cpu") -> VQGAN:
    """A VQGAN in eval mode on ``device`` (channels_last), with ``model.info`` set.

    ``spec`` is a checkpoint directory written by save_tokenizer, or ``random:<config>[:<seed>]``
    for deterministic random weights (seed defaults to 0) from one of CONFIGS.
    """
    spec = str(spec)
    if spec.startswith(RANDOM_PREFIX):
        model, info = _random_model(spec)
    else:
        model, info = _model_from_directory(spec)
    model.info = info
    return model.to(device=device, memory_format=torch.channels_last).eval()


def _random_model(spec: str) -> tuple[VQGAN, TokenizerInfo]:
    parts = spec[len(RANDOM_PREFIX):].split(":")
    if len(parts) > 2 or not parts[0]:
        raise ValueError(f"bad tokenizer spec {spec!r}: expected random:<config>[:<seed>]")
    config = get_config(parts[0])
    try:
        seed = int(parts[1]) if len(parts) == 2 else 0
        if seed < 0:
            raise ValueError
    except ValueError:
        raise ValueError(f"bad tokenizer spec {spec!r}: the seed must be a non-negative integer") from None
    # A private RNG stream: the weights depend on the seed alone, and callers' RNG state is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VQGAN(config=config)
    sha256 = hashlib.sha256(_safetensors_bytes(model)).hexdigest()
    return model, _info(spec, parts[0], config, trained=False, sha256=sha256)


def _model_from_directory(spec: str) -> tuple[VQGAN, TokenizerInfo]:
    directory = Path(spec)
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    if not config_path.is_file() or not weights_path.is_file():
        raise FileNotFoundError(f"tokenizer spec {spec!r} is neither random:<config>[:<seed>] nor a directory "
                                f"holding {CONFIG_NAME} and {WEIGHTS_NAME}")
    meta = json.loads(config_path.read_text())
    if meta.pop("format", None) != FORMAT:
        raise ValueError(f"{config_path}: not a {FORMAT!r} checkpoint (missing or different 'format')")
    trained = bool(meta.pop("trained", False))
    meta.pop("notes", None)
    config = VQGANConfig.from_dict(meta)

    weights = weights_path.read_bytes()
    tensors = load_file(weights_path)
    with torch.device("meta"):  # shapes only: the file supplies every value
        model = VQGAN(config=config)
    expected = model.state_dict()
    _check_state_dict(tensors, expected, weights_path)
    tensors = {k: v.to(expected[k].dtype) for k, v in tensors.items()}
    model.load_state_dict(tensors, strict=True, assign=True)
    sha256 = hashlib.sha256(weights).hexdigest()
    return model, _info(spec, str(directory.resolve()), config, trained=trained, sha256=sha256)


def _check_state_dict(tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], path: Path) -> None:
    """One ValueError naming every disagreement, rather than torch's first-error message."""
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    mismatched = [f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(expected[k].shape)}"
                  for k in sorted(set(tensors) & set(expected)) if tensors[k].shape != expected[k].shape]
    problems = [f"{label} {items}" for label, items in
                (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", mismatched))
                if items]
    if problems:
        raise ValueError(f"{path} does not match its config.json: " + "; ".join(problems))


def _info(spec: str, name_or_path: str, config: VQGANConfig, *, trained: bool, sha256: str) -> TokenizerInfo:
    return TokenizerInfo(spec=spec, config_name_or_path=name_or_path, trained=trained, sha256=sha256,
                         codebook_size=config.num_embeddings, resolution=config.resolution,
                         tokens_per_image=config.tokens_per_image)
