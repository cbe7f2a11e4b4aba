"""uint8 RGB frames <-> token ids, batched the one way every caller batches them.

The build's RunInference handler, ``uvd datasets show``/``rebuild`` and evaluation all call these,
so a frame gets the same codes whoever tokenizes it.
"""

from __future__ import annotations

import numpy as np
import torch

from uvd.tokenizer.vqgan import VQGAN

DEFAULT_BATCH_SIZE = 16  # frames per encoder call; codes depend on it (see pad_batch), builds record theirs


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


def encode_batch(model: VQGAN, frames: np.ndarray, batch_size: int) -> np.ndarray:
    """(B <= batch_size, H, W, 3) uint8 RGB -> (B, tokens_per_image) uint16 codes, at a fixed batch shape."""
    padded = pad_batch(np.ascontiguousarray(frames), batch_size)
    pixels = torch.from_numpy(padded).to(model.device)
    images = pixels.permute(0, 3, 1, 2).float().div_(255.0)  # (batch_size, 3, H, W) in [0, 1]
    codes = model.encode(images)[: len(frames)].cpu().numpy()
    if codes.max(initial=0) > np.iinfo(np.uint16).max:
        raise ValueError("codebook larger than 65536 entries cannot be stored as uint16")
    return codes.astype(np.uint16)


def encode_frames(model: VQGAN, frames: np.ndarray, batch_size: int) -> np.ndarray:
    """Any number of uint8 RGB frames -> uint16 codes, in batches of exactly ``batch_size``."""
    return np.concatenate([encode_batch(model, frames[start:start + batch_size], batch_size)
                           for start in range(0, len(frames), batch_size)])


def decode_frames(model: VQGAN, codes: np.ndarray) -> np.ndarray:
    """(N, tokens_per_image) ids -> (N, H, W, 3) uint8 RGB frames through the decoder."""
    ids = torch.from_numpy(np.asarray(codes).astype(np.int64)).to(model.device)
    images = model.decode_code(ids)  # (N, 3, H, W) in [0, 1]
    return (images.permute(0, 2, 3, 1).clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
