"""What a build records about itself (in the manifest and ``_uvd_build.json``) so it can be audited,
repeated and resumed: sources, config, tokenizer and annotator weights, uvd's version."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import uvd
from uvd.format.sample import FORMAT_VERSION
from uvd.pipeline.records.config import BuildConfig, SourceConfig
from uvd.pipeline.views.annotators import BUILTIN


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


def fingerprint(record: dict) -> str:
    """What makes two builds the same build: the provenance, except the runner that executes it."""
    same = {k: v for k, v in record.items() if k != "runner"}
    return hashlib.sha256(json.dumps(same, sort_keys=True).encode("utf-8")).hexdigest()
