"""The LLaMA-style decoder LVM trains on visual sentences, in one readable file.

Architecture and size table follow the LVM release (ytongbai/LVM,
``EasyLM/models/llama/llama_model.py``, ``LLAMA_STANDARD_CONFIGS``): pre-norm RMSNorm,
rotary position embeddings, SwiGLU MLP, no biases, no dropout, untied input/output
embeddings, N(0, 0.02) init everywhere.

Two deliberate choices so that a later Hugging Face export is a file copy:

* module names reproduce ``transformers.LlamaForCausalLM`` exactly, so
  ``state_dict()`` keys are HF's keys (``model.layers.0.self_attn.q_proj.weight``...);
* RoPE uses HF's "rotate_half" convention (dimension ``i`` pairs with ``i + head_dim/2``),
  so q/k projection rows are already in HF head layout. (EasyLM rotates interleaved
  pairs and has to permute wq/wk when converting; we never need to.)

The forward is written for speed within that layout: q/k/v and gate/up are each one matmul over
concatenated weights (the parameters stay separate), RoPE turns q and k in one pass, and attention is
SDPA with ``is_causal``. ``torch.compile`` (``uvd train --compile``) then fuses RMSNorm, RoPE, SwiGLU
and the loss into a few kernels (docs/benchmarks.md, Trainer).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

NUM_CODES = 8192  # VQGAN codebook size: the token ids found in shards
NUM_SPECIAL = 100  # special ids above the codes (never in shards); LVM reserves 100
VOCAB_SIZE = NUM_CODES + NUM_SPECIAL  # 8292, as in the LVM release


@dataclass(frozen=True)
class LlamaConfig:
    """Model shape. Field names are ours; ``to_hf`` names the HF equivalents."""

    d_model: int  # hidden_size
    ff_dim: int  # intermediate_size
    n_layers: int  # num_hidden_layers
    n_heads: int  # num_attention_heads (no grouped-query attention in LVM)
    vocab_size: int = VOCAB_SIZE
    max_seq_len: int = 4096  # LVM trains on 4096-token rows = 16 images x 256 tokens
    rope_theta: float = 10000.0
    # 1e-6 is what every vqlm_* size in the LVM release uses (rms_norm_eps), and the
    # LLaMA-1 / HF LlamaConfig default; LLaMA-2 moved to 1e-5.
    norm_eps: float = 1e-6
    init_std: float = 0.02  # initializer_range: std of every Linear/Embedding init

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.head_dim % 2:
            raise ValueError(f"head_dim {self.head_dim} must be even for rotary embeddings")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def num_params(self) -> int:
        """Closed-form parameter count (what ``Llama(cfg).num_params()`` returns)."""
        d, ff, V = self.d_model, self.ff_dim, self.vocab_size
        per_layer = 4 * d * d + 3 * d * ff + 2 * d  # q,k,v,o + gate,up,down + 2 norms
        return 2 * V * d + self.n_layers * per_layer + d  # embed + lm_head + layers + final norm

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token, 6N + 12 L d T (PaLM appendix B): N counts the matmul weights
        (every parameter but the input embedding table, a lookup), the second term attention."""
        n = self.num_params() - self.vocab_size * self.d_model
        return 6 * n + 12 * self.n_layers * self.d_model * seq_len

    def to_hf(self) -> dict:
        """The matching ``transformers.LlamaConfig`` fields (for a later export)."""
        return {
            "architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "vocab_size": self.vocab_size, "hidden_size": self.d_model,
            "intermediate_size": self.ff_dim, "num_hidden_layers": self.n_layers,
            "num_attention_heads": self.n_heads, "num_key_value_heads": self.n_heads,
            "max_position_embeddings": self.max_seq_len, "rope_theta": self.rope_theta,
            "rms_norm_eps": self.norm_eps, "initializer_range": self.init_std,
            "hidden_act": "silu", "tie_word_embeddings": False,
            "attention_bias": False, "mlp_bias": False,
        }


# The LVM release's sizes (d_model, ff_dim, n_layers, n_heads), names as there.
CONFIGS: dict[str, LlamaConfig] = {
    "vqlm_100m": LlamaConfig(d_model=640, ff_dim=1664, n_layers=22, n_heads=10),
    "vqlm_300m": LlamaConfig(d_model=1024, ff_dim=2688, n_layers=22, n_heads=8),
    "vqlm_600m": LlamaConfig(d_model=1536, ff_dim=4096, n_layers=22, n_heads=16),
    "vqlm_1b": LlamaConfig(d_model=2048, ff_dim=5504, n_layers=22, n_heads=16),
    "vqlm_3b": LlamaConfig(d_model=3200, ff_dim=8640, n_layers=26, n_heads=32),
    "vqlm_7b": LlamaConfig(d_model=4096, ff_dim=11008, n_layers=32, n_heads=32),
    "vqlm_13b": LlamaConfig(d_model=5120, ff_dim=13824, n_layers=40, n_heads=40),
    "vqlm_20b": LlamaConfig(d_model=6144, ff_dim=16128, n_layers=46, n_heads=48),
    "vqlm_30b": LlamaConfig(d_model=6656, ff_dim=17920, n_layers=60, n_heads=52),
    # Ours, not LVM's: trains on a CPU in seconds (ff = 8/3 * d rounded up to 32).
    # (LVM's own vqlm_debug is d 128, ff 256, 2 layers, 4 heads.)
    "debug": LlamaConfig(d_model=128, ff_dim=352, n_layers=2, n_heads=4),
}


def get_config(name: str, **overrides) -> LlamaConfig:
    """A size from ``CONFIGS``, optionally with fields replaced (e.g. ``max_seq_len``)."""
    if name not in CONFIGS:
        raise KeyError(f"unknown model config {name!r}; choose one of: {', '.join(CONFIGS)}")
    return dataclasses.replace(CONFIGS[name], **overrides)


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight, computed in float32 (as HF does under bf16)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


def rotary_cos_sin(seq_len: int, head_dim: int, theta: float,
                   device: torch.device | None = None, start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and signed sin tables, each (seq_len, head_dim), of positions start.., in HF's rotate_half layout.

    Frequency ``theta ** (-2i / head_dim)`` drives dimensions ``i`` and ``i + head_dim/2``. The sin
    table carries rotate_half's minus sign on its first half, so that ``apply_rotary`` needs no
    negation: one kernel fewer per call in eager mode.
    """
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim))
    positions = torch.arange(start, start + seq_len, device=device, dtype=torch.float32)
    angles = torch.outer(positions, inv_freq)  # (T, Dh/2)
    sin = angles.sin()
    return torch.cat([angles, angles], dim=-1).cos(), torch.cat([-sin, sin], dim=-1)  # (T, Dh) each


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate q or k by position: x * cos + rotate_half(x) * sin, with rotate_half(x) = (-x2, x1)
    written as the half-swap (x2, x1) times the signed sin of ``rotary_cos_sin``. cos/sin broadcast
    against x: (T, Dh) for x (B, H, T, Dh), (T, 1, 1, Dh) for x (B, T, 2, H, Dh)."""
    swapped = x.roll(x.shape[-1] // 2, dims=-1)  # (x1, x2) -> (x2, x1)
    return x * cos.to(x.dtype) + swapped * sin.to(x.dtype)


def document_causal_mask(document_ids: torch.Tensor) -> torch.Tensor:
    """Boolean (B, 1, T, T) mask, True where query t may attend to key s: s <= t and
    both tokens belong to the same document. For rows that pack several sentences."""
    T = document_ids.shape[1]
    same_doc = document_ids[:, :, None] == document_ids[:, None, :]  # (B, T) -> (B, T, T)
    causal = torch.ones(T, T, dtype=torch.bool, device=document_ids.device).tril()
    return (same_doc & causal)[:, None]  # (B, T, T) -> (B, 1, T, T)


def fused_linear(x: torch.Tensor, *layers: nn.Linear) -> torch.Tensor:
    """Several bias-free projections of the same input as one matmul (their outputs side by side).

    The weights stay separate parameters, so checkpoint keys and the HF layout do not change; one
    larger matmul (and one in each direction of the backward) beats several smaller ones, and the
    concatenation copies only weights, which are small next to the activations it saves passes over.
    """
    return F.linear(x, torch.cat([layer.weight for layer in layers]))


@dataclass
class KVCache:
    """Keys and values of every position a model has already seen, per layer, so that sampling
    feeds only the new token instead of the whole window (HF's ``past_key_values``). Buffers of
    ``capacity`` positions are filled in place: no copy of the past per new token."""

    capacity: int
    length: int = 0
    keys: list[torch.Tensor] = dataclasses.field(default_factory=list)
    values: list[torch.Tensor] = dataclasses.field(default_factory=list)

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store (B, H, T, Dh) keys and values after the cached ones; returns all of them so far."""
        end = self.length + k.shape[2]
        if end > self.capacity:
            raise ValueError(f"KV cache of {self.capacity} positions cannot take {end}")
        if layer == len(self.keys):
            shape = (k.shape[0], k.shape[1], self.capacity, k.shape[3])
            self.keys.append(k.new_empty(shape))
            self.values.append(v.new_empty(shape))
        self.keys[layer][:, :, self.length:end] = k
        self.values[layer][:, :, self.length:end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]


def _cache_mask(t_new: int, t_all: int, device) -> torch.Tensor:
    """(t_new, t_all) bool: query i (at position t_all - t_new + i) may see keys up to itself."""
    keys = torch.arange(t_all, device=device)
    return keys[None, :] <= torch.arange(t_all - t_new, t_all, device=device)[:, None]


class Attention(nn.Module):
    """Multi-head causal self-attention with rotary q/k (HF ``LlamaAttention``)."""

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        d = cfg.d_model
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.o_proj = nn.Linear(d, d, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                attention_mask: torch.Tensor | None = None, cache: KVCache | None = None,
                layer: int = 0) -> torch.Tensor:
        """x (B, T, D); cos/sin (T, Dh) from ``rotary_cos_sin``; with a cache, x continues its positions."""
        B, T, D = x.shape
        H, Dh = self.n_heads, self.head_dim
        qkv = fused_linear(x, self.q_proj, self.k_proj, self.v_proj)  # (B, T, D) -> (B, T, 3D)
        qkv = qkv.view(B, T, 3, H, Dh)  # (B, T, 3D) -> (B, T, 3, H, Dh)
        qk = apply_rotary(qkv[:, :, :2], cos[:, None, None], sin[:, None, None])  # q and k in one pass
        q, k = qk.permute(2, 0, 3, 1, 4).unbind(0)  # (B, T, 2, H, Dh) -> (2, B, H, T, Dh) -> 2 x (B, H, T, Dh)
        v = qkv[:, :, 2].transpose(1, 2)  # (B, T, H, Dh) -> (B, H, T, Dh)
        past = cache.length if cache is not None else 0
        if cache is not None:
            k, v = cache.append(layer, k, v)  # (B, H, past + T, Dh)
        if past and attention_mask is None:  # the queries sit after the cached keys
            mask = None if T == 1 else _cache_mask(T, k.shape[2], x.device)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, T, Dh)
        elif attention_mask is None:  # is_causal: the kernel skips the masked blocks, no (T, T) mask is built
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, Dh)
        else:  # caller's mask already includes causality (see document_causal_mask)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask)  # (B, H, T, Dh)
        y = y.transpose(1, 2).reshape(B, T, D)  # (B, H, T, Dh) -> (B, T, H, Dh) -> (B, T, D)
        return self.o_proj(y)


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x)). EasyLM calls these w1, w3, w2."""

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.d_model, cfg.ff_dim, bias=False)
        self.up_proj = nn.Linear(cfg.d_model, cfg.ff_dim, bias=False)
        self.down_proj = nn.Linear(cfg.ff_dim, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = fused_linear(x, self.gate_proj, self.up_proj).chunk(2, dim=-1)  # (B, T, 2F) -> 2 x (B, T, F)
        return self.down_proj(F.silu(gate) * up)


class DecoderLayer(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                attention_mask: torch.Tensor | None = None, cache: KVCache | None = None,
                layer: int = 0) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, attention_mask, cache, layer)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    """Embeddings, the layer stack and the final norm (HF ``LlamaModel``)."""

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)


class Llama(nn.Module):
    """Decoder + untied ``lm_head``; ``state_dict`` keys equal HF ``LlamaForCausalLM``'s."""

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.config = cfg
        self.model = LlamaModel(cfg)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        # LVM/EasyLM: plain N(0, initializer_range) for every kernel and the embedding.
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.init_std)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, input_ids: torch.Tensor, targets: torch.Tensor | None = None,
                loss_mask: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, cache: KVCache | None = None,
                logits_to_keep: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """input_ids, targets, loss_mask: (B, T). Returns logits (B, T, V) and the mean
        cross-entropy over positions where loss_mask is true (all if None), or None
        without targets. attention_mask: optional bool (B, 1, T, T), True = may attend;
        it replaces the plain causal mask, so it must include causality itself.
        cache: for sampling, positions seen before (input_ids continue them; filled in place);
        logits_to_keep: only the last n positions' logits (0 = all), as HF's generate asks."""
        B, T = input_ids.shape
        start = cache.length if cache is not None else 0
        if start + T > self.config.max_seq_len:
            raise ValueError(f"sequence length {start + T} exceeds max_seq_len {self.config.max_seq_len}")
        cos, sin = rotary_cos_sin(T, self.config.head_dim, self.config.rope_theta, input_ids.device, start)
        x = self.model.embed_tokens(input_ids)  # (B, T) -> (B, T, D)
        for i, layer in enumerate(self.model.layers):
            x = layer(x, cos, sin, attention_mask, cache, i)
        if cache is not None:
            cache.length += T
        if logits_to_keep:
            x = x[:, -logits_to_keep:]
        logits = self.lm_head(self.model.norm(x))  # (B, T, D) -> (B, T, V)
        if targets is None:
            return logits, None
        per_token = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(),
                                    reduction="none")  # (B, T, V) -> (B*T, V) -> (B*T,)
        if loss_mask is None:
            return logits, per_token.mean()
        mask = loss_mask.flatten().to(per_token.dtype)  # (B, T) -> (B*T,)
        return logits, (per_token * mask).sum() / mask.sum().clamp(min=1.0)
