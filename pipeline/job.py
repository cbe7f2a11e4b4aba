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
from uvd.pipeline.shards import SHARD_PATTERN
from uvd.pipeline.transforms import (BuildRecords, DecodedFrames, TokenizedFrames, TokenShards,
                                     VisualSentences)

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
        "sources": [{"name": s.name, "kind": s.kind, "group": s.group} for s in sources],
        "tokenizer": dataclasses.asdict(tokenizer_info),
        "runner": runner,
    }


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

    if not sources:
        raise ValueError("no sources given")
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"source names must be unique, got {names}")
    options = PipelineOptions(beam_args or [])
    runner_name = options.view_as(StandardOptions).runner or "DirectRunner"
    tokenizer_info = load_tokenizer(config.tokenizer).info  # provenance: the weights' sha256
    prepare_output(out_dir, overwrite=overwrite)
    record = provenance(sources, config, tokenizer_info, runner_name)

    with beam.Pipeline(runner=make_runner(options), options=options) as p:
        frames, plans, decode_rejects, item_counts = p | "DecodedFrames" >> DecodedFrames(sources, config,
                                                                                           progress_dir)
        tokens = frames | "TokenizedFrames" >> TokenizedFrames(config, device)
        sentences, assemble_rejects = (plans, tokens) | "VisualSentences" >> VisualSentences()
        shard_infos = sentences | "TokenShards" >> TokenShards(out_dir, config)
        rejects = (decode_rejects, assemble_rejects) | "AllRejects" >> beam.Flatten()
        _ = (shard_infos, rejects, item_counts) | "BuildRecords" >> BuildRecords(out_dir, record)

    with FileSystems.open(FileSystems.join(out_dir, SUMMARY_NAME)) as f:
        return json.loads(f.read())
