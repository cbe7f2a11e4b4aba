"""A build's per-source steps as plain functions: list, probe, plan, draw frames.

The Beam DoFns (graph/transforms.py) and the Beam-free paths (``uvd datasets show``, ``uvd rebuild``,
``uvd stats``, benchmarks) call these, as webdataset's and img2dataset's stages are called from any
driver: there is one copy of the logic, and it is tested without Beam. Each step turns every
failure of an input into a ``Reject`` that names the file and the reason; none is raised, nothing
is substituted.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Mapping

import numpy as np

from uvd.format import storage
from uvd.format.rejects import Reject
from uvd.media.guarded_video import GuardedVideoDecoder, VideoGuard
from uvd.media.images import DecodeError
from uvd.pipeline.planning.layouts import Layout, LayoutContext, get_layout, layout_context
from uvd.pipeline.planning.mixture import mixture_weights, target_shares
from uvd.pipeline.readers import DecodeContext, Reader, make_reader
from uvd.pipeline.records.config import BuildConfig, SourceConfig
from uvd.pipeline.records.items import Item, Position
from uvd.pipeline.records.sentences import SentencePlan
from uvd.pipeline.views.annotators import (
    BUILTIN,
    Annotator,
    AnnotatorFolder,
    AnnotatorMissing,
    load_annotator,
    missing_message,
)
from uvd.pipeline.views.frames import item_frames


@dataclasses.dataclass
class SourceSteps:
    """What the steps need of each source of a build: its spec, reader, layout and layout context."""

    config: BuildConfig
    sources: dict[str, SourceConfig]
    readers: dict[str, Reader]
    layouts: dict[str, Layout]
    contexts: dict[str, LayoutContext]

    @classmethod
    def create(cls, sources: Iterable[SourceConfig], config: BuildConfig) -> SourceSteps:
        sources = {s.name: s for s in sources}
        specs = {name: s.dataset_spec for name, s in sources.items()}
        return cls(config=config, sources=sources,
                   readers={name: make_reader(spec, name) for name, spec in specs.items()},
                   layouts={name: get_layout(spec.layout) for name, spec in specs.items()},
                   contexts={name: layout_context(spec, source=name, global_seed=config.seed,
                                                  overrides=config.layout_args.get(name))
                             for name, spec in specs.items()})

    def annotators(self) -> dict[str, Annotator]:
        """The annotators the sources' views need (load on the worker: they may hold models)."""
        kinds = sorted({k for s in self.sources.values() for k in s.dataset_spec.model_annotations})
        return {kind: load_annotator(kind, self.config.annotators.get(kind)) for kind in kinds}


class DecodeResources:
    """A worker's decoding resources: a guarded video decoder (a child process) and the image limits."""
    def __init__(self, config: BuildConfig):
        self.videos = GuardedVideoDecoder(VideoGuard(timeout_s=config.video_timeout_s,
                                                     memory_mb=config.video_memory_mb))
        self.ctx = DecodeContext(max_pixels=config.max_image_pixels, video=self.videos,
                                 image_size=config.image_size, preprocess=config.preprocess)

    def close(self) -> None:
        self.videos.close()

    def __enter__(self) -> DecodeContext:
        return self.ctx

    def __exit__(self, *exc) -> None:
        self.close()


def validate_sources(sources: list[SourceConfig], config: BuildConfig) -> None:
    """Fail before any work: duplicate names, unknown layout arguments, missing or unsafe annotators."""
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
    for kind, directory in sorted(config.annotators.items()):
        AnnotatorFolder.read(kind, directory)  # a broken or hostile model file fails here, not on a worker


def _reject(source: str, key: str, stage: str, error: DecodeError) -> Reject:
    return Reject(source=source, item_key=key, stage=stage, reason=error.reason, message=error.message)


def list_units(steps: SourceSteps, name: str, root: str) -> Iterator[str | Reject]:
    """The pieces of a source to list in parallel (a split file, a class folder, a tar ...)."""
    return reader_units(steps.readers[name], root)


def list_items(steps: SourceSteps, name: str, root: str, unit: str) -> Iterator[Item | Reject]:
    """The items of one unit, and a reject for each entry the reader cannot use."""
    return reader_items(steps.readers[name], root, unit)


def reader_units(reader: Reader, root: str) -> Iterator[str | Reject]:
    try:
        units = reader.units(root)
    except (OSError, ValueError) as e:
        yield _reject(reader.source, root, "list", DecodeError("unreadable_source", f"{root}: {e}"))
        return
    yield from units


def reader_items(reader: Reader, root: str, unit: str) -> Iterator[Item | Reject]:
    try:
        yield from reader.items(root, unit)
    except DecodeError as e:
        yield _reject(reader.source, unit, "list", e)
    except (OSError, ValueError) as e:
        yield _reject(reader.source, unit, "list", DecodeError("unreadable_annotation", f"{unit}: {e}"))


class SourceRootError(ValueError):
    """A source's root does not exist, or its spec finds nothing to read there."""


def check_source_roots(sources: Iterable[SourceConfig]) -> None:
    """Fail before any work when a source's root does not exist or its spec finds nothing at all
    there, neither an item nor a bad input: a typo in a path would otherwise build nothing,
    successfully. A root whose inputs are all bad is not refused here: those are rejects, recorded
    by the build (and ``uvd build`` then exits 1 naming the source). Listing stops at the first item."""
    for source in sources:
        reader = make_reader(source.dataset_spec, source.name)
        where = f"source {source.name!r} (spec {source.spec})"
        expected = f"expected {reader.expects()}"
        if storage.is_local(source.root) and not os.path.isdir(source.root):
            raise SourceRootError(f"{where}: {source.root} is not a folder; {expected}")
        if first_listed(reader, source.root) is None:
            raise SourceRootError(f"{where}: no items in {source.root}; {expected}")


def first_listed(reader: Reader, root: str) -> Item | Reject | None:
    """The first item a reader lists under ``root``; failing that its first reject, or None."""
    first = None
    for unit in reader_units(reader, root):
        entries = [unit] if isinstance(unit, Reject) else reader_items(reader, root, unit)
        for entry in entries:
            if isinstance(entry, Item):
                return entry
            first = first or entry
    return first


def list_source(steps: SourceSteps, name: str, root: str,
                keys: set[str] | None = None) -> tuple[list[Item], list[Reject]]:
    """Every item of a source (or only those with ``keys``), and the listing rejects, in one process."""
    items, rejects = [], []
    for unit in list_units(steps, name, root):
        if isinstance(unit, Reject):
            rejects.append(unit)
            continue
        for entry in list_items(steps, name, root, unit):
            if isinstance(entry, Reject):
                rejects.append(entry)
            elif keys is None or entry.key in keys:
                items.append(entry)
    return items, rejects


def probe_item(steps: SourceSteps, item: Item, ctx: DecodeContext) -> Item | Reject:
    """The item with what planning needs (a video's frame count) and, for stills with dedup on, the
    hash of its bytes; or a reject."""
    reader = steps.readers[item.source]
    try:
        probed = reader.probe(item, ctx)
        if steps.config.dedup_images:
            probed = probed.with_(content_hash=reader.content_hash(probed, ctx) or "")
        return probed
    except DecodeError as e:
        return _reject(item.source, item.key, "probe", e)
    except OSError as e:
        return _reject(item.source, item.key, "probe", DecodeError("unreadable_file", f"{item.paths}: {e}"))


def plan_item(steps: SourceSteps, item: Item) -> list[SentencePlan] | Reject:
    """The sentences of one item, for per-item layouts (video, frame_sequence, multiview ...)."""
    try:
        return steps.layouts[item.source].plan(item, steps.contexts[item.source])
    except DecodeError as e:
        return _reject(item.source, item.key, "plan", e)


def plan_group(steps: SourceSteps, name: str, items: Iterable[Item]) -> list[SentencePlan | Reject]:
    """The sentences of all of a source's items, for grouped layouts (pairs, category ...), and a
    reject for each item no sentence uses (too short, or the ``drop_last`` remainder)."""
    grouped = steps.layouts[name].plan(list(items), steps.contexts[name])  # the layout sorts them by key
    return grouped.plans + [_reject(name, key, "plan", error) for key, error in grouped.left_out]


def draw_frames(steps: SourceSteps, item: Item, positions: Iterable[Position], ctx: DecodeContext,
                annotators: Mapping[str, Annotator]) -> dict[tuple[int, str], np.ndarray] | Reject:
    """{(frame, view): 256x256 uint8 RGB} of every position of ``item``, or the reject of the item."""
    try:
        return item_frames(steps.readers[item.source], item, positions, ctx=ctx, global_seed=steps.config.seed,
                           annotators=annotators)
    except DecodeError as e:
        return _reject(item.source, item.key, "decode", e)
    except OSError as e:
        return _reject(item.source, item.key, "decode", DecodeError("unreadable_file", f"{item.paths}: {e}"))
