"""Feeding shards to the trainer: read every sentence exactly once per epoch, then pack.

``ShardDataset`` reads the ``shard-NNNNNN.tar`` files that a build listed in its
``manifest.parquet`` and yields validated ``VisualSentence`` objects. Its job is the
split: with R ranks and W DataLoader workers there are R*W readers, and together they
must see each sample exactly once, in an order that is a function of the manifest, the
seed and the epoch only.

Packing sentences into training rows, and the order across ranks and workers during training,
live in loader.py.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info
from webdataset.tariterators import group_by_keys, tar_file_iterator

from uvd.model.llama import NUM_CODES
from uvd.pipeline.format import MANIFEST_NAME, VisualSentence, decode_sample


class ShardError(ValueError):
    """A shard, or a sample in it, is unreadable or inconsistent with the manifest."""


@dataclass(frozen=True)
class ShardEntry:
    """One manifest row, with its path resolved against its output directory."""

    path: Path
    samples: int
    tokens: int
    sha256: str | None
    sources: tuple[str, ...] = ()


def read_shard_entries(out_dir: str | Path) -> list[ShardEntry]:
    """The shards of one build output directory, in manifest order."""
    root = Path(out_dir).resolve()
    manifest = root / MANIFEST_NAME
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} not found: is {out_dir} a build output directory?")
    rows = pq.read_table(manifest, columns=["path", "samples", "tokens", "sha256", "sources"]).to_pylist()
    entries = []
    for row in rows:
        path = (root / row["path"]).resolve()
        if not path.is_relative_to(root):  # the manifest names files inside its own directory
            raise ShardError(f"{manifest}: shard path {row['path']!r} escapes {root}")
        if not path.is_file():
            raise FileNotFoundError(f"{manifest} lists {row['path']!r} but {path} does not exist")
        entries.append(ShardEntry(path, int(row["samples"]), int(row["tokens"]), row["sha256"] or None,
                                  tuple(row["sources"] or ())))
    return entries


def default_rank_and_world_size() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class _HashingReader:
    """File wrapper that hashes what is read, so a shard is checked in the same pass."""

    def __init__(self, f: BinaryIO):
        self.f, self.sha256 = f, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.f.read(size)
        self.sha256.update(data)
        return data

    def hexdigest_to_end(self) -> str:
        while self.read(1 << 20):  # tar readers stop at the end marker, before the padding
            pass
        return self.sha256.hexdigest()


class ShardDataset(IterableDataset):
    """Validated ``VisualSentence`` objects from one or more build output directories.

    The R*W readers (ranks x DataLoader workers) are numbered ``slot = rank * W + worker``.
    With at least as many shards as slots, slot s reads shards s, s+R*W, s+2*R*W, ... of
    the epoch's shard order (whole shards: each file is opened once). With fewer shards,
    every slot reads every shard and keeps samples whose global index % (R*W) == s, so
    no reader sits idle and nothing is read twice into the batch.

    The epoch's shard order is manifest order (directories in the order given), or with
    ``shuffle_shards`` a permutation seeded by ``(seed, epoch)`` and identical on every
    reader; samples within a shard keep tar order. Call ``set_epoch`` before each epoch, before
    the DataLoader starts its workers (they get a copy; not with ``persistent_workers``).

    Note: round-robin shards can give ranks unequal sample counts; a distributed trainer
    must cope (e.g. stop at the shortest rank). Only local paths are supported for now.
    """

    def __init__(self, dirs: str | Path | Sequence[str | Path], *, rank: int | None = None,
                 world_size: int | None = None, shuffle_shards: bool = False, seed: int = 0,
                 num_codes: int = NUM_CODES, verify_sha256: bool = True):
        super().__init__()
        dirs = [dirs] if isinstance(dirs, (str, Path)) else list(dirs)
        if not dirs:
            raise ValueError("ShardDataset needs at least one output directory")
        default_rank, default_world = default_rank_and_world_size()
        self.rank = default_rank if rank is None else rank
        self.world_size = default_world if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is not in [0, world_size={self.world_size})")
        self.shards = [entry for d in dirs for entry in read_shard_entries(d)]
        self.shuffle_shards, self.seed, self.epoch = shuffle_shards, seed, 0
        self.num_codes, self.verify_sha256 = num_codes, verify_sha256

    @property
    def num_samples(self) -> int:
        return sum(s.samples for s in self.shards)

    @property
    def num_tokens(self) -> int:
        return sum(s.tokens for s in self.shards)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def shard_order(self) -> list[ShardEntry]:
        order = list(self.shards)
        if self.shuffle_shards:
            random.Random(f"{self.seed}:{self.epoch}").shuffle(order)
        return order

    def _slot(self) -> tuple[int, int]:
        """(this reader's slot, number of slots)."""
        info = get_worker_info()
        worker, num_workers = (0, 1) if info is None else (info.id, info.num_workers)
        return self.rank * num_workers + worker, self.world_size * num_workers

    def __iter__(self) -> Iterator[VisualSentence]:
        slot, num_slots = self._slot()
        order = self.shard_order()
        if len(order) >= num_slots:
            for shard in order[slot::num_slots]:
                yield from self.read_shard(shard)
            return
        global_index = 0
        for shard in order:
            for sentence in self.read_shard(shard):
                if global_index % num_slots == slot:
                    yield sentence
                global_index += 1

    def read_shard(self, shard: ShardEntry) -> Iterator[VisualSentence]:
        """Every sample of one shard, in tar order, validated; members stay in memory
        (their names are untrusted and never touch the file system)."""
        count = 0
        with open(shard.path, "rb") as f:
            reader = _HashingReader(f)
            try:
                members = ({**m, "__url__": str(shard.path)} for m in tar_file_iterator(reader))
                samples = group_by_keys(members)
                for raw in samples:
                    yield self._validate(raw, shard)
                    count += 1
            except ShardError:
                raise
            except Exception as exc:  # tar-level damage: truncated file, duplicate member...
                raise ShardError(f"unreadable shard {shard.path} after {count} samples: {exc}") from exc
            if self.verify_sha256 and shard.sha256 and reader.hexdigest_to_end() != shard.sha256:
                raise ShardError(f"shard {shard.path}: sha256 differs from the manifest (corrupt or replaced)")
        if count != shard.samples:
            raise ShardError(f"shard {shard.path} holds {count} samples, the manifest says {shard.samples}")

    def _validate(self, raw: dict, shard: ShardEntry) -> VisualSentence:
        key = raw.get("__key__")
        try:
            sentence = decode_sample(raw)
            if sentence.key != key:
                raise ValueError(f"meta.json names key {sentence.key!r}")
            if sentence.tokens.size == 0:
                raise ValueError("no tokens")
            if int(sentence.tokens.max()) >= self.num_codes:
                raise ValueError(f"token id {int(sentence.tokens.max())} >= codebook size {self.num_codes}")
        except Exception as exc:
            raise ShardError(f"corrupt sample {key!r} in shard {shard.path}: "
                             f"{type(exc).__name__}: {exc}") from exc
        return sentence
