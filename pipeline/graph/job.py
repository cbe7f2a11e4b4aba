"""The build job: ``run()`` runs its phases (state.py says what each commits); each phase only
chains the composite transforms of transforms.py and writing.py."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import tempfile
import time

import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.pvalue import AsList, AsSingleton
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from uvd.format.rejects import Reject
from uvd.pipeline import steps
from uvd.pipeline.graph import filesystems, resources, state
from uvd.pipeline.graph import workers as workers_pool
from uvd.pipeline.graph.mixing import MixedPlans
from uvd.pipeline.graph.progress import ProgressWatcher
from uvd.pipeline.graph.provenance import provenance
from uvd.pipeline.graph.transforms import (
    DecodedFrames,
    DedupedItems,
    ProbedItems,
    SentencePlans,
    SourceItems,
    TokenizedFrames,
    VisualSentences,
)
from uvd.pipeline.graph.writing import (
    BuildRecords,
    CommitPlanFn,
    CommitWave,
    ItemAccounting,
    PlannedWaves,
    RecordParts,
    TokenShards,
    WaveInputs,
    committed_states,
    read_parts,
    seen_sentences,
)
from uvd.pipeline.planning.mixture import mixture_weights, target_shares
from uvd.pipeline.records.config import BuildConfig, SourceConfig
from uvd.tokenizer import load_tokenizer

LOG = logging.getLogger("uvd")
LOCAL_RUNNERS = (None, "DirectRunner", "FnApiRunner")
# The tokenize step's resource hint (Dataflow's syntax) on remote runners. Local runs drop it: they
# have no GPU pool, and a hinted step is an environment of its own, which the runner cannot fuse
# with decoding, so every frame would cross a process boundary for nothing. ``None`` drops it.
DEFAULT_ACCELERATOR = "type:nvidia-l4;count:1;install-nvidia-driver"


def is_local(options: PipelineOptions) -> bool:
    return options.view_as(StandardOptions).runner in LOCAL_RUNNERS


def runs_locally(beam_args: list[str] | None) -> bool:
    """Whether a build given these Beam arguments runs on the embedded local runner."""
    return is_local(PipelineOptions(beam_args or []))


def make_runner(options: PipelineOptions, environment=None):
    """The embedded DirectRunner's batch engine for local runs, else the named runner.

    Beam's DirectRunner first tries the Prism runner, which downloads a binary; uvd goes
    straight to the FnApiRunner it would fall back to (same options: direct_num_workers,
    direct_running_mode), so local builds never touch the network. ``environment``: where its
    SDK workers run (workers.warm_worker_pool), else in this process.
    """
    if is_local(options):
        return FnApiRunner(default_environment=environment)
    return None  # beam.Pipeline resolves it from the options


@dataclasses.dataclass
class BuildContext:
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
    threads: int | None = None  # torch and OpenCV threads per worker process (None: libraries' default)
    environment: object = None  # the local runner's worker environment (None: in this process)

    @contextlib.contextmanager
    def pipeline(self, phase: str):
        """A pipeline that runs when the block ends; logs how long the phase took."""
        started = time.perf_counter()
        with beam.Pipeline(runner=make_runner(self.options, self.environment), options=self.options) as p:
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
        accelerator: str | None = DEFAULT_ACCELERATOR, wave_sentences: int | None = None, workers: int = 1,
        threads_per_worker: int | None = None) -> dict:
    """Build shards from ``sources`` into ``out_dir``, resuming a build of the same sources and config
    that was cut short; returns the build summary.

    ``accelerator``: the Beam resource hint of the tokenize step on remote runners (Dataflow puts
    it on GPU workers). ``wave_sentences``: sentences per wave (None: sized from the build,
    planning/waves.py). ``workers``: local worker processes, each with ``threads_per_worker``
    torch and OpenCV threads (default: an equal share of the cores); remote runners size their
    own workers, and get ``threads_per_worker`` only if it is given. None of these change the bytes.
    """
    options = PipelineOptions(beam_args or [])
    local = is_local(options)
    if local and workers > 1:
        workers_pool.prewarm()  # the workers' imports overlap the launcher's checks and tokenizer load
    steps.validate_sources(sources, config)
    filesystems.use_pipeline_options(options)  # gs:// etc. credentials for the launcher's own reads and writes
    steps.check_source_roots(sources)  # a misspelled or empty root fails here, before any work
    runner_name = options.view_as(StandardOptions).runner or "DirectRunner"
    tokenizer_info = load_tokenizer(config.tokenizer).info  # provenance: the weights' sha256
    record = provenance(sources, config, tokenizer_info, runner_name)
    if state.prepare_output(out_dir, record, overwrite=overwrite):
        LOG.warning("%s already holds this build, complete: nothing to do", out_dir)
        return state.read_summary(out_dir)
    threads = resources.threads_per_worker(workers, threads_per_worker) if local else threads_per_worker
    build = BuildContext(sources, out_dir, config, options, record, tokenizer_info.tokens_per_image, device,
                         None if local else accelerator, progress_dir, threads)
    with contextlib.ExitStack() as stack:
        if local and workers > 1:
            options.view_as(DirectOptions).direct_num_workers = workers
            build.environment = stack.enter_context(workers_pool.warm_worker_pool(options, threads))
        elif local:
            resources.use_threads(threads)  # the one worker is this process
        run_phases(build, wave_sentences)
    return state.read_summary(out_dir)


def run_phases(build: BuildContext, wave_sentences: int | None) -> None:
    """The phases not committed yet: plan, each wave, records."""
    out_dir = build.out_dir
    plan = state.read_plan(out_dir)
    if plan is None:
        state.clear_build_state(out_dir)  # what an interrupted plan phase left
        plan_phase(build, wave_sentences=wave_sentences)
        plan = state.read_plan(out_dir)
    todo = [w for w in range(plan.waves) if not state.wave_done(out_dir, w)]
    if len(todo) < plan.waves:
        LOG.warning("resuming %s: %d of %d wave(s) already committed", out_dir, plan.waves - len(todo), plan.waves)
    with build.progress("sentences", total=sum(plan.wave_sentences[w] for w in todo), unit="sentence") as beacons:
        for wave in todo:
            wave_phase(build, plan, wave, beacons)
            if wave > 0:
                state.drop_seen_index(out_dir, wave - 1)
    records_phase(build, plan)
    state.clear_build_state(out_dir)


def plan_phase(build: BuildContext, *, wave_sentences: int | None) -> None:
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
            out_dir, config.samples_per_shard, wave_sentences)
        early = ((list_rejects, probe_rejects, duplicate_rejects, plan_rejects)
                 | "EarlyRejects" >> beam.Flatten()
                 | "RejectRecords" >> beam.Map(Reject.to_json)
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


def wave_phase(build: BuildContext, plan: state.BuildPlan, wave: int, beacons: str | None) -> None:
    """Decode, tokenize and write the shards of one wave; commit it."""
    with build.pipeline(f"wave {wave + 1}/{plan.waves}") as p:
        chain_wave(p, build, plan, wave, beacons)


def chain_wave(p: beam.Pipeline, build: BuildContext, plan: state.BuildPlan, wave: int, beacons: str | None = None):
    sources, config, out_dir = build.sources, build.config, build.out_dir
    items, plans = p | "WaveInputs" >> WaveInputs(out_dir, wave)
    num_shards = p | "ShardCount" >> beam.Create([plan.num_shards])
    frames, decode_rejects = (items, plans, num_shards) | "DecodedFrames" >> DecodedFrames(
        sources, config, threads=build.threads)
    tokens = frames | "TokenizedFrames" >> TokenizedFrames(config, build.device, build.accelerator, build.threads)
    sentences, assemble_rejects = (plans, tokens, num_shards) | "VisualSentences" >> VisualSentences(beacons)
    late_rejects = (decode_rejects, assemble_rejects) | "LateRejects" >> beam.Flatten()
    seen = seen_sentences(p, "EarlierWaves", out_dir, wave)  # one wave's index, whatever the wave's number
    states = (sentences, late_rejects, num_shards, seen) | "TokenShards" >> TokenShards(out_dir, config)
    seen_parts = plan.seen_parts if config.dedup_sentences else None
    return (states, seen) | "CommitWave" >> CommitWave(out_dir, wave, seen_parts)


def records_phase(build: BuildContext, plan: state.BuildPlan) -> None:
    """Account for every listed item; write rejects, summary and, last, the manifest."""
    out_dir = build.out_dir
    with build.pipeline("records") as p:
        states = committed_states(p, "Waves", out_dir, range(plan.waves))
        early = read_parts(p, "EarlyRejects", out_dir, "early-rejects", Reject.from_json)
        listed = read_parts(p, "Listed", out_dir, "listed", tuple)
        skipped = read_parts(p, "Skipped", out_dir, "skipped", tuple)
        outcomes = (listed, states, early, skipped) | "ItemAccounting" >> ItemAccounting()
        _ = (states, early, outcomes) | "BuildRecords" >> BuildRecords(out_dir, build.record, plan.mixture)
