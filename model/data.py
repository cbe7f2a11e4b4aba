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

import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch.utils.data import IterableDataset, get_worker_info

from uvd.format.reading import ShardError, read_shard
from uvd.format.sample import VisualSentence
from uvd.format.tables import ShardEntry, read_manifest, total_samples, total_tokens
from uvd.model.llama import NUM_CODES

__all__ = ["ShardDataset", "ShardEntry", "ShardError", "default_rank_and_world_size"]


def default_rank_and_world_size() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


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
    must cope (e.g. stop at the shortest rank). Local paths, s3:// and registered object stores (uvd.format.storage).
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
        self.shards = [entry for d in dirs for entry in read_manifest(str(d)).shards]
        self.num_samples, self.num_tokens = total_samples(self.shards), total_tokens(self.shards)
        self.shuffle_shards, self.seed, self.epoch = shuffle_shards, seed, 0
        self.num_codes, self.verify_sha256 = num_codes, verify_sha256

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
        """Every sample of one shard, in tar order, after its sha256 matched the manifest."""
        return read_shard(shard, num_codes=self.num_codes, verify=self.verify_sha256)
