"""The composite transforms that commit a build's work, phase by phase (see state.py).

    plan phase:    plans + items -> PlannedWaves (wave files) ; rejects, keys -> RecordParts ; CommitPlan
    wave phase:    WaveInputs, seen_sentences -> ... -> TokenShards -> CommitWave
    records phase: CommittedStates + parts -> ItemAccounting -> BuildRecords

A ``ShardState`` is the durable outcome of one shard: its info, the rejects attributed to it and
its sentences' keys, items and token hashes. Records are computed from committed states, so a
build resumed any number of times writes the same records as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import AsList, AsSingleton

from uvd.format import storage, tables
from uvd.format.rejects import Reject
from uvd.format.shards import ShardInfo, write_shard
from uvd.pipeline.graph import state
from uvd.pipeline.graph.rejects import REJECTS, rejected
from uvd.pipeline.planning.mixture import mixture_report
from uvd.pipeline.planning.waves import WaveLayout, wave_layout
from uvd.pipeline.records.config import BuildConfig
from uvd.pipeline.records.sentences import token_sha256

OUTCOMES = ("written", "rejected", "skipped", "unaccounted")


def _stable_part(record, parts: int) -> int:
    digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % parts


class RecordParts(beam.PTransform):
    """JSON-able records -> ``_uvd_resume/<name>-NNNNN.jsonl.gz`` parts of at most RECORDS_PER_PART
    records each (placement by content hash, sorted within a part: deterministic files)."""

    def __init__(self, out_dir: str, name: str):
        super().__init__()
        self.out_dir, self.name = out_dir, name

    def expand(self, records):
        out_dir, name = self.out_dir, self.name
        count = records | "Count" >> beam.combiners.Count.Globally()
        n_parts = count | "Parts" >> beam.Map(state.parts_for)
        return (records
                | "ToPart" >> beam.Map(lambda r, n: (_stable_part(r, n), r), n=AsSingleton(n_parts))
                | "ByPart" >> beam.GroupByKey()
                | "WritePart" >> beam.FlatMap(part_writer(out_dir, lambda part: state.state_path(
                    out_dir, f"{name}-{part:05d}.jsonl.gz"))))


def part_writer(out_dir: str, path_of):
    """(part, JSON-able rows) -> the committed file ``path_of(part)``, rows sorted: deterministic bytes."""
    def write(element):
        part, rows = element
        path = path_of(part)
        state.write_jsonl(path, sorted(rows, key=lambda r: json.dumps(r, sort_keys=True)), storage.staging_dir_for(out_dir))
        yield path
    return write


def read_parts(p, label: str, out_dir: str, name: str, decode):
    """The records of committed parts, decoded, as a PCollection (read on workers, not the launcher)."""
    return (p
            | f"{label}Files" >> beam.Create(state.parts(out_dir, name))
            | f"{label}Read" >> beam.FlatMap(lambda path: (decode(r) for r in state.read_jsonl(path))))


# --- plan phase ------------------------------------------------------------------------------------

def items_by_file(element):
    """((source, key), {item, file}) -> ((wave, part), ("item", json)): an item once per wave that
    needs it, in the lowest part of that wave that does (a wave reads all its parts)."""
    _, joined = element
    first_part: dict[int, int] = {}
    for wave, part in joined["file"]:
        first_part[wave] = min(part, first_part.get(wave, part))
    for item in joined["item"][:1]:
        for wave in sorted(first_part):
            yield (wave, first_part[wave]), ("item", state.item_to_json(item))


class PlannedWaves(beam.PTransform):
    """Plans + items -> the committed plan files of every wave: its plans and the items they need,
    one file per SHARDS_PER_PART shards. A plan's shard is a hash of its key modulo ceil(planned
    sentences / samples_per_shard); a wave is a range of consecutive shards, sized by
    planning/waves.py (``wave_sentences`` None: from the build's size). Returns (written files, the
    WaveLayout, planned sentences per wave)."""

    def __init__(self, out_dir: str, samples_per_shard: int, wave_sentences: int | None):
        super().__init__()
        self.out_dir, self.samples_per_shard, self.wave_sentences = out_dir, samples_per_shard, wave_sentences

    def expand(self, inputs):
        plans, items = inputs
        out_dir, per_shard, wave_sentences = self.out_dir, self.samples_per_shard, self.wave_sentences
        layout = (plans
                  | "CountPlans" >> beam.combiners.Count.Globally()
                  | "Layout" >> beam.Map(lambda n: wave_layout(n, per_shard, wave_sentences)))

        def file_of(plan, lay: WaveLayout) -> tuple[int, int]:
            shard = state.shard_index(plan.key, lay.num_shards)
            return lay.wave_of_shard(shard), state.part_of_shard(shard)

        placed = plans | "PlaceInWave" >> beam.Map(lambda plan, lay: (file_of(plan, lay), plan),
                                                   lay=AsSingleton(layout))
        needs = (placed
                 | "ItemsOfPlan" >> beam.FlatMap(lambda fp: (((fp[1].meta.source, k), fp[0]) for k in fp[1].meta.item_keys))
                 | "OncePerFile" >> beam.Distinct())
        keyed_items = items | "KeyItems" >> beam.Map(lambda it: ((it.source, it.key), it))
        file_items = ({"item": keyed_items, "file": needs}
                      | "JoinItemsToWaves" >> beam.CoGroupByKey()
                      | "ItemPerWave" >> beam.FlatMap(items_by_file))
        file_plans = placed | "PlanRecord" >> beam.Map(lambda fp: (fp[0], ("plan", state.plan_to_json(fp[1]))))

        def write(element):
            (wave, part), records = element
            rows = sorted(records, key=lambda r: (r[0], json.dumps(r[1], sort_keys=True)))
            path = state.wave_part(out_dir, wave, "plan", part)
            state.write_jsonl(path, [{"kind": k, "record": r} for k, r in rows], storage.staging_dir_for(out_dir))
            yield path

        written = ((file_plans, file_items)
                   | "WaveRecords" >> beam.Flatten()
                   | "ByFile" >> beam.GroupByKey()
                   | "WriteWaveFile" >> beam.FlatMap(write))
        plans_per_wave = (placed
                          | "WaveOfPlan" >> beam.Map(lambda fp: fp[0][0])
                          | "PlansPerWave" >> beam.combiners.Count.PerElement()
                          | "AllWaves" >> beam.combiners.ToDict())
        return written, layout, plans_per_wave


class CommitPlanFn(beam.DoFn):
    """Writes plan.json once every other record of the plan phase is committed (its side inputs)."""
    def __init__(self, out_dir: str):
        self.out_dir = out_dir

    def process(self, layout: WaveLayout, per_wave, mixture, written):
        plan = state.BuildPlan(planned_sentences=layout.planned_sentences, num_shards=layout.num_shards,
                               shards_per_wave=layout.shards_per_wave, mixture=mixture[0] if mixture else None,
                               wave_sentences=[per_wave.get(w, 0) for w in range(layout.waves)])
        state.write_plan(self.out_dir, plan)
        yield plan


# --- wave phase ------------------------------------------------------------------------------------

class WaveInputs(beam.PTransform):
    """One wave's committed plan files -> (items, plans)."""
    def __init__(self, out_dir: str, wave: int):
        super().__init__()
        self.out_dir, self.wave = out_dir, wave

    def expand(self, pbegin):
        records = (pbegin
                   | "WaveFiles" >> beam.Create(state.wave_parts(self.out_dir, self.wave, "plan"))
                   | "ReadWave" >> beam.FlatMap(state.read_jsonl))
        items = records | "Items" >> beam.FlatMap(
            lambda r: [state.item_from_json(r["record"])] if r["kind"] == "item" else [])
        plans = records | "Plans" >> beam.FlatMap(
            lambda r: [state.plan_from_json(r["record"])] if r["kind"] == "plan" else [])
        return items, plans


def earlier_state_files(out_dir: str, wave: int) -> list[str]:
    """What a wave reads of the waves before it: the seen index the previous wave committed (at
    most BuildPlan.seen_parts files, whatever the wave's index)."""
    return state.wave_parts(out_dir, wave - 1, "seen") if wave > 0 else []


def seen_sentences(p, label: str, out_dir: str, wave: int):
    """[token sha256, shard, key] of every sentence kept by the waves before ``wave``."""
    return (p
            | f"{label}Files" >> beam.Create(earlier_state_files(out_dir, wave))
            | f"{label}Read" >> beam.FlatMap(state.read_jsonl))


def keep_first_sentence(element, num_shards):
    """(token hash, members) -> (shard, sentence) for the copy in the lowest shard (then smallest key),
    and (shard, reject)s for new copies that duplicate it. Members are ("new", sentence) or
    ("old", [shard, key]) of an earlier wave, committed already. The rule depends on placement
    only, never on how the build was split into waves or interrupted."""
    _, members = element
    rank = [((state.shard_index(v.key, num_shards), v.key) if kind == "new" else tuple(v)) for kind, v in members]
    first = min(rank)
    for (kind, value), where in zip(members, rank):
        if kind != "new":
            continue
        if where == first:
            yield where[0], value
            continue
        Metrics.counter("uvd.dedup", "duplicate_sentence").inc()
        for item_key in value.meta.item_keys:
            yield rejected(Reject(source=value.meta.source, item_key=item_key, stage="dedup", reason="duplicate_sentence",
                                  message=f"sentence {value.key}: the same tokens as {first[1]} (kept)"), where[0])


class WriteShardFn(beam.DoFn):
    """(shard, {sentences, rejects}) -> ShardState, after committing the shard file."""
    def __init__(self, out_dir: str, compression: str, tmp_dir: str | None):
        self.out_dir, self.compression, self.tmp_dir = out_dir, compression, tmp_dir

    def process(self, element):
        index, joined = element
        sentences = sorted(joined["sentences"], key=lambda s: s.key)
        info = write_shard(self.out_dir, index, sentences, self.compression, self.tmp_dir)
        Metrics.counter("uvd.shards", "written").inc()
        yield state.ShardState(
            info=info, rejects=tuple(sorted(set(joined["rejects"]))),
            sentences=tuple((s.key, s.meta.source, s.meta.item_keys, token_sha256(s)) for s in sentences))


class TokenShards(beam.PTransform):
    """New sentences -> shards (after exact dedup of identical token sequences across the build: the
    copy in the lowest shard stays; ``seen`` holds the earlier waves' kept sentences) -> the
    ShardStates of this wave's shards."""

    def __init__(self, out_dir: str, config: BuildConfig):
        super().__init__()
        self.out_dir, self.config = out_dir, config

    def expand(self, inputs):
        sentences_pc, late_rejects, num_shards, seen = inputs
        p = sentences_pc.pipeline
        if self.config.dedup_sentences:
            new = sentences_pc | "TokenHash" >> beam.Map(lambda s: (token_sha256(s), ("new", s)))
            old = seen | "EarlierHashes" >> beam.Map(lambda r: (r[0], ("old", r[1:])))
            kept = ((new, old)
                    | "AllHashes" >> beam.Flatten()
                    | "SameTokens" >> beam.GroupByKey()
                    | "KeepFirstSentence" >> beam.FlatMap(keep_first_sentence, num_shards=AsSingleton(num_shards))
                    .with_outputs(REJECTS, main="sentences"))
            placed, dedup_rejects = kept.sentences, kept[REJECTS]
        else:
            placed = sentences_pc | "Place" >> beam.Map(lambda s, n: (state.shard_index(s.key, n), s),
                                                        n=AsSingleton(num_shards))
            dedup_rejects = p | "NoDuplicates" >> beam.Create([])
        rejects = (late_rejects, dedup_rejects) | "ShardRejects" >> beam.Flatten()
        return ({"sentences": placed, "rejects": rejects}
                | "ByShard" >> beam.CoGroupByKey()
                | "WriteShards" >> beam.ParDo(WriteShardFn(self.out_dir, self.config.shard_compression,
                                                           storage.staging_dir_for(self.out_dir))))


class CommitWave(beam.PTransform):
    """The wave's shard states (+ the seen index before it) -> its state parts, the seen index of the
    sentences kept so far, then its ``done`` marker (written last: the wave is committed)."""
    def __init__(self, out_dir: str, wave: int, seen_parts: int | None):
        super().__init__()
        self.out_dir, self.wave, self.seen_parts = out_dir, wave, seen_parts

    def expand(self, inputs):
        states, seen = inputs
        out_dir, wave, seen_parts = self.out_dir, self.wave, self.seen_parts
        files = [states
                 | "ByStatePart" >> beam.Map(lambda st: (state.part_of_shard(st.info.index), st.to_json()))
                 | "StateParts" >> beam.GroupByKey()
                 | "WriteStates" >> beam.FlatMap(part_writer(out_dir, lambda part: state.wave_part(
                     out_dir, wave, "states", part)))]
        if seen_parts:
            kept = states | "KeptHashes" >> beam.FlatMap(
                lambda st: ([sha, st.info.index, key] for key, _, _, sha in st.sentences))
            files.append((seen, kept)
                         | "SeenSoFar" >> beam.Flatten()
                         | "BySeenPart" >> beam.Map(lambda r: (state.part_of_hash(r[0], seen_parts), r))
                         | "SeenParts" >> beam.GroupByKey()
                         | "WriteSeen" >> beam.FlatMap(part_writer(out_dir, lambda part: state.wave_part(
                             out_dir, wave, "seen", part))))
        return (files
                | "WaveFiles" >> beam.Flatten()
                | "CountFiles" >> beam.combiners.Count.Globally()
                | "WriteDone" >> beam.Map(lambda n: state.write_done(out_dir, wave, n) or n))


def committed_states(p, label: str, out_dir: str, waves: range):
    """The shard states of committed waves, read on workers."""
    return (p
            | f"{label}Files" >> beam.Create([f for w in waves for f in state.wave_parts(out_dir, w, "states")])
            | f"{label}Read" >> beam.FlatMap(state.read_wave_states))


# --- records phase ---------------------------------------------------------------------------------

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
    or none of these (a bug: must be 0). ``listed`` and ``skipped`` are (source, key) pairs."""

    def expand(self, inputs):
        listed, states, early_rejects, skipped = inputs
        ones = lambda label, pc: pc | label >> beam.Map(lambda sk: (tuple(sk), 1))  # noqa: E731
        written = states | "WrittenKeys" >> beam.FlatMap(
            lambda st: (((source, k), 1) for _, source, keys, _ in st.sentences for k in keys))
        late = states | "LateRejects" >> beam.FlatMap(lambda st: st.rejects)
        rejected = ((early_rejects, late)
                    | "AllRejects" >> beam.Flatten()
                    | "RejectedKeys" >> beam.Map(lambda r: ((r.source, r.item_key), 1)))
        return ({"listed": ones("ListedKeys", listed), "written": written, "rejected": rejected,
                 "skipped": ones("SkippedKeys", skipped)}
                | "JoinOutcomes" >> beam.CoGroupByKey()
                | "Outcome" >> beam.Map(account_item)
                | "CountOutcomes" >> beam.combiners.Count.PerElement())


class WriteRecordsFn(beam.DoFn):
    """Writes rejects, summary, then the manifest (last: it vouches for the shards)."""
    def __init__(self, out_dir: str, provenance: dict, mixture: dict | None):
        self.out_dir, self.provenance, self.mixture = out_dir, provenance, mixture

    def process(self, shards, early_rejects, outcomes):
        join, tmp = storage.join, storage.staging_dir_for(self.out_dir)
        rejects = sorted(set(early_rejects) | {r for _, shard_rejects in shards for r in shard_rejects})
        infos = [info for info, _ in shards]
        storage.atomic_write(join(self.out_dir, tables.REJECTS_NAME), tables.parquet_bytes(tables.rejects_table(rejects)), tmp)
        summary = build_summary(infos, rejects, outcomes)
        if self.mixture:
            groups = {s["name"]: s["group"] for s in self.provenance["sources"]}
            summary["mixture"] = mixture_report(self.mixture["shares"], groups, summary["tokens_by_source"],
                                                self.mixture["available"])
        storage.atomic_write(join(self.out_dir, tables.SUMMARY_NAME),
                            json.dumps(summary, indent=2, sort_keys=True).encode("utf-8"), tmp)
        storage.atomic_write(join(self.out_dir, tables.MANIFEST_NAME),
                            tables.parquet_bytes(tables.manifest_table(infos, self.provenance)), tmp)
        yield summary


def build_summary(shard_infos: list[ShardInfo], rejects: list[Reject], outcomes) -> dict:
    """Counts that account for every input: each listed item is written, rejected, skipped by the
    mixture, or (a bug) none of these."""
    by_reason: dict[str, int] = defaultdict(int)
    for r in rejects:
        by_reason[r.reason] += 1
    items: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    for (source, outcome), n in outcomes:
        if outcome != "not_listed":
            items[source][outcome] += n
    written = [s for s in shard_infos if s.samples]
    tokens_by_source: dict[str, int] = defaultdict(int)
    for info in written:
        for source, tokens in info.tokens_by_source:
            tokens_by_source[source] += tokens
    total_tokens = sum(s.tokens for s in written)
    return {
        "inputs": {s: sum(c.values()) for s, c in sorted(items.items())},
        "items": {s: items[s] for s in sorted(items)},
        "shards": len(written),
        "sentences": sum(s.samples for s in written),
        "images": sum(s.images for s in written),
        "tokens": total_tokens,
        "tokens_by_source": dict(sorted(tokens_by_source.items())),
        "bytes": sum(s.bytes for s in written),
        "bytes_per_token": round(sum(s.bytes for s in written) / max(1, total_tokens), 4),
        "rejects": dict(sorted(by_reason.items())),
        "dedup": {"duplicate_images": len({(r.source, r.item_key) for r in rejects if r.reason == "duplicate_image"}),
                  "duplicate_sentences": len({r.message for r in rejects if r.reason == "duplicate_sentence"})},
        "rejected_items": sum(c["rejected"] for c in items.values()),
        "skipped_items": sum(c["skipped"] for c in items.values()),
        "unaccounted_items": sum(c["unaccounted"] for c in items.values()),
    }


class BuildRecords(beam.PTransform):
    """Shard states + early rejects + item outcomes -> rejects.parquet, build_summary.json, manifest."""
    def __init__(self, out_dir: str, provenance: dict, mixture: dict | None):
        super().__init__()
        self.out_dir, self.provenance, self.mixture = out_dir, provenance, mixture

    def expand(self, inputs):
        states, early_rejects, outcomes = inputs
        return (states
                | "InfoAndRejects" >> beam.Map(lambda st: (st.info, st.rejects))  # not the sentences: one worker holds all
                | "AllShards" >> beam.combiners.ToList()
                | "WriteRecords" >> beam.ParDo(WriteRecordsFn(self.out_dir, self.provenance, self.mixture),
                                               early_rejects=AsList(early_rejects), outcomes=AsList(outcomes)))

