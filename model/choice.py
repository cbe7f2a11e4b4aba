"""Multiple choice by perplexity, and accuracy against chance with a 95 % interval.

The reasoning and Raven evals are both LVM's protocol: the context images, then each candidate as
the next image; the candidate whose tokens the model finds least perplexing is its answer.
Accuracy comes with a Wilson score interval (scipy's; exact enough at the small counts a CPU eval
affords, and never outside [0, 1] as the normal approximation is), and with whether it excludes
chance. A stored item set names each image by the hash of its pixels, checked when it is loaded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import binomtest

from uvd.format.storage import atomic_write, confined_join
from uvd.media.images import write_png
from uvd.model.evaluate import target_nll
from uvd.model.media import read_image

ITEMS = "items.jsonl"
META = "meta.json"


def wilson_interval(correct: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (95 % by default), as scipy computes it."""
    if total <= 0:
        return 0.0, 1.0
    ci = binomtest(correct, total).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


@dataclass(frozen=True)
class Accuracy:
    """One task's multiple-choice result."""

    task: str
    correct: int
    items: int
    chance: float
    ci95: tuple[float, float]

    @property
    def accuracy(self) -> float:
        return self.correct / self.items if self.items else 0.0

    @property
    def beats_chance(self) -> bool:
        """The whole 95 % interval lies above chance."""
        return self.ci95[0] > self.chance

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "ci95": list(self.ci95), "accuracy": self.accuracy,
                "beats_chance": self.beats_chance}

    def line(self) -> str:
        verdict = "above chance" if self.beats_chance else "not above chance"
        return (f"{self.task:<14} {100 * self.accuracy:5.1f}%  ({self.correct}/{self.items}, 95% CI "
                f"{100 * self.ci95[0]:.1f}-{100 * self.ci95[1]:.1f}%)  chance {100 * self.chance:.1f}%  {verdict}")


def accuracy(task: str, correct: int, items: int, chance: float) -> Accuracy:
    return Accuracy(task, correct, items, chance, wilson_interval(correct, items))


class TokenCache:
    """Images -> token ids, each distinct image encoded once (puzzles reuse their panels)."""

    def __init__(self, encode: Callable[[np.ndarray], np.ndarray]):
        self.encode = encode  # (N, 256, 256, 3) uint8 -> (N, 256) ids
        self.cache: dict[str, np.ndarray] = {}

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        keys = [image_key(img) for img in images]
        missing = {k: img for k, img in zip(keys, images) if k not in self.cache}
        if missing:
            for k, tokens in zip(missing, self.encode(np.stack(list(missing.values())))):
                self.cache[k] = tokens
        return np.stack([self.cache[k] for k in keys])


def choose(model, context: np.ndarray, candidates: np.ndarray, device="cpu") -> tuple[int, list[float]]:
    """(n_ctx, 256) context and (K, 256) candidate ids -> (index of the lowest-perplexity
    candidate, each candidate's mean NLL)."""
    nlls = target_nll(model, context, list(candidates), device)
    return int(np.argmin(nlls)), nlls


@dataclass(frozen=True)
class ChoiceItem:
    """Context images, then candidate next images, one of them right."""

    id: str
    task: str
    context: tuple[np.ndarray, ...]  # (256, 256, 3) uint8 each
    candidates: tuple[np.ndarray, ...]
    answer: int  # index of the right candidate
    info: dict[str, Any] = field(default_factory=dict)  # what made the item (rules, values), for reading


def image_key(image: np.ndarray) -> str:
    """The sha1 of an image's pixels: its name in a stored item set, checked on loading."""
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


def save_items(items: Sequence[ChoiceItem], out_dir: str | Path, meta: dict) -> Path:
    """Write an item set (``items.jsonl``, ``meta.json``, one PNG per distinct image under ``images/``)
    so that every model is scored on the very same pixels."""
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)

    def path_of(image: np.ndarray) -> str:
        name = f"images/{image_key(image)[:20]}.png"
        if not (out / name).exists():
            write_png(out / name, image)
        return name

    lines = [json.dumps({"id": item.id, "task": item.task, "answer": item.answer, "info": item.info,
                         "context": [path_of(i) for i in item.context],
                         "candidates": [path_of(i) for i in item.candidates]}) + "\n" for item in items]
    atomic_write(str(out / META), (json.dumps({**meta, "items": len(items)}, indent=2) + "\n").encode())
    atomic_write(str(out / ITEMS), "".join(lines).encode())  # last: its presence means a complete set
    return out


def load_items(item_dir: str | Path) -> tuple[list[ChoiceItem], dict]:
    """(items, meta) of a set written by :func:`save_items`; a bad line raises one ValueError naming it."""
    root = Path(item_dir)
    items = []
    images: dict[str, np.ndarray] = {}

    def image(name: str) -> np.ndarray:
        if name not in images:
            pixels = read_image(confined_join(str(root), name))
            if not Path(name).stem or not image_key(pixels).startswith(Path(name).stem):
                raise ValueError(f"{name}: its pixels do not match the hash in its name (changed since saved)")
            images[name] = pixels
        return images[name]

    with open(root / ITEMS, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            try:
                r = json.loads(line)
                items.append(ChoiceItem(r["id"], r["task"], tuple(map(image, r["context"])),
                                        tuple(map(image, r["candidates"])), int(r["answer"]), r.get("info", {})))
            except (ValueError, KeyError, TypeError) as e:  # MediaError and UnsafePath included
                raise ValueError(f"{root / ITEMS}:{number}: not an item ({type(e).__name__}: {e})") from None
    meta = json.loads((root / META).read_text()) if (root / META).exists() else {}
    return items, meta


def evaluate_choices(model, tokens: Callable[[Sequence[np.ndarray]], np.ndarray], items: Sequence[ChoiceItem],
                     device="cpu") -> dict[str, Accuracy]:
    """Per task, how often the lowest-perplexity candidate is the right one (chance: 1 / candidates)."""
    correct: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    chance: dict[str, float] = {}
    for item in items:
        picked, _ = choose(model, tokens(item.context), tokens(item.candidates), device)
        correct[item.task] += int(picked == item.answer)
        total[item.task] += 1
        chance[item.task] = 1 / len(item.candidates)
    return {task: accuracy(task, correct[task], total[task], chance[task]) for task in total}
