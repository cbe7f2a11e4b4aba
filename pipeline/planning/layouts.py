"""Sentence layouts: which images make a visual sentence, as pure functions of items and seeds.

Defaults are those of the LVM release's tokenize scripts (ytongbai/LVM, tokenize_examples/).
Every random choice comes from a ``random.Random`` seeded by ``derive_seed`` of (global seed,
source, item key or epoch, ...), so a sentence is a function of its inputs and config alone
and can be rebuilt from its metadata.

Two kinds of layout:

- per item (``video``, ``frame_sequence``, ``multiview``, ``single_image``): an item's
  sentences depend on that item only;
- grouped (``pairs``, ``colorization``, ``inpainting``, ``multimodal``, ``multi_sequence``,
  ``co3d``, ``category``): each sentence holds several items (shots) of the source. Most permute
  the source's items each epoch (sorted by key first, so arrival order never matters) and cut the
  permutation into groups of unrelated items of the same task; ``co3d`` takes consecutive items.

An item a layout cannot use (a video shorter than a clip) is rejected with a reason class, never
padded: a per-item layout raises ``DecodeError``, a grouped one returns it in ``Grouped.left_out``.
Grouped layouts drop the remainder that cannot fill a whole sentence (``drop_last``, as the
release's DataLoaders do): ``len % group`` items, a seeded choice that is the same in every
epoch, each recorded as rejected (``drop_last``), so every sentence has the release's length.
``category`` keeps every image (see its docstring). Sentences may be longer than 16 images
(multi_sequence: 2 shots x tasks x 16 frames; co3d: 4 shots x 8): the trainer cuts them across
rows as LVM's EasyLM loader does.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from uvd.format.sample import SentenceMeta, sentence_key
from uvd.media.images import DecodeError
from uvd.pipeline.records.items import Item, Position
from uvd.pipeline.records.sentences import MAX_IMAGES_PER_SENTENCE, SentencePlan, item_seed


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from any parts (stable across processes, unlike hash())."""
    digest = hashlib.sha256("\x00".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass(frozen=True)
class LayoutContext:
    """What a layout needs besides the items: the source, its views and the layout's arguments."""

    source: str
    group: str
    layout: str
    views: tuple[str, ...]
    args: Mapping[str, Any]
    global_seed: int

    def plan(self, positions: Sequence[Position], *, key_item: str, index: int, seed: int) -> SentencePlan:
        if not 0 < len(positions) <= MAX_IMAGES_PER_SENTENCE:
            raise ValueError(f"{self.source}/{key_item}: a sentence of {len(positions)} images "
                             f"(1..{MAX_IMAGES_PER_SENTENCE})")
        meta = SentenceMeta.from_positions(positions, source=self.source, group=self.group, layout=self.layout,
                                           seed=seed, sentence_index=index)
        return SentencePlan(key=sentence_key(self.source, key_item, index), meta=meta)

    def epoch_key(self, epoch: int) -> str:
        """The item-key stand-in of a grouped layout's epoch: its sentences' keys and seeds."""
        return f"@epoch/{epoch}"


@dataclass(frozen=True)
class Layout:
    name: str
    grouped: bool
    plan: Callable[..., list[SentencePlan] | Grouped]  # per item: (item, ctx) -> plans; grouped: (items, ctx)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""


# --- per item --------------------------------------------------------------------------------

def single_image(item: Item, ctx: LayoutContext) -> list[SentencePlan]:
    """One sentence of the item's views in order: a photo ([image]), or a stereo pair ([left, right])."""
    seed = item_seed(ctx.global_seed, ctx.source, item.key)
    return [ctx.plan([Position(item.key, 0, v) for v in ctx.views], key_item=item.key, index=0, seed=seed)]


def clip_indices(num_frames: int, *, n_frames: int, stride: int, rng: random.Random | None) -> list[int]:
    """``n_frames`` indices ``stride`` apart, the stride lowered to fit (LVM's read_frames_from_video):
    a random start when ``rng`` is given, else the start of the video."""
    used = min(stride, (num_frames - 1) // (n_frames - 1)) if n_frames > 1 else stride
    start = rng.randrange(0, num_frames - (n_frames - 1) * used) if rng is not None else 0
    return [start + used * j for j in range(n_frames)]


def cover_clips(num_frames: int, *, n_frames: int, stride: int) -> list[list[int]]:
    """Consecutive, non-overlapping clips covering the video (``clips="all"``)."""
    used = min(stride, (num_frames - 1) // (n_frames - 1)) if n_frames > 1 else stride
    span, clips, start = used * (n_frames - 1) + 1, [], 0
    while start + span <= num_frames:
        clips.append([start + used * j for j in range(n_frames)])
        start += used * n_frames
    return clips


def video(item: Item, ctx: LayoutContext) -> list[SentencePlan]:
    """16 frames at stride 8 (lowered to fit a short video); one clip at a seeded random start per
    stride per epoch, as LVM's tokenize_video_muse.py; ``clips="all"`` covers the video instead.
    A video with fewer than ``min_frames`` (default: n_frames) frames is rejected."""
    a = ctx.args
    n, strides, epochs = int(a["n_frames"]), [int(s) for s in a["strides"]], int(a["epochs"])
    min_frames = int(a.get("min_frames") or n)
    if item.num_frames < min_frames:
        raise DecodeError("video_too_short", f"{item.key}: {item.num_frames} frames, fewer than the {min_frames} "
                                             f"a {n}-frame clip needs")
    seed = item_seed(ctx.global_seed, ctx.source, item.key)
    view = ctx.views[0]
    plans: list[SentencePlan] = []
    for epoch in range(epochs):
        for stride in strides:
            if item.num_frames < n:  # min_frames < n_frames: one shorter clip of every frame
                clips = [list(range(item.num_frames))]
            elif a["clips"] == "all":
                clips = cover_clips(item.num_frames, n_frames=n, stride=stride)
            else:
                rng = random.Random(derive_seed(seed, "epoch", epoch, "stride", stride))
                clips = [clip_indices(item.num_frames, n_frames=n, stride=stride, rng=rng)]
            for frames in clips:
                plans.append(ctx.plan([Position(item.key, f, view) for f in frames], key_item=item.key,
                                      index=len(plans), seed=seed))
    return plans


def _sequence_frames(num_frames: int, n: int, max_stride: int, rng: random.Random) -> list[int]:
    """LVM's randomly_subsample_frame_indices: stride drawn from [1, min(max_stride, (T-1)//(n-1))],
    then a random start."""
    top = min(max_stride, (num_frames - 1) // (n - 1)) if n > 1 else 1
    stride = rng.randint(1, max(1, top))
    start = rng.randrange(0, num_frames - (n - 1) * stride)
    return [start + stride * j for j in range(n)]


def frame_sequence(item: Item, ctx: LayoutContext) -> list[SentencePlan]:
    """A folder of frames: 16 frames, stride drawn from [1, min(4, (T-1)//15)], random start; one
    sentence per epoch (tokenize_seq_images_muse.py)."""
    a = ctx.args
    n, max_stride, epochs = int(a["n_frames"]), int(a["max_stride"]), int(a["epochs"])
    if item.num_frames < n:
        raise DecodeError("sequence_too_short", f"{item.key}: {item.num_frames} frames, fewer than {n}")
    seed = item_seed(ctx.global_seed, ctx.source, item.key)
    plans = []
    for epoch in range(epochs):
        frames = _sequence_frames(item.num_frames, n, max_stride, random.Random(derive_seed(seed, "epoch", epoch)))
        plans.append(ctx.plan([Position(item.key, f, ctx.views[0]) for f in frames], key_item=item.key,
                              index=epoch, seed=seed))
    return plans


def multiview(item: Item, ctx: LayoutContext) -> list[SentencePlan]:
    """An object's renders in rotation order (the reader numbers frames by azimuth): all of them
    if they fit in a sentence, else ``max_views`` evenly spaced around the circle."""
    n_views, limit = item.num_frames, int(ctx.args["max_views"])
    if n_views < int(ctx.args["min_views"]):
        raise DecodeError("too_few_views", f"{item.key}: {n_views} views, fewer than {ctx.args['min_views']}")
    frames = list(range(n_views)) if n_views <= limit else [i * n_views // limit for i in range(limit)]
    seed = item_seed(ctx.global_seed, ctx.source, item.key)
    return [ctx.plan([Position(item.key, f, ctx.views[0]) for f in frames], key_item=item.key, index=0, seed=seed)]


# --- grouped ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Grouped:
    """What a grouped layout makes of a source: its sentences, and the items none of them uses
    (each with the reason, recorded as a reject)."""

    plans: list[SentencePlan]
    left_out: list[tuple[str, DecodeError]] = field(default_factory=list)


def _epoch_order(items: Sequence[Item], ctx: LayoutContext, epoch: int) -> tuple[list[Item], random.Random, int]:
    seed = item_seed(ctx.global_seed, ctx.source, ctx.epoch_key(epoch))
    rng = random.Random(seed)
    order = sorted(items, key=lambda it: it.key)
    rng.shuffle(order)
    return order, rng, seed


def _epoch_groups(items: Sequence[Item], ctx: LayoutContext, size: int, epochs: int):
    """(epoch, index, group, rng, seed) for each group of ``size`` items of each epoch's seeded
    order; the rng continues after the shuffle, so a layout may draw more from it per group."""
    for epoch in range(epochs):
        order, rng, seed = _epoch_order(items, ctx, epoch)
        for index, start in enumerate(range(0, len(order), size)):
            yield epoch, index, order[start:start + size], rng, seed


def _whole_groups(items: Sequence[Item], ctx: LayoutContext, size: int) -> tuple[list[Item], list]:
    """LVM's ``drop_last``: the items that fill whole sentences of ``size`` items, by key, and the
    ``len % size`` left over (a seeded choice, the same every epoch) with the reason."""
    order = sorted(items, key=lambda it: it.key)
    extra = len(order) % size if ctx.args.get("drop_last", True) else 0
    if not extra:
        return order, []
    rng = random.Random(item_seed(ctx.global_seed, ctx.source, "@drop_last"))
    dropped = set(rng.sample(range(len(order)), extra))
    reason = (f"left out by drop_last: {len(order)} items of {ctx.source} do not fill whole sentences of {size} "
              f"(LVM's tokenize scripts drop the remainder too)")
    return ([it for i, it in enumerate(order) if i not in dropped],
            [(order[i].key, DecodeError("drop_last", f"{order[i].key}: {reason}")) for i in sorted(dropped)])


def _long_enough(items: Sequence[Item], n: int) -> tuple[list[Item], list]:
    """Items with at least ``n`` frames, and a ``sequence_too_short`` reason for each other one."""
    short = [(it.key, DecodeError("sequence_too_short", f"{it.key}: {it.num_frames} frames, fewer than {n}"))
             for it in items if it.num_frames < n]
    return [it for it in items if it.num_frames >= n], short


def pairs(items: Sequence[Item], ctx: LayoutContext) -> Grouped:
    """[x, y] x 8: each epoch a seeded permutation of the source's pairs, cut into sentences of
    ``n_pairs`` unrelated pairs (tokenize_paired_dataset_muse.py). ``views`` are (x, y)."""
    n, epochs = int(ctx.args["n_pairs"]), int(ctx.args["epochs"])
    kept, left_out = _whole_groups(items, ctx, n)
    plans = [ctx.plan([Position(it.key, 0, v) for it in group for v in ctx.views], key_item=ctx.epoch_key(epoch),
                      index=index, seed=seed)
             for epoch, index, group, _, seed in _epoch_groups(kept, ctx, n, epochs)]
    return Grouped(plans, left_out)


def multimodal(items: Sequence[Item], ctx: LayoutContext) -> Grouped:
    """3 shots x 5 modalities: each epoch a permutation of the items cut into groups of ``n_shots``;
    each sentence shuffles the modality order once and uses it for every shot
    (tokenize_multi_datasets_muse.py with shuffle_tasks)."""
    n, epochs = int(ctx.args["n_shots"]), int(ctx.args["epochs"])
    kept, left_out = _whole_groups(items, ctx, n)
    plans = []
    for epoch, index, group, rng, seed in _epoch_groups(kept, ctx, n, epochs):
        modalities = list(ctx.views)
        rng.shuffle(modalities)
        positions = [Position(it.key, 0, v) for it in group for v in modalities]
        plans.append(ctx.plan(positions, key_item=ctx.epoch_key(epoch), index=index, seed=seed))
    return Grouped(plans, left_out)


def multi_sequence(items: Sequence[Item], ctx: LayoutContext) -> Grouped:
    """Aligned sequences of several tasks (the spec's views: frames and their annotations), as
    tokenize_multi_seq_images_muse.py: per item and epoch, 16 frame indices shared by every task
    (stride from [1, min(4, (T-1)//15)], random start); each epoch permutes the items and takes
    ``n_shots`` (2) at a time; each group is written twice, the tasks kept separate
    [shot, task, frame] and then interleaved frame by frame [shot, frame, task]. With 2 tasks a
    sentence is 2 x 2 x 16 = 64 images. Items with fewer than 16 frames are rejected."""
    a = ctx.args
    n, max_stride, shots, epochs = int(a["n_frames"]), int(a["max_stride"]), int(a["n_shots"]), int(a["epochs"])
    usable, too_short = _long_enough(items, n)
    kept, left_out = _whole_groups(usable, ctx, shots)
    plans = []
    for epoch in range(epochs):
        order, _, seed = _epoch_order(kept, ctx, epoch)
        for index, start in enumerate(range(0, len(order), shots)):
            group = order[start:start + shots]
            frames = {it.key: _sequence_frames(it.num_frames, n, max_stride, random.Random(derive_seed(
                item_seed(ctx.global_seed, ctx.source, it.key), "epoch", epoch))) for it in group}
            separate = [Position(it.key, f, v) for it in group for v in ctx.views for f in frames[it.key]]
            interleaved = [Position(it.key, f, v) for it in group for f in frames[it.key] for v in ctx.views]
            for j, positions in enumerate((separate, interleaved)):
                plans.append(ctx.plan(positions, key_item=ctx.epoch_key(epoch), index=2 * index + j, seed=seed))
    return Grouped(plans, too_short + left_out)


def co3d(items: Sequence[Item], ctx: LayoutContext) -> Grouped:
    """tokenize_co3d_muse.py: views (frame, mask, depth_mask) of a sequence at 4 shared frame
    indices (stride from [1, min(4, (L-1)//3)], random start, drawn per epoch); ``n_shots`` (4)
    consecutive sequences (key order: the release's listing order) make a group, which gives one
    sentence per annotation view: [frames x 4, masks x 4] x 4 shots, then [frames x 4,
    depth masks x 4] x 4 shots (32 images each)."""
    a = ctx.args
    n, max_stride, shots, epochs = int(a["n_frames"]), int(a["max_stride"]), int(a["n_shots"]), int(a["epochs"])
    usable, too_short = _long_enough(items, n)
    kept, left_out = _whole_groups(usable, ctx, shots)
    image, *annotations = ctx.views
    plans = []
    for epoch in range(epochs):
        seed = item_seed(ctx.global_seed, ctx.source, ctx.epoch_key(epoch))
        for index, start in enumerate(range(0, len(kept), shots)):
            group = kept[start:start + shots]
            frames = {it.key: _sequence_frames(it.num_frames, n, max_stride, random.Random(derive_seed(
                item_seed(ctx.global_seed, ctx.source, it.key), "epoch", epoch))) for it in group}
            for j, view in enumerate(annotations):
                positions = [Position(it.key, f, v) for it in group for v in (image, view) for f in frames[it.key]]
                plans.append(ctx.plan(positions, key_item=ctx.epoch_key(epoch), index=len(annotations) * index + j,
                                      seed=seed))
    return Grouped(plans, too_short + left_out)


def category(items: Sequence[Item], ctx: LayoutContext) -> Grouped:
    """4 classes x 4 images: each epoch shuffles every class's images into runs of ``per_class``,
    then fills each sentence with runs of ``n_classes`` distinct classes, taking first from the
    classes with the most runs left so that classes run out together. Every image is used once
    per epoch; the last sentences may hold fewer classes, or shorter runs, when the data does.
    (The release's category script cannot run as shipped; this is uvd's reading of its intent,
    docs/LVM.md.)"""
    n_classes, per_class, epochs = int(ctx.args["n_classes"]), int(ctx.args["per_class"]), int(ctx.args["epochs"])
    by_class: dict[str, list[Item]] = {}
    for it in sorted(items, key=lambda it: it.key):
        by_class.setdefault(it.label, []).append(it)
    plans = []
    for epoch in range(epochs):
        seed = item_seed(ctx.global_seed, ctx.source, ctx.epoch_key(epoch))
        rng = random.Random(seed)
        runs: dict[str, list[list[Item]]] = {}
        for label in sorted(by_class):
            members = list(by_class[label])
            rng.shuffle(members)
            # reversed, so pop() takes the full runs first and a short last run last
            runs[label] = [members[i:i + per_class] for i in range(0, len(members), per_class)][::-1]
        tiebreak = {label: i for i, label in enumerate(rng.sample(sorted(runs), len(runs)))}
        index = 0
        while any(runs.values()):
            chosen = sorted((c for c in runs if runs[c]), key=lambda c: (-len(runs[c]), tiebreak[c]))[:n_classes]
            rng.shuffle(chosen)
            positions = [Position(it.key, 0, ctx.views[0]) for c in chosen for it in runs[c].pop()]
            plans.append(ctx.plan(positions, key_item=ctx.epoch_key(epoch), index=index, seed=seed))
            index += 1
    return Grouped(plans)


PAIRS = {"n_pairs": 8, "drop_last": True}
LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in [
    Layout("single_image", False, single_image, {}, "one sentence per item of its views: [image]"),
    Layout("video", False, video, {"n_frames": 16, "strides": (8,), "epochs": 1, "clips": "random",
                                   "min_frames": None},
           "16 frames at stride 8, one random clip per stride per epoch"),
    Layout("frame_sequence", False, frame_sequence, {"n_frames": 16, "max_stride": 4, "epochs": 1},
           "16 frames, stride from [1, min(4, (T-1)//15)], random start"),
    Layout("multiview", False, multiview, {"max_views": 16, "min_views": 2}, "an object's views in rotation order"),
    Layout("pairs", True, pairs, {**PAIRS, "epochs": 5}, "[x, y] x 8 unrelated pairs of one task"),
    Layout("colorization", True, pairs, {**PAIRS, "epochs": 2}, "[gray, color] x 8"),
    Layout("inpainting", True, pairs, {**PAIRS, "epochs": 5}, "[masked, original] x 8"),
    Layout("multimodal", True, multimodal, {"n_shots": 3, "epochs": 5, "drop_last": True},
           "3 shots x 5 modalities, one shuffled modality order per sentence"),
    Layout("multi_sequence", True, multi_sequence,
           {"n_frames": 16, "max_stride": 4, "n_shots": 2, "epochs": 1, "drop_last": True},
           "2 shots x tasks x 16 aligned frames, written tasks-separate then interleaved"),
    Layout("co3d", True, co3d, {"n_frames": 4, "max_stride": 4, "n_shots": 4, "epochs": 1, "drop_last": True},
           "[4 frames, 4 masks] x 4 sequences, then [4 frames, 4 depth masks] x 4"),
    Layout("category", True, category, {"n_classes": 4, "per_class": 4, "epochs": 1}, "4 classes x 4 images"),
]}


def get_layout(name: str) -> Layout:
    if name not in LAYOUTS:
        raise KeyError(f"unknown layout {name!r}; known: {sorted(LAYOUTS)}")
    return LAYOUTS[name]


def layout_context(spec, *, source: str, global_seed: int, overrides: Mapping[str, Any] | None = None) -> LayoutContext:
    """The LayoutContext of a spec: its layout's defaults, then the spec's layout_args, then overrides."""
    layout = get_layout(spec.layout)
    args = {**layout.defaults, **dict(spec.layout_args), **dict(overrides or {})}
    unknown = sorted(set(args) - set(layout.defaults))
    if unknown:
        raise ValueError(f"{spec.name}: layout {layout.name!r} has no argument(s) {unknown}; "
                         f"known: {sorted(layout.defaults)}")
    return LayoutContext(source=source, group=spec.group, layout=layout.name, views=tuple(spec.views), args=args,
                         global_seed=global_seed)
