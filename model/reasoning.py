"""The synthetic reasoning eval of the LVM talk: does the model continue a visual rule?

Three tasks (model/synthetic.py draws them): colour (an object cycling through 3 random colours),
shape (through 3 random shapes) and size (alternating between 2 random sizes). An item shows the
first 6 to 10 frames of a sequence; the candidates are the cycle's distinct frames, in a seeded
random order; the model's answer is the candidate it finds least perplexing as the next frame.
Chance is 1/3, 1/3 and 1/2; the talk reports LVM-7B at 42 %, 45 % and 94 % over 900 experiments,
which is this eval's default size (300 per task).

Items are a function of the seed alone; ``save_items`` writes them (PNG + JSONL) so that two
models, or two runs, are scored on the same pixels.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from uvd.model.choice import ChoiceItem
from uvd.model.synthetic import TASKS, sequence_frames

TALK_LVM_7B = {"colour": 0.42, "shape": 0.45, "size": 0.94}  # the talk's figures, for the tables
GENERATOR = "uvd.model.synthetic/1"  # bump when the same seed draws different items


@dataclass(frozen=True)
class ReasoningConfig:
    n_items: int = 900  # in total, split evenly over the tasks
    seed: int = 0
    min_context: int = 6  # frames shown before the answer
    max_context: int = 10

    def __post_init__(self) -> None:
        if self.n_items < 1 or not 1 <= self.min_context <= self.max_context:
            raise ValueError("n_items must be >= 1 and 1 <= min_context <= max_context")

    def per_task(self) -> dict[str, int]:
        n, k = divmod(self.n_items, len(TASKS))
        return {task: n + (i < k) for i, task in enumerate(TASKS)}


def make_item(task: str, index: int, cfg: ReasoningConfig) -> ChoiceItem:
    rng = random.Random(f"{cfg.seed}:eval:{task}:{index}")
    length = rng.randint(cfg.min_context, cfg.max_context)
    frames, order = sequence_frames(task, rng, length + 1)
    shown = list(range(len(frames)))
    rng.shuffle(shown)
    return ChoiceItem(id=f"{task}_{index:05d}", task=task, context=tuple(frames[i] for i in order[:-1]),
                      candidates=tuple(frames[i] for i in shown), answer=shown.index(order[-1]),
                      info={"context_frames": length})


def make_items(cfg: ReasoningConfig = ReasoningConfig()) -> list[ChoiceItem]:
    return [make_item(task, i, cfg) for task, n in cfg.per_task().items() for i in range(n)]


def item_meta(cfg: ReasoningConfig) -> dict:
    return {"eval": "reasoning", "generator": GENERATOR, "seed": cfg.seed, "min_context": cfg.min_context,
            "max_context": cfg.max_context, "per_task": cfg.per_task()}
