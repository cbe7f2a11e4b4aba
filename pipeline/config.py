"""Typed build configuration: what decides the bytes of the output.

Everything that changes the shards lives in :class:`BuildConfig` and is recorded in
the manifest, so a build can be repeated. Runtime-only knobs (runner, workers,
progress display) are not here: they must never change the output.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path
from typing import Any

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v")
SOURCE_KINDS = ("images", "videos")


@dataclasses.dataclass(frozen=True)
class SourceConfig:
    """One input: a folder (local, s3:// or gs://) of images or of videos."""

    name: str
    kind: str  # "images" | "videos"
    root: str
    group: str = ""  # UVDv1 group; defaults from kind

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"source {self.name!r}: kind must be one of {SOURCE_KINDS}, got {self.kind!r}")
        if not self.name or "/" in self.name:
            raise ValueError(f"source name {self.name!r} must be non-empty and contain no '/'")
        if not self.group:
            object.__setattr__(self, "group", "unpaired_images" if self.kind == "images" else "videos")


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    """Knobs that decide the content of a build (all recorded in the manifest)."""

    image_size: int = 256  # LVM: every frame becomes 256x256 ...
    resize: str = "plain"  # ... by a plain resize of the whole image (no crop)
    clip_len: int = 16  # frames per video sentence
    clip_stride: int = 8  # frame step inside a clip; lowered for short videos
    min_clip_len: int = 16  # a video with fewer frames than this is rejected
    tokenizer: str = "random:small"  # tokenizer dir, or random:<config>[:<seed>]
    batch_size: int = 16  # frames per tokenizer batch
    samples_per_shard: int = 256  # target; the shard count is derived from the total
    max_image_pixels: int = 89_478_485  # decompression-bomb guard (Pillow's default)
    video_timeout_s: float = 300.0  # a video open or clip read taking longer is rejected
    video_memory_mb: int = 4096  # address-space limit of the decord child process
    seed: int = 0

    def __post_init__(self) -> None:
        if self.image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16, got {self.image_size}")
        if self.resize != "plain":
            raise ValueError(f"resize {self.resize!r} is not supported (only 'plain')")
        if not 1 <= self.min_clip_len <= self.clip_len:
            raise ValueError("need 1 <= min_clip_len <= clip_len")
        if self.clip_stride < 1 or self.batch_size < 1 or self.samples_per_shard < 1:
            raise ValueError("clip_stride, batch_size and samples_per_shard must be >= 1")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "BuildConfig":
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
    """Parse ``KIND:ROOT`` or ``NAME=KIND:ROOT`` as given on the command line."""
    name, sep, rest = text.partition("=")
    if not sep:
        name, rest = "", text
    kind, sep, root = rest.partition(":")
    if not sep or kind not in SOURCE_KINDS:
        raise ValueError(f"source {text!r}: expected [NAME=]KIND:PATH with KIND in {SOURCE_KINDS}")
    return SourceConfig(name=name or kind, kind=kind, root=root)
