"""Generating images token by token, as LVM's release does (evaluation/vqlm_demo/inference.py,
``LocalInferenceModel.generate_once``).

The window is always whole frames. With ``context_frames`` = 16, the context is first trimmed to its
last 15 images; the frames that still fit in 16 are generated in one go (``min(16 - kept, n_new)``);
after that the stream is trimmed to its last 15 images again and one more image is generated, until
``n_new_frames`` are done (:func:`frame_schedule`). Each ``n_candidates`` draw is independent (they
run as one batch). Sampling follows HF ``generate(do_sample=True)`` as LVM calls it: ids from the
codebook size up are suppressed, then temperature, top-k (50: HF's default, which LVM does not
override) and top-p. A key/value cache makes each new token one position of work; every window
starts from an empty cache, as each of LVM's ``generate`` calls does, so positions restart at 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from uvd.model.llama import NUM_CODES, KVCache, Llama

TOKENS_PER_IMAGE = 256


@dataclass(frozen=True)
class GenerationConfig:
    n_new_frames: int = 1
    n_candidates: int = 1
    context_frames: int = 16  # the model's window in images (LVM: 16 = 4096 tokens)
    temperature: float = 1.0  # 0: greedy (LVM always samples)
    top_p: float = 1.0
    top_k: int = 50  # HF generate's default, in force in LVM's generate_once; 0 = off
    seed: int = 0
    num_codes: int = NUM_CODES  # ids >= this are never drawn (the tokenizer's codebook size)
    tokens_per_image: int = TOKENS_PER_IMAGE

    def __post_init__(self) -> None:
        if self.n_new_frames < 1 or self.n_candidates < 1 or self.context_frames < 2:
            raise ValueError("n_new_frames and n_candidates must be >= 1 and context_frames >= 2")


def filter_logits(logits: torch.Tensor, *, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                  num_codes: int = NUM_CODES) -> torch.Tensor:
    """(B, V) logits -> logits with special ids, and whatever top-k / top-p exclude, at -inf (HF's
    suppress_tokens, temperature, top-k and top-p warpers, in that order)."""
    logits = logits.float().clone()
    logits[:, num_codes:] = float("-inf")
    logits = logits / max(temperature, 1e-6)
    if top_k > 0:
        kth = torch.topk(logits, min(top_k, num_codes), dim=-1).values[:, -1:]
        logits[logits < kth] = float("-inf")
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(dim=-1)
        # HF drops a token once the probability mass before it reaches top_p; the first always stays
        drop_sorted = probs.cumsum(dim=-1) - probs >= top_p
        drop_sorted[:, 0] = False
        drop = torch.zeros_like(drop_sorted).scatter(1, order, drop_sorted)
        logits[drop] = float("-inf")
    return logits


def frame_schedule(n_context: int, n_new: int, context_frames: int = 16) -> list[int]:
    """Images generated per window, as generate_once: first all that fit after the last
    ``context_frames - 1`` context images, then one at a time."""
    if n_context < 1:
        raise ValueError("generation needs at least one context image")
    kept = min(n_context, context_frames - 1)
    first = min(context_frames - kept, n_new)
    return [first] + [1] * (n_new - first)


def _pick(logits: torch.Tensor, cfg: GenerationConfig, generator: torch.Generator) -> torch.Tensor:
    """(B, V) logits -> (B, 1) next ids."""
    last = filter_logits(logits, temperature=cfg.temperature or 1.0, top_k=cfg.top_k, top_p=cfg.top_p,
                         num_codes=cfg.num_codes)
    if cfg.temperature == 0:
        return last.argmax(dim=-1, keepdim=True)
    return torch.multinomial(last.softmax(dim=-1).cpu(), 1, generator=generator).to(logits.device)


@torch.no_grad()
def sample_tokens(model: Llama, ids: torch.Tensor, n_tokens: int, cfg: GenerationConfig,
                  generator: torch.Generator) -> torch.Tensor:
    """One ``generate`` call: (B, T) window -> (B, n_tokens) sampled continuation."""
    cache = KVCache(capacity=ids.shape[1] + n_tokens)
    logits, _ = model(ids, cache=cache, logits_to_keep=1)
    new = []
    for i in range(n_tokens):
        token = _pick(logits[:, -1], cfg, generator)
        new.append(token)
        if i + 1 < n_tokens:
            logits, _ = model(token, cache=cache, logits_to_keep=1)
    return torch.cat(new, dim=1)


@torch.no_grad()
def generate_frames(model: Llama, context: np.ndarray, cfg: GenerationConfig, device="cpu") -> np.ndarray:
    """(n_ctx, 256) context ids -> (n_candidates, n_new_frames, 256) generated ids (256: the
    config's tokens_per_image)."""
    t = cfg.tokens_per_image
    if cfg.context_frames * t > model.config.max_seq_len:
        raise ValueError(f"context_frames {cfg.context_frames} exceed the model's {model.config.max_seq_len} tokens")
    context = np.asarray(context).reshape(-1, t)
    generator = torch.Generator(device="cpu").manual_seed(cfg.seed)
    window = (cfg.context_frames - 1) * t
    ids = torch.as_tensor(context.reshape(1, -1).astype(np.int64), device=device).repeat(cfg.n_candidates, 1)
    ids = ids[:, -window:]
    new = []
    for n_frames in frame_schedule(len(context), cfg.n_new_frames, cfg.context_frames):
        tokens = sample_tokens(model, ids, n_frames * t, cfg, generator)
        new.append(tokens)
        ids = torch.cat([ids, tokens], dim=1)[:, -window:]
    out = torch.cat(new, dim=1).view(cfg.n_candidates, cfg.n_new_frames, t)
    return out.cpu().numpy()


def analogy_context(pairs: list[tuple[np.ndarray, np.ndarray]], query: np.ndarray) -> np.ndarray:
    """[x1, y1, x2, y2, ..., query] as one (2k + 1, 256) context: the model's next image is y."""
    return np.stack([img for pair in pairs for img in pair] + [query])
