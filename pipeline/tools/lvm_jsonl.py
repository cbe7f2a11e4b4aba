"""LVM's JSONL token files <-> uvd shards.

The LVM release's tokenize scripts write one visual sentence per line as
``{"tokens": "<base64 of little-endian int32 token ids>"}`` (16 images x 256 = 4096 tokens for most
sentences; its multi-sequence lines hold 64 images and its CO3D lines 32), and its EasyLM trainer
streams those lines. Any line of whole images (a multiple of 256 tokens, up to
``MAX_IMAGES_PER_SENTENCE``) imports as one sentence. ``export_jsonl`` writes a build in
that form, one sentence per line in manifest order (``pack`` instead cuts the concatenated stream
into lines of exactly ``pack`` tokens, for readers that expect fixed lines); ``import_jsonl``
makes shards from such files, one sentence per line, keeping line order, so JSONL -> shards ->
JSONL gives back the same bytes and shards -> JSONL -> shards the same tokens.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

import uvd
from uvd.format import storage
from uvd.format.reading import iter_sentences
from uvd.format.sample import FORMAT_VERSION, SentenceMeta, VisualSentence, slug
from uvd.format.shards import write_shard
from uvd.format.tables import MANIFEST_NAME, manifest_table, parquet_bytes
from uvd.pipeline.records.sentences import MAX_IMAGES_PER_SENTENCE

TOKENS_PER_IMAGE = 256


def encode_line(tokens: np.ndarray) -> str:
    """One JSONL line, formatted as LVM's scripts format it (json.dumps defaults)."""
    return json.dumps({"tokens": base64.b64encode(np.asarray(tokens, dtype="<i4").tobytes()).decode("utf-8")})


def decode_line(line: str, *, where: str) -> np.ndarray:
    try:
        raw = base64.b64decode(json.loads(line)["tokens"], validate=True)
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{where}: not an LVM token line ({type(e).__name__}: {e})") from None
    if len(raw) % 4:
        raise ValueError(f"{where}: {len(raw)} bytes is not a whole number of int32 tokens")
    return np.frombuffer(raw, dtype="<i4").astype(np.int64)


def export_jsonl(build_dir: str | Path, out: str | Path, *, pack: int = 0) -> int:
    """Write a build's tokens as LVM JSONL; returns the number of lines."""
    lines = 0
    with open(out, "w", encoding="utf-8") as f:
        if not pack:
            for sentence in iter_sentences(str(build_dir)):
                f.write(encode_line(sentence.tokens.reshape(-1)) + "\n")
                lines += 1
            return lines
        buffer = np.empty(0, dtype=np.int64)
        for sentence in iter_sentences(str(build_dir)):
            buffer = np.concatenate([buffer, sentence.tokens.reshape(-1).astype(np.int64)])
            while len(buffer) >= pack:
                f.write(encode_line(buffer[:pack]) + "\n")
                buffer, lines = buffer[pack:], lines + 1
        if len(buffer):
            f.write(encode_line(buffer) + "\n")  # the tail, shorter: nothing is dropped
            lines += 1
    return lines


def _imported_sentences(files: Iterable[Path], *, source: str, group: str, codebook_size: int):
    for file_index, path in enumerate(files):
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{line_no}"
                tokens = decode_line(line, where=where)
                n, rest = divmod(len(tokens), TOKENS_PER_IMAGE)
                if rest or not 0 < n <= MAX_IMAGES_PER_SENTENCE:
                    raise ValueError(f"{where}: {len(tokens)} tokens is not 1..{MAX_IMAGES_PER_SENTENCE} images of "
                                     f"{TOKENS_PER_IMAGE}")
                if tokens.min() < 0 or tokens.max() >= codebook_size:
                    raise ValueError(f"{where}: token ids outside [0, {codebook_size})")
                meta = SentenceMeta(source=source, group=group, layout="imported",
                                    item_keys=(f"{path.name}:{line_no}",), image_items=(0,) * n,
                                    frame_indices=tuple(range(n)), views=("image",) * n, seed=0)
                # sortable, dot-free keys: shards and tars keep the lines' order
                key = f"{slug(source)}_{file_index:04d}_{line_no:09d}"
                yield VisualSentence(key=key, tokens=tokens.reshape(n, TOKENS_PER_IMAGE).astype(np.uint16), meta=meta)


def import_jsonl(files: list[str | Path], out_dir: str | Path, *, source: str = "lvm_jsonl",
                 group: str = "unpaired_images", samples_per_shard: int = 256, codebook_size: int = 8192,
                 tokenizer: dict | None = None) -> dict:
    """Shards + manifest from LVM JSONL files (one sentence per line, in order). The tokenizer that
    made the tokens is unknown to uvd unless given: the manifest says so."""
    out_dir = str(out_dir)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    infos, batch = [], []
    for sentence in _imported_sentences([Path(f) for f in files], source=source, group=group,
                                        codebook_size=codebook_size):
        batch.append(sentence)
        if len(batch) == samples_per_shard:
            infos.append(write_shard(out_dir, len(infos), batch))
            batch = []
    if batch:
        infos.append(write_shard(out_dir, len(infos), batch))
    provenance = {"format_version": FORMAT_VERSION, "uvd_version": uvd.__version__,
                  "imported_from": [str(f) for f in files],
                  "sources": [{"name": source, "spec": "lvm_jsonl", "group": group, "layout": "imported"}],
                  "tokenizer": tokenizer or {"spec": "unknown (imported from LVM JSONL)", "sha256": None,
                                             "trained": True, "codebook_size": codebook_size,
                                             "resolution": 256, "tokens_per_image": TOKENS_PER_IMAGE}}
    storage.atomic_write(storage.join(out_dir, MANIFEST_NAME), parquet_bytes(manifest_table(infos, provenance)))
    return {"shards": len(infos), "sentences": sum(i.samples for i in infos), "tokens": sum(i.tokens for i in infos)}
