"""Shards and the manifest: deterministic placement, atomic commits.

A sentence's shard is a hash of its key modulo a shard count derived from the total
number of sentences, so placement never depends on arrival order or worker count.
Within a shard, samples are sorted by key and the tar gets fixed metadata, so the same
sentences give the same bytes. Files are written under a temporary name and renamed
into place; a retried bundle rewrites the same bytes to the same name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import uuid
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from uvd.pipeline.format import VisualSentence, encode_sample

SHARD_PATTERN = "shard-{index:06d}.tar"
TAR_MTIME = 0.0  # fixed member mtime: reproducible tars


@dataclasses.dataclass(frozen=True, order=True)
class ShardInfo:
    index: int
    path: str  # relative to the output directory
    samples: int
    images: int
    tokens: int
    bytes: int
    sha256: str
    sources: tuple[str, ...]
    tokens_by_source: tuple[tuple[str, int], ...] = ()


MANIFEST_SCHEMA = pa.schema([
    ("path", pa.string()),
    ("samples", pa.int64()),
    ("images", pa.int64()),
    ("tokens", pa.int64()),
    ("bytes", pa.int64()),
    ("sha256", pa.string()),
    ("sources", pa.list_(pa.string())),
])

REJECTS_SCHEMA = pa.schema([
    ("source", pa.string()),
    ("item_key", pa.string()),
    ("stage", pa.string()),
    ("reason", pa.string()),
    ("message", pa.string()),
])


def num_shards_for(total_sentences: int, samples_per_shard: int) -> int:
    return max(1, math.ceil(total_sentences / samples_per_shard))


def shard_index(key: str, num_shards: int) -> int:
    """Stable placement of a sentence key (Python's hash() is salted per process)."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % num_shards


def tar_bytes(sentences: Iterable[VisualSentence]) -> bytes:
    """The bytes of one shard: samples sorted by key, fixed owner, mode and mtime."""
    buf = io.BytesIO()
    with wds.TarWriter(buf, encoder=False, mtime=TAR_MTIME, user="uvd", group="uvd", mode=0o444) as writer:
        for sentence in sorted(sentences, key=lambda s: s.key):
            writer.write(encode_sample(sentence))
    return buf.getvalue()


def atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through Beam FileSystems via a temporary name and a rename."""
    directory, name = path.rsplit("/", 1)
    tmp = FileSystems.join(directory, f"_tmp-{uuid.uuid4().hex}-{name}")
    with FileSystems.create(tmp, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(data)
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])


def write_shard(out_dir: str, index: int, sentences: list[VisualSentence]) -> ShardInfo:
    data = tar_bytes(sentences)
    name = SHARD_PATTERN.format(index=index)
    atomic_write(FileSystems.join(out_dir, name), data)
    return ShardInfo(
        index=index,
        path=name,
        samples=len(sentences),
        images=sum(s.num_images for s in sentences),
        tokens=sum(s.num_tokens for s in sentences),
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        sources=tuple(sorted({s.meta.source for s in sentences})),
        tokens_by_source=tuple(sorted(_sum_by(sentences, lambda s: s.meta.source, lambda s: s.num_tokens).items())),
    )


def _sum_by(values, key, amount) -> dict:
    totals: dict = {}
    for v in values:
        totals[key(v)] = totals.get(key(v), 0) + amount(v)
    return totals


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def manifest_table(shards: list[ShardInfo], provenance: dict) -> pa.Table:
    shards = sorted(shards)
    table = pa.table({
        "path": [s.path for s in shards],
        "samples": [s.samples for s in shards],
        "images": [s.images for s in shards],
        "tokens": [s.tokens for s in shards],
        "bytes": [s.bytes for s in shards],
        "sha256": [s.sha256 for s in shards],
        "sources": [list(s.sources) for s in shards],
    }, schema=MANIFEST_SCHEMA)
    meta = {b"uvd": json.dumps(provenance, sort_keys=True).encode("utf-8")}
    return table.replace_schema_metadata(meta)


def rejects_table(rejects: list) -> pa.Table:
    rows = sorted(rejects)
    return pa.table({name: [getattr(r, name) for r in rows] for name in REJECTS_SCHEMA.names},
                    schema=REJECTS_SCHEMA)


def read_manifest(out_dir: str) -> tuple[pa.Table, dict]:
    """The manifest table of a build and its provenance dict."""
    from uvd.pipeline.format import MANIFEST_NAME

    with FileSystems.open(FileSystems.join(out_dir, MANIFEST_NAME),
                          compression_type=CompressionTypes.UNCOMPRESSED) as f:
        table = pq.read_table(io.BytesIO(f.read()))
    meta = table.schema.metadata or {}
    return table, json.loads(meta.get(b"uvd", b"{}"))
