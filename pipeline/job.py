"""The build job: ``run()`` runs its three phases (resume.py); each phase only chains transforms."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import tempfile
import time

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.pvalue import AsList, AsSingleton

import uvd
from uvd.pipeline.config import BuildConfig, SourceConfig
from uvd.pipeline.format import FORMAT_VERSION, MANIFEST_NAME, REJECTS_NAME, SUMMARY_NAME
from uvd.pipeline.mixture import MixedPlans, mixture_weights, target_shares
from uvd.pipeline import resume, storage
from uvd.pipeline.progress import ProgressWatcher
from uvd.pipeline.shards import BUILD_MARKER, SHARD_PREFIX, atomic_write, clear_build_state, tmp_dir_for
from uvd.pipeline.transforms import (DecodedFrames, DedupedItems, ProbedItems, SentencePlans, SourceItems,
                                     TokenizedFrames, VisualSentences)
from uvd.pipeline.writing import (BuildRecords, CommitPlanFn, CommitWave, ItemAccounting, PlannedWaves, RecordParts,
                                  TokenShards, WaveInputs, committed_states, read_parts)

LOG = logging.getLogger("uvd")
LOCAL_RUNNERS = (None, "DirectRunner", "FnApiRunner")
# The tokenize step's resource hint (Dataflow's syntax); local runners ignore it. ``None`` drops it.
DEFAULT_ACCELERATOR = "type:nvidia-l4;count:1;install-nvidia-driver"
# Sentences per wave: the unit of work a killed build does not redo. Scheduling only: any value
# gives the same output bytes.
DEFAULT_WAVE_SENTENCES = 200_000


def make_runner(options: PipelineOptions):
    """The embedded DirectRunner's batch engine for local runs, else the named runner.

    Beam's DirectRunner first tries the Prism runner, which downloads a binary; uvd goes
    straight to the FnApiRunner it would fall back to (same options: direct_num_workers,
    direct_running_mode), so local builds never touch the network.
    """
    name = options.view_as(StandardOptions).runner
    if name in LOCAL_RUNNERS:
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        return FnApiRunner()
    return None  # beam.Pipeline resolves it from the options


def provenance(sources: list[SourceConfig], config: BuildConfig, tokenizer_info, runner: str) -> dict:
    """What the manifest records so a build can be audited and repeated."""
    return {
        "format_version": FORMAT_VERSION,
        "uvd_version": uvd.__version__,
        "build_config": config.to_json(),
        "sources": [{"name": s.name, "spec": s.spec, "spec_version": s.dataset_spec.version, "group": s.group,
                     "layout": s.dataset_spec.layout, "root": s.root} for s in sources],
        "annotators": annotator_provenance(sources, config),
        "tokenizer": dataclasses.asdict(tokenizer_info),
        "runner": runner,
    }


def annotator_provenance(sources: list[SourceConfig], config: BuildConfig) -> dict:
    """For each annotation a source needs: the model folder and its files' sha256, or the built-in."""
    import hashlib
    from pathlib import Path

    from uvd.pipeline.annotators import BUILTIN

    out = {}
    for kind in sorted({k for s in sources for k in s.dataset_spec.model_annotations}):
        folder = config.annotators.get(kind)
        if folder:
            digest = hashlib.sha256()
            for f in sorted(Path(folder).iterdir()):
                digest.update(f.name.encode() + b"\0" + f.read_bytes())
            out[kind] = {"folder": str(folder), "sha256": digest.hexdigest()}
        else:
            out[kind] = {"builtin": BUILTIN[kind]}
    return out


def validate_sources(sources: list[SourceConfig], config: BuildConfig) -> None:
    """Fail before any work: duplicate names, unknown layout arguments, missing annotators."""
    from uvd.pipeline.annotators import BUILTIN, AnnotatorMissing, missing_message
    from uvd.pipeline.layouts import layout_context
    from uvd.pipeline.readers import make_reader

    if not sources:
        raise ValueError("no sources given")
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"source names must be unique, got {names}")
    unknown = sorted(set(config.layout_args) - set(names))
    if unknown:
        raise ValueError(f"layout_args name sources that are not in this build: {unknown}")
    if config.mix:
        target_shares(mixture_weights(sources, config.mix))  # a bad weights file fails here
    for s in sources:
        spec = s.dataset_spec
        make_reader(spec, s.name)
        layout_context(spec, source=s.name, global_seed=config.seed, overrides=config.layout_args.get(s.name))
        for kind in spec.model_annotations:
            if kind not in config.annotators and kind not in BUILTIN:
                raise AnnotatorMissing(missing_message(kind, spec.name))


def fingerprint(record: dict) -> str:
    """What makes two builds the same build: the provenance, except the runner that executes it."""
    import hashlib

    same = {k: v for k, v in record.items() if k != "runner"}
    return hashlib.sha256(json.dumps(same, sort_keys=True).encode("utf-8")).hexdigest()


def prepare_output(out_dir: str, record: dict, *, overwrite: bool) -> bool:
    """Make ``out_dir`` ready for the build described by ``record``; True if it is already complete.

    A directory holds one build, named by ``_uvd_build.json``: the same build resumes (committed
    shards are kept), another is refused unless ``overwrite`` clears what uvd wrote there.
    """
    marker, manifest = FileSystems.join(out_dir, BUILD_MARKER), FileSystems.join(out_dir, MANIFEST_NAME)
    ours = fingerprint(record)
    if overwrite:
        patterns = [f"{SHARD_PREFIX}*", MANIFEST_NAME, REJECTS_NAME, SUMMARY_NAME, BUILD_MARKER]
        old = [path for pattern in patterns for path in storage.match(FileSystems.join(out_dir, pattern))]
        if old:
            FileSystems.delete(old)
        clear_build_state(out_dir)
    elif FileSystems.exists(marker):
        theirs = json.loads(storage.read_bytes(marker)).get("fingerprint")
        if theirs != ours:
            raise FileExistsError(f"{out_dir} holds another build (different sources, config, tokenizer or uvd "
                                  f"version); pass --overwrite to replace it")
        if FileSystems.exists(manifest):
            return True
    elif FileSystems.exists(manifest) or storage.match(FileSystems.join(out_dir, f"{SHARD_PREFIX}*")):
        raise FileExistsError(f"{out_dir} already holds shards of an unknown build; pass --overwrite to replace them")
    if storage.is_local(out_dir):  # object stores have no directories
        os.makedirs(out_dir, exist_ok=True)
    if not FileSystems.exists(marker):
        body = json.dumps({"fingerprint": ours, "provenance": {k: v for k, v in record.items() if k != "runner"}},
                          indent=2, sort_keys=True)
        atomic_write(marker, body.encode("utf-8"), tmp_dir_for(out_dir))
    return False


@dataclasses.dataclass
class Run:
    """What every phase of one build needs (runtime choices included; they never change the bytes)."""

    sources: list[SourceConfig]
    out_dir: str
    config: BuildConfig
    options: PipelineOptions
    record: dict  # provenance
    tokens_per_image: int
    device: str = "auto"
    accelerator: str | None = DEFAULT_ACCELERATOR
    progress_dir: str | None = None

    @contextlib.contextmanager
    def pipeline(self, phase: str):
        """A pipeline that runs when the block ends; logs how long the phase took."""
        started = time.perf_counter()
        with beam.Pipeline(runner=make_runner(self.options), options=self.options) as p:
            yield p
        LOG.info("%s: %.1f s", phase, time.perf_counter() - started)

    @contextlib.contextmanager
    def progress(self, desc: str, total: int | None = None, unit: str = "item"):
        """A progress bar fed by the workers' heartbeat files (local runs only)."""
        if self.progress_dir is None:
            yield None
            return
        with tempfile.TemporaryDirectory(dir=self.progress_dir) as beacons, ProgressWatcher(beacons, desc, total,
                                                                                                  unit):
            yield beacons


def run(sources: list[SourceConfig], out_dir: str, config: BuildConfig, beam_args: list[str] | None = None,
        *, overwrite: bool = False, progress_dir: str | None = None, device: str = "auto",
        accelerator: str | None = DEFAULT_ACCELERATOR, wave_sentences: int = DEFAULT_WAVE_SENTENCES) -> dict:
    """Build shards from ``sources`` into ``out_dir``, resuming a build of the same sources and config
    that was cut short; returns the build summary. ``accelerator`` is the Beam resource hint of the
    tokenize step (runners that place work by hints, like Dataflow, put it on GPU workers)."""
    from uvd.tokenizer import load_tokenizer

    validate_sources(sources, config)
    options = PipelineOptions(beam_args or [])
    FileSystems.set_options(options)  # s3:// endpoint and credentials for the launcher's own reads and writes
    runner_name = options.view_as(StandardOptions).runner or "DirectRunner"
    tokenizer_info = load_tokenizer(config.tokenizer).info  # provenance: the weights' sha256
    record = provenance(sources, config, tokenizer_info, runner_name)
    if prepare_output(out_dir, record, overwrite=overwrite):
        LOG.warning("%s already holds this build, complete: nothing to do", out_dir)
        return read_summary(out_dir)
    build = Run(sources, out_dir, config, options, record, tokenizer_info.tokens_per_image, device, accelerator,
                progress_dir)

    plan = resume.read_plan(out_dir)
    if plan is None:
        clear_build_state(out_dir)  # what an interrupted plan phase left
        plan_phase(build, shards_per_wave=max(1, wave_sentences // config.samples_per_shard))
        plan = resume.read_plan(out_dir)
    todo = [w for w in range(plan.waves) if not resume.wave_done(out_dir, w)]
    if len(todo) < plan.waves:
        LOG.warning("resuming %s: %d of %d wave(s) already committed", out_dir, plan.waves - len(todo), plan.waves)
    with build.progress("sentences", total=sum(plan.wave_sentences[w] for w in todo), unit="sentence") as beacons:
        for wave in todo:
            wave_phase(build, plan, wave, beacons)
    records_phase(build, plan)
    clear_build_state(out_dir)
    return read_summary(out_dir)


def plan_phase(build: Run, *, shards_per_wave: int) -> None:
    """List, probe, dedup, plan, mix and place every sentence; commit the waves' plans."""
    sources, config, out_dir = build.sources, build.config, build.out_dir
    with build.progress("items probed") as beacons, build.pipeline("plan") as p:
        items, list_rejects = p | "SourceItems" >> SourceItems(sources, config, beacons)
        probed, probe_rejects = items | "ProbedItems" >> ProbedItems(sources, config, beacons)
        unique, duplicate_rejects = probed | "DedupedItems" >> DedupedItems()
        plans, plan_rejects = unique | "SentencePlans" >> SentencePlans(sources, config)
        if config.mix:
            plans, skipped, mixture = plans | "MixedPlans" >> MixedPlans(
                target_shares(mixture_weights(sources, config.mix)), seed=config.seed,
                tokens_per_image=build.tokens_per_image, total_tokens=config.mix_tokens)
        else:
            skipped, mixture = p | "NothingSkipped" >> beam.Create([]), p | "NoMixture" >> beam.Create([])
        waves, layout, per_wave = (plans, unique) | "PlannedWaves" >> PlannedWaves(
            out_dir, config.samples_per_shard, shards_per_wave)
        early = ((list_rejects, probe_rejects, duplicate_rejects, plan_rejects)
                 | "EarlyRejects" >> beam.Flatten()
                 | "RejectRecords" >> beam.Map(resume.reject_to_json)
                 | "CommitRejects" >> RecordParts(out_dir, "early-rejects"))
        listed = (items
                  | "ItemKeys" >> beam.Map(lambda it: [it.source, it.key])
                  | "CommitListed" >> RecordParts(out_dir, "listed"))
        left_out = (skipped
                    | "SkippedKeys" >> beam.Map(list)
                    | "CommitSkipped" >> RecordParts(out_dir, "skipped"))
        written = (waves, early, listed, left_out) | "AllCommitted" >> beam.Flatten()
        _ = layout | "CommitPlan" >> beam.ParDo(CommitPlanFn(out_dir), per_wave=AsSingleton(per_wave),
                                                mixture=AsList(mixture), written=AsList(written))


def wave_phase(build: Run, plan: resume.BuildPlan, wave: int, beacons: str | None) -> None:
    """Decode, tokenize and write the shards of one wave; commit it."""
    with build.pipeline(f"wave {wave + 1}/{plan.waves}") as p:
        chain_wave(p, build, plan, wave, beacons)


def chain_wave(p: beam.Pipeline, build: Run, plan: resume.BuildPlan, wave: int, beacons: str | None = None):
    sources, config, out_dir = build.sources, build.config, build.out_dir
    items, plans = p | "WaveInputs" >> WaveInputs(out_dir, wave)
    num_shards = p | "ShardCount" >> beam.Create([plan.num_shards])
    frames, decode_rejects = (items, plans, num_shards) | "DecodedFrames" >> DecodedFrames(sources, config)
    tokens = frames | "TokenizedFrames" >> TokenizedFrames(config, build.device, build.accelerator)
    sentences, assemble_rejects = (plans, tokens, num_shards) | "VisualSentences" >> VisualSentences(beacons)
    late_rejects = (decode_rejects, assemble_rejects) | "LateRejects" >> beam.Flatten()
    earlier = committed_states(p, "EarlierWaves", out_dir, range(wave))
    states = (sentences, late_rejects, num_shards, earlier) | "TokenShards" >> TokenShards(out_dir, config)
    return states | "CommitWave" >> CommitWave(out_dir, wave)


def records_phase(build: Run, plan: resume.BuildPlan) -> None:
    """Account for every listed item; write rejects, summary and, last, the manifest."""
    out_dir = build.out_dir
    with build.pipeline("records") as p:
        states = committed_states(p, "Waves", out_dir, range(plan.waves))
        early = read_parts(p, "EarlyRejects", out_dir, "early-rejects", resume.reject_from_json)
        listed = read_parts(p, "Listed", out_dir, "listed", tuple)
        skipped = read_parts(p, "Skipped", out_dir, "skipped", tuple)
        outcomes = (listed, states, early, skipped) | "ItemAccounting" >> ItemAccounting()
        _ = (states, early, outcomes) | "BuildRecords" >> BuildRecords(out_dir, build.record, plan.mixture)


def read_summary(out_dir: str) -> dict:
    return json.loads(storage.read_bytes(FileSystems.join(out_dir, SUMMARY_NAME)))
