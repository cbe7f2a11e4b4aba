"""A synthetic reasoning eval, after the examples in LVM's talk: does the model continue a visual rule?

Each item is a sequence of drawn images that follows a rule, then candidate next images; the
model's answer is the candidate it finds least perplexing as the next image (model/evaluate.py's
target_nll). Three tasks:

- colour: one shape whose colour steps through a cycle of three; 3 candidates, chance 1/3;
- shape: one colour, the shape stepping circle -> square -> triangle; 3 candidates, chance 1/3;
- size: a circle growing (or shrinking) by a fixed step; 2 candidates (the next size, or the
  previous one again), chance 1/2.

Items are drawn from a seed (position, palette, background, direction), and the right answer's
position among the candidates is shuffled, so no fixed order can score above chance.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from uvd.model.evaluate import target_nll

SHAPES = ("circle", "square", "triangle")
COLOURS = ((220, 40, 40), (40, 170, 60), (40, 80, 220), (230, 200, 40), (160, 60, 200), (40, 190, 200))
TASKS = {"colour": 3, "shape": 3, "size": 2}  # task -> number of candidates
SIZE = 256


@dataclass(frozen=True)
class ReasoningItem:
    task: str
    sequence: tuple[np.ndarray, ...]  # (SIZE, SIZE, 3) uint8 each
    candidates: tuple[np.ndarray, ...]
    answer: int  # index of the right candidate


def draw(shape: str, colour, radius: int, centre: tuple[int, int], background) -> np.ndarray:
    img = np.empty((SIZE, SIZE, 3), np.uint8)
    img[:] = background
    x, y = centre
    if shape == "circle":
        cv2.circle(img, (x, y), radius, colour, -1, cv2.LINE_AA)
    elif shape == "square":
        cv2.rectangle(img, (x - radius, y - radius), (x + radius, y + radius), colour, -1)
    else:
        points = np.array([(x, y - radius), (x - radius, y + radius), (x + radius, y + radius)], np.int32)
        cv2.fillPoly(img, [points], colour, cv2.LINE_AA)
    return img


def make_item(task: str, rng: random.Random, length: int = 6) -> ReasoningItem:
    background = tuple(rng.randint(200, 255) for _ in range(3))
    centre = (rng.randint(90, 166), rng.randint(90, 166))
    if task == "colour":
        shape, cycle = rng.choice(SHAPES), rng.sample(COLOURS, 3)
        sequence = [draw(shape, cycle[i % 3], 50, centre, background) for i in range(length)]
        candidates = [draw(shape, c, 50, centre, background) for c in cycle]
        right = length % 3
    elif task == "shape":
        colour, start = rng.choice(COLOURS), rng.randrange(3)
        sequence = [draw(SHAPES[(start + i) % 3], colour, 50, centre, background) for i in range(length)]
        candidates = [draw(s, colour, 50, centre, background) for s in SHAPES]
        right = (start + length) % 3
    elif task == "size":
        colour, step = rng.choice(COLOURS), rng.choice((-1, 1)) * rng.randint(8, 12)
        radii = [60 - (length // 2) * step + i * step for i in range(length + 1)]
        sequence = [draw("circle", colour, r, centre, background) for r in radii[:length]]
        candidates = [draw("circle", colour, radii[length], centre, background),
                      draw("circle", colour, radii[length - 2], centre, background)]
        right = 0
    else:
        raise ValueError(f"unknown reasoning task {task!r}; known: {sorted(TASKS)}")
    order = list(range(len(candidates)))
    rng.shuffle(order)
    return ReasoningItem(task, tuple(sequence), tuple(candidates[i] for i in order), order.index(right))


def make_items(task: str, n: int, seed: int = 0) -> list[ReasoningItem]:
    rng = random.Random(f"{seed}:{task}")
    return [make_item(task, rng) for _ in range(n)]


def evaluate_reasoning(model, tokenizer, *, items_per_task: int = 30, seed: int = 0, device="cpu") -> dict:
    """{task: {accuracy, chance, items, correct, ci95}}: the lowest-perplexity candidate is the answer."""

    def tokens(images) -> np.ndarray:
        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255)
        return tokenizer.encode(x.to(tokenizer.device)).cpu().numpy()

    report = {}
    for task, n_candidates in TASKS.items():
        correct = 0
        items = make_items(task, items_per_task, seed)
        for item in items:
            context = tokens(item.sequence)
            nlls = target_nll(model, context, list(tokens(item.candidates)), device)
            correct += int(np.argmin(nlls) == item.answer)
        accuracy = correct / len(items)
        half = 1.96 * math.sqrt(max(accuracy * (1 - accuracy), 1e-12) / len(items))
        report[task] = {"accuracy": accuracy, "chance": 1 / n_candidates, "items": len(items), "correct": correct,
                        "ci95": [max(0.0, accuracy - half), min(1.0, accuracy + half)]}
    return report
