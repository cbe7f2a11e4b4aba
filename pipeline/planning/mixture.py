"""Mixture builds: keep a seeded subset of each source's sentences so that token shares follow
UVDv1's proportions (``--mix uvdv1``) or given weights (``--mix weights.toml``), scaled down to
what the data allows.

Selection happens on plans, before anything is decoded: each source's planned sentences are
ranked by a hash of (seed, key) and the lowest-ranked are kept until the source's token quota is
met (to the nearest sentence). The largest mix the data allows is the one in which the
scarcest source, relative to its target share, keeps everything; ``mix_tokens`` asks for less.
Items in no kept sentence are accounted as ``skipped`` in the build summary, not rejected.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import tomllib

from uvd.dataset_specs import GROUPS
from uvd.pipeline.records.config import SourceConfig

UVDV1 = "uvdv1"


def mixture_weights(sources: list[SourceConfig], mix: str) -> dict[str, float]:
    """Relative weight of each source: UVDv1 tokens x the spec's mixture_weight, or a weights file
    (TOML or JSON mapping source name -> weight; sources it does not name get 0)."""
    if mix == UVDV1:
        return {s.name: s.dataset_spec.uvdv1_tokens_millions * s.dataset_spec.mixture_weight for s in sources}
    path = Path(mix)
    if not path.is_file():
        raise ValueError(f"--mix {mix!r}: expected '{UVDV1}' or a TOML/JSON file of source weights")
    data = json.loads(path.read_text()) if path.suffix == ".json" else tomllib.loads(path.read_text())
    data = data.get("mix", data)
    names = {s.name for s in sources}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{path}: weights for sources not in this build: {unknown}")
    if any(float(w) < 0 for w in data.values()):
        raise ValueError(f"{path}: weights must be >= 0")
    return {s.name: float(data.get(s.name, 0.0)) for s in sources}


def target_shares(weights: Mapping[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    if total <= 0:
        raise ValueError("the mixture gives every source a weight of 0")
    return {name: w / total for name, w in sorted(weights.items())}


def token_quotas(available: Mapping[str, int], shares: Mapping[str, float], total: int = 0) -> dict[str, float]:
    """Tokens each source may keep: ``share x T``, where T is the largest total every source with a
    share can supply (a source with none available cannot be scaled to, and ends up below target),
    or ``total`` when it asks for less."""
    feasible = [available.get(s, 0) / share for s, share in shares.items() if share > 0 and available.get(s, 0) > 0]
    scale = min(feasible, default=0.0)
    if total:
        scale = min(scale, float(total))
    return {s: share * scale for s, share in shares.items()}


def select_to_quota(ranked: list[tuple[int, str, int]], quota: float) -> list[str]:
    """Keys of the lowest-ranked sentences, in rank order, until ``quota`` tokens are reached to the
    nearest sentence (a sentence is taken while it brings the total closer to the quota)."""
    kept, total = [], 0
    for _, key, tokens in sorted(ranked):
        if total + tokens / 2 > quota:
            break
        kept.append(key)
        total += tokens
    return kept


def mixture_report(shares: Mapping[str, float], groups: Mapping[str, str], tokens: Mapping[str, int],
                   available: Mapping[str, int]) -> dict:
    """Target vs actual token share per source and per UVDv1 group."""
    total = sum(tokens.get(s, 0) for s in shares) or 1
    sources = {s: {"group": groups[s], "target_share": share, "actual_share": tokens.get(s, 0) / total,
                   "tokens": tokens.get(s, 0), "available_tokens": available.get(s, 0)}
               for s, share in sorted(shares.items())}
    by_group = {}
    for g in GROUPS:
        members = [v for v in sources.values() if v["group"] == g]
        if members:
            by_group[g] = {"target_share": sum(v["target_share"] for v in members),
                           "actual_share": sum(v["actual_share"] for v in members)}
    return {"sources": sources, "groups": by_group}
