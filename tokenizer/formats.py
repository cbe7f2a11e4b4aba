"""Checkpoints people already have: the LVM / open-muse folder and taming-transformers ``.ckpt``.

Both releases name their modules exactly as ``VQGAN.state_dict()`` does (modules.py keeps
taming's names), so the tensor key mapping is the identity; what differs is the container,
the config and the pixel range. docs/TOKENIZER.md has the full tables.

(a) LVM / open-muse ``VQGANModel`` folder: ``config.json`` (open-muse field names, which are
    ours, plus ``_class_name`` / ``_version`` bookkeeping) and ``model.safetensors`` or
    ``pytorch_model.bin``. Pixels go in as [0, 1] (LVM's tokenize scripts feed ``/ 255.0``
    images straight to ``encode`` and clamp ``decode_code`` output to [0, 1]).
(b) taming ``.ckpt`` (a PyTorch Lightning file: ``{"state_dict": ..., "epoch": ...}``) with its
    YAML (``model.params.{embed_dim, n_embed, ddconfig}``). ``loss.*`` tensors (discriminator,
    LPIPS) are dropped. Pixels in [-1, 1].

Pickled files are read with ``torch.load(weights_only=True)`` only: a file that needs more
than tensors and plain containers is refused, never executed.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file

from uvd.tokenizer.config import VQGANConfig

OPEN_MUSE_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
OPEN_MUSE_CLASS = "VQGANModel"
# open-muse VQGANModel.__init__ arguments that are VQGANConfig fields under the same name.
OPEN_MUSE_SHARED_FIELDS = ("resolution", "num_channels", "hidden_channels", "channel_mult", "num_res_blocks",
                           "attn_resolutions", "z_channels", "num_embeddings", "quantized_embed_dim", "dropout",
                           "commitment_cost")
# Architecture switches uvd does not implement; a checkpoint must have these values.
OPEN_MUSE_FIXED = {"no_attn_mid_block": False, "resample_with_conv": True}
TAMING_MODEL_TARGETS = ("taming.models.vqgan.VQModel", "ldm.models.autoencoder.VQModel",
                        "ldm.models.autoencoder.VQModelInterface")
TAMING_IGNORED_PREFIXES = ("loss.",)  # VQLPIPSWithDiscriminator: discriminator, LPIPS, logvar
TAMING_YAML_NAMES = ("model.yaml", "config.yaml")


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message is one line naming the file and the problem."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# --- pickles ---------------------------------------------------------------------------------

def load_weights_only(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; a refusal becomes a one-line CheckpointError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, EOFError, ValueError) as e:
        first = _one_line(str(e).splitlines()[0] if str(e) else type(e).__name__)
        raise CheckpointError(f"{path}: refused by torch.load(weights_only=True), which only reads tensors and "
                              f"plain containers ({type(e).__name__}: {first[:300]})") from None


def _tensor_dict(obj: Any, path: Path, what: str) -> dict[str, torch.Tensor]:
    if not isinstance(obj, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items()):
        raise CheckpointError(f"{path}: expected {what} to be a dict of name -> tensor")
    return obj


# --- (a) LVM / open-muse folder --------------------------------------------------------------

def is_open_muse_dir(directory: Path) -> bool:
    config = directory / "config.json"
    if not config.is_file():
        return False
    try:
        data = json.loads(config.read_text())
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("_class_name") == OPEN_MUSE_CLASS


def open_muse_config(data: dict[str, Any], *, source: str) -> VQGANConfig:
    """open-muse ``VQGANModel`` config.json -> VQGANConfig (pixels [0, 1])."""
    fields = {k: v for k, v in data.items() if not k.startswith("_")}  # _class_name, _version, ...
    for name, expected in OPEN_MUSE_FIXED.items():
        if fields.pop(name, expected) != expected:
            raise CheckpointError(f"{source}: {name}={data[name]!r} is not supported (uvd implements {expected!r})")
    unknown = sorted(set(fields) - set(OPEN_MUSE_SHARED_FIELDS))
    if unknown:
        raise CheckpointError(f"{source}: unknown open-muse VQGANModel config field(s) {unknown}")
    # open-muse builds VQGANModel with its own defaults for absent fields; the one that differs
    # from ours is the codebook size (open-muse: 1024).
    fields.setdefault("num_embeddings", 1024)
    try:
        config = VQGANConfig(**fields, model_input_range=(0.0, 1.0))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{source}: {_one_line(e)}") from None
    if config.num_res_blocks == 1 and config.attn_resolutions:
        # open-muse runs a level's attention only when it holds more than one block; taming (and
        # uvd) whenever it holds one. With one block per level the two give different codes.
        raise CheckpointError(f"{source}: num_res_blocks=1 with attn_resolutions {list(config.attn_resolutions)}: "
                              "open-muse skips that attention and uvd does not, so codes would differ")
    return config


def read_open_muse(directory: Path) -> tuple[VQGANConfig, dict[str, torch.Tensor], Path]:
    """(config, tensors, weights file) of an LVM / open-muse tokenizer folder."""
    config_path = directory / "config.json"
    try:
        data = json.loads(config_path.read_text())
    except ValueError as e:
        raise CheckpointError(f"{config_path}: not valid JSON ({_one_line(e)})") from None
    config = open_muse_config(data, source=str(config_path))
    for name in OPEN_MUSE_WEIGHTS:
        weights = directory / name
        if weights.is_file():
            break
    else:
        raise CheckpointError(f"{directory}: no weights file; expected one of {list(OPEN_MUSE_WEIGHTS)}")
    if weights.suffix == ".safetensors":
        try:
            tensors = load_file(weights)
        except Exception as e:  # safetensors raises its own error types for damaged headers
            raise CheckpointError(f"{weights}: unreadable safetensors file ({_one_line(e)[:300]})") from None
    else:
        tensors = _tensor_dict(load_weights_only(weights), weights, "the file")
    return config, tensors, weights


# --- (b) taming-transformers .ckpt + YAML ----------------------------------------------------

def find_taming_yaml(ckpt: Path) -> Path:
    """The YAML that goes with a taming checkpoint, found where the releases put it:
    ``<ckpt>.yaml``; ``model.yaml`` or ``config.yaml`` beside it; or ``../configs/`` (taming's
    ``logs/<run>/{checkpoints,configs}`` layout: ``model.yaml``, else a single ``*-project.yaml``)."""
    candidates = [ckpt.with_suffix(".yaml")] + [ckpt.parent / n for n in TAMING_YAML_NAMES]
    configs = ckpt.parent.parent / "configs"
    candidates += [configs / n for n in TAMING_YAML_NAMES]
    for path in candidates:
        if path.is_file():
            return path
    projects = sorted(configs.glob("*-project.yaml")) if configs.is_dir() else []
    if len(projects) == 1:
        return projects[0]
    raise CheckpointError(f"{ckpt}: no taming YAML config found (looked for {[str(c) for c in candidates]} and "
                          f"{configs}/*-project.yaml); pass it explicitly")


def taming_config(data: Any, *, source: str) -> VQGANConfig:
    """taming YAML (``model: {target, params: {embed_dim, n_embed, ddconfig}}``) -> VQGANConfig (pixels [-1, 1])."""
    model = data.get("model") if isinstance(data, dict) else None
    params = model.get("params") if isinstance(model, dict) else None
    if not isinstance(params, dict) or not isinstance(params.get("ddconfig"), dict):
        raise CheckpointError(f"{source}: not a taming model config (missing model.params.ddconfig)")
    target = model.get("target", "")
    if target not in TAMING_MODEL_TARGETS:
        raise CheckpointError(f"{source}: model.target {target!r} is not a plain VQ model; supported: "
                              f"{list(TAMING_MODEL_TARGETS)} (Gumbel and EMA quantizers store other keys)")
    dd = params["ddconfig"]
    if dd.get("double_z", False):
        raise CheckpointError(f"{source}: ddconfig.double_z=True is a KL autoencoder, not a VQGAN")
    if dd.get("out_ch", dd.get("in_channels")) != dd.get("in_channels"):
        raise CheckpointError(f"{source}: in_channels {dd.get('in_channels')} != out_ch {dd.get('out_ch')}")
    try:
        return VQGANConfig(resolution=dd["resolution"], num_channels=dd["in_channels"], hidden_channels=dd["ch"],
                           channel_mult=dd["ch_mult"], num_res_blocks=dd["num_res_blocks"],
                           attn_resolutions=dd["attn_resolutions"], z_channels=dd["z_channels"],
                           quantized_embed_dim=params["embed_dim"], num_embeddings=params["n_embed"],
                           dropout=dd.get("dropout", 0.0), model_input_range=(-1.0, 1.0))
    except KeyError as e:
        raise CheckpointError(f"{source}: taming config lacks {e}") from None
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{source}: {_one_line(e)}") from None


def read_taming(ckpt: Path, yaml_path: Path | None = None) -> tuple[VQGANConfig, dict[str, torch.Tensor], Path]:
    """(config, tensors without ``loss.*``, ckpt) of a taming checkpoint and its YAML."""

    yaml_path = Path(yaml_path) if yaml_path else find_taming_yaml(ckpt)
    try:
        data = yaml.safe_load(yaml_path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise CheckpointError(f"{yaml_path}: unreadable YAML ({_one_line(e)[:300]})") from None
    config = taming_config(data, source=str(yaml_path))
    obj = load_weights_only(ckpt)
    if not isinstance(obj, dict) or "state_dict" not in obj:
        raise CheckpointError(f"{ckpt}: not a taming/Lightning checkpoint (no 'state_dict')")
    state = _tensor_dict(obj["state_dict"], ckpt, "'state_dict'")
    return config, {k: v for k, v in state.items() if not k.startswith(TAMING_IGNORED_PREFIXES)}, ckpt
