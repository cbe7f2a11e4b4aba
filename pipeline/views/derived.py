"""Derived views: what a position shows when it is made from a 256x256 frame, not read from disk.

A view ``base|derived`` starts from the reader's ``base`` view, resized to 256x256, then:

- ``gray``: LVM's colorization input, 0.2989 R + 0.5870 G + 0.1140 B of the [0, 1] image in
  float, as three equal channels. LVM never rounds it to 8 bits, so the frame travels as its
  uint8 colour source tagged ``gray`` and the tokenizer computes the luma (tokenizer/frames.py);
- ``masked``: LVM's inpainting input: with p = 0.3 one square hole of side in [0.1, 0.5) x 256,
  otherwise an 8x8 grid of 32-px patches, each kept with probability ``ratio ~ U(0, 1)``;
- ``depth``, ``normals``, ``segmentation``, ``pose``, ``edges``: an annotator (annotators.py).

Randomness comes from the seed the caller gives (the item's seed), so the same item always gets
the same mask, in every epoch, as in LVM (which masks each image once).
"""

from __future__ import annotations

import numpy as np

from uvd.dataset_specs.base import TRANSFORM_VIEWS
from uvd.tokenizer.frames import Frame, TaggedFrame

HOLE_PROBABILITY = 0.3  # LVM tokenize_inpainting_dataset_muse.py hole_mask_ratio
PATCH_SIZE = 32


def inpainting_keep_mask(seed: int, size: int = 256) -> np.ndarray:
    """(size, size) bool, True where pixels are kept, drawn as LVM draws it."""
    rng = np.random.default_rng(seed)
    keep = np.ones((size, size), bool)
    if rng.random() < HOLE_PROBABILITY:
        side = int(rng.integers(int(0.1 * size), int(0.5 * size)))  # [0.1, 0.5) x size
        y, x = (int(v) for v in rng.integers(0, size - side + 1, size=2))
        keep[y:y + side, x:x + side] = False
        return keep
    grid = size // PATCH_SIZE
    ratio = rng.random()
    kept = rng.random((grid, grid)) < ratio  # each patch kept with probability ratio
    return np.kron(kept, np.ones((PATCH_SIZE, PATCH_SIZE), bool))


def masked(frame: np.ndarray, seed: int) -> np.ndarray:
    """The frame with the masked pixels 0 (in uint8, equal to LVM's masking of the float image)."""
    return frame * inpainting_keep_mask(seed, frame.shape[0])[..., None]


def apply_transform(name: str, frame: np.ndarray, seed: int) -> Frame:
    if name == "gray":
        return TaggedFrame(frame, "gray")
    if name == "masked":
        return masked(frame, seed)
    raise ValueError(f"unknown transform view {name!r}; known: {TRANSFORM_VIEWS}")
