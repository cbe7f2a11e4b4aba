"""One source's build steps in plain Python, without Beam: for examples and for rebuilding a sentence.

``uvd datasets show`` renders an example sentence of a spec; ``uvd rebuild`` makes a stored
sentence again from its metadata and checks that the tokens are the same. Both use the same
readers, layouts, rendering (frames.render_item_frames) and tokenizer batching as the build, so
what they show is what the build writes.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from uvd.pipeline.config import BuildConfig, SourceConfig
from uvd.pipeline.decode import DecodeError
from uvd.pipeline.format import SentenceMeta
from uvd.pipeline.frames import render_item_frames
from uvd.pipeline.items import Item
from uvd.pipeline.layouts import get_layout, layout_context
from uvd.pipeline.readers import DecodeContext, make_reader
from uvd.pipeline.rejects import Reject
from uvd.pipeline.sentences import SentencePlan


@contextmanager
def decode_context(config: BuildConfig):
    from uvd.pipeline.video_decoder import GuardedVideoDecoder, VideoGuard

    videos = GuardedVideoDecoder(VideoGuard(timeout_s=config.video_timeout_s, memory_mb=config.video_memory_mb))
    try:
        yield DecodeContext(max_pixels=config.max_image_pixels, video=videos, image_size=config.image_size)
    finally:
        videos.close()


def list_reader_items(reader, root: str, keys: set[str] | None = None) -> tuple[list[Item], list[Reject]]:
    """Every item a reader lists under ``root`` (or only those with ``keys``), and its rejects."""
    items, rejects = [], []
    for unit in reader.units(root):
        for entry in reader.items(root, unit):
            if isinstance(entry, Reject):
                rejects.append(entry)
            elif keys is None or entry.key in keys:
                items.append(entry)
    return items, rejects


def list_items(source: SourceConfig, keys: set[str] | None = None) -> tuple[list[Item], list[Reject]]:
    """Every item of a source (or only those with ``keys``), and the listing rejects."""
    return list_reader_items(make_reader(source.dataset_spec, source.name), source.root, keys)


def plan_source(source: SourceConfig, config: BuildConfig, ctx: DecodeContext,
                limit_items: int = 0) -> tuple[list[SentencePlan], dict[str, Item]]:
    """Probe and plan a source (its first ``limit_items`` items for a per-item layout, if > 0)."""
    spec = source.dataset_spec
    reader = make_reader(spec, source.name)
    layout = get_layout(spec.layout)
    lctx = layout_context(spec, source=source.name, global_seed=config.seed,
                          overrides=config.layout_args.get(source.name))
    items, _ = list_items(source)
    items.sort(key=lambda it: it.key)
    probed, plans = {}, []
    for item in (items if layout.grouped or not limit_items else items[:limit_items * 4]):
        try:
            item = reader.probe(item, ctx)
        except DecodeError:
            continue
        probed[item.key] = item
        if not layout.grouped:
            try:
                plans += layout.plan(item, lctx)
            except DecodeError:
                continue
            if limit_items and len(probed) >= limit_items and plans:
                break
    if layout.grouped:
        plans = layout.plan(list(probed.values()), lctx)
    return plans, probed


def render_plan(source: SourceConfig, meta: SentenceMeta, items: dict[str, Item], config: BuildConfig,
                ctx: DecodeContext) -> np.ndarray:
    """(num_images, S, S, 3) uint8 frames of a planned or stored sentence, in order."""
    from uvd.pipeline.annotators import load_annotator

    spec = source.dataset_spec
    reader = make_reader(spec, source.name)
    annotators = {k: load_annotator(k, config.annotators.get(k)) for k in spec.model_annotations}
    frames: dict[tuple[str, int, str], np.ndarray] = {}
    positions = meta.positions
    for key in meta.item_keys:
        mine = [p for p in positions if p.item_key == key]
        for (frame, view), pixels in render_item_frames(reader, items[key], mine, ctx=ctx, global_seed=config.seed,
                                                        annotators=annotators).items():
            frames[(key, frame, view)] = pixels
    return np.stack([frames[(p.item_key, p.frame, p.view)] for p in positions])


def tokenize(frames: np.ndarray, config: BuildConfig, device: str = "cpu") -> np.ndarray:
    """uint16 (N, tokens_per_image), batched exactly as the build batches (fixed batch shape)."""
    from uvd.pipeline.inference import VQGANModelHandler

    handler = VQGANModelHandler(config.tokenizer, batch_size=config.batch_size, device=device,
                                compile=config.compile_tokenizer)
    model = handler.load_model()
    out = []
    for start in range(0, len(frames), config.batch_size):
        out += handler.run_inference(list(frames[start:start + config.batch_size]), model)
    return np.stack(out)


def rebuild_sentence(source: SourceConfig, meta: SentenceMeta, config: BuildConfig) -> np.ndarray:
    """The tokens of a stored sentence, made again from its metadata and the build's config."""
    items, _ = list_items(source, set(meta.item_keys))
    with decode_context(config) as ctx:
        reader = make_reader(source.dataset_spec, source.name)
        probed = {it.key: reader.probe(it, ctx) for it in items}
        missing = sorted(set(meta.item_keys) - set(probed))
        if missing:
            raise KeyError(f"{source.root}: items {missing} are no longer listed by {source.spec}")
        return tokenize(render_plan(source, meta, probed, config, ctx), config)
