"""The synthetic reasoning eval: items follow the talk's protocol (random colours, shapes and sizes,
cycles of 3, 3 and 2), are seeded and stored, and scoring picks the lowest-perplexity candidate;
accuracy comes with a Wilson interval against chance."""

from __future__ import annotations

import json
import math
import random

import cv2
import numpy as np
import pytest
import torch

from uvd.model.choice import TokenCache, accuracy, evaluate_choices, load_items, save_items, wilson_interval
from uvd.model.reasoning import ReasoningConfig, make_items
from uvd.model.synthetic import MIN_COLOUR_DISTANCE, MIN_SIZE_RATIO, TASKS, cycle_scenes, draw


@pytest.fixture(scope="module")
def items():
    return make_items(ReasoningConfig(n_items=60, seed=1))


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(a, b)


def test_items_continue_a_cycle_and_offer_its_frames(items):
    assert {t: sum(i.task == t for i in items) for t in TASKS} == {"colour": 20, "shape": 20, "size": 20}
    for item in items:
        period = TASKS[item.task]
        ctx, cands = item.context, item.candidates
        assert 6 <= len(ctx) <= 10 and len(cands) == period
        assert all(same(ctx[i], ctx[i + period]) for i in range(len(ctx) - period))  # the cycle repeats
        assert all(not same(ctx[i], ctx[i + 1]) for i in range(len(ctx) - 1))  # and changes every frame
        assert all(not same(a, b) for i, a in enumerate(cands) for b in cands[i + 1:])
        assert same(cands[item.answer], ctx[len(ctx) - period])  # the right one continues the cycle
        assert all(any(same(c, f) for f in ctx) for c in cands)  # wrong ones are frames of the cycle too
    assert len({i.answer for i in items if i.task == "colour"}) == 3  # the answer's place is shuffled


def test_colours_shapes_and_sizes_are_random_not_a_fixed_set():
    colours, radii, shapes = set(), set(), set()
    for k in range(30):
        scenes = cycle_scenes("colour", random.Random(k))
        assert all(math.dist(a.colour, b.colour) >= MIN_COLOUR_DISTANCE for a, b in zip(scenes, scenes[1:]))
        colours |= {s.colour for s in scenes}
        small, large = sorted(s.radius for s in cycle_scenes("size", random.Random(k)))
        assert large >= MIN_SIZE_RATIO * small
        radii |= {small, large}
        shapes |= {s.shape for s in cycle_scenes("shape", random.Random(k))}
    assert len(colours) == 90 and len(shapes) == 90 and len(radii) > 30


def test_items_are_seeded_and_stored_items_load_identically(items, tmp_path):
    again = make_items(ReasoningConfig(n_items=60, seed=1))
    assert all(same(a.context[-1], b.context[-1]) and a.answer == b.answer for a, b in zip(items, again))
    other = make_items(ReasoningConfig(n_items=60, seed=2))
    assert not all(same(a.context[0], b.context[0]) for a, b in zip(items, other))
    save_items(items, tmp_path / "set", {"seed": 1})
    loaded, meta = load_items(tmp_path / "set")
    assert meta == {"seed": 1, "items": 60}
    for a, b in zip(items, loaded):
        assert (a.id, a.task, a.answer) == (b.id, b.task, b.answer)
        assert all(same(x, y) for x, y in zip(a.context + a.candidates, b.context + b.candidates))
    line = (tmp_path / "set" / "items.jsonl").read_text().splitlines()[0]
    first = json.loads(line)["context"][0]
    cv2.imwrite(str(tmp_path / "set" / first), np.zeros((256, 256, 3), np.uint8))  # pixels changed after saving
    with pytest.raises(ValueError, match=r"items.jsonl:1: .*do not match the hash"):
        load_items(tmp_path / "set")
    (tmp_path / "set" / "items.jsonl").write_text(line.replace(first, "../outside.png") + "\n")
    with pytest.raises(ValueError, match=r"items.jsonl:1: .*climbs out"):
        load_items(tmp_path / "set")  # image paths stay inside the set's folder
    (tmp_path / "set" / "items.jsonl").write_text('{"id": "x"}\n')
    with pytest.raises(ValueError, match=r"items.jsonl:1: not an item"):
        load_items(tmp_path / "set")
    assert ReasoningConfig().per_task() == {"colour": 300, "shape": 300, "size": 300}  # the talk's 900


def test_wilson_interval_and_chance():
    low, high = wilson_interval(5, 10)
    assert (low, high) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    assert accuracy("size", 80, 100, 0.5).beats_chance  # CI 71-87 %
    assert not accuracy("size", 58, 100, 0.5).beats_chance  # CI 48-67 %: includes chance
    assert "chance 50.0%" in accuracy("size", 58, 100, 0.5).line()


class TwoBack(torch.nn.Module):
    """Predicts each token to be the one two images back (256 tokens each): right for a cycle of 2."""

    class config:  # noqa: N801
        max_seq_len = 4096

    def forward(self, ids):
        logits = torch.zeros(*ids.shape, 300)
        back = torch.roll(ids, -1, dims=1).roll(512, dims=1)  # position t predicts ids[t + 1 - 512]
        logits.scatter_(2, back.unsqueeze(-1), 10.0)
        return logits, None


def pixel_tokens(images: np.ndarray) -> np.ndarray:
    """A stand-in tokenizer: 16 x 16 cells of the image's mean, quantized to 256 levels."""
    cells = images.reshape(len(images), 16, 16, 16, 16, 3).mean(axis=(2, 4))
    return (cells @ [0.3, 0.5, 0.2]).astype(np.int64).reshape(len(images), 256)


def test_the_lowest_perplexity_candidate_is_the_answer(items):
    results = evaluate_choices(TwoBack(), TokenCache(pixel_tokens), items)
    assert results["size"].accuracy == 1.0  # two back is the rule of a 2-cycle
    assert results["colour"].accuracy == 0.0  # and never the rule of a 3-cycle
    assert results["size"].chance == 0.5 and results["shape"].chance == pytest.approx(1 / 3)


def test_draw_paints_the_shape_in_its_colour():
    scene = cycle_scenes("size", random.Random(0))[0]
    img = draw(scene)
    x, y = scene.centre
    assert tuple(img[y, x]) == scene.colour and tuple(img[0, 0]) == scene.background
