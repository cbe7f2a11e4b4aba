"""The sentence layouts as pure functions: order, count and pairing of every layout, with LVM's defaults."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
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
    assert LAYOUTS["multi_sequence"].defaults == {"n_frames": 16, "max_stride": 4, "n_shots": 2, "epochs": 1,
                                                  "drop_last": True}
    assert LAYOUTS["co3d"].defaults == {"n_frames": 4, "max_stride": 4, "n_shots": 4, "epochs": 1, "drop_last": True}
    assert {name for name, layout in LAYOUTS.items() if layout.grouped} == {
        "pairs", "colorization", "inpainting", "multimodal", "multi_sequence", "co3d", "category"}
    assert all(layout.defaults.get("drop_last", True) for layout in LAYOUTS.values())


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
    grouped = get_layout(layout).plan(items, c)
    plans = grouped.plans
    assert len(plans) == 3 * 2  # 20 pairs -> 2 sentences of 8 each epoch; drop_last leaves 4 out
    dropped = [key for key, _ in grouped.left_out]
    assert len(dropped) == 4 and all(e.reason == "drop_last" for _, e in grouped.left_out)
    per_epoch = [plans[i:i + 2] for i in range(0, 6, 2)]
    orders = []
    for epoch in per_epoch:
        assert [p.num_images for p in epoch] == [16, 16]
        keys = []
        for p in epoch:
            pos = positions(p)
            assert [v for _, _, v in pos] == list(views) * (len(pos) // 2)  # x, y, x, y, ...
            assert all(pos[i][0] == pos[i + 1][0] for i in range(0, len(pos), 2))  # x and y of one item
            keys += [k for k, _, _ in pos[::2]]
        assert sorted(keys + dropped) == sorted(it.key for it in items)  # every kept pair once per epoch
        orders.append(keys)
    assert orders[0] != orders[1] != orders[2]  # a new permutation each epoch
    shuffled = items[:]
    random.Random(1).shuffle(shuffled)
    again = get_layout(layout).plan(shuffled, c)
    assert again.plans == plans and [k for k, _ in again.left_out] == dropped  # arrival order does not matter
    assert len({p.key for p in plans}) == len(plans)


def test_drop_last_off_keeps_the_short_last_sentence_and_a_full_source_drops_nothing():
    items = [item(f"img{i:03d}.jpg") for i in range(20)]
    kept = get_layout("pairs").plan(items, ctx("pairs", ("image", "boxes"), epochs=1, drop_last=False))
    assert [p.num_images for p in kept.plans] == [16, 16, 8] and kept.left_out == []
    full = get_layout("pairs").plan(items[:16], ctx("pairs", ("image", "boxes"), epochs=1))
    assert [p.num_images for p in full.plans] == [16, 16] and full.left_out == []
    few = get_layout("pairs").plan(items[:3], ctx("pairs", ("image", "boxes"), epochs=1))
    assert few.plans == [] and len(few.left_out) == 3 and "do not fill whole sentences of 8" in few.left_out[0][1].message


# --- multimodal --------------------------------------------------------------------------------

def test_multimodal_three_shots_of_five_modalities_in_one_shuffled_order():
    views = ("image", "image|normals", "image|edges", "image|depth", "segmentation")
    plans = get_layout("multimodal").plan([item(f"coco{i}.jpg") for i in range(10)],
                                          ctx("multimodal", views, epochs=2)).plans  # 10 % 3: one left out
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
    plans = get_layout("category").plan(items, ctx("category", ["image"], epochs=2)).plans
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
    plans = get_layout("category").plan(items, ctx("category", ["image"])).plans
    used = [k for p in plans for k, _, _ in positions(p)]
    assert sorted(used) == sorted(it.key for it in items)
    for p in plans:
        labels = [k.split("/")[0] for k, _, _ in positions(p)]
        runs = [lab for i, lab in enumerate(labels) if i == 0 or lab != labels[i - 1]]
        assert len(runs) == len(set(runs)) <= 4  # classes never repeat within a sentence


# --- per item: multiview, single image -----------------------------------

def test_multiview_in_rotation_order():
    assert get_layout("multiview").plan(item("obj", frames=12), ctx("multiview", ["view"]))[0].meta.frame_indices == \
        tuple(range(12))
    frames = get_layout("multiview").plan(item("obj", frames=40), ctx("multiview", ["view"]))[0].meta.frame_indices
    assert len(frames) == 16 and list(frames) == sorted(frames) and frames[0] == 0
    with pytest.raises(DecodeError):
        get_layout("multiview").plan(item("one", frames=1), ctx("multiview", ["view"]))


def test_single_image_keeps_the_spec_views_in_order():
    plans = get_layout("single_image").plan(item("000001_10"), ctx("single_image", ["left", "right"]))
    assert positions(plans[0]) == [("000001_10", 0, "left"), ("000001_10", 0, "right")]


# --- structure against the release scripts' array shapes and orders ---------------------------------
# Each test labels every image the way the release's token arrays index it, applies the release's
# reshapes (its einops patterns, restated with numpy), and compares the resulting order of images
# with uvd's positions.

def labels_of(plan):
    return [(k, f, v) for k, f, v in positions(plan)]


def label_array(rows: list[list[tuple]]) -> np.ndarray:
    """A 2-D object array of (key, frame, view) labels (np.array would split the tuples)."""
    out = np.empty((len(rows), len(rows[0])), dtype=object)
    for i, row in enumerate(rows):
        for j, label in enumerate(row):
            out[i, j] = label
    return out


def test_multi_sequence_is_tokenize_multi_seq_images_muse():
    """all_tokens[N, t, s] per item, task, frame; lines '(b x) t s d -> b (x t s d)' (separate) and
    '(b x) t s d -> b (x s t d)' (interleaved), in that order, for consecutive items of a permutation."""
    views = ("frame", "mask")
    items = [item(f"vid{i}", frames=40 + i) for i in range(7)]
    grouped = get_layout("multi_sequence").plan(items, ctx("multi_sequence", views))
    plans = grouped.plans
    assert [k for k, _ in grouped.left_out] and len(grouped.left_out) == 1  # 7 % 2
    assert len(plans) == 2 * 3 and all(p.num_images == 2 * 2 * 16 for p in plans)  # 64 images
    for g in range(3):
        separate, interleaved = plans[2 * g], plans[2 * g + 1]
        shots = list(dict.fromkeys(k for k, _, _ in labels_of(separate)))
        assert len(shots) == 2
        frames = {k: [f for kk, f, v in labels_of(separate) if kk == k and v == "frame"] for k in shots}
        all_tokens = np.empty((2, 2, 16), dtype=object)  # (b x) t s: the release's array of the group
        for x, key in enumerate(shots):
            steps = {b - a for a, b in zip(frames[key], frames[key][1:])}
            assert len(frames[key]) == 16 and len(steps) == 1 and 1 <= steps.pop() <= 2  # min(4, (T-1)//15)
            for t, view in enumerate(views):
                for s_, f in enumerate(frames[key]):
                    all_tokens[x, t, s_] = (key, f, view)
        assert labels_of(separate) == list(all_tokens.reshape(-1))
        assert labels_of(interleaved) == list(all_tokens.transpose(0, 2, 1).reshape(-1))
    used = [k for p in plans[::2] for k in dict.fromkeys(k for k, _, _ in labels_of(p))]
    assert sorted(used + [k for k, _ in grouped.left_out]) == sorted(it.key for it in items)
    short = get_layout("multi_sequence").plan([item("a", frames=15), item("b", 16), item("c", 16)],
                                              ctx("multi_sequence", views))
    assert [(k, e.reason) for k, e in short.left_out] == [("a", "sequence_too_short")] and len(short.plans) == 2


def test_co3d_is_tokenize_co3d_muse():
    """tokens (16, 3, 4) per sequence, task, frame -> '(b s) t f d -> b s t f d' with s = 4 consecutive
    sequences; line 1 concatenates tasks 0 and 1 along frames, line 2 tasks 0 and 2."""
    views = ("frame", "mask", "depth_mask")
    items = [item(f"cat/seq{i:02d}", frames=30) for i in range(9)]
    grouped = get_layout("co3d").plan(items, ctx("co3d", views))
    kept = sorted(it.key for it in items if it.key not in {k for k, _ in grouped.left_out})
    assert len(grouped.left_out) == 1 and len(grouped.plans) == 2 * 2
    for b in range(2):
        mask_line, depth_line = grouped.plans[2 * b], grouped.plans[2 * b + 1]
        assert mask_line.num_images == depth_line.num_images == 32
        shots = list(dict.fromkeys(k for k, _, _ in labels_of(mask_line)))
        assert shots == kept[4 * b:4 * b + 4]  # consecutive sequences in listing order, not a permutation
        frames = {k: [f for kk, f, v in labels_of(mask_line) if kk == k and v == "frame"] for k in shots}
        tokens = np.empty((4, 3, 4), dtype=object)  # s t f of batch row b
        for s_, key in enumerate(shots):
            steps = {q - p for p, q in zip(frames[key], frames[key][1:])}
            assert len(steps) == 1 and 1 <= steps.pop() <= 4
            for t, view in enumerate(views):
                for f_, f in enumerate(frames[key]):
                    tokens[s_, t, f_] = (key, f, view)
        image_mask = np.concatenate((tokens[:, 0], tokens[:, 1]), axis=-1)  # (s, 8)
        image_depth = np.concatenate((tokens[:, 0], tokens[:, 2]), axis=-1)
        assert labels_of(mask_line) == list(image_mask.reshape(-1))
        assert labels_of(depth_line) == list(image_depth.reshape(-1))


def test_multimodal_is_tokenize_multi_datasets_muse():
    """all_tokens[indices[i]] reshaped 'b (s t) -> b s t', one task permutation for the whole line."""
    views = ("image", "depth", "next_frame", "scene_flow", "sementic_seg", "sementic_seg_rbg", "stereo")
    items = [item(f"{i:06d}_10") for i in range(9)]
    grouped = get_layout("multimodal").plan(items, ctx("multimodal", views, n_shots=2, epochs=2))
    assert len(grouped.left_out) == 1 and len(grouped.plans) == 2 * 4
    for plan in grouped.plans:
        labels = labels_of(plan)
        shots = list(dict.fromkeys(k for k, _, _ in labels))
        order = [v for _, _, v in labels[:7]]
        tokens = label_array([[(k, 0, v) for v in views] for k in shots])  # (s, t)
        permutation = [views.index(v) for v in order]
        assert labels == list(tokens[:, permutation].reshape(-1)) and plan.num_images == 14


def test_pairs_are_tokenize_paired_dataset_muse():
    """memmap rows [x tokens, y tokens]; a line is rows[indices[i]].reshape(-1): x1 y1 x2 y2 ... x8 y8."""
    items = [item(f"{i:03d}.png") for i in range(17)]
    for plan in get_layout("pairs").plan(items, ctx("pairs", ("input", "target"), epochs=1)).plans:
        keys = list(dict.fromkeys(k for k, _, _ in labels_of(plan)))
        rows = label_array([[(k, 0, "input"), (k, 0, "target")] for k in keys])
        assert len(keys) == 8 and labels_of(plan) == list(rows.reshape(-1))
