"""The one sample reader: a shard's sentences, verified before any of them is used.

A shard's bytes are read whole (a shard is small: samples_per_shard sentences of at most a few
kilobytes each) and checked against the manifest's sha256 *before* the first sample is parsed,
so a damaged or replaced shard yields nothing and fails with an error naming it. Members are
parsed in memory: their names are untrusted and never touch the file system.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator

from webdataset.tariterators import group_by_keys, tar_file_iterator

from uvd.format import storage
from uvd.format.sample import VisualSentence, decode_sample
from uvd.format.tables import NotABuild, ShardEntry, read_manifest


class ShardError(ValueError):
    """A shard, or a sample in it, is unreadable or inconsistent with the manifest."""


def read_shard(entry: ShardEntry, *, num_codes: int | None = None, verify: bool = True) -> Iterator[VisualSentence]:
    """Every sample of one shard, in tar order, validated (sha256 first, then each sample)."""
    try:
        data = storage.read_bytes(entry.path)
    except FileNotFoundError:
        raise ShardError(f"{entry.path}: listed in the manifest but missing") from None
    if verify and entry.sha256 and hashlib.sha256(data).hexdigest() != entry.sha256:
        raise ShardError(f"shard {entry.path}: sha256 differs from the manifest (corrupt or replaced); "
                         f"none of its samples were used")
    count = 0
    try:
        members = ({**m, "__url__": entry.path} for m in tar_file_iterator(io.BytesIO(data)))
        for raw in group_by_keys(members):
            yield _validated(raw, entry, num_codes)
            count += 1
    except ShardError:
        raise
    except Exception as exc:  # tar-level damage: truncated file, duplicate member ...
        raise ShardError(f"unreadable shard {entry.path} after {count} samples: {exc}") from exc
    if entry.samples is not None and count != entry.samples:
        raise ShardError(f"shard {entry.path} holds {count} samples, the manifest says {entry.samples}")


def _validated(raw: dict, entry: ShardEntry, num_codes: int | None) -> VisualSentence:
    key = raw.get("__key__")
    try:
        sentence = decode_sample(raw)
        if sentence.key != key:
            raise ValueError(f"meta.json names key {sentence.key!r}")
        if sentence.tokens.size == 0:
            raise ValueError("no tokens")
        if num_codes is not None and int(sentence.tokens.max()) >= num_codes:
            raise ValueError(f"token id {int(sentence.tokens.max())} >= codebook size {num_codes}")
    except Exception as exc:
        raise ShardError(f"corrupt sample {key!r} in shard {entry.path}: {type(exc).__name__}: {exc}") from exc
    return sentence


def _shard_file_entries(path: str) -> list[ShardEntry]:
    """A single shard file: its manifest entry when it sits in a build directory, else unverified."""
    parent, name = path.rsplit("/", 1) if "/" in path else (".", path)
    try:
        for entry in read_manifest(parent).shards:
            if entry.name == name:
                return [entry]
    except NotABuild:
        pass
    return [ShardEntry(path=path, name=name, samples=None, images=0, tokens=0, bytes=0, sha256=None)]


def iter_sentences(build_or_shard: str | os.PathLike, *, num_codes: int | None = None) -> Iterator[VisualSentence]:
    """Every sentence of a build (manifest order, then tar order) or of one shard file, verified."""
    build_or_shard = os.fspath(build_or_shard)
    if storage.is_local(build_or_shard) and not storage.dir_exists(build_or_shard):
        if not storage.exists(build_or_shard):
            raise FileNotFoundError(f"{build_or_shard}: no such build folder or shard file")
        entries = _shard_file_entries(build_or_shard)
    else:
        entries = list(read_manifest(build_or_shard).shards)
    for entry in entries:
        yield from read_shard(entry, num_codes=num_codes)


def read_sentence(build_or_shard: str | os.PathLike, index: int = 0, source: str | None = None, *,
                  key: str | None = None) -> VisualSentence:
    """The sentence with ``key``, or the ``index``-th sentence (0-based, stored order) of a build or a
    shard, counting only sentences of ``source`` when it is given."""
    if index < 0:
        raise ValueError("index must be >= 0")
    seen = 0
    for sentence in iter_sentences(build_or_shard):
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
        raise IndexError(f"{build_or_shard} holds no sentence with key {key!r}")
    of = f" of source {source!r}" if source else ""
    raise IndexError(f"{build_or_shard} holds {seen} sentences{of}; index {index} is out of range")
