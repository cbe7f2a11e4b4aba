"""Training rows from shards: one global row order, whatever the ranks and workers, resumable anywhere.

A **stream** is the sentences of some build directories (optionally of one source), epoch after
epoch: each epoch reads the shards in an order seeded by (seed, stream, epoch) and packs tokens
into rows of ``seq_len + 1`` (``packing="stream"``: LVM's concatenated stream, rows sharing their
boundary token, so a sentence longer than a row (LVM's 64-image multi-sequence lines) is cut across
rows exactly as EasyLM cuts it; ``"rows"``: one sentence per row, a long one in consecutive windows,
padding masked). A ``Cursor`` says where a
stream's next row starts (epoch, shard, sample, token offset), so a stream restarts exactly there.

A **mixture** interleaves streams by smooth weighted round-robin: row ``g`` of the global order
comes from a stream fixed by the weights alone. Ranks and DataLoader workers only partition that
order: micro-batch ``m`` (rows ``[mB, (m+1)B)`` counted from where this run started) belongs to
rank ``m % W`` and, on that rank, to worker ``(m // W) % N``. Every reader walks the whole order
(token shards are small: skipping a row costs a few kilobytes of reading) and keeps its own.

Each batch carries the loader state at the start of its optimizer step (every stream's cursor,
the round-robin state, the global row index). A checkpoint stores that and the rows the step
consumed; resuming replays from there, with any number of ranks, workers or batch size.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from uvd.format.sample import VisualSentence
from uvd.format.tables import read_manifest
from uvd.model.data import ShardDataset, ShardEntry


@dataclass(frozen=True)
class StreamConfig:
    """Where a stream's sentences come from, and its weight in the mixture."""

    name: str
    dirs: tuple[str, ...]
    source: str | None = None  # keep only sentences of this source
    weight: float = 1.0


@dataclass(frozen=True, order=True)
class Cursor:
    """Where a stream's next row starts."""

    epoch: int = 0
    shard: int = 0  # position in the epoch's shard order
    sample: int = 0  # index among the shard's kept samples
    offset: int = 0  # token offset in that sample ("stream") or window index ("rows")


def in_validation(key: str, fraction: float) -> bool:
    """A stable split by sentence key: the same sentences are held out in every run."""
    if fraction <= 0:
        return False
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 16**8 < fraction


class Stream:
    """Rows of one stream's sentences (a ``split`` of them), epoch after epoch, from any cursor."""

    def __init__(self, config: StreamConfig, *, seq_len: int, packing: str = "stream", seed: int = 0,
                 split: str = "train", val_fraction: float = 0.0, pad_id: int = 0, verify_sha256: bool = True):
        if packing not in ("stream", "rows"):
            raise ValueError(f"packing must be 'stream' or 'rows', got {packing!r}")
        self.config, self.seq_len, self.packing, self.seed = config, seq_len, packing, seed
        self.split, self.val_fraction, self.pad_id = split, val_fraction, pad_id
        self.reader = ShardDataset(list(config.dirs), rank=0, world_size=1, verify_sha256=verify_sha256)
        self.shards = [s for s in self.reader.shards if config.source is None or config.source in s.sources]
        if not self.shards:
            raise ValueError(f"stream {config.name}: no shard of {list(config.dirs)} holds source {config.source!r}")

    def shard_order(self, epoch: int) -> list[ShardEntry]:
        order = list(self.shards)
        random.Random(f"{self.seed}:{self.config.name}:{epoch}").shuffle(order)
        return order

    def _keep(self, sentence: VisualSentence) -> bool:
        if self.config.source is not None and sentence.meta.source != self.config.source:
            return False
        return in_validation(sentence.key, self.val_fraction) == (self.split == "val")

    def sentences(self, epoch: int, start: Cursor = Cursor()) -> Iterator[tuple[int, int, VisualSentence]]:
        """(shard position, sample index, sentence) of one epoch, from ``start`` on."""
        order = self.shard_order(epoch)
        for position in range(start.shard, len(order)):
            index = 0
            for sentence in self.reader.read_shard(order[position]):
                if not self._keep(sentence):
                    continue
                if position > start.shard or index >= start.sample:
                    yield position, index, sentence
                index += 1

    def rows(self, start: Cursor = Cursor()) -> Iterator[tuple[dict[str, np.ndarray], Cursor]]:
        """(row, cursor of the next row), forever. A row is tokens [seq_len + 1] and target_mask [seq_len]."""
        epoch, cursor, produced = start.epoch, start, False
        while True:
            epoch_rows = self._stream_rows if self.packing == "stream" else self._sentence_rows
            for row, after in epoch_rows(epoch, cursor):
                produced = True
                yield row, after
            if not produced and epoch > start.epoch + 1:
                raise ValueError(f"stream {self.config.name} ({self.split}) holds too few tokens for one row of "
                                 f"{self.seq_len} + 1")
            epoch, cursor = epoch + 1, Cursor(epoch + 1)

    def _stream_rows(self, epoch: int, start: Cursor):
        window = self.seq_len + 1
        segments: deque[list] = deque()  # [shard, sample, offset, tokens from offset]
        buffered = 0
        mask = np.ones(self.seq_len, dtype=bool)
        for shard, sample, sentence in self.sentences(epoch, start):
            tokens = sentence.tokens.reshape(-1).astype(np.int64)
            offset = start.offset if (shard, sample) == (start.shard, start.sample) else 0
            segments.append([shard, sample, offset, tokens[offset:]])
            buffered += len(tokens) - offset
            while buffered >= window:
                row = np.concatenate([seg[3] for seg in segments])[:window]
                advance = self.seq_len  # the next row starts at this row's last token
                while advance >= len(segments[0][3]):
                    advance -= len(segments[0][3])
                    segments.popleft()
                first = segments[0]
                first[2], first[3] = first[2] + advance, first[3][advance:]
                buffered -= self.seq_len
                yield {"tokens": row, "target_mask": mask.copy()}, Cursor(epoch, first[0], first[1], first[2])
        # the epoch's tail, shorter than a window, is dropped, as LVM/EasyLM do

    def _sentence_rows(self, epoch: int, start: Cursor):
        window = self.seq_len + 1
        for shard, sample, sentence in self.sentences(epoch, start):
            tokens = sentence.tokens.reshape(-1).astype(np.int64)
            first = start.offset if (shard, sample) == (start.shard, start.sample) else 0
            starts = list(range(0, len(tokens) - 1, self.seq_len))  # every window has >= 1 target
            for w in range(first, len(starts)):
                piece = tokens[starts[w]:starts[w] + window]
                padded = np.full(window, self.pad_id, dtype=np.int64)
                padded[:len(piece)] = piece
                after = Cursor(epoch, shard, sample, w + 1) if w + 1 < len(starts) else Cursor(epoch, shard, sample + 1)
                yield {"tokens": padded, "target_mask": np.arange(self.seq_len) < len(piece) - 1}, after


class RoundRobin:
    """Smooth weighted round-robin (as nginx balances upstreams): exact integer arithmetic, so the
    stream of every global row is a function of the weights alone; over any window the counts stay
    within one of the weights' proportions."""

    def __init__(self, weights: Sequence[float], state: Sequence[int] | None = None):
        if not weights or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"mixture weights must be >= 0 and not all 0, got {list(weights)}")
        fractions = [Fraction(w).limit_denominator(10**6) for w in weights]
        scale = math.lcm(*(f.denominator for f in fractions))
        self.weights = [int(f * scale) for f in fractions]
        self.total = sum(self.weights)
        self.current = list(state) if state is not None else [0] * len(weights)

    def next(self) -> int:
        for i, w in enumerate(self.weights):
            self.current[i] += w
        chosen = max(range(len(self.current)), key=lambda i: (self.current[i], -i))
        self.current[chosen] -= self.total
        return chosen


@dataclass(frozen=True)
class LoaderState:
    """Where the global row order stands: enough to resume it exactly."""
    row: int = 0  # global rows before this point
    cursors: tuple[Cursor, ...] = ()  # each stream's next row
    round_robin: tuple[int, ...] = ()

    def to_json(self) -> dict:
        return {"row": self.row, "cursors": [dataclasses.astuple(c) for c in self.cursors],
                "round_robin": list(self.round_robin)}

    @classmethod
    def from_json(cls, d: dict) -> LoaderState:
        return cls(row=int(d["row"]), cursors=tuple(Cursor(*c) for c in d["cursors"]),
                   round_robin=tuple(int(v) for v in d["round_robin"]))


@dataclass
class Partition:
    """This reader's share of the global order: micro-batches of ``batch_size`` rows, ``world_size``
    ranks, ``accumulation`` micro-batches per optimizer step."""

    batch_size: int
    rank: int = 0
    world_size: int = 1
    accumulation: int = 1

    @property
    def rows_per_step(self) -> int:
        return self.batch_size * self.world_size * self.accumulation


class MixtureRows(IterableDataset):
    """Micro-batches ``{input_ids, targets, loss_mask, stream}`` (tensors) plus ``state``: the loader
    state (JSON) at the start of the micro-batch's optimizer step. Use with ``batch_size=None``."""

    def __init__(self, streams: list[Stream], partition: Partition, *, start: LoaderState | None = None,
                 resume_row: int | None = None):
        super().__init__()
        self.streams, self.partition = streams, partition
        self.start = start or LoaderState(cursors=tuple(Cursor() for _ in streams))
        if len(self.start.cursors) != len(streams):
            raise ValueError(f"loader state has {len(self.start.cursors)} streams, this run {len(streams)}")
        self.resume_row = self.start.row if resume_row is None else resume_row
        if self.resume_row < self.start.row:
            raise ValueError("resume_row lies before the saved loader state")

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        p = self.partition
        rr = RoundRobin([s.config.weight for s in self.streams], self.start.round_robin or None)
        iterators = [s.rows(c) for s, c in zip(self.streams, self.start.cursors)]
        cursors = list(self.start.cursors)
        row = self.start.row
        block_state = None
        batch: list[tuple[dict, int]] = []
        while True:
            relative = row - self.resume_row
            if relative >= 0 and relative % p.rows_per_step == 0:
                block_state = json.dumps(LoaderState(row, tuple(cursors), tuple(rr.current)).to_json())
            chosen = rr.next()
            data, cursors[chosen] = next(iterators[chosen])
            row += 1
            if relative < 0:
                continue  # replaying up to the resume point
            micro = relative // p.batch_size
            if micro % p.world_size == p.rank and (micro // p.world_size) % workers == worker:
                batch.append((data, chosen))
                if len(batch) == p.batch_size:
                    yield collate(batch, block_state)
                    batch = []


def collate(rows: list[tuple[dict, int]], state: str) -> dict:
    tokens = torch.from_numpy(np.stack([r["tokens"] for r, _ in rows]))
    return {"input_ids": tokens[:, :-1], "targets": tokens[:, 1:],
            "loss_mask": torch.from_numpy(np.stack([r["target_mask"] for r, _ in rows])),
            "stream": torch.tensor([s for _, s in rows]), "state": state}


def streams_from(dirs: Sequence[str], weights: dict[str, float] | None = None, *, by: str = "dir") -> list[StreamConfig]:
    """One stream per build directory (``by="dir"``) or per source found in them (``by="source"``).

    Weighted by ``weights`` (stream name -> weight; streams it does not name are left out), or by
    default in proportion to their tokens, which is what concatenating them would give.
    """
    tokens: dict[str, int] = {}
    dirs_of: dict[str, tuple[str, ...]] = {}
    for d in dirs:
        for shard in read_manifest(str(d)).shards:
            names = [Path(d).name] if by == "dir" else shard.sources
            for name in names:  # a shard of several sources: its tokens split evenly, an estimate for weights
                tokens[name] = tokens.get(name, 0) + shard.tokens // len(names)
                dirs_of[name] = tuple(dict.fromkeys((*dirs_of.get(name, ()), str(d))))
    if by not in ("dir", "source"):
        raise ValueError(f"by must be 'dir' or 'source', got {by!r}")
    if by == "dir" and len({Path(d).name for d in dirs}) != len(dirs):
        raise ValueError(f"build directories need distinct names to be streams: {list(dirs)}")
    unknown = sorted(set(weights or {}) - set(tokens))
    if unknown:
        raise ValueError(f"mixture weights name unknown streams {unknown}; streams: {sorted(tokens)}")
    chosen = {n: float(w) for n, w in (weights or tokens).items() if w > 0}
    return [StreamConfig(name=n, dirs=dirs_of[n], source=n if by == "source" else None, weight=chosen[n])
            for n in sorted(chosen)]
