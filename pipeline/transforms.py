"""The composite transforms of a build, each named for what it produces.

    SourceItems -> ProbedItems -> SentencePlans -> DecodedFrames -> TokenizedFrames
        -> VisualSentences -> TokenShards -> BuildRecords

Sources are data, not graph structure: every source flows through the same steps, and the
DoFns look their source's spec and reader up by name. So a build of fifty datasets has the
same graph as a build of one. DoFns hold no per-sample logic: they call readers, layouts,
views and annotators, and route every failure to a ``rejects`` output as a ``Reject``.
"""

from __future__ import annotations

import json
from collections import defaultdict

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.pvalue import AsList, AsSingleton

from uvd.pipeline import sentences, shards
from uvd.pipeline.config import BuildConfig, SourceConfig
from uvd.pipeline.decode import DecodeError
from uvd.pipeline.format import MANIFEST_NAME, REJECTS_NAME, SUMMARY_NAME
from uvd.pipeline.frames import render_item_frames
from uvd.pipeline.inference import VQGANModelHandler
from uvd.pipeline.items import Item
from uvd.pipeline.progress import ProgressBeacon
from uvd.pipeline.rejects import Reject, record_reject

REJECTS = "rejects"


class _PerSourceFn(beam.DoFn):
    """A DoFn that needs each source's spec, reader and layout context (built in setup), and
    reports progress to the local progress bar when there is one."""

    def __init__(self, sources: list[SourceConfig], config: BuildConfig, progress_dir: str | None = None):
        self.sources, self.config, self.progress_dir = sources, config, progress_dir

    def setup(self):
        self.beacon = ProgressBeacon(self.progress_dir)
        from uvd.pipeline.layouts import get_layout, layout_context
        from uvd.pipeline.readers import make_reader

        self.specs = {s.name: s.dataset_spec for s in self.sources}
        self.readers = {s.name: make_reader(self.specs[s.name], s.name) for s in self.sources}
        self.layouts = {s.name: get_layout(self.specs[s.name].layout) for s in self.sources}
        self.contexts = {s.name: layout_context(self.specs[s.name], source=s.name, global_seed=self.config.seed,
                                                overrides=self.config.layout_args.get(s.name))
                         for s in self.sources}


def _reject(source: str, key: str, stage: str, error: DecodeError) -> beam.pvalue.TaggedOutput:
    return beam.pvalue.TaggedOutput(REJECTS, record_reject(
        Reject(source=source, item_key=key, stage=stage, reason=error.reason, message=error.message)))


# --- SourceItems: list every source ------------------------------------------------------------

class ListUnitsFn(_PerSourceFn):
    """(source name, root) -> (source name, unit): the pieces of a source listed in parallel."""

    def process(self, element):
        name, root = element
        try:
            units = self.readers[name].units(root)
        except (OSError, ValueError) as e:
            yield _reject(name, root, "list", DecodeError("unreadable_source", f"{root}: {e}"))
            return
        for unit in units:
            yield name, root, unit


class ListItemsFn(_PerSourceFn):
    """(source name, root, unit) -> Items, and a Reject for every entry a reader cannot use."""

    def process(self, element):
        name, root, unit = element
        try:
            for entry in self.readers[name].items(root, unit):
                if isinstance(entry, Reject):
                    yield beam.pvalue.TaggedOutput(REJECTS, record_reject(entry))
                else:
                    Metrics.counter("uvd.inputs", name).inc()
                    self.beacon.add(done=0, listed=1)
                    yield entry
        except DecodeError as e:
            yield _reject(name, unit, "list", e)
        except (OSError, ValueError) as e:
            yield _reject(name, unit, "list", DecodeError("unreadable_annotation", f"{unit}: {e}"))


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

class _DecodingFn(_PerSourceFn):
    """A per-source DoFn that decodes: holds a DecodeContext with a guarded video decoder."""

    def setup(self):
        from uvd.pipeline.readers import DecodeContext
        from uvd.pipeline.video_decoder import GuardedVideoDecoder, VideoGuard

        super().setup()
        self.videos = GuardedVideoDecoder(VideoGuard(timeout_s=self.config.video_timeout_s,
                                                     memory_mb=self.config.video_memory_mb))
        self.ctx = DecodeContext(max_pixels=self.config.max_image_pixels, video=self.videos,
                                 image_size=self.config.image_size)

    def teardown(self):
        self.videos.close()


class ProbeItemFn(_DecodingFn):
    """Item -> Item with the facts its layout needs (a video's frame count), or a reject."""

    def process(self, item: Item):
        try:
            yield self.readers[item.source].probe(item, self.ctx)
        except DecodeError as e:
            yield _reject(item.source, item.key, "probe", e)
            self.beacon.add()
        except OSError as e:
            yield _reject(item.source, item.key, "probe", DecodeError("unreadable_file", f"{item.paths}: {e}"))
            self.beacon.add()


class ProbedItems(beam.PTransform):
    def __init__(self, sources, config, progress_dir=None):
        super().__init__()
        self.fn = ProbeItemFn(sources, config, progress_dir)

    def expand(self, items):
        probed = items | "Probe" >> beam.ParDo(self.fn).with_outputs(REJECTS, main="items")
        return probed.items, probed[REJECTS]


# --- SentencePlans: the source's layout ---------------------------------------------------------

class PlanItemSentencesFn(_PerSourceFn):
    """Item -> its SentencePlans, for per-item layouts (video, frame_sequence, multiview, ...)."""

    def process(self, item: Item):
        if self.layouts[item.source].grouped:
            return
        try:
            yield from self.layouts[item.source].plan(item, self.contexts[item.source])
        except DecodeError as e:
            yield _reject(item.source, item.key, "plan", e)


class PlanGroupSentencesFn(_PerSourceFn):
    """(source, all its items) -> SentencePlans, for grouped layouts (pairs, category, ...)."""

    def process(self, element):
        name, items = element
        yield from self.layouts[name].plan(list(items), self.contexts[name])


class SentencePlans(beam.PTransform):
    """Items -> SentencePlans (every random choice seeded), plus planning rejects."""

    def __init__(self, sources: list[SourceConfig], config: BuildConfig):
        super().__init__()
        self.sources, self.config = sources, config
        self.grouped = {s.name for s in sources if _is_grouped(s)}

    def expand(self, items):
        per_item = items | "PlanPerItem" >> beam.ParDo(PlanItemSentencesFn(self.sources, self.config)).with_outputs(
            REJECTS, main="plans")
        grouped = (items
                   | "OfGroupedLayouts" >> beam.Filter(lambda it, names: it.source in names, names=self.grouped)
                   | "BySource" >> beam.Map(lambda it: (it.source, it))
                   | "ItemsOfSource" >> beam.GroupByKey()
                   | "PlanGroups" >> beam.ParDo(PlanGroupSentencesFn(self.sources, self.config)))
        plans = (per_item.plans, grouped) | "AllPlans" >> beam.Flatten()
        return plans, per_item[REJECTS]


def _is_grouped(source: SourceConfig) -> bool:
    from uvd.pipeline.layouts import get_layout

    return get_layout(source.dataset_spec.layout).grouped


# --- DecodedFrames: pixels for every planned position --------------------------------------------

class RenderFramesFn(_DecodingFn):
    """(item, the positions that show it) -> ((sentence key, position), 256x256 frame).

    Each item is decoded once for all the sentences that use it; derived views (gray, masked,
    annotators) are made from the resized frame. A failure rejects the item; the sentences
    that needed it are then rejected as incomplete at assembly.
    """

    def setup(self):
        from uvd.pipeline.annotators import load_annotator

        super().setup()
        needed = {kind for s in self.specs.values() for kind in s.model_annotations}
        self.annotators = {kind: load_annotator(kind, self.config.annotators.get(kind)) for kind in sorted(needed)}

    def process(self, element):
        (source, key), joined = element
        requests = sorted(joined["requests"])
        candidates = sorted(joined["item"], key=lambda it: it.paths)
        if not candidates:
            return
        if not requests:  # in no sentence: rejected while planning (already recorded)
            self.beacon.add()
            return
        item = candidates[0]
        for duplicate in candidates[1:]:
            yield _reject(source, key, "list", DecodeError(
                "duplicate_item_key", f"{duplicate.paths}: item key {key!r} is listed twice; kept {item.paths}"))
        try:
            frames = self.render(item, [position for _, _, position in requests])
        except DecodeError as e:
            yield _reject(source, key, "decode", e)
            return
        except OSError as e:
            yield _reject(source, key, "decode", DecodeError("unreadable_file", f"{item.paths}: {e}"))
            return
        finally:
            self.beacon.add()
        for sentence_key, index, position in requests:
            yield (sentence_key, index), frames[(position.frame, position.view)]

    def render(self, item: Item, positions) -> dict[tuple[int, str], np.ndarray]:
        return render_item_frames(self.readers[item.source], item, positions, ctx=self.ctx,
                                  global_seed=self.config.seed, annotators=self.annotators)


class DecodedFrames(beam.PTransform):
    """Items + plans -> keyed 256x256 frames of every planned position, plus decode rejects."""

    def __init__(self, sources, config, progress_dir=None):
        super().__init__()
        self.fn = RenderFramesFn(sources, config, progress_dir)

    def expand(self, inputs):
        items, plans = inputs
        requests = plans | "PositionsOfItems" >> beam.FlatMap(
            lambda plan: (((plan.meta.source, pos.item_key), (plan.key, i, pos))
                          for i, pos in enumerate(plan.meta.positions)))
        keyed = items | "KeyItems" >> beam.Map(lambda it: ((it.source, it.key), it))
        joined = {"item": keyed, "requests": requests} | "JoinItemsAndPositions" >> beam.CoGroupByKey()
        frames = joined | "Render" >> beam.ParDo(self.fn).with_outputs(REJECTS, main="frames")
        return frames.frames, frames[REJECTS]


# --- TokenizedFrames, VisualSentences ----------------------------------------------------------

class TokenizedFrames(beam.PTransform):
    """Keyed frames -> keyed uint16 token ids, batched through RunInference."""

    def __init__(self, config: BuildConfig, device: str = "auto"):
        super().__init__()
        self.config, self.device = config, device

    def expand(self, frames):
        handler = KeyedModelHandler(VQGANModelHandler(self.config.tokenizer, batch_size=self.config.batch_size,
                                                      device=self.device))
        return frames | "EncodeWithVQGAN" >> RunInference(handler)


class AssembleSentenceFn(beam.DoFn):
    """(key, {plans, tokens}) -> VisualSentence, or rejects when some of its frames never arrived."""

    def process(self, element):
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
            for index in arrived:
                yield beam.pvalue.TaggedOutput(REJECTS, record_reject(Reject(
                    source=plan.meta.source, item_key=plan.meta.item_keys[index], stage="assemble",
                    reason="incomplete_sentence", message=str(e))))
            return
        Metrics.counter("uvd.sentences", plan.meta.source).inc()
        yield sentence


class VisualSentences(beam.PTransform):
    """Join each plan with its frames' tokens into a VisualSentence (plus rejects)."""

    def expand(self, inputs):
        plans, tokens = inputs
        keyed_plans = plans | "KeyPlans" >> beam.Map(lambda p: (p.key, p))
        by_sentence = tokens | "KeyBySentence" >> beam.Map(lambda kv: (kv[0][0], (kv[0][1], kv[1])))
        joined = {"plans": keyed_plans, "tokens": by_sentence} | "JoinPlansAndTokens" >> beam.CoGroupByKey()
        result = joined | "AssembleSentences" >> beam.ParDo(AssembleSentenceFn()).with_outputs(
            REJECTS, main="sentences")
        return result.sentences, result[REJECTS]


# --- TokenShards --------------------------------------------------------------------------------

class WriteShardFn(beam.DoFn):
    """(shard index, sentences) -> ShardInfo, committed atomically."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir

    def process(self, element):
        index, group = element
        info = shards.write_shard(self.out_dir, index, list(group))
        Metrics.counter("uvd.shards", "written").inc()
        yield info


class TokenShards(beam.PTransform):
    """Sentences -> WebDataset shards whose placement depends only on keys and config."""

    def __init__(self, out_dir: str, config: BuildConfig):
        super().__init__()
        self.out_dir, self.config = out_dir, config

    def expand(self, sentences_pc):
        total = sentences_pc | "CountSentences" >> beam.combiners.Count.Globally()
        per_shard = self.config.samples_per_shard

        def assign(sentence, n):
            return shards.shard_index(sentence.key, shards.num_shards_for(n, per_shard)), sentence

        return (sentences_pc
                | "AssignShards" >> beam.Map(assign, n=AsSingleton(total))
                | "GroupByShard" >> beam.GroupByKey()
                | "WriteShards" >> beam.ParDo(WriteShardFn(self.out_dir)))


# --- Accounting and BuildRecords -----------------------------------------------------------------

OUTCOMES = ("written", "rejected", "skipped", "unaccounted")


def account_item(element) -> tuple[str, str]:
    """((source, key), {listed, written, rejected, skipped}) -> (source, outcome) of a listed item:
    written if any sentence of it reached a shard, else rejected, else left out by the mixture."""
    (source, _), seen = element
    if not seen["listed"]:
        return source, "not_listed"  # a reject of a unit (a broken annotation file), not of an item
    for outcome in OUTCOMES[:3]:
        if seen[outcome]:
            return source, outcome
    return source, "unaccounted"


class ItemAccounting(beam.PTransform):
    """Per source, how many listed items reached a shard, were rejected, were left out by a mixture,
    or none of these (a bug: must be 0)."""

    def expand(self, inputs):
        items, sentences_pc, rejects, skipped = inputs
        listed = items | "ListedKeys" >> beam.Map(lambda it: ((it.source, it.key), 1))
        written = sentences_pc | "WrittenKeys" >> beam.FlatMap(
            lambda s: (((s.meta.source, k), 1) for k in s.meta.item_keys))
        rejected = rejects | "RejectedKeys" >> beam.Map(lambda r: ((r.source, r.item_key), 1))
        left_out = skipped | "SkippedKeys" >> beam.Map(lambda sk: (sk, 1))
        return ({"listed": listed, "written": written, "rejected": rejected, "skipped": left_out}
                | "JoinOutcomes" >> beam.CoGroupByKey()
                | "Outcome" >> beam.Map(account_item)
                | "CountOutcomes" >> beam.combiners.Count.PerElement())


class WriteRecordsFn(beam.DoFn):
    """Writes rejects, summary, then the manifest (last: it vouches for the shards)."""

    def __init__(self, out_dir: str, provenance: dict):
        self.out_dir, self.provenance = out_dir, provenance

    def process(self, shard_infos, rejects, outcomes, mixture):
        from apache_beam.io.filesystems import FileSystems

        from uvd.pipeline.mixture import mixture_report

        join = FileSystems.join
        shards.atomic_write(join(self.out_dir, REJECTS_NAME), shards.parquet_bytes(shards.rejects_table(rejects)))
        summary = build_summary(shard_infos, rejects, outcomes)
        if mixture:
            groups = {s["name"]: s["group"] for s in self.provenance["sources"]}
            summary["mixture"] = mixture_report(mixture[0]["shares"], groups, summary["tokens_by_source"],
                                                mixture[0]["available"])
        shards.atomic_write(join(self.out_dir, SUMMARY_NAME),
                            json.dumps(summary, indent=2, sort_keys=True).encode("utf-8"))
        shards.atomic_write(join(self.out_dir, MANIFEST_NAME),
                            shards.parquet_bytes(shards.manifest_table(shard_infos, self.provenance)))
        yield summary


def build_summary(shard_infos: list[shards.ShardInfo], rejects: list[Reject], outcomes) -> dict:
    """Counts that account for every input: each listed item is written, rejected, or (a bug) neither."""
    by_reason: dict[str, int] = defaultdict(int)
    for r in rejects:
        by_reason[r.reason] += 1
    items: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    for (source, outcome), n in outcomes:
        if outcome != "not_listed":
            items[source][outcome] += n
    inputs = {s: sum(c.values()) for s, c in items.items()}
    return {
        "inputs": dict(sorted(inputs.items())),
        "items": {s: items[s] for s in sorted(items)},
        "shards": len(shard_infos),
        "sentences": sum(s.samples for s in shard_infos),
        "images": sum(s.images for s in shard_infos),
        "tokens": sum(s.tokens for s in shard_infos),
        "tokens_by_source": _tokens_by_source(shard_infos),
        "bytes": sum(s.bytes for s in shard_infos),
        "rejects": dict(sorted(by_reason.items())),
        "rejected_items": sum(c["rejected"] for c in items.values()),
        "skipped_items": sum(c["skipped"] for c in items.values()),
        "unaccounted_items": sum(c["unaccounted"] for c in items.values()),
    }


def _tokens_by_source(shard_infos) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for info in shard_infos:
        for source, tokens in info.tokens_by_source:
            totals[source] += tokens
    return dict(sorted(totals.items()))


class BuildRecords(beam.PTransform):
    """Shard infos + rejects + item outcomes (+ the mixture's targets) -> rejects.parquet,
    build_summary.json, manifest."""

    def __init__(self, out_dir: str, provenance: dict):
        super().__init__()
        self.out_dir, self.provenance = out_dir, provenance

    def expand(self, inputs):
        shard_infos, rejects, outcomes, mixture = inputs
        return (shard_infos
                | "AllShards" >> beam.combiners.ToList()
                | "WriteRecords" >> beam.ParDo(WriteRecordsFn(self.out_dir, self.provenance), rejects=AsList(rejects),
                                               outcomes=AsList(outcomes), mixture=AsList(mixture)))
