"""uint8 RGB frames <-> token ids, batched the one way every caller batches them.

The build's RunInference handler, ``uvd datasets show``/``rebuild`` and evaluation all call these,
so a frame gets the same codes whoever tokenizes it.

Frames travel between stages as uint8. A view LVM computes in float after ``/ 255`` (the
colorization input: the luma of the [0, 1] image, never rounded) travels as a
:class:`TaggedFrame`, its uint8 source frame plus the transform's name, and the transform is
applied here, in float, just before encoding: the encoder sees exactly LVM's input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from uvd.tokenizer.vqgan import VQGAN

DEFAULT_BATCH_SIZE = 16  # frames per encoder call; codes depend on it (see pad_batch), builds record theirs
GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)  # LVM tokenize_colorization_dataset_muse.py


def gray_float(frame: np.ndarray) -> np.ndarray:
    """LVM's colorization input: ``np.dot`` of the [0, 1] float32 image with its luma weights (a
    Python list, so float64), in three equal channels, cast to float32. Not rounded: white is 0.9999."""
    image = (frame / 255.0).astype(np.float32)  # read_image_to_tensor
    luma = np.dot(image[..., :3], list(GRAY_WEIGHTS))
    return np.array(np.stack((luma,) * 3, axis=-1), dtype=np.float32)


FLOAT_TRANSFORMS = {"gray": gray_float}  # name -> (H, W, 3) uint8 -> (H, W, 3) float32 in [0, 1]


@dataclass(frozen=True)
class TaggedFrame:
    """A uint8 frame whose tokenizer input is ``FLOAT_TRANSFORMS[transform]`` of it."""

    pixels: np.ndarray  # (H, W, 3) uint8 RGB
    transform: str

    def __post_init__(self) -> None:
        if self.transform not in FLOAT_TRANSFORMS:
            raise ValueError(f"unknown float transform {self.transform!r}; known: {sorted(FLOAT_TRANSFORMS)}")

    @property
    def nbytes(self) -> int:
        return self.pixels.nbytes

    def model_input(self) -> np.ndarray:
        return FLOAT_TRANSFORMS[self.transform](self.pixels)


Frame = np.ndarray | TaggedFrame  # what a frame is between the drawing and the tokenizing steps


def preview(frames: Sequence[Frame] | np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 pictures of what the tokenizer sees (float inputs rounded), for display."""
    return np.stack([np.clip(np.rint(f.model_input() * 255), 0, 255).astype(np.uint8)
                     if isinstance(f, TaggedFrame) else f for f in frames])


def pad_batch(frames: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad a [B,H,W,3] batch to exactly ``size`` frames.

    Convolution and matmul kernels pick their algorithm (and so their rounding) by
    tensor shape, so one frame's latents differ by ~1e-3 between batch sizes, enough to
    flip near-tied codes. With one fixed batch shape, a frame's codes do not depend on
    how it happened to be batched, nor on its neighbours or position in the batch.
    """
    if len(frames) > size:
        raise ValueError(f"batch of {len(frames)} frames exceeds batch_size {size}")
    if len(frames) == size:
        return frames
    pad = np.zeros((size - len(frames),) + frames.shape[1:], frames.dtype)
    return np.concatenate([frames, pad])


def model_inputs(frames: Sequence[Frame] | np.ndarray, batch_size: int, device: torch.device) -> torch.Tensor:
    """(B <= batch_size) frames -> (batch_size, 3, H, W) float32 in [0, 1], zero-padded: uint8 / 255
    (equal to LVM's ``np.array(img) / 255.0`` in float32), tagged frames through their transform."""
    pixels = np.stack([f.pixels if isinstance(f, TaggedFrame) else f for f in frames])
    padded = pad_batch(np.ascontiguousarray(pixels), batch_size)
    images = torch.from_numpy(padded).to(device).permute(0, 3, 1, 2).float().div_(255.0)
    for i, frame in enumerate(frames):
        if isinstance(frame, TaggedFrame):
            images[i] = torch.from_numpy(frame.model_input()).to(device).permute(2, 0, 1)
    return images


def encode_batch(model: VQGAN, frames: Sequence[Frame] | np.ndarray, batch_size: int) -> np.ndarray:
    """(B <= batch_size) frames, (H, W, 3) uint8 RGB or tagged -> (B, tokens_per_image) uint16 codes,
    at a fixed batch shape."""
    codes = model.encode(model_inputs(frames, batch_size, model.device))[: len(frames)].cpu().numpy()
    if codes.max(initial=0) > np.iinfo(np.uint16).max:
        raise ValueError("codebook larger than 65536 entries cannot be stored as uint16")
    return codes.astype(np.uint16)


def encode_frames(model: VQGAN, frames: Sequence[Frame] | np.ndarray, batch_size: int) -> np.ndarray:
    """Any number of frames (uint8 RGB or tagged) -> uint16 codes, in batches of exactly ``batch_size``."""
    return np.concatenate([encode_batch(model, frames[start:start + batch_size], batch_size)
                           for start in range(0, len(frames), batch_size)])


def decode_frames(model: VQGAN, codes: np.ndarray) -> np.ndarray:
    """(N, tokens_per_image) ids -> (N, H, W, 3) uint8 RGB frames through the decoder."""
    ids = torch.from_numpy(np.asarray(codes).astype(np.int64)).to(model.device)
    images = model.decode_code(ids)  # (N, 3, H, W) in [0, 1]
    return (images.permute(0, 2, 3, 1).clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
