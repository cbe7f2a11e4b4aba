"""The composite transforms of a build, each named for what it produces.

    SourceItems -> DecodedFrames -> TokenizedFrames -> VisualSentences -> TokenShards
                         \\ plans ------------------------/          \\ rejects -> BuildRecords

DoFns hold no per-sample logic of their own: they call the pure functions of
decode.py, sentences.py and shards.py and route failures to a rejects output.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.pvalue import AsList, AsSingleton

from uvd.pipeline import decode, sentences, shards
from uvd.pipeline.config import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, BuildConfig, SourceConfig
from uvd.pipeline.format import MANIFEST_NAME, REJECTS_NAME, SUMMARY_NAME
from uvd.pipeline.inference import VQGANModelHandler
from uvd.pipeline.progress import ProgressBeacon
from uvd.pipeline.rejects import Reject, record_reject
from uvd.pipeline.video_decoder import GuardedVideoDecoder, VideoGuard

REJECTS = "rejects"
PLANS = "plans"


class Item(NamedTuple):
    """One input file of a source; ``key`` is its path relative to the source root."""

    source: str
    kind: str
    group: str
    key: str
    path: str


def item_from_path(path: str, source: SourceConfig) -> Item | None:
    """Map a matched file to an Item, or None when it is not media of the source's kind."""
    root = source.root.rstrip("/") + "/"
    key = path[len(root):] if path.startswith(root) else path.rsplit("/", 1)[-1]
    exts = IMAGE_EXTENSIONS if source.kind == "images" else VIDEO_EXTENSIONS
    if not key.lower().endswith(exts) or any(part.startswith(".") for part in key.split("/")):
        return None
    return Item(source=source.name, kind=source.kind, group=source.group, key=key, path=path)


class SourceItems(beam.PTransform):
    """Every media file under a source's root (local, s3:// or gs://), as Items."""

    def __init__(self, source: SourceConfig):
        super().__init__()
        self.source = source

    def expand(self, pbegin):
        pattern = FileSystems.join(self.source.root.rstrip("/"), "**")
        return (pbegin
                | "Pattern" >> beam.Create([pattern])
                | "MatchFiles" >> fileio.MatchAll()
                | "ToItems" >> beam.FlatMap(self._to_items))

    def _to_items(self, metadata):
        item = item_from_path(metadata.path, self.source)
        if item is None:
            Metrics.counter("uvd.inputs", "ignored_not_media").inc()
            return
        Metrics.counter("uvd.inputs", self.source.kind).inc()
        yield item


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read()


class DecodeFramesFn(beam.DoFn):
    """Item -> ((sentence key, position), 256x256 frame) plus the sentence plans.

    Outputs: main = keyed frames, ``plans`` = (key, SentencePlan), ``rejects`` = Reject.
    A sentence is planned only once all its frames decoded; a partial one is rejected.
    """

    def __init__(self, config: BuildConfig, progress_dir: str | None = None):
        self.config = config
        self.progress_dir = progress_dir

    def setup(self):
        self.beacon = ProgressBeacon(self.progress_dir)
        self.videos = GuardedVideoDecoder(VideoGuard(timeout_s=self.config.video_timeout_s,
                                                     memory_mb=self.config.video_memory_mb))

    def teardown(self):
        self.videos.close()

    def process(self, item: Item):
        try:
            if item.kind == "images":
                yield from self._image(item)
            else:
                yield from self._video(item)
        finally:
            self.beacon.add()

    def _reject(self, item: Item, error: decode.DecodeError, stage: str = "decode"):
        return beam.pvalue.TaggedOutput(REJECTS, record_reject(
            Reject(source=item.source, item_key=item.key, stage=stage, reason=error.reason, message=error.message)))

    def _image(self, item: Item):
        cfg = self.config
        try:
            data = read_bytes(item.path)
            frame = decode.resize_frame(decode.decode_image(data, max_pixels=cfg.max_image_pixels, name=item.path),
                                        cfg.image_size)
        except decode.DecodeError as e:
            yield self._reject(item, e)
            return
        except OSError as e:
            yield self._reject(item, decode.DecodeError("unreadable_file", f"{item.path}: {e}"), stage="read")
            return
        plan = sentences.image_sentence(source=item.source, group=item.group, item_key=item.key,
                                        global_seed=cfg.seed)
        yield beam.pvalue.TaggedOutput(PLANS, (plan.key, plan))
        yield (plan.key, 0), frame

    def _video(self, item: Item):
        cfg = self.config
        try:
            local = FileSystems.get_scheme(item.path) is None  # decord seeks a local path itself
            num_frames = self.videos.open(item.path, item.path if local else read_bytes(item.path))
        except decode.DecodeError as e:
            yield self._reject(item, e)
            return
        except OSError as e:
            yield self._reject(item, decode.DecodeError("unreadable_file", f"{item.path}: {e}"), stage="read")
            return
        stride, clips = decode.plan_clips(num_frames, clip_len=cfg.clip_len, stride=cfg.clip_stride,
                                          min_len=cfg.min_clip_len)
        if not clips:
            yield self._reject(item, decode.DecodeError(
                "video_too_short", f"{item.path}: {num_frames} frames, fewer than the {cfg.min_clip_len} a clip needs"))
            return
        if stride != cfg.clip_stride:
            Metrics.counter("uvd.decode", "video_stride_lowered").inc()
        plans = sentences.video_sentences(source=item.source, group=item.group, item_key=item.key, clips=clips,
                                          global_seed=cfg.seed)
        for plan in plans:
            try:
                frames = self.videos.read_clip(item.path, list(plan.meta.frame_indices), cfg.image_size)
            except decode.DecodeError as e:
                yield self._reject(item, decode.DecodeError(e.reason, f"{e.message} (clip {plan.meta.sentence_index})"))
                continue
            yield beam.pvalue.TaggedOutput(PLANS, (plan.key, plan))
            for position, frame in enumerate(frames):
                yield (plan.key, position), frame


class DecodedFrames(beam.PTransform):
    """All sources' items decoded into keyed 256x256 frames, with plans and rejects."""

    def __init__(self, sources: list[SourceConfig], config: BuildConfig, progress_dir: str | None = None):
        super().__init__()
        self.sources, self.config, self.progress_dir = sources, config, progress_dir

    def expand(self, pbegin):
        items = [pbegin | f"Items[{s.name}]" >> SourceItems(s) for s in self.sources]
        all_items = items | "AllItems" >> beam.Flatten()
        decoded = all_items | "DecodeFrames" >> beam.ParDo(
            DecodeFramesFn(self.config, self.progress_dir)).with_outputs(PLANS, REJECTS, main="frames")
        counts = (all_items
                  | "SourceOfItem" >> beam.Map(lambda it: it.source)
                  | "ItemsPerSource" >> beam.combiners.Count.PerElement())
        return decoded.frames, decoded[PLANS], decoded[REJECTS], counts


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
    """(key, {plans, tokens}) -> VisualSentence, or a reject when frames are missing."""

    def process(self, element):
        key, joined = element
        plans, tokens = list(joined["plans"]), list(joined["tokens"])
        if len(plans) != 1:
            raise RuntimeError(f"sentence {key}: {len(plans)} plans (keys must be unique)")
        plan = plans[0]
        try:
            sentence = sentences.assemble_sentence(plan, tokens)
        except sentences.IncompleteSentence as e:
            yield beam.pvalue.TaggedOutput(REJECTS, record_reject(Reject(
                source=plan.meta.source, item_key=plan.meta.item_keys[0], stage="assemble",
                reason="incomplete_sentence", message=str(e))))
            return
        Metrics.counter("uvd.sentences", plan.meta.source).inc()
        yield sentence


class VisualSentences(beam.PTransform):
    """Join each plan with its frames' tokens into a VisualSentence (plus rejects)."""

    def expand(self, inputs):
        plans, tokens = inputs
        by_sentence = tokens | "KeyBySentence" >> beam.Map(lambda kv: (kv[0][0], (kv[0][1], kv[1])))
        joined = {"plans": plans, "tokens": by_sentence} | "JoinPlansAndTokens" >> beam.CoGroupByKey()
        result = joined | "AssembleSentences" >> beam.ParDo(AssembleSentenceFn()).with_outputs(
            REJECTS, main="sentences")
        return result.sentences, result[REJECTS]


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


class WriteRecordsFn(beam.DoFn):
    """Writes rejects, summary, then the manifest (last: it vouches for the shards)."""

    def __init__(self, out_dir: str, provenance: dict):
        self.out_dir, self.provenance = out_dir, provenance

    def process(self, shard_infos, rejects, item_counts):
        join = FileSystems.join
        shards.atomic_write(join(self.out_dir, REJECTS_NAME), shards.parquet_bytes(shards.rejects_table(rejects)))
        summary = build_summary(shard_infos, rejects, dict(item_counts))
        shards.atomic_write(join(self.out_dir, SUMMARY_NAME),
                            json.dumps(summary, indent=2, sort_keys=True).encode("utf-8"))
        shards.atomic_write(join(self.out_dir, MANIFEST_NAME),
                            shards.parquet_bytes(shards.manifest_table(shard_infos, self.provenance)))
        yield summary


def build_summary(shard_infos: list[shards.ShardInfo], rejects: list[Reject], item_counts: dict) -> dict:
    """Counts that account for every input: written or rejected."""
    by_reason: dict[str, int] = {}
    for r in rejects:
        by_reason[r.reason] = by_reason.get(r.reason, 0) + 1
    return {
        "inputs": {k: item_counts[k] for k in sorted(item_counts)},
        "shards": len(shard_infos),
        "sentences": sum(s.samples for s in shard_infos),
        "images": sum(s.images for s in shard_infos),
        "tokens": sum(s.tokens for s in shard_infos),
        "bytes": sum(s.bytes for s in shard_infos),
        "rejects": {k: by_reason[k] for k in sorted(by_reason)},
        "rejected_items": len({(r.source, r.item_key) for r in rejects}),
    }


class BuildRecords(beam.PTransform):
    """Shard infos + rejects + input counts -> rejects.parquet, build_summary.json, manifest."""

    def __init__(self, out_dir: str, provenance: dict):
        super().__init__()
        self.out_dir, self.provenance = out_dir, provenance

    def expand(self, inputs):
        shard_infos, rejects, item_counts = inputs
        return (shard_infos
                | "AllShards" >> beam.combiners.ToList()
                | "WriteRecords" >> beam.ParDo(WriteRecordsFn(self.out_dir, self.provenance),
                                               rejects=AsList(rejects), item_counts=AsList(item_counts)))


