"""Turning a stored sentence back into pixels: read one sample, decode, tile into a grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import webdataset as wds

from uvd.pipeline.format import VisualSentence, decode_sample


def shard_paths(shard_or_dir: str) -> list[str]:
    """A shard path as is, or a build directory's shards in manifest order."""
    path = Path(shard_or_dir)
    if path.is_dir():
        from uvd.pipeline.shards import read_manifest

        table, _ = read_manifest(str(path))
        return [str(path / p) for p in table.column("path").to_pylist()]
    return [str(path)]


def read_sentence(shard_or_dir: str, index: int = 0, source: str | None = None, *,
                  key: str | None = None) -> VisualSentence:
    """The sentence with ``key``, or the ``index``-th sentence (0-based, stored order) of a shard or
    a whole build, counting only sentences of ``source`` when it is given."""
    if index < 0:
        raise ValueError("index must be >= 0")
    seen = 0
    for url in shard_paths(shard_or_dir):
        for sample in wds.WebDataset(url, shardshuffle=False, empty_check=False):
            sentence = decode_sample(sample)
            if key is not None:
                if sentence.key == key:
                    return sentence
                continue
            if source is not None and sentence.meta.source != source:
                continue
            if seen == index:
                return sentence
            seen += 1
    if key is not None:
        raise IndexError(f"{shard_or_dir} holds no sentence with key {key!r}")
    of = f" of source {source!r}" if source else ""
    raise IndexError(f"{shard_or_dir} holds {seen} sentences{of}; index {index} is out of range")


def image_grid(images: np.ndarray, *, cols: int = 4, pad: int = 4) -> np.ndarray:
    """[N,H,W,3] uint8 -> one grid image, row-major, with a white gutter."""
    n, h, w, _ = images.shape
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    grid = np.full((rows * h + (rows + 1) * pad, cols * w + (cols + 1) * pad, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y:y + h, x:x + w] = img
    return grid


def decode_tokens(tokens: np.ndarray, tokenizer) -> np.ndarray:
    """(N, tokens_per_image) ids -> [N,H,W,3] uint8 frames through the tokenizer's decoder."""
    import torch

    codes = torch.from_numpy(np.asarray(tokens).astype(np.int64))
    with torch.inference_mode():
        images = tokenizer.decode_code(codes)  # (N, 3, H, W) in [0, 1]
    return (images.permute(0, 2, 3, 1).clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def decode_sentence(sentence: VisualSentence, tokenizer) -> np.ndarray:
    return decode_tokens(sentence.tokens, tokenizer)


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    import cv2

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
