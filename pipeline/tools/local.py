"""One source's build steps in one process, without Beam: for examples and for rebuilding a sentence.

``uvd datasets show`` draws an example sentence of a spec; ``uvd rebuild`` makes a stored sentence
again from its metadata and checks that the tokens are the same; ``uvd stats`` compares decoded
tokens with the frames again. All of them call the same plain steps (pipeline/steps.py) and the
same tokenizer batching as the build, so what they show is what the build writes.
"""

from __future__ import annotations

import numpy as np

from uvd.format.rejects import Reject
from uvd.format.sample import SentenceMeta
from uvd.pipeline import steps
from uvd.pipeline.readers import DecodeContext
from uvd.pipeline.records.config import BuildConfig, SourceConfig
from uvd.pipeline.records.items import Item
from uvd.pipeline.records.sentences import SentencePlan
from uvd.tokenizer import encode_frames, load_tokenizer
from uvd.tokenizer.frames import Frame


def plan_source(source: SourceConfig, config: BuildConfig, ctx: DecodeContext,
                limit_items: int = 0) -> tuple[list[SentencePlan], dict[str, Item]]:
    """Probe and plan a source (for a per-item layout, stop once ``limit_items`` items gave plans)."""
    run = steps.SourceSteps.create([source], config)
    grouped = run.layouts[source.name].grouped
    items, _ = steps.list_source(run, source.name, source.root)
    items.sort(key=lambda it: it.key)
    probed, plans = {}, []
    for item in (items if grouped or not limit_items else items[:limit_items * 4]):
        item = steps.probe_item(run, item, ctx)
        if isinstance(item, Reject):
            continue
        probed[item.key] = item
        if grouped:
            continue
        planned = steps.plan_item(run, item)
        plans += [] if isinstance(planned, Reject) else planned
        if limit_items and len(probed) >= limit_items and plans:
            break
    if grouped:
        plans = [p for p in steps.plan_group(run, source.name, probed.values()) if not isinstance(p, Reject)]
    return plans, probed


def sentence_frames(source: SourceConfig, meta: SentenceMeta, items: dict[str, Item], config: BuildConfig,
                    ctx: DecodeContext) -> list[Frame]:
    """The frames of a planned or stored sentence, in order: (S, S, 3) uint8, or TaggedFrames whose
    float transform the tokenizer applies (``tokenizer.frames.preview`` shows them)."""
    run = steps.SourceSteps.create([source], config)
    annotators = run.annotators()
    frames: dict[tuple[str, int, str], Frame] = {}
    positions = meta.positions
    for key in meta.item_keys:
        drawn = steps.draw_frames(run, items[key], [p for p in positions if p.item_key == key], ctx, annotators)
        if isinstance(drawn, Reject):
            raise ValueError(f"{source.name}: {drawn.message}")
        frames.update({(key, frame, view): pixels for (frame, view), pixels in drawn.items()})
    return [frames[(p.item_key, p.frame, p.view)] for p in positions]


def tokenize(frames: list[Frame], config: BuildConfig, device: str = "cpu") -> np.ndarray:
    """uint16 (N, tokens_per_image), batched exactly as the build batches (fixed batch shape and precision)."""
    model = load_tokenizer(config.tokenizer, device=device, compile=config.compile_tokenizer)
    return encode_frames(model.with_precision(config.tokenizer_precision), frames, config.batch_size)


def probed_items(source: SourceConfig, keys: set[str], config: BuildConfig, ctx: DecodeContext) -> dict[str, Item]:
    """The items with ``keys`` that the source still lists and that still probe, by key."""
    run = steps.SourceSteps.create([source], config)
    items, _ = steps.list_source(run, source.name, source.root, keys)
    probed = (steps.probe_item(run, item, ctx) for item in items)
    return {item.key: item for item in probed if not isinstance(item, Reject)}


def rebuild_sentence(source: SourceConfig, meta: SentenceMeta, config: BuildConfig) -> np.ndarray:
    """The tokens of a stored sentence, made again from its metadata and the build's config."""
    with steps.DecodeResources(config) as ctx:
        probed = probed_items(source, set(meta.item_keys), config, ctx)
        missing = sorted(set(meta.item_keys) - set(probed))
        if missing:
            raise KeyError(f"{source.root}: items {missing} are no longer listed (or readable) by {source.spec}")
        return tokenize(sentence_frames(source, meta, probed, config, ctx), config)
