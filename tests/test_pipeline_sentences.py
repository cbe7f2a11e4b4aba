"""Sentence plans and assembly: seeds, keys, and refusing anything incomplete."""

import numpy as np
import pytest

from uvd.pipeline.planning.layouts import LayoutContext
from uvd.pipeline.records import sentences
from uvd.pipeline.records.items import Position


def plan(frames=(0, 2, 4), index=0):
    ctx = LayoutContext(source="v", group="videos", layout="video", views=("frame",), args={}, global_seed=0)
    return ctx.plan([Position("k.mp4", f, "frame") for f in frames], key_item="k.mp4", index=index, seed=1)


def test_seed_depends_on_global_seed_source_and_item():
    s = sentences.item_seed
    assert s(0, "a", "x") == s(0, "a", "x")
    assert len({s(0, "a", "x"), s(1, "a", "x"), s(0, "b", "x"), s(0, "a", "y")}) == 4


def test_plan_key_is_stable_dot_free_and_records_positions():
    a, b = plan(), plan()
    assert a == b and "." not in a.key and a.num_images == 3
    assert a.meta.positions == tuple(Position("k.mp4", f, "frame") for f in (0, 2, 4))
    assert plan(index=1).key != a.key


def test_plan_takes_lvms_long_lines_and_refuses_none_or_too_many():
    assert plan(frames=range(64)).num_images == 64  # a two-task multi-sequence line
    assert plan(frames=range(sentences.MAX_IMAGES_PER_SENTENCE)).num_images == 256
    with pytest.raises(ValueError):
        plan(frames=range(sentences.MAX_IMAGES_PER_SENTENCE + 1))
    with pytest.raises(ValueError):
        plan(frames=())


def test_assemble_orders_by_position():
    toks = [(2, np.full(256, 2)), (0, np.full(256, 0)), (1, np.full(256, 1))]
    s = sentences.assemble_sentence(plan(), toks)
    assert s.tokens.dtype == np.uint16 and s.tokens.shape == (3, 256)
    assert [int(r[0]) for r in s.tokens] == [0, 1, 2]


@pytest.mark.parametrize("positions", [[0, 1], [0, 1, 1, 2], [0, 1, 3]])
def test_assemble_refuses_missing_or_duplicate_frames(positions):
    with pytest.raises(sentences.IncompleteSentence):
        sentences.assemble_sentence(plan(), [(p, np.zeros(256)) for p in positions])
