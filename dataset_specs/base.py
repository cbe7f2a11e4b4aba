"""What a dataset spec is, and the registry every spec module adds itself to.

A spec is declarative: it names the reader that understands the source's on-disk layout,
the sentence layout LVM built from it, what each item contributes to a sentence (its
``views``), and the bookkeeping a user needs (license, citation, UVDv1 token count). All the
behaviour lives in ``uvd.pipeline`` (readers, layouts, annotations); a spec only chooses.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

# The five UVDv1 groups, as named in uvdv1_sources.tsv.
GROUPS = ("unpaired_images", "images_with_annotations", "videos", "videos_with_annotations",
          "synthetic_3d_views")


# The derived views a spec may name after ``|``: transforms of the resized frame, and annotations
# made by a model (an annotator folder, or a built-in such as Canny for edges).
TRANSFORM_VIEWS = ("gray", "masked")
MODEL_VIEWS = ("depth", "normals", "segmentation", "pose", "edges")

UVDV1_TABLE = Path(__file__).with_name("uvdv1_sources.tsv")  # the LVM paper's source table, verbatim


@dataclass(frozen=True)
class UVDv1Row:
    group: str
    dataset: str
    tokens_millions: float
    annotation_type: str
    annotation_source: str


@functools.lru_cache(maxsize=1)
def uvdv1_rows() -> tuple[UVDv1Row, ...]:
    """The rows of uvdv1_sources.tsv (group, dataset, millions of tokens, annotation type and source)."""
    with UVDV1_TABLE.open(newline="", encoding="utf-8") as f:
        return tuple(UVDv1Row(r["group"], r["dataset"], float(r["tokens_millions"]), r["annotation_type"],
                              r["annotation_source"]) for r in csv.DictReader(f, delimiter="\t"))


def uvdv1_row(dataset: str, annotation_type: str) -> UVDv1Row:
    for row in uvdv1_rows():
        if (row.dataset, row.annotation_type) == (dataset, annotation_type):
            return row
    raise KeyError(f"no UVDv1 row ({dataset!r}, {annotation_type!r}) in {UVDV1_TABLE.name}")


@dataclass(frozen=True)
class UVDv1Share:
    """This spec's part of a row of uvdv1_sources.tsv (a row may list several datasets)."""

    dataset: str  # the row's dataset column, verbatim
    annotation_type: str  # the row's annotation_type column ("-" for plain images and videos)
    fraction: float = 1.0  # share of the row's tokens attributed to this spec
    basis: str = ""  # why this fraction, when it is not 1

    @property
    def row(self) -> UVDv1Row:
        return uvdv1_row(self.dataset, self.annotation_type)

    @property
    def tokens_millions(self) -> float:
        """This spec's part of the row's UVDv1 token count."""
        return self.row.tokens_millions * self.fraction


@dataclass(frozen=True)
class DatasetSpec:
    """One source of UVDv1 (or a generic folder), as data.

    ``views`` name what one item contributes per sentence position, in layout order: a reader
    view (``image``, ``boxes``, ``left``...), or ``base|derived`` where a derived view is made
    from the reader's ``base`` view after the resize to 256x256 (``image|gray``,
    ``image|masked``, ``image|depth``...; see uvd.pipeline.views.derived).
    """

    name: str  # registry key; also the source name in shards (lower case, [a-z0-9_])
    title: str
    group: str  # one of GROUPS
    reader: str  # a name in uvd.pipeline.readers.READERS
    layout: str  # a name in uvd.pipeline.planning.layouts.LAYOUTS
    views: tuple[str, ...]
    annotation: str = "-"  # what the annotation images show and how they are made
    reader_args: Mapping[str, Any] = field(default_factory=dict)
    layout_args: Mapping[str, Any] = field(default_factory=dict)
    split: str = "train"
    root_dir: str = ""  # folder name under a mixture --root; default: the spec name
    license: str = ""
    citation: str = ""
    homepage: str = ""
    uvdv1: UVDv1Share | None = None  # None: not a UVDv1 row (generic folders, extra layouts)
    mixture_weight: float = 1.0  # multiplies the UVDv1 token share in a mixture build
    version: str = "1.0.0"  # bump when the spec's output for the same input changes

    def __post_init__(self) -> None:
        # Frozen mappings: a spec is shared by every worker and must not change under them.
        object.__setattr__(self, "reader_args", MappingProxyType(dict(self.reader_args)))
        object.__setattr__(self, "layout_args", MappingProxyType(dict(self.layout_args)))
        object.__setattr__(self, "views", tuple(self.views))
        problems = []
        if not self.name or not self.name.replace("_", "").isalnum() or self.name != self.name.lower():
            problems.append("name must be lower case [a-z0-9_]")
        if self.group not in GROUPS:
            problems.append(f"group {self.group!r} is not one of {GROUPS}")
        if not self.views:
            problems.append("views must not be empty")
        if self.mixture_weight < 0:
            problems.append("mixture_weight must be >= 0")
        if self.uvdv1 is not None:
            if not 0 < self.uvdv1.fraction <= 1:
                problems.append("uvdv1.fraction must be in (0, 1]")
            try:
                row = self.uvdv1.row
                if row.group != self.group:
                    problems.append(f"group {self.group!r} differs from its UVDv1 row's {row.group!r}")
            except KeyError as e:
                problems.append(e.args[0])
        if problems:
            raise ValueError(f"dataset spec {self.name!r}: " + "; ".join(problems))

    @property
    def uvdv1_tokens_millions(self) -> float:
        """Millions of tokens this source contributed to UVDv1 (0 for sources outside the table)."""
        return self.uvdv1.tokens_millions if self.uvdv1 else 0.0

    @property
    def folder(self) -> str:
        return self.root_dir or self.name

    @property
    def model_annotations(self) -> tuple[str, ...]:
        """Derived views that need a model annotator (depth, normals, ...), in view order."""
        return tuple(dict.fromkeys(v.split("|", 1)[1] for v in self.views
                                   if "|" in v and v.split("|", 1)[1] in MODEL_VIEWS))

    def describe(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["reader_args"], d["layout_args"] = dict(self.reader_args), dict(self.layout_args)
        return d


_REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    """Add ``spec`` to the registry; a second spec with the same name is refused."""
    if spec.name in _REGISTRY:
        raise ValueError(f"dataset spec {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def registry() -> dict[str, DatasetSpec]:
    return _REGISTRY
