"""Perplexity as LVM measures it: context images, then a target image; the loss is over the target.

LVM's eval_perplexity.py tokenizes the context and target images, runs the model on their
concatenation (no BOS), and takes exp(mean negative log-likelihood) of the target tokens for each
example; the reported figure is the mean of those per-example perplexities. Here an example is a
stored sentence of two or more images: its first n - 1 images are the context and its last one
the target. Tasks are sources (or layouts); per task both the LVM figure and the corpus-level
token perplexity are reported.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from uvd.format.sample import VisualSentence
from uvd.model.llama import Llama


@torch.no_grad()
def target_nll(model: Llama, context: np.ndarray, targets: list[np.ndarray], device) -> list[float]:
    """Mean NLL of each target image's tokens after the same context: (n_ctx, T) and [(T,)]."""
    ctx = torch.as_tensor(context.reshape(-1).astype(np.int64), device=device)
    ids = torch.stack([torch.cat([ctx, torch.as_tensor(t.reshape(-1).astype(np.int64), device=device)])
                       for t in targets])  # (K, L)
    logits, _ = model(ids[:, :-1])  # (K, L - 1, V): position p predicts token p + 1
    n_target = targets[0].size
    predicted = logits[:, -n_target:].float()  # the positions that predict the target tokens
    nll = F.cross_entropy(predicted.flatten(0, 1), ids[:, -n_target:].flatten(), reduction="none")
    return nll.view(len(targets), n_target).mean(dim=1).tolist()


def perplexity_by_task(model: Llama, sentences: Iterable[VisualSentence], *, by: str = "source",
                       max_per_task: int = 0, device="cpu") -> dict[str, dict]:
    """{task: {perplexity (LVM: mean of per-example exp(NLL)), token_perplexity, examples, skipped}}."""
    per_task: dict[str, list[float]] = defaultdict(list)
    skipped: dict[str, int] = defaultdict(int)
    max_tokens = model.config.max_seq_len
    for sentence in sentences:
        task = getattr(sentence.meta, by)
        if sentence.num_images < 2 or sentence.num_tokens > max_tokens:
            skipped[task] += 1  # no context image, or longer than the model's window
            continue
        if max_per_task and len(per_task[task]) >= max_per_task:
            continue
        (nll,) = target_nll(model, sentence.tokens[:-1], [sentence.tokens[-1]], device)
        per_task[task].append(nll)
    return summarize(per_task, skipped)


def summarize(nlls: dict[str, list[float]], skipped: dict[str, int]) -> dict[str, dict]:
    """{task: {examples, skipped, perplexity (LVM's: the mean of per-example exp(mean NLL)),
    token_perplexity (exp of the mean NLL: the corpus figure)}} from per-example mean NLLs."""
    report = {}
    for task in sorted(set(nlls) | set(skipped)):
        values = nlls.get(task, [])
        report[task] = {"examples": len(values), "skipped": skipped.get(task, 0),
                        "perplexity": float(np.mean([math.exp(x) for x in values])) if values else None,
                        "token_perplexity": math.exp(float(np.mean(values))) if values else None}
    return report
