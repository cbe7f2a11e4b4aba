"""Loading any tokenizer spec, and uvd's own checkpoint format.

``load_tokenizer`` takes:

- ``random:<config>[:<seed>]``: deterministic random weights of a named config (untrained runs);
- (c) a uvd checkpoint directory: ``config.json`` (a VQGANConfig plus ``format``, ``trained`` and
  ``notes``) and ``model.safetensors`` (taming key names; no pickle anywhere);
- (a) an LVM / open-muse ``VQGANModel`` directory, or (b) a taming-transformers ``.ckpt`` with
  its YAML (see formats.py).

Every loaded model carries a TokenizerInfo whose sha256 names its exact weights, so a build's
provenance can tell which tokenizer made its tokens, and a decode can warn when they differ.
The sha256 is of the weights as uvd writes them (safetensors of the state dict), so a foreign
checkpoint and its ``uvd tokenizer convert`` output have the same one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from uvd.format import storage
from uvd.tokenizer.config import TokenizerInfo, VQGANConfig, get_config
from uvd.tokenizer.formats import CheckpointError, is_open_muse_dir, read_open_muse, read_taming
from uvd.tokenizer.vqgan import VQGAN

FORMAT = "uvd-vqgan"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
RANDOM_PREFIX = "random:"
BUNDLED = "bundled"  # spec name of the small trained tokenizer shipped in tokenizer/weights/bundled
BUNDLED_DIR = Path(__file__).parent / "weights" / "bundled"


def _safetensors_bytes(model: VQGAN) -> bytes:
    """The state dict as safetensors bytes: contiguous CPU tensors (channels_last weights are not)."""
    return save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})


def save_tokenizer(model: VQGAN, directory: str | os.PathLike, *, trained: bool, notes: str = "") -> Path:
    """Write ``model`` as a uvd checkpoint directory; each file appears whole or not at all.

    The weights are written before config.json, so a directory with a config.json always has
    the weights that go with it.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    storage.atomic_write(str(directory / WEIGHTS_NAME), _safetensors_bytes(model))
    meta = {**model.config.to_dict(), "format": FORMAT, "trained": bool(trained), "notes": notes}
    storage.atomic_write(str(directory / CONFIG_NAME), (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())
    return directory


def load_tokenizer(spec: str, *, device: str | torch.device = "cpu", yaml_path: str | None = None,
                   compile: bool = False) -> VQGAN:
    """A VQGAN in eval mode on ``device`` (channels_last), with ``model.info`` set.

    ``spec``: ``bundled`` (the small trained tokenizer shipped with uvd, the default),
    ``random:<config>[:<seed>]`` (seed defaults to 0), a uvd checkpoint directory, an
    LVM / open-muse directory, or a taming ``.ckpt`` (its YAML is found beside it, or given as
    ``yaml_path``). Problems with a checkpoint raise a one-line ``CheckpointError``.
    ``compile``: see ``VQGAN.compile_for_inference``.
    """
    spec = str(spec)
    path = BUNDLED_DIR if spec == BUNDLED else Path(spec)
    if spec.startswith(RANDOM_PREFIX):
        model, info = _random_model(spec)
    elif path.is_file() and path.suffix == ".ckpt":
        config, tensors, source = read_taming(path, Path(yaml_path) if yaml_path else None)
        model, info = _model_from_tensors(spec, "taming", config, tensors, source, trained=True)
    elif path.is_dir() and is_open_muse_dir(path):
        config, tensors, source = read_open_muse(path)
        model, info = _model_from_tensors(spec, "open-muse", config, tensors, source, trained=True)
    else:
        model, info = _model_from_directory(spec, path)
    model.info = info
    model = model.to(device=device, memory_format=torch.channels_last).eval()
    return model.compile_for_inference() if compile else model


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
    return model, _info(spec, parts[0], config, fmt="random", trained=False, sha256=sha256)


def _model_from_directory(spec: str, directory: Path) -> tuple[VQGAN, TokenizerInfo]:
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    if not config_path.is_file() or not weights_path.is_file():
        raise FileNotFoundError(f"tokenizer spec {spec!r} is neither random:<config>[:<seed>], a taming .ckpt, "
                                f"nor a directory holding {CONFIG_NAME} and {WEIGHTS_NAME} (uvd) or "
                                f"{CONFIG_NAME} with _class_name VQGANModel (LVM / open-muse)")
    try:
        meta = json.loads(config_path.read_text())
    except ValueError as e:
        raise CheckpointError(f"{config_path}: not valid JSON ({e})") from None
    if meta.pop("format", None) != FORMAT:
        raise CheckpointError(f"{config_path}: not a {FORMAT!r} checkpoint (missing or different 'format')")
    trained = bool(meta.pop("trained", False))
    meta.pop("notes", None)
    try:
        config = VQGANConfig.from_dict(meta)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{config_path}: {e}") from None
    try:
        tensors = load_file(weights_path)
    except Exception as e:  # safetensors raises its own error types for damaged headers
        raise CheckpointError(f"{weights_path}: unreadable safetensors file ({e})") from None
    model, info = _model_from_tensors(spec, FORMAT, config, tensors, weights_path, trained=trained)
    # uvd's own files are hashed as stored: the provenance names the exact file.
    return model, dataclasses.replace(info, sha256=hashlib.sha256(weights_path.read_bytes()).hexdigest(),
                                      config_name_or_path=str(directory.resolve()))


def _model_from_tensors(spec: str, fmt: str, config: VQGANConfig, tensors: dict[str, torch.Tensor], source: Path,
                        *, trained: bool) -> tuple[VQGAN, TokenizerInfo]:
    with torch.device("meta"):  # shapes only: the file supplies every value
        model = VQGAN(config=config)
    expected = model.state_dict()
    check_state_dict(tensors, expected, source)
    tensors = {k: v.to(expected[k].dtype).contiguous() for k, v in tensors.items()}
    model.load_state_dict(tensors, strict=True, assign=True)
    sha256 = hashlib.sha256(_safetensors_bytes(model)).hexdigest()
    return model, _info(spec, str(source.resolve()), config, fmt=fmt, trained=trained, sha256=sha256)


def check_state_dict(tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], path: Path,
                     *, limit: int = 8) -> None:
    """One single-line CheckpointError naming every kind of disagreement (the first ``limit`` of
    each), rather than torch's first-error message."""
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    mismatched = [f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(expected[k].shape)}"
                  for k in sorted(set(tensors) & set(expected)) if tensors[k].shape != expected[k].shape]
    problems = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                         ("shape mismatches", mismatched)):
        if items:
            more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
            problems.append(f"{len(items)} {label} {items[:limit]}{more}")
    if problems:
        raise CheckpointError(f"{path} does not match its config: " + "; ".join(problems))


def _info(spec: str, name_or_path: str, config: VQGANConfig, *, fmt: str, trained: bool,
          sha256: str) -> TokenizerInfo:
    return TokenizerInfo(spec=spec, config_name_or_path=name_or_path, format=fmt, trained=trained, sha256=sha256,
                         codebook_size=config.num_embeddings, resolution=config.resolution,
                         tokens_per_image=config.tokens_per_image)
