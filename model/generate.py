"""Generating images token by token, as LVM prompts its model.

- sequential prompting: frames in, the next frames out;
- analogy prompting: (x, y) example pairs, then a query x; the model completes its y.

Sampling draws only codebook ids (the special ids above them are suppressed, as LVM's inference
does), with temperature, top-k and top-p. Like LVM, the context is a sliding window of the last
``context_frames - 1`` images. There is no key/value cache: every token is a full forward pass over
the window, which keeps the model file simple and is fast enough for the small models uvd trains.
"""

from __future__ import annotations

import numpy as np
import torch

from uvd.model.llama import NUM_CODES, Llama

TOKENS_PER_IMAGE = 256


def filter_logits(logits: torch.Tensor, *, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                  num_codes: int = NUM_CODES) -> torch.Tensor:
    """(B, V) logits -> logits with special ids, and whatever top-k / top-p exclude, at -inf."""
    logits = logits.float().clone()
    logits[:, num_codes:] = float("-inf")
    logits = logits / max(temperature, 1e-6)
    if top_k > 0:
        kth = torch.topk(logits, min(top_k, num_codes), dim=-1).values[:, -1:]
        logits[logits < kth] = float("-inf")
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(dim=-1)
        # drop a token once the probability mass before it already exceeds top_p (the first always stays)
        drop_sorted = probs.cumsum(dim=-1) - probs > top_p
        drop = torch.zeros_like(drop_sorted).scatter(1, order, drop_sorted)
        logits[drop] = float("-inf")
    return logits


@torch.no_grad()
def generate_images(model: Llama, context: np.ndarray, n_new: int, *, temperature: float = 1.0, top_k: int = 0,
                    top_p: float = 1.0, context_frames: int = 16, seed: int = 0, num_codes: int = NUM_CODES,
                    device="cpu") -> np.ndarray:
    """(n_ctx, 256) context token ids -> (n_new, 256) generated ids below ``num_codes`` (the
    tokenizer's codebook, which may be smaller than the model's 8192), greedy when temperature is 0."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    window = (context_frames - 1) * TOKENS_PER_IMAGE
    ids = torch.as_tensor(context.reshape(1, -1).astype(np.int64), device=device)
    new = []
    for _ in range(n_new * TOKENS_PER_IMAGE):
        logits, _ = model(ids[:, -window:])
        last = filter_logits(logits[:, -1], temperature=temperature or 1.0, top_k=top_k, top_p=top_p,
                             num_codes=num_codes)
        if temperature == 0:
            token = last.argmax(dim=-1, keepdim=True)
        else:
            token = torch.multinomial(last.softmax(dim=-1).cpu(), 1, generator=generator).to(device)
        ids = torch.cat([ids, token], dim=1)
        new.append(int(token))
    return np.asarray(new, dtype=np.int64).reshape(n_new, TOKENS_PER_IMAGE)


def analogy_context(pairs: list[tuple[np.ndarray, np.ndarray]], query: np.ndarray) -> np.ndarray:
    """[x1, y1, x2, y2, ..., query] as one (2k + 1, 256) context: the model's next image is y."""
    return np.stack([img for pair in pairs for img in pair] + [query])
