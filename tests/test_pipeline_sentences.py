import numpy as np
import pytest

from uvd.pipeline import sentences


def test_image_sentence_is_single_image_with_stable_key():
    a = sentences.image_sentence(source="images", group="unpaired_images", item_key="a/b.c.png", global_seed=0)
    b = sentences.image_sentence(source="images", group="unpaired_images", item_key="a/b.c.png", global_seed=0)
    assert a == b and a.num_images == 1 and "." not in a.key
    assert a.meta.layout == "single_image" and a.meta.item_keys == ("a/b.c.png",)


def test_seed_depends_on_global_seed_source_and_item():
    s = sentences.item_seed
    assert s(0, "a", "x") == s(0, "a", "x")
    assert len({s(0, "a", "x"), s(1, "a", "x"), s(0, "b", "x"), s(0, "a", "y")}) == 4


def test_video_sentences_one_per_clip_in_order():
    clips = [list(range(0, 16)), list(range(16, 32))]
    plans = sentences.video_sentences(source="v", group="videos", item_key="clip.mp4", clips=clips, global_seed=3)
    assert [p.meta.sentence_index for p in plans] == [0, 1]
    assert [list(p.meta.frame_indices) for p in plans] == clips
    assert len({p.key for p in plans}) == 2


def test_video_sentence_refuses_more_than_16_images():
    with pytest.raises(ValueError):
        sentences.video_sentences(source="v", group="videos", item_key="k", clips=[list(range(17))], global_seed=0)


def test_assemble_orders_by_position():
    plan = sentences.video_sentences(source="v", group="videos", item_key="k", clips=[[0, 2, 4]], global_seed=0)[0]
    toks = [(2, np.full(256, 2)), (0, np.full(256, 0)), (1, np.full(256, 1))]
    s = sentences.assemble_sentence(plan, toks)
    assert s.tokens.dtype == np.uint16 and s.tokens.shape == (3, 256)
    assert [int(r[0]) for r in s.tokens] == [0, 1, 2]


@pytest.mark.parametrize("positions", [[0, 1], [0, 1, 1, 2], [0, 1, 3]])
def test_assemble_refuses_missing_or_duplicate_frames(positions):
    plan = sentences.video_sentences(source="v", group="videos", item_key="k", clips=[[0, 2, 4]], global_seed=0)[0]
    with pytest.raises(sentences.IncompleteSentence):
        sentences.assemble_sentence(plan, [(p, np.zeros(256)) for p in positions])
