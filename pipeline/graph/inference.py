"""Beam RunInference model handler for the VQGAN: frames in, token ids out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from apache_beam.ml.inference.base import ModelHandler

from uvd.pipeline.graph.resources import use_threads
from uvd.tokenizer import load_tokenizer
from uvd.tokenizer.frames import Frame, encode_batch


class VQGANModelHandler(ModelHandler[Frame, np.ndarray, Any]):
    """Loads the tokenizer once per worker and encodes batches of HxWx3 uint8 frames (or TaggedFrames,
    whose float transform tokenizer/frames.py applies), in the build's precision.

    The model is built in ``load_model`` (called by RunInference on the worker), never
    when the pipeline is constructed, so the launcher stays light and the handler
    pickles small. Every encoder call runs ``batch_size`` frames (tokenizer/frames.py pads: codes
    must not depend on how Beam happened to batch a frame), so batches are full-size from the
    start: Beam's adaptive batching would begin at one frame, padded to a whole batch of work.
    """

    def __init__(self, tokenizer: str, *, batch_size: int, device: str = "auto", compile: bool = False,
                 precision: str = "fp32", threads: int | None = None):
        super().__init__(min_batch_size=batch_size, max_batch_size=batch_size)
        self._batch_size = batch_size
        self._tokenizer = tokenizer
        self._device = device
        self._compile = compile
        self._precision = precision
        self._threads = threads

    def load_model(self):
        use_threads(self._threads)  # the worker's share of the cores (resources.py)
        device = self._device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        return load_tokenizer(self._tokenizer, device=device, compile=self._compile).with_precision(self._precision)

    def run_inference(self, batch: Sequence[Frame], model, inference_args=None) -> list[np.ndarray]:
        return list(encode_batch(model, batch, self._batch_size))

    def get_num_bytes(self, batch: Sequence[Frame]) -> int:
        return sum(f.nbytes for f in batch)

    def get_metrics_namespace(self) -> str:
        return "uvd.tokenize"
