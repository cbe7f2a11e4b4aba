"""The sentence layouts as pure functions: order, count and pairing of every layout, with LVM's defaults."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from uvd.media.images import DecodeError
from uvd.pipeline.planning.layouts import LAYOUTS, LayoutContext, clip_indices, cover_clips, get_layout
from uvd.pipeline.records.items import Item


def ctx(layout: str, views, seed=0, **args) -> LayoutContext:
    return LayoutContext(source="src", group="videos", layout=layout, views=tuple(views),
                         args={**LAYOUTS[layout].defaults, **args}, global_seed=seed)


def item(key, frames=1, label=""):
    return Item(source="src", key=key, paths=(f"/data/{key}",), num_frames=frames, label=label)


def positions(plan):
    return [(p.item_key, p.frame, p.view) for p in plan.meta.positions]


def test_lvm_defaults():
    assert LAYOUTS["video"].defaults["n_frames"] == 16 and LAYOUTS["video"].defaults["strides"] == (8,)
    assert LAYOUTS["frame_sequence"].defaults == {"n_frames": 16, "max_stride": 4, "epochs": 1}
    assert LAYOUTS["pairs"].defaults["n_pairs"] == 8 and LAYOUTS["colorization"].defaults["n_pairs"] == 8
    assert LAYOUTS["multimodal"].defaults["n_shots"] == 3
    assert (LAYOUTS["category"].defaults["n_classes"], LAYOUTS["category"].defaults["per_class"]) == (4, 4)
    assert {name for name, layout in LAYOUTS.items() if layout.grouped} == {
        "pairs", "colorization", "inpainting", "multimodal", "category"}


# --- video ------------------------------------------------------------------------------------

def test_video_one_random_clip_of_16_at_stride_8_per_pass():
    plans = get_layout("video").plan(item("a.mp4", frames=300), ctx("video", ["frame"]))
    assert len(plans) == 1
    frames = [f for _, f, _ in positions(plans[0])]
    assert len(frames) == 16 and all(b - a == 8 for a, b in zip(frames, frames[1:]))
    assert 0 <= frames[0] and frames[-1] < 300
    starts = {get_layout("video").plan(item(f"v{i}.mp4", frames=300), ctx("video", ["frame"]))[0]
              .meta.frame_indices[0] for i in range(30)}
    assert len(starts) > 10  # the start is random (seeded per item), not always 0


def test_video_stride_lowered_to_fit_else_rejected():
    frames = get_layout("video").plan(item("a.mp4", frames=40), ctx("video", ["frame"]))[0].meta.frame_indices
    assert [b - a for a, b in zip(frames, frames[1:])] == [2] * 15  # (40 - 1) // 15 = 2
    assert get_layout("video").plan(item("b.mp4", frames=16), ctx("video", ["frame"]))[0].meta.frame_indices == \
        tuple(range(16))
    with pytest.raises(DecodeError) as err:
        get_layout("video").plan(item("c.mp4", frames=15), ctx("video", ["frame"]))
    assert err.value.reason == "video_too_short" and "15 frames" in err.value.message


def test_video_strides_and_epochs_one_pass_each_and_deterministic():
    c = ctx("video", ["frame"], strides=(2, 4, 8), epochs=2)
    plans = get_layout("video").plan(item("a.mp4", frames=500), c)
    assert len(plans) == 6 and len({p.key for p in plans}) == 6
    steps = [p.meta.frame_indices[1] - p.meta.frame_indices[0] for p in plans]
    assert steps == [2, 4, 8, 2, 4, 8]
    assert plans == get_layout("video").plan(item("a.mp4", frames=500), c)  # a function of its inputs
    assert plans != get_layout("video").plan(item("a.mp4", frames=500), ctx("video", ["frame"], seed=1,
                                                                             strides=(2, 4, 8), epochs=2))


def test_video_all_clips_cover_without_overlap():
    assert cover_clips(250, n_frames=16, stride=8) == [list(range(0, 121, 8)), list(range(128, 249, 8))]
    assert cover_clips(120, n_frames=16, stride=8) == [list(range(0, 106, 7))]
    plans = get_layout("video").plan(item("a.mp4", frames=250), ctx("video", ["frame"], clips="all"))
    assert [list(p.meta.frame_indices) for p in plans] == cover_clips(250, n_frames=16, stride=8)
    assert clip_indices(121, n_frames=16, stride=8, rng=None) == list(range(0, 121, 8))


# --- frame sequences --------------------------------------------------------------------------

def test_frame_sequence_stride_from_1_to_min_4_and_random_start():
    layout = get_layout("frame_sequence")
    strides, starts = Counter(), set()
    for i in range(200):
        frames = layout.plan(item(f"seq{i}", frames=100), ctx("frame_sequence", ["frame"]))[0].meta.frame_indices
        steps = {b - a for a, b in zip(frames, frames[1:])}
        assert len(frames) == 16 and len(steps) == 1 and frames[-1] < 100
        strides[steps.pop()] += 1
        starts.add(frames[0])
    assert set(strides) == {1, 2, 3, 4}  # min(4, (100 - 1) // 15 = 6) = 4
    assert len(starts) > 20
    for i in range(20):  # T = 40: (40 - 1) // 15 = 2 caps the stride
        frames = layout.plan(item(f"s{i}", frames=40), ctx("frame_sequence", ["frame"]))[0].meta.frame_indices
        assert frames[1] - frames[0] in (1, 2)
    assert layout.plan(item("x", frames=16), ctx("frame_sequence", ["frame"]))[0].meta.frame_indices == \
        tuple(range(16))
    with pytest.raises(DecodeError):
        layout.plan(item("y", frames=15), ctx("frame_sequence", ["frame"]))


# --- pairs, colorization, inpainting ------------------------------------------------------------

@pytest.mark.parametrize("layout,views", [("pairs", ("image", "boxes")), ("colorization", ("image|gray", "image")),
                                          ("inpainting", ("image|masked", "image"))])
def test_pairs_are_x_y_times_8_of_unrelated_items_each_epoch(layout, views):
    items = [item(f"img{i:03d}.jpg") for i in range(20)]
    c = ctx(layout, views, epochs=3)
    plans = get_layout(layout).plan(items, c)
    assert len(plans) == 3 * 3  # 20 pairs -> sentences of 8, 8 and 4, each epoch
    per_epoch = [plans[i:i + 3] for i in range(0, 9, 3)]
    orders = []
    for epoch in per_epoch:
        assert [p.num_images for p in epoch] == [16, 16, 8]
        keys = []
        for p in epoch:
            pos = positions(p)
            assert [v for _, _, v in pos] == list(views) * (len(pos) // 2)  # x, y, x, y, ...
            assert all(pos[i][0] == pos[i + 1][0] for i in range(0, len(pos), 2))  # x and y of one item
            keys += [k for k, _, _ in pos[::2]]
        assert sorted(keys) == sorted(it.key for it in items)  # every pair once per epoch
        orders.append(keys)
    assert orders[0] != orders[1] != orders[2]  # a new permutation each epoch
    shuffled = items[:]
    random.Random(1).shuffle(shuffled)
    assert get_layout(layout).plan(shuffled, c) == plans  # arrival order does not matter
    assert len({p.key for p in plans}) == len(plans)


# --- multimodal --------------------------------------------------------------------------------

def test_multimodal_three_shots_of_five_modalities_in_one_shuffled_order():
    views = ("image", "image|normals", "image|edges", "image|depth", "segmentation")
    plans = get_layout("multimodal").plan([item(f"coco{i}.jpg") for i in range(9)],
                                          ctx("multimodal", views, epochs=2))
    assert len(plans) == 6 and all(p.num_images == 15 for p in plans)
    orders = set()
    for p in plans:
        pos = positions(p)
        shots = [pos[i:i + 5] for i in range(0, 15, 5)]
        assert len({s[0][0] for s in shots}) == 3  # three different images
        for shot in shots:
            assert len({k for k, _, _ in shot}) == 1 and sorted(v for _, _, v in shot) == sorted(views)
        assert [v for _, _, v in shots[0]] == [v for _, _, v in shots[1]] == [v for _, _, v in shots[2]]
        orders.add(tuple(v for _, _, v in shots[0]))
    assert len(orders) > 1  # the order is shuffled per sentence


# --- category ----------------------------------------------------------------------------------

def test_category_is_4_classes_of_4_images_each_image_once_per_epoch():
    items = [item(f"n{c:02d}/{i}.JPEG", label=f"n{c:02d}") for c in range(6) for i in range(8)]  # 48 images
    plans = get_layout("category").plan(items, ctx("category", ["image"], epochs=2))
    assert len(plans) == 2 * 3  # 12 runs of 4 per epoch -> 3 sentences of 4 classes
    for epoch in (plans[:3], plans[3:]):
        used = []
        for p in epoch:
            keys = [k for k, _, _ in positions(p)]
            assert p.num_images == 16
            runs = [keys[i:i + 4] for i in range(0, 16, 4)]
            labels = [{k.split("/")[0] for k in run} for run in runs]
            assert all(len(lab) == 1 for lab in labels)  # each run of 4 is one class
            assert len({lab.pop() for lab in labels}) == 4  # four distinct classes
            used += keys
        assert sorted(used) == sorted(it.key for it in items)


def test_category_uneven_classes_use_every_image_and_stay_distinct():
    items = [item(f"c{c}/{i}", label=f"c{c}") for c, n in enumerate([9, 4, 4, 3, 1]) for i in range(n)]
    plans = get_layout("category").plan(items, ctx("category", ["image"]))
    used = [k for p in plans for k, _, _ in positions(p)]
    assert sorted(used) == sorted(it.key for it in items)
    for p in plans:
        labels = [k.split("/")[0] for k, _, _ in positions(p)]
        runs = [lab for i, lab in enumerate(labels) if i == 0 or lab != labels[i - 1]]
        assert len(runs) == len(set(runs)) <= 4  # classes never repeat within a sentence


# --- per item: multiview, video with annotations, single image -----------------------------------

def test_multiview_in_rotation_order():
    assert get_layout("multiview").plan(item("obj", frames=12), ctx("multiview", ["view"]))[0].meta.frame_indices == \
        tuple(range(12))
    frames = get_layout("multiview").plan(item("obj", frames=40), ctx("multiview", ["view"]))[0].meta.frame_indices
    assert len(frames) == 16 and list(frames) == sorted(frames) and frames[0] == 0
    with pytest.raises(DecodeError):
        get_layout("multiview").plan(item("one", frames=1), ctx("multiview", ["view"]))


def test_video_annotated_interleaves_frames_and_their_annotations():
    plans = get_layout("video_annotated").plan(item("clip", frames=40), ctx("video_annotated", ["frame", "flow"]))
    pos = positions(plans[0])
    assert len(pos) == 16
    assert [v for _, _, v in pos] == ["frame", "flow"] * 8
    assert all(pos[i][1] == pos[i + 1][1] for i in range(0, 16, 2))  # the annotation of the same frame
    frames = [f for _, f, _ in pos[::2]]
    assert frames == sorted(frames) and len(set(frames)) == 8
    short = get_layout("video_annotated").plan(item("short", frames=3), ctx("video_annotated", ["frame", "mask"]))
    assert [f for _, f, _ in positions(short[0])] == [0, 0, 1, 1, 2, 2]


def test_single_image_keeps_the_spec_views_in_order():
    plans = get_layout("single_image").plan(item("000001_10"), ctx("single_image", ["left", "right"]))
    assert positions(plans[0]) == [("000001_10", 0, "left"), ("000001_10", 0, "right")]
