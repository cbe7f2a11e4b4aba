"""The small records that travel between a build's stages.

An ``Item`` is what a reader lists: one unit of a source that sentences are made from (a
photo, an (input, target) pair, a video, a folder of frames, an object's renders). A
``Position`` (defined with the sample format) says what one image of a sentence is: which item,
which frame, which view. Both are small and picklable; pixels never travel in them. A
``Picture`` is what a reader draws of one (frame, view), before the resize to 256x256.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from uvd.format.sample import Position

__all__ = ["Item", "Picture", "Position", "to_json"]


@dataclass(frozen=True)
class Item:
    source: str  # source name (usually the spec name)
    key: str  # stable within the source: a path relative to its root, or a dataset id
    paths: tuple[str, ...]  # files the reader opens, in the reader's own order
    label: str = ""  # class or category, for layouts that group by it
    annotation: str = ""  # reader-specific JSON (boxes, keypoints, frame lists...), kept small
    num_frames: int = 1  # frames of a video or sequence, views of an object; 1 for stills
    content_hash: str = ""  # sha256 of the item's bytes, filled by probing stills (exact dedup)
    extra: tuple[tuple[str, Any], ...] = field(default=())  # reader facts from probing (hashable)

    def annotation_json(self) -> Any:
        return json.loads(self.annotation) if self.annotation else None

    def with_(self, **changes: Any) -> Item:
        return replace(self, **changes)

    def get(self, name: str, default: Any = None) -> Any:
        return dict(self.extra).get(name, default)


@dataclass(frozen=True)
class Picture:
    """A reader's picture of one (frame, view): RGB uint8 at any size. Pictures of stills, label maps
    and drawn annotations are resized as LVM resized the image files it read (Pillow bicubic); video
    frames arrive already resized (bilinear, in the decoder process)."""
    pixels: np.ndarray  # (H, W, 3) uint8 RGB


def to_json(value: Any) -> str:
    """Compact, key-sorted JSON for Item.annotation (same value, same string)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
