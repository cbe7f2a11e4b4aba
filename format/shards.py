"""Shard files: deterministic bytes for a set of sentences, and their commit.

Within a shard, samples are sorted by key, the tar gets fixed metadata and the gzip stream a fixed
header, so the same sentences give the same bytes on every worker and every rerun. (gzip: token
tars compress 3-4x, mostly tar padding and metadata, and every WebDataset reader opens ``.tar.gz``
natively.) A shard is committed with the one atomic write (storage.atomic_write).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
from collections.abc import Iterable

import webdataset as wds

from uvd.format import storage
from uvd.format.sample import VisualSentence, encode_sample

SHARD_PREFIX = "shard-"
COMPRESSIONS = {"gzip": ".tar.gz", "none": ".tar"}
TAR_MTIME = 0.0  # fixed member mtime: reproducible tars


@dataclasses.dataclass(frozen=True, order=True)
class ShardInfo:
    """A committed shard, as its manifest row records it."""

    index: int
    path: str  # relative to the output directory; "" for a shard with no sentence
    samples: int
    images: int
    tokens: int
    bytes: int
    sha256: str
    sources: tuple[str, ...]
    tokens_by_source: tuple[tuple[str, int], ...] = ()


def shard_name(index: int, compression: str = "gzip") -> str:
    return f"{SHARD_PREFIX}{index:06d}{COMPRESSIONS[compression]}"


def tar_bytes(sentences: Iterable[VisualSentence]) -> bytes:
    """The bytes of one tar: samples sorted by key, fixed owner, mode and mtime."""
    buf = io.BytesIO()
    with wds.TarWriter(buf, encoder=False, mtime=TAR_MTIME, user="uvd", group="uvd", mode=0o444) as writer:
        for sentence in sorted(sentences, key=lambda s: s.key):
            writer.write(encode_sample(sentence))
    return buf.getvalue()


def shard_bytes(sentences: Iterable[VisualSentence], compression: str = "gzip") -> bytes:
    data = tar_bytes(sentences)
    if compression == "gzip":
        return gzip.compress(data, compresslevel=9, mtime=0)  # no name, fixed time: same bytes every run
    return data


def write_shard(out_dir: str, index: int, sentences: list[VisualSentence], compression: str = "gzip",
                staging: str | None = None) -> ShardInfo:
    """Commit one shard file; returns its info (an empty shard writes no file)."""
    if not sentences:
        return ShardInfo(index=index, path="", samples=0, images=0, tokens=0, bytes=0, sha256="", sources=())
    tokens_by_source: dict[str, int] = {}
    for s in sentences:
        tokens_by_source[s.meta.source] = tokens_by_source.get(s.meta.source, 0) + s.num_tokens
    data = shard_bytes(sentences, compression)
    name = shard_name(index, compression)
    storage.atomic_write(storage.join(out_dir, name), data, staging)
    return ShardInfo(index=index, path=name, samples=len(sentences), images=sum(s.num_images for s in sentences),
                     tokens=sum(s.num_tokens for s in sentences), bytes=len(data),
                     sha256=hashlib.sha256(data).hexdigest(), sources=tuple(sorted(tokens_by_source)),
                     tokens_by_source=tuple(sorted(tokens_by_source.items())))
