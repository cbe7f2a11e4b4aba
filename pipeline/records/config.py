"""Typed build configuration: what decides the bytes of the output.

Everything that changes the shards lives in :class:`BuildConfig` and is recorded in
the manifest, so a build can be repeated. Runtime-only knobs (runner, workers,
progress display) are not here: they must never change the output.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import tomllib

from uvd.dataset_specs import DatasetSpec, all_specs, get_spec
from uvd.format import storage
from uvd.media.images import check_preprocess
from uvd.tokenizer.frames import DEFAULT_BATCH_SIZE
from uvd.tokenizer.vqgan import PRECISIONS


@dataclasses.dataclass(frozen=True)
class SourceConfig:
    """One input: a dataset spec (``images``, ``videos``, ``coco_detection``...) read from ``root``
    (local, s3:// or gs://). ``name`` is what shards call it; it defaults to the spec name."""

    name: str
    spec: str
    root: str

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.lower() or not self.name.replace("_", "").isalnum():
            raise ValueError(f"source name {self.name!r} must be lower case [a-z0-9_]")
        _ = self.dataset_spec  # unknown spec names fail here, with the list of known ones

    @property
    def dataset_spec(self) -> DatasetSpec:
        try:
            return get_spec(self.spec)
        except KeyError as e:
            raise ValueError(e.args[0]) from None

    @property
    def group(self) -> str:
        return self.dataset_spec.group


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    """Knobs that decide the content of a build (all recorded in the manifest)."""
    image_size: int = 256  # LVM: every frame becomes 256x256 ...
    resize: str = "plain"  # ... by a plain resize of the whole image (no crop)
    # How files become those frames: "lvm" = the LVM release's pixels (Pillow decode without EXIF
    # rotation, Pillow bicubic for stills and label maps, OpenCV bilinear for video frames, float
    # gray); "fast" = JPEG DCT-scaled decode and OpenCV area resize for stills (not LVM's pixels).
    preprocess: str = "lvm"
    tokenizer: str = "bundled"  # see tokenizer.load_tokenizer: bundled, a checkpoint path, random:<config>
    tokenizer_precision: str = "fp32"  # "fp32" as LVM encodes; "bf16" autocast is faster and changes codes
    batch_size: int = DEFAULT_BATCH_SIZE  # frames per tokenizer batch
    compile_tokenizer: bool = False  # torch.compile encoder/decoder on workers (1.2-2.3x on CPU, ~20 s to start)
    samples_per_shard: int = 256  # target; the shard count is derived from the total
    max_image_pixels: int = 89_478_485  # decompression-bomb guard (Pillow's default)
    video_timeout_s: float = 300.0  # a video open or clip read taking longer is rejected
    video_memory_mb: int = 4096  # address-space limit of the decord child process
    seed: int = 0
    annotators: dict[str, str] = dataclasses.field(default_factory=dict)  # kind -> annotator folder
    layout_args: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # source -> overrides
    mix: str = ""  # "" (every sentence), "uvdv1" (UVDv1 token shares) or a TOML/JSON file of source weights
    mix_tokens: int = 0  # with mix: total tokens to aim for; 0 = the largest mix the data allows
    dedup_images: bool = True  # drop stills whose bytes equal another's of the same source
    dedup_sentences: bool = True  # drop sentences whose tokens equal another's, across the build
    shard_compression: str = "gzip"  # "gzip" (.tar.gz) or "none" (.tar)

    def __post_init__(self) -> None:
        if self.image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16, got {self.image_size}")
        if self.resize != "plain":
            raise ValueError(f"resize {self.resize!r} is not supported (only 'plain')")
        check_preprocess(self.preprocess)
        if self.tokenizer_precision not in PRECISIONS:
            raise ValueError(f"tokenizer_precision {self.tokenizer_precision!r} is not one of {PRECISIONS}")
        if self.batch_size < 1 or self.samples_per_shard < 1:
            raise ValueError("batch_size and samples_per_shard must be >= 1")
        if self.mix_tokens < 0 or (self.mix_tokens and not self.mix):
            raise ValueError("mix_tokens must be >= 0 and needs mix")
        if self.shard_compression not in ("gzip", "none"):
            raise ValueError(f"shard_compression must be 'gzip' or 'none', got {self.shard_compression!r}")
        object.__setattr__(self, "annotators", dict(sorted(self.annotators.items())))
        object.__setattr__(self, "layout_args", {k: dict(v) for k, v in sorted(self.layout_args.items())})

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> BuildConfig:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def load_build_config(path: str | Path | None) -> BuildConfig:
    """Read a TOML (``[build]`` table) or JSON file; unknown keys are an error."""
    if path is None:
        return BuildConfig()
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    data = data.get("build", data)
    known = {f.name for f in dataclasses.fields(BuildConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path}: unknown build config keys {unknown}; known: {sorted(known)}")
    return BuildConfig(**data)


def parse_source(text: str) -> SourceConfig:
    """Parse ``SPEC:ROOT`` or ``NAME=SPEC:ROOT`` as given on the command line."""
    name, sep, rest = text.partition("=")
    if not sep or ":" in name:
        name, rest = "", text
    spec, sep, root = rest.partition(":")
    if not sep or not spec or not root:
        raise ValueError(f"source {text!r}: expected [NAME=]SPEC:PATH, e.g. images:data/photos or "
                         f"coco=coco_detection:/data/coco")
    return SourceConfig(name=name or spec, spec=spec, root=root)


def discover_sources(root: str, mix: str = "") -> tuple[list[SourceConfig], list[str]]:
    """A SourceConfig for every spec whose folder exists under ``root`` (for ``--mix`` builds:
    only specs the mixture weighs, i.e. UVDv1 rows for ``uvdv1``)."""
    found, left_out = [], []
    for spec in all_specs().values():
        if not storage.dir_exists(storage.join(root, spec.folder)):
            continue
        if mix == "uvdv1" and spec.uvdv1 is None:
            left_out.append(spec.name)
            continue
        found.append(SourceConfig(name=spec.name, spec=spec.name, root=storage.join(root, spec.folder)))
    return found, left_out
