"""The build job: ``run()`` only chains the composite transforms."""

from __future__ import annotations

import dataclasses
import json
import logging
import os

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

import uvd
from uvd.pipeline.config import BuildConfig, SourceConfig
from uvd.pipeline.format import FORMAT_VERSION, MANIFEST_NAME, REJECTS_NAME, SUMMARY_NAME
from uvd.pipeline.mixture import MixedPlans, mixture_weights, target_shares
from uvd.pipeline.shards import SHARD_PATTERN
from uvd.pipeline.transforms import (BuildRecords, DecodedFrames, ItemAccounting, ProbedItems, SentencePlans,
                                     SourceItems, TokenizedFrames, TokenShards, VisualSentences)

LOG = logging.getLogger("uvd")
LOCAL_RUNNERS = (None, "DirectRunner", "FnApiRunner")


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


def prepare_output(out_dir: str, *, overwrite: bool) -> None:
    """Refuse to mix two builds in one directory; with ``overwrite`` clear the old one."""
    manifest = FileSystems.join(out_dir, MANIFEST_NAME)
    if FileSystems.exists(manifest) and not overwrite:
        raise FileExistsError(f"{out_dir} already holds a build ({MANIFEST_NAME}); pass --overwrite to replace it")
    if overwrite:
        pattern = FileSystems.join(out_dir, SHARD_PATTERN.replace("{index:06d}", "*"))
        old = [m.path for m in FileSystems.match([pattern])[0].metadata_list]
        old += [FileSystems.join(out_dir, n) for n in (MANIFEST_NAME, REJECTS_NAME, SUMMARY_NAME)
                if FileSystems.exists(FileSystems.join(out_dir, n))]
        if old:
            FileSystems.delete(old)
    if FileSystems.get_scheme(out_dir) is None:  # object stores have no directories
        os.makedirs(out_dir, exist_ok=True)


def run(sources: list[SourceConfig], out_dir: str, config: BuildConfig, beam_args: list[str] | None = None,
        *, overwrite: bool = False, progress_dir: str | None = None, device: str = "auto") -> dict:
    """Build shards from ``sources`` into ``out_dir``; returns the build summary."""
    from uvd.tokenizer import load_tokenizer

    validate_sources(sources, config)
    options = PipelineOptions(beam_args or [])
    runner_name = options.view_as(StandardOptions).runner or "DirectRunner"
    tokenizer_info = load_tokenizer(config.tokenizer).info  # provenance: the weights' sha256
    prepare_output(out_dir, overwrite=overwrite)
    record = provenance(sources, config, tokenizer_info, runner_name)

    with beam.Pipeline(runner=make_runner(options), options=options) as p:
        items, list_rejects = p | "SourceItems" >> SourceItems(sources, config, progress_dir)
        probed, probe_rejects = items | "ProbedItems" >> ProbedItems(sources, config, progress_dir)
        plans, plan_rejects = probed | "SentencePlans" >> SentencePlans(sources, config)
        if config.mix:
            plans, skipped, mixture = plans | "MixedPlans" >> MixedPlans(
                target_shares(mixture_weights(sources, config.mix)), seed=config.seed,
                tokens_per_image=tokenizer_info.tokens_per_image, total_tokens=config.mix_tokens)
        else:
            skipped, mixture = p | "NothingSkipped" >> beam.Create([]), p | "NoMixture" >> beam.Create([])
        frames, decode_rejects = (probed, plans) | "DecodedFrames" >> DecodedFrames(sources, config, progress_dir)
        tokens = frames | "TokenizedFrames" >> TokenizedFrames(config, device)
        sentences, assemble_rejects = (plans, tokens) | "VisualSentences" >> VisualSentences()
        shard_infos = sentences | "TokenShards" >> TokenShards(out_dir, config)
        rejects = ((list_rejects, probe_rejects, plan_rejects, decode_rejects, assemble_rejects)
                   | "AllRejects" >> beam.Flatten())
        outcomes = (items, sentences, rejects, skipped) | "ItemAccounting" >> ItemAccounting()
        _ = (shard_infos, rejects, outcomes, mixture) | "BuildRecords" >> BuildRecords(out_dir, record)

    with FileSystems.open(FileSystems.join(out_dir, SUMMARY_NAME)) as f:
        return json.loads(f.read())
