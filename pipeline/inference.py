"""Beam RunInference model handler for the VQGAN: frames in, token ids out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from apache_beam.ml.inference.base import ModelHandler


def pad_batch(frames: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad a [B,H,W,3] batch to exactly ``size`` frames.

    Convolution and matmul kernels pick their algorithm (and so their rounding) by
    tensor shape, so one frame's latents differ by ~1e-3 between batch sizes, enough to
    flip near-tied codes. With one fixed batch shape, a frame's codes do not depend on
    how Beam happened to batch it, nor on its neighbours or position in the batch.
    """
    if len(frames) > size:
        raise ValueError(f"batch of {len(frames)} frames exceeds batch_size {size}")
    if len(frames) == size:
        return frames
    pad = np.zeros((size - len(frames),) + frames.shape[1:], frames.dtype)
    return np.concatenate([frames, pad])


class VQGANModelHandler(ModelHandler[np.ndarray, np.ndarray, Any]):
    """Loads the tokenizer once per worker and encodes batches of HxWx3 uint8 frames.

    The model is built in ``load_model`` (called by RunInference on the worker), never
    when the pipeline is constructed, so the launcher stays light and the handler
    pickles small.
    """

    def __init__(self, tokenizer: str, *, batch_size: int, device: str = "auto", compile: bool = False):
        super().__init__(min_batch_size=1, max_batch_size=batch_size)
        self._batch_size = batch_size
        self._tokenizer = tokenizer
        self._device = device
        self._compile = compile  # batches are padded to batch_size, so it compiles one shape

    def load_model(self):
        import torch

        from uvd.tokenizer import load_tokenizer

        device = self._device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        return load_tokenizer(self._tokenizer, device=device, compile=self._compile)

    def run_inference(self, batch: Sequence[np.ndarray], model, inference_args=None) -> list[np.ndarray]:
        import torch

        device = next(model.parameters()).device
        frames = pad_batch(np.stack(batch), self._batch_size)  # (batch_size, H, W, 3) uint8
        pixels = torch.from_numpy(frames).to(device)
        images = pixels.permute(0, 3, 1, 2).float().div_(255.0)  # (batch_size, 3, H, W) in [0, 1]
        codes = model.encode(images)[: len(batch)].cpu().numpy()  # (B, tokens_per_image) int64
        if codes.max(initial=0) > np.iinfo(np.uint16).max:
            raise ValueError("codebook larger than 65536 entries cannot be stored as uint16")
        return list(codes.astype(np.uint16))

    def get_num_bytes(self, batch: Sequence[np.ndarray]) -> int:
        return sum(f.nbytes for f in batch)

    def get_metrics_namespace(self) -> str:
        return "uvd.tokenize"
