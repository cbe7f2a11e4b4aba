"""Shards, the manifest and resumable commits: deterministic placement, atomic writes.

A sentence's shard is a hash of its key modulo a shard count derived from the number of
planned sentences, so placement never depends on arrival order or worker count. Within a shard,
samples are sorted by key, the tar gets fixed metadata and the gzip stream a fixed header, so the
same sentences give the same bytes. (gzip: token tars compress 3-4x, mostly tar padding and
metadata, and every WebDataset reader opens ``.tar.gz`` natively.)

Commits are atomic and never expose a partial file under the output prefix: on a local disk a
file is written in a hidden sibling directory (``.OUT.uvd-tmp``) and renamed into place; on an
object store a file appears only when its upload completes. What a build in progress commits
besides shards (resume.py) lives in ``OUT/_uvd_resume/`` until the build completes.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import math
import posixpath
import uuid
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from uvd.pipeline import storage
from uvd.pipeline.format import MANIFEST_NAME, VisualSentence, encode_sample
from uvd.pipeline.rejects import Reject

SHARD_PREFIX = "shard-"
COMPRESSIONS = {"gzip": ".tar.gz", "none": ".tar"}
TAR_MTIME = 0.0  # fixed member mtime: reproducible tars
STATE_DIR = "_uvd_resume"  # the resume records of a build in progress (resume.py); removed when it completes
BUILD_MARKER = "_uvd_build.json"  # what build this directory holds (its fingerprint)


@dataclasses.dataclass(frozen=True, order=True)
class ShardInfo:
    index: int
    path: str  # relative to the output directory; "" for a shard with no sentence
    samples: int
    images: int
    tokens: int
    bytes: int
    sha256: str
    sources: tuple[str, ...]
    tokens_by_source: tuple[tuple[str, int], ...] = ()


@dataclasses.dataclass(frozen=True)
class ShardState:
    """Everything a build needs to know about a committed shard without reading it again."""

    info: ShardInfo
    rejects: tuple[Reject, ...]  # decode, assembly and dedup rejects attributed to this shard
    sentences: tuple[tuple[str, str, tuple[str, ...], str], ...]  # (key, source, item keys, token sha256)

    def to_json(self) -> dict:
        return {"info": dataclasses.asdict(self.info), "rejects": [dataclasses.asdict(r) for r in self.rejects],
                "sentences": [[k, s, list(items), sha] for k, s, items, sha in self.sentences]}

    @classmethod
    def from_json(cls, d: dict) -> "ShardState":
        info = d["info"]
        info = ShardInfo(**{**info, "sources": tuple(info["sources"]),
                            "tokens_by_source": tuple(tuple(x) for x in info["tokens_by_source"])})
        return cls(info=info, rejects=tuple(Reject(**r) for r in d["rejects"]),
                   sentences=tuple((k, s, tuple(items), sha) for k, s, items, sha in d["sentences"]))


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


def shard_name(index: int, compression: str = "gzip") -> str:
    return f"{SHARD_PREFIX}{index:06d}{COMPRESSIONS[compression]}"


def token_sha256(sentence: VisualSentence) -> str:
    """Identity of a sentence's tokens (shape included), for exact dedup across the build."""
    tokens = sentence.tokens
    return hashlib.sha256(f"{tokens.shape}".encode() + tokens.astype("<u2").tobytes()).hexdigest()


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


# --- atomic writes -------------------------------------------------------------------------------

def tmp_dir_for(out_dir: str) -> str | None:
    """Where local writes are staged before their rename: a hidden sibling of the output directory
    (same file system, not under the output prefix). Object stores need none."""
    if not storage.is_local(out_dir):
        return None
    parent, name = posixpath.split(out_dir.rstrip("/"))
    return posixpath.join(parent, f".{name}.uvd-tmp")


def atomic_write(path: str, data: bytes, tmp_dir: str | None = None) -> None:
    """Make ``path`` hold ``data``, never visibly half-written."""
    if not storage.is_local(path):  # s3://, gs://: the object appears when the upload completes
        with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            f.write(data)
        return
    import os

    staging = tmp_dir or posixpath.dirname(path)
    os.makedirs(staging, exist_ok=True)
    os.makedirs(posixpath.dirname(path), exist_ok=True)
    tmp = posixpath.join(staging, f"{uuid.uuid4().hex}-{posixpath.basename(path)}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_shard(out_dir: str, index: int, sentences: list[VisualSentence], compression: str = "gzip",
                tmp_dir: str | None = None) -> ShardInfo:
    """Commit one shard file; returns its info (an empty shard writes no file)."""
    sources: dict[str, int] = {}
    for s in sentences:
        sources[s.meta.source] = sources.get(s.meta.source, 0) + s.num_tokens
    if not sentences:
        return ShardInfo(index=index, path="", samples=0, images=0, tokens=0, bytes=0, sha256="", sources=())
    data = shard_bytes(sentences, compression)
    name = shard_name(index, compression)
    atomic_write(FileSystems.join(out_dir, name), data, tmp_dir)
    return ShardInfo(index=index, path=name, samples=len(sentences), images=sum(s.num_images for s in sentences),
                     tokens=sum(s.num_tokens for s in sentences), bytes=len(data),
                     sha256=hashlib.sha256(data).hexdigest(), sources=tuple(sorted(sources)),
                     tokens_by_source=tuple(sorted(sources.items())))


def clear_build_state(out_dir: str) -> None:
    """Remove the resume records of a build (done, or about to be planned again) and the staging folder."""
    import os
    import shutil

    if storage.is_local(out_dir):
        shutil.rmtree(FileSystems.join(out_dir, STATE_DIR), ignore_errors=True)
        tmp = tmp_dir_for(out_dir)
        if tmp and os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        return
    found = storage.match(FileSystems.join(out_dir, STATE_DIR, "**"))
    if found:
        FileSystems.delete(found)


# --- manifest and rejects ---------------------------------------------------------------------------

def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def manifest_table(shards: list[ShardInfo], provenance: dict) -> pa.Table:
    shards = sorted(s for s in shards if s.samples)
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


def rejects_table(rejects: Iterable[Reject]) -> pa.Table:
    rows = sorted(set(rejects))
    return pa.table({name: [getattr(r, name) for r in rows] for name in REJECTS_SCHEMA.names},
                    schema=REJECTS_SCHEMA)


def read_manifest(out_dir: str) -> tuple[pa.Table, dict]:
    """The manifest table of a build and its provenance dict."""
    storage.ensure_filesystem_options()
    table = storage.parquet_from_bytes(storage.read_bytes(FileSystems.join(out_dir, MANIFEST_NAME)))
    meta = table.schema.metadata or {}
    return table, json.loads(meta.get(b"uvd", b"{}"))
