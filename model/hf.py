"""Hugging Face Llama format: export a checkpoint that ``transformers.LlamaForCausalLM`` loads, and
import one back.

The model's module names are HF's (llama.py), and RoPE uses HF's rotate-half layout, so the
weights are copied as they are; only the config is translated. The export needs no
``transformers``; the tests check it against ``LlamaForCausalLM`` itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import safetensors.torch
import torch

from uvd.model.llama import Llama, LlamaConfig

HF_CONFIG = "config.json"
HF_WEIGHTS = "model.safetensors"
HF_INDEX = "model.safetensors.index.json"


def hf_config(cfg: LlamaConfig) -> dict:
    """config.json for LlamaForCausalLM; rope given both ways transformers has read it (4.x, 5.x)."""
    out = cfg.to_hf()
    out.update(rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta}, torch_dtype="float32",
               bos_token_id=None, eos_token_id=None, pad_token_id=None, use_cache=True)
    return out


def export_hf(model: Llama, directory: str | Path) -> Path:
    """Write ``config.json`` and ``model.safetensors`` (HF key names, fp32, contiguous)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    safetensors.torch.save_file(weights, str(directory / HF_WEIGHTS), metadata={"format": "pt"})
    (directory / HF_CONFIG).write_text(json.dumps(hf_config(model.config), indent=2, sort_keys=True) + "\n")
    return directory


def config_from_hf(data: dict, *, source: str = "config.json") -> LlamaConfig:
    """A LlamaForCausalLM config.json -> LlamaConfig; variants this model cannot express are refused."""
    problems = []
    if data.get("model_type", "llama") != "llama":
        problems.append(f"model_type {data.get('model_type')!r} is not llama")
    heads = data["num_attention_heads"]
    if data.get("num_key_value_heads", heads) != heads:
        problems.append("grouped-query attention (num_key_value_heads != num_attention_heads)")
    if data.get("tie_word_embeddings", False):
        problems.append("tied embeddings (LVM's are untied)")
    if data.get("attention_bias", False) or data.get("mlp_bias", False):
        problems.append("bias terms")
    if data.get("hidden_act", "silu") != "silu":
        problems.append(f"hidden_act {data.get('hidden_act')!r}")
    rope = data.get("rope_parameters") or data.get("rope_scaling") or {}
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        problems.append(f"rope scaling {rope}")
    if problems:
        raise ValueError(f"{source}: not importable: " + "; ".join(problems))
    theta = data.get("rope_theta", rope.get("rope_theta", 10000.0))
    return LlamaConfig(d_model=data["hidden_size"], ff_dim=data["intermediate_size"],
                       n_layers=data["num_hidden_layers"], n_heads=heads, vocab_size=data["vocab_size"],
                       max_seq_len=data.get("max_position_embeddings", 4096), rope_theta=float(theta),
                       norm_eps=data.get("rms_norm_eps", 1e-6), init_std=data.get("initializer_range", 0.02))


def import_hf(directory: str | Path, device: str | torch.device = "cpu") -> Llama:
    """A Llama (eval mode) from a HF Llama folder: ``model.safetensors`` or a sharded index."""
    directory = Path(directory)
    cfg = config_from_hf(json.loads((directory / HF_CONFIG).read_text()), source=str(directory / HF_CONFIG))
    if (directory / HF_WEIGHTS).is_file():
        files = [directory / HF_WEIGHTS]
    elif (directory / HF_INDEX).is_file():
        index = json.loads((directory / HF_INDEX).read_text())
        files = [directory / f for f in sorted(set(index["weight_map"].values()))]
    else:
        raise FileNotFoundError(f"{directory}: no {HF_WEIGHTS} or {HF_INDEX} (only safetensors is read)")
    state = {}
    for f in files:
        state.update(safetensors.torch.load_file(str(f)))
    state.pop("model.rotary_emb.inv_freq", None)  # a buffer some exports carry; recomputed here
    with torch.device("meta"):
        model = Llama(cfg)
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    bad = [k for k in set(state) & set(expected) if state[k].shape != expected[k].shape]
    if missing or unexpected or bad:
        raise ValueError(f"{directory}: missing {missing[:8]}, unexpected {unexpected[:8]}, wrong shape {bad[:8]}")
    model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True, assign=True)
    return model.to(device).eval()
