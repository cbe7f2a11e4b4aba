"""Synthetic shards for model tests: sentences with recognisable tokens, in a real build layout."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds

from uvd.format.sample import SentenceMeta, VisualSentence, encode_sample
from uvd.format.tables import MANIFEST_NAME


def make_sentence(index: int, n_images: int = 2, tokens_per_image: int = 8) -> VisualSentence:
    """A sentence whose token ids are distinct per index (so packing order is checkable)."""
    meta = SentenceMeta(source="synthetic", group="unpaired_images", layout="single_image",
                        item_keys=(f"item/{index}.png",), image_items=(0,) * n_images,
                        frame_indices=(0,) * n_images, views=("image",) * n_images, seed=index)
    start = index * 100
    tokens = (np.arange(start, start + n_images * tokens_per_image) % 8192).astype(np.uint16)
    return VisualSentence(key=f"synthetic_{index:05d}", tokens=tokens.reshape(n_images, tokens_per_image),
                          meta=meta)


def write_shard_tar(path: Path, samples: list[dict]) -> None:
    with wds.TarWriter(str(path), encoder=False) as writer:
        for sample in samples:
            writer.write(sample)


def write_manifest(out_dir: Path, shard_files: list[Path], samples: list[int], tokens: list[int]) -> None:
    table = pa.table({
        "path": [p.name for p in shard_files],
        "samples": pa.array(samples, pa.int64()),
        "images": pa.array([0] * len(shard_files), pa.int64()),
        "tokens": pa.array(tokens, pa.int64()),
        "bytes": pa.array([p.stat().st_size for p in shard_files], pa.int64()),
        "sha256": [hashlib.sha256(p.read_bytes()).hexdigest() for p in shard_files],
        "sources": [["synthetic"]] * len(shard_files),
    })
    pq.write_table(table, out_dir / MANIFEST_NAME)


def write_test_shards(out_dir: str | Path, sentences: list[VisualSentence], samples_per_shard: int) -> list[Path]:
    """A build output directory: consecutive runs of ``samples_per_shard`` sentences in
    shard-NNNNNN.tar files (in the given order) plus manifest.parquet."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chunks = [sentences[i:i + samples_per_shard] for i in range(0, len(sentences), samples_per_shard)]
    files = []
    for index, chunk in enumerate(chunks):
        files.append(out_dir / f"shard-{index:06d}.tar")
        write_shard_tar(files[-1], [encode_sample(s) for s in chunk])
    write_manifest(out_dir, files, [len(c) for c in chunks], [sum(s.num_tokens for s in c) for c in chunks])
    return files
