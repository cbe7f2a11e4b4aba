"""Where each sentence goes: its shard (a hash of its key), and the waves that group shards into runner jobs.

A build runs as one plan job, one job per wave and one records job (pipeline/graph/state.py). A
wave is also the work a killed build redoes, and every job pays a start-up (on Dataflow: worker
VMs, containers, a GPU pool). So by default the wave size follows the build's size: at most
``MAX_WAVES`` waves, none smaller than ``MIN_WAVE_SENTENCES`` (a small build is one wave). An
explicit wave size overrides that. Output bytes never depend on the waves: placement is a hash of
the key modulo the shard count, and a wave is a range of shards.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

MAX_WAVES = 16  # so a build is at most MAX_WAVES + 2 runner jobs
MIN_WAVE_SENTENCES = 200_000  # below this, start-up outweighs the work a kill can lose


def num_shards_for(total_sentences: int, samples_per_shard: int) -> int:
    return max(1, math.ceil(total_sentences / samples_per_shard))


def shard_index(key: str, num_shards: int) -> int:
    """Stable placement of a sentence key (Python's hash() is salted per process)."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % num_shards


@dataclass(frozen=True)
class WaveLayout:
    """How many shards a build has and how many of them each wave (runner job) writes."""

    planned_sentences: int
    num_shards: int
    shards_per_wave: int

    @property
    def waves(self) -> int:
        return -(-self.num_shards // self.shards_per_wave)

    @property
    def jobs(self) -> int:
        """Runner jobs of a whole build: the plan, each wave, the records."""
        return self.waves + 2

    def wave_of_shard(self, shard: int) -> int:
        return shard // self.shards_per_wave

    def wave_of(self, key: str) -> int:
        return self.wave_of_shard(shard_index(key, self.num_shards))


def wave_layout(planned_sentences: int, samples_per_shard: int, wave_sentences: int | None = None,
                max_waves: int = MAX_WAVES) -> WaveLayout:
    """The layout of a build of ``planned_sentences``: ``wave_sentences`` per wave if given, else
    the fewest waves of at least MIN_WAVE_SENTENCES, and never more than ``max_waves``."""
    num_shards = num_shards_for(planned_sentences, samples_per_shard)
    if wave_sentences is not None:
        per_wave = max(1, wave_sentences // samples_per_shard)
    else:
        per_wave = max(math.ceil(MIN_WAVE_SENTENCES / samples_per_shard), math.ceil(num_shards / max_waves))
    return WaveLayout(planned_sentences, num_shards, min(per_wave, num_shards))
