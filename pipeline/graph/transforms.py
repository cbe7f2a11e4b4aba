"""The composite transforms of a build that make sentences, each named for what it produces.

    plan phase:  SourceItems -> ProbedItems -> DedupedItems -> SentencePlans -> [MixedPlans]
    wave phase:  DecodedFrames -> TokenizedFrames -> VisualSentences
    (writing.py commits each phase's work: wave files, shards, records)

Sources are data, not graph structure: every source flows through the same steps, and the
DoFns look their source's spec and reader up by name. So a build of fifty datasets has the
same graph as a build of one. DoFns hold no per-sample logic: they call readers, layouts,
views and annotators, and route every failure to a ``rejects`` output as a ``Reject``.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.pvalue import AsSingleton

from uvd.format.rejects import Reject
from uvd.pipeline import steps
from uvd.pipeline.graph.inference import VQGANModelHandler
from uvd.pipeline.graph.progress import ProgressBeacon
from uvd.pipeline.graph.rejects import REJECTS, rejected
from uvd.pipeline.graph.resources import use_threads
from uvd.pipeline.graph.state import shard_index
from uvd.pipeline.planning.layouts import get_layout
from uvd.pipeline.records import sentences
from uvd.pipeline.records.config import BuildConfig, SourceConfig
from uvd.pipeline.records.items import Item


class _PerSourceFn(beam.DoFn):
    """A DoFn that needs each source's spec, reader and layout (steps.SourceSteps, built in setup), and
    reports progress to the local progress bar when there is one."""

    def __init__(self, sources: list[SourceConfig], config: BuildConfig, progress_dir: str | None = None):
        self.sources, self.config, self.progress_dir = sources, config, progress_dir

    def setup(self):
        self.beacon = ProgressBeacon(self.progress_dir)
        self.steps = steps.SourceSteps.create(self.sources, self.config)


class _DecodingFn(_PerSourceFn):
    """A per-source DoFn that decodes: holds the worker's decoding resources (a guarded video decoder),
    and sets the worker's OpenCV and torch threads (resources.py) when given."""
    def __init__(self, sources: list[SourceConfig], config: BuildConfig, progress_dir: str | None = None,
                 threads: int | None = None):
        super().__init__(sources, config, progress_dir)
        self.threads = threads

    def setup(self):
        super().setup()
        use_threads(self.threads)
        self.resources = steps.DecodeResources(self.config)

    def teardown(self):
        self.resources.close()


# --- SourceItems: list every source ------------------------------------------------------------

class ListUnitsFn(_PerSourceFn):
    """(source name, root) -> (source name, root, unit): the pieces of a source listed in parallel."""
    def process(self, element):
        name, root = element
        for unit in steps.list_units(self.steps, name, root):
            yield rejected(unit) if isinstance(unit, Reject) else (name, root, unit)


class ListItemsFn(_PerSourceFn):
    """(source name, root, unit) -> Items, and a Reject for every entry a reader cannot use."""

    def process(self, element):
        name, root, unit = element
        for entry in steps.list_items(self.steps, name, root, unit):
            if isinstance(entry, Reject):
                yield rejected(entry)
                continue
            Metrics.counter("uvd.inputs", name).inc()
            self.beacon.add(done=0, listed=1)
            yield entry


class SourceItems(beam.PTransform):
    """Every item of every source (local, s3:// or gs://), plus listing rejects."""
    def __init__(self, sources: list[SourceConfig], config: BuildConfig, progress_dir: str | None = None):
        super().__init__()
        self.sources, self.config, self.progress_dir = sources, config, progress_dir

    def expand(self, pbegin):
        units = (pbegin
                 | "Sources" >> beam.Create([(s.name, s.root) for s in self.sources])
                 | "ListUnits" >> beam.ParDo(ListUnitsFn(self.sources, self.config)).with_outputs(REJECTS, main="units"))
        listed = (units.units
                  | "SpreadUnits" >> beam.Reshuffle()
                  | "ListItems" >> beam.ParDo(ListItemsFn(self.sources, self.config, self.progress_dir)).with_outputs(
                      REJECTS, main="items"))
        rejects = (units[REJECTS], listed[REJECTS]) | "ListRejects" >> beam.Flatten()
        return listed.items, rejects


# --- ProbedItems: what planning needs to know --------------------------------------------------

class ProbeItemFn(_DecodingFn):
    """Item -> Item with the facts its layout needs (a video's frame count) and, for stills, the
    hash of its bytes (for exact dedup); or a reject."""

    def process(self, item: Item):
        probed = steps.probe_item(self.steps, item, self.resources.ctx)
        self.beacon.add()
        yield rejected(probed) if isinstance(probed, Reject) else probed


class ProbedItems(beam.PTransform):
    def __init__(self, sources, config, progress_dir=None):
        super().__init__()
        self.fn = ProbeItemFn(sources, config, progress_dir)

    def expand(self, items):
        probed = items | "Probe" >> beam.ParDo(self.fn).with_outputs(REJECTS, main="items")
        return probed.items, probed[REJECTS]


# --- DedupedItems: identical stills once per source ----------------------------------------------

def keep_first_copy(element):
    """((source, hash), items) -> the item with the smallest key, then a reject for each other copy."""
    _, copies = element
    first, *others = sorted(copies, key=lambda it: it.key)
    yield first
    for item in others:
        Metrics.counter("uvd.dedup", "duplicate_image").inc()
        yield rejected(Reject(source=item.source, item_key=item.key, stage="dedup", reason="duplicate_image",
                              message=f"{', '.join(item.paths)}: the same bytes as {first.key} (kept)"))


class DedupedItems(beam.PTransform):
    """Items whose bytes are identical to another item's of the same source are dropped (the copy
    with the smallest key stays): exact dedup, before any sentence is planned."""

    def expand(self, items):
        hashed, unhashed = items | "HasHash" >> beam.Partition(lambda it, n: 0 if it.content_hash else 1, 2)
        deduped = (hashed
                   | "ByContent" >> beam.Map(lambda it: ((it.source, it.content_hash), it))
                   | "Copies" >> beam.GroupByKey()
                   | "KeepFirstCopy" >> beam.FlatMap(keep_first_copy).with_outputs(REJECTS, main="items"))
        return (deduped.items, unhashed) | "AllItems" >> beam.Flatten(), deduped[REJECTS]


# --- SentencePlans: the source's layout ---------------------------------------------------------

class PlanItemSentencesFn(_PerSourceFn):
    """Item -> its SentencePlans, for per-item layouts (video, frame_sequence, multiview, ...)."""
    def process(self, item: Item):
        if self.steps.layouts[item.source].grouped:
            return
        plans = steps.plan_item(self.steps, item)
        if isinstance(plans, Reject):
            yield rejected(plans)
        else:
            yield from plans


class PlanGroupSentencesFn(_PerSourceFn):
    """(source, all its items) -> SentencePlans, for grouped layouts (pairs, category, ...), and a
    reject for each item no sentence uses."""

    def process(self, element):
        name, items = element
        for plan in steps.plan_group(self.steps, name, items):
            yield rejected(plan) if isinstance(plan, Reject) else plan


class SentencePlans(beam.PTransform):
    """Items -> SentencePlans (every random choice seeded), plus planning rejects."""
    def __init__(self, sources: list[SourceConfig], config: BuildConfig):
        super().__init__()
        self.sources, self.config = sources, config
        self.grouped = {s.name for s in sources if get_layout(s.dataset_spec.layout).grouped}

    def expand(self, items):
        per_item = items | "PlanPerItem" >> beam.ParDo(PlanItemSentencesFn(self.sources, self.config)).with_outputs(
            REJECTS, main="plans")
        grouped = (items
                   | "OfGroupedLayouts" >> beam.Filter(lambda it, names: it.source in names, names=self.grouped)
                   | "BySource" >> beam.Map(lambda it: (it.source, it))
                   | "ItemsOfSource" >> beam.GroupByKey()
                   | "PlanGroups" >> beam.ParDo(PlanGroupSentencesFn(self.sources, self.config)).with_outputs(
                       REJECTS, main="plans"))
        plans = (per_item.plans, grouped.plans) | "AllPlans" >> beam.Flatten()
        return plans, (per_item[REJECTS], grouped[REJECTS]) | "PlanRejects" >> beam.Flatten()


# --- DecodedFrames: pixels for every planned position --------------------------------------------

class DrawFramesFn(_DecodingFn):
    """(item, the positions that show it) -> ((sentence key, position), 256x256 frame).

    Each item is decoded once for all the sentences that use it; derived views (gray, masked,
    annotators) are made from the resized frame. A failure rejects the item; the sentences
    that needed it are then rejected as incomplete at assembly.
    """

    def setup(self):
        super().setup()
        self.annotators = self.steps.annotators()

    def process(self, element, num_shards):
        (source, key), joined = element
        requests = sorted(joined["requests"])
        candidates = sorted(joined["item"], key=lambda it: it.paths)
        if not candidates or not requests:  # an item in no sentence of this wave
            return
        item = candidates[0]
        # A failure belongs to every shard that needed the item: a rerun that redoes only some of
        # them still records it (records are merged as a set).
        owners = sorted({shard_index(sentence_key, num_shards) for sentence_key, _, _ in requests})
        for duplicate in candidates[1:]:
            for shard in owners:
                yield rejected(Reject(source, key, "list", "duplicate_item_key",
                                      f"{duplicate.paths}: item key {key!r} is listed twice; kept {item.paths}"), shard)
        frames = steps.draw_frames(self.steps, item, [position for _, _, position in requests], self.resources.ctx,
                                   self.annotators)
        if isinstance(frames, Reject):
            for shard in owners:
                yield rejected(frames, shard)
            return
        for sentence_key, index, position in requests:
            yield (sentence_key, index), frames[(position.frame, position.view)]


class DecodedFrames(beam.PTransform):
    """Items + plans -> keyed 256x256 uint8 frames of every planned position, plus (shard, decode reject)."""
    def __init__(self, sources, config, progress_dir=None, threads: int | None = None):
        super().__init__()
        self.fn = DrawFramesFn(sources, config, progress_dir, threads)

    def expand(self, inputs):
        items, plans, num_shards = inputs
        requests = plans | "PositionsOfItems" >> beam.FlatMap(
            lambda plan: (((plan.meta.source, pos.item_key), (plan.key, i, pos))
                          for i, pos in enumerate(plan.meta.positions)))
        keyed = items | "KeyItems" >> beam.Map(lambda it: ((it.source, it.key), it))
        joined = {"item": keyed, "requests": requests} | "JoinItemsAndPositions" >> beam.CoGroupByKey()
        frames = joined | "DrawFrames" >> beam.ParDo(self.fn, num_shards=AsSingleton(num_shards)).with_outputs(
            REJECTS, main="frames")
        return frames.frames, frames[REJECTS]


# --- TokenizedFrames, VisualSentences ----------------------------------------------------------

class TokenizedFrames(beam.PTransform):
    """Keyed frames -> keyed uint16 token ids, batched through RunInference. ``accelerator`` is a Beam
    resource hint (e.g. Dataflow's "type:nvidia-l4;count:1;install-nvidia-driver"): runners that
    place work by hints run this step, and only this step, on GPU workers."""

    def __init__(self, config: BuildConfig, device: str = "auto", accelerator: str | None = None,
                 threads: int | None = None):
        super().__init__()
        self.config, self.device, self.accelerator, self.threads = config, device, accelerator, threads

    def expand(self, frames):
        handler = KeyedModelHandler(VQGANModelHandler(self.config.tokenizer, batch_size=self.config.batch_size,
                                                      device=self.device, compile=self.config.compile_tokenizer,
                                                      precision=self.config.tokenizer_precision,
                                                      threads=self.threads))
        encode = RunInference(handler)
        if self.accelerator:
            encode = encode.with_resource_hints(accelerator=self.accelerator)
        return frames | "EncodeWithVQGAN" >> encode


class AssembleSentenceFn(beam.DoFn):
    """(key, {plans, tokens}) -> VisualSentence, or (shard, reject)s when some of its frames never arrived."""
    def __init__(self, progress_dir: str | None = None):
        self.progress_dir = progress_dir

    def setup(self):
        self.beacon = ProgressBeacon(self.progress_dir)

    def process(self, element, num_shards):
        self.beacon.add()
        key, joined = element
        plans, tokens = list(joined["plans"]), list(joined["tokens"])
        if len(plans) != 1:
            raise RuntimeError(f"sentence {key}: {len(plans)} plans (keys must be unique)")
        plan = plans[0]
        try:
            sentence = sentences.assemble_sentence(plan, tokens)
        except sentences.IncompleteSentence as e:
            # Members whose frames did arrive lose their sentence because of another member (whose
            # own failure is already recorded): reject them too, so every input stays accounted for.
            arrived = sorted({plan.meta.image_items[p] for p, _ in tokens if 0 <= p < plan.num_images})
            shard = shard_index(plan.key, num_shards)
            for index in arrived:
                yield rejected(Reject(source=plan.meta.source, item_key=plan.meta.item_keys[index], stage="assemble",
                                      reason="incomplete_sentence", message=str(e)), shard)
            return
        Metrics.counter("uvd.sentences", plan.meta.source).inc()
        yield sentence


class VisualSentences(beam.PTransform):
    """Join each plan with its frames' tokens into a VisualSentence (plus (shard, reject)s)."""
    def __init__(self, progress_dir: str | None = None):
        super().__init__()
        self.progress_dir = progress_dir

    def expand(self, inputs):
        plans, tokens, num_shards = inputs
        keyed_plans = plans | "KeyPlans" >> beam.Map(lambda p: (p.key, p))
        by_sentence = tokens | "KeyBySentence" >> beam.Map(lambda kv: (kv[0][0], (kv[0][1], kv[1])))
        joined = {"plans": keyed_plans, "tokens": by_sentence} | "JoinPlansAndTokens" >> beam.CoGroupByKey()
        result = joined | "AssembleSentences" >> beam.ParDo(
            AssembleSentenceFn(self.progress_dir), num_shards=AsSingleton(num_shards)).with_outputs(
            REJECTS, main="sentences")
        return result.sentences, result[REJECTS]
