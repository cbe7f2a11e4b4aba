"""Build dataset specs from their fixtures, end to end, and read the sentences back (for tests)."""

from __future__ import annotations

from pathlib import Path

import webdataset as wds
from fixtures import all_fixtures, make_fixture

from uvd.dataset_specs import get_spec
from uvd.format.rejects import Reject
from uvd.format.sample import VisualSentence, decode_sample
from uvd.format.tables import read_manifest
from uvd.pipeline.graph import job
from uvd.pipeline.planning.layouts import get_layout
from uvd.pipeline.readers import make_reader
from uvd.pipeline.records.config import BuildConfig, SourceConfig


def listing(reader, root: Path):
    """(items, rejects) a reader lists under ``root``, in one process (pipeline/steps.py)."""
    items, rejects = [], []
    for unit in reader.units(str(root)):
        for entry in reader.items(str(root), unit):
            (rejects if isinstance(entry, Reject) else items).append(entry)
    return items, rejects


def spec_listing(name: str, root: Path):
    """(items, rejects) of a spec's reader over its fixture folder under ``root``."""
    spec = get_spec(name)
    return listing(make_reader(spec), root / spec.folder)


def fixture_root_for(specs, root: Path) -> Path:
    """Write (once) the fixture folder of every spec under ``root``."""
    fixtures = all_fixtures()
    for name in specs:
        folder = get_spec(name).folder
        if folder not in fixtures:
            raise KeyError(f"spec {name!r} reads folder {folder!r}, which has no fixture in tests/fixtures")
        if not (root / folder).exists():
            make_fixture(folder, root)
    return root


def quick_layout_args(specs) -> dict[str, dict]:
    """One epoch for every layout that has epochs, and no drop_last: fixtures are for structure, not
    volume (test_pipeline_layouts.py tests drop_last)."""
    quick = {}
    for name in specs:
        defaults = get_layout(get_spec(name).layout).defaults
        args = {k: v for k, v in (("epochs", 1), ("drop_last", False)) if k in defaults}
        if args:
            quick[name] = args
    return quick


def build_specs(specs, root: Path, out: Path, *, annotators: dict[str, str] | None = None,
                layout_args: dict | None = None, tokenizer: str = "random:tiny", seed: int = 0,
                beam_args: list[str] | None = None, dedup: bool = False) -> dict:
    """Build ``specs`` (names) from their fixtures under ``root`` into ``out``; returns the summary.

    Dedup is off by default: fixtures of different datasets reuse the same few sample videos, so
    their sentences can be identical, and these builds check structure (test_pipeline_dedup.py
    checks dedup)."""
    fixture_root_for(specs, root)
    sources = [SourceConfig(name=name, spec=name, root=str(root / get_spec(name).folder)) for name in specs]
    config = BuildConfig(tokenizer=tokenizer, batch_size=16, samples_per_shard=64, seed=seed,
                         annotators=annotators or {}, dedup_images=dedup, dedup_sentences=dedup,
                         layout_args=quick_layout_args(specs) if layout_args is None else layout_args)
    return job.run(sources, str(out), config, beam_args, overwrite=True, device="cpu")


def read_sentences(out: Path) -> list[VisualSentence]:
    manifest = read_manifest(str(out))
    sentences = []
    for shard in manifest.shards:  # plain webdataset reads them: the format is the contract
        sentences += [decode_sample(s) for s in wds.WebDataset(shard.path, shardshuffle=False, empty_check=False)]
    return sentences


def sentences_by_source(sentences: list[VisualSentence]) -> dict[str, list[VisualSentence]]:
    """A build's sentences grouped by their source, in read order."""
    grouped: dict[str, list[VisualSentence]] = {}
    for sentence in sentences:
        grouped.setdefault(sentence.meta.source, []).append(sentence)
    return grouped
