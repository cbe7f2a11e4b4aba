"""The durable state of a build in progress: what lets a killed build resume without redoing work.

A build runs in three phases, each a Beam pipeline, each committing files under
``OUT/_uvd_resume/`` before the next starts:

1. plan: every item listed, probed, deduplicated, planned, mixed and placed. Commits the plans of
   each wave (``waves/wave-NNNNN.plan.jsonl.gz``: its sentence plans and the items they need),
   the early rejects, the listed and skipped item keys, then ``plan.json`` (last: the phase is done).
2. one pipeline per wave (a contiguous range of shards): decode, tokenize, assemble, dedup, write
   shards, then ``waves/wave-NNNNN.done.jsonl.gz`` (the wave's shard states; last: the wave is done).
3. records: accounting, rejects.parquet, build_summary.json, manifest.parquet; then this folder goes.

A rerun skips every committed phase and wave. Nothing committed depends on how the work was
split in time, so the output is byte-identical to an uninterrupted build's. Records are gzipped
JSON lines split into parts, so no single worker holds a whole source's keys.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems

from uvd.pipeline import storage
from uvd.pipeline.format import SentenceMeta
from uvd.pipeline.items import Item
from uvd.pipeline.rejects import Reject
from uvd.pipeline.sentences import SentencePlan
from uvd.pipeline.shards import STATE_DIR, ShardState, atomic_write, tmp_dir_for

PLAN = "plan.json"
RECORDS_PER_PART = 500_000


@dataclass(frozen=True)
class BuildPlan:
    """What phase 1 decided: how many shards, and how they are grouped into waves."""

    planned_sentences: int
    num_shards: int
    shards_per_wave: int
    wave_sentences: list[int]  # planned sentences in each wave
    mixture: dict | None  # shares, quotas and available tokens of a --mix build

    @property
    def waves(self) -> int:
        return -(-self.num_shards // self.shards_per_wave)

    def wave_of(self, shard: int) -> int:
        return shard // self.shards_per_wave


def state_path(out_dir: str, *parts: str) -> str:
    return FileSystems.join(out_dir, STATE_DIR, *parts)


def wave_file(out_dir: str, wave: int, kind: str) -> str:
    return state_path(out_dir, "waves", f"wave-{wave:05d}.{kind}.jsonl.gz")


# --- JSON for the records that travel between phases ---------------------------------------------

def item_to_json(item: Item) -> dict:
    d = dataclasses.asdict(item)
    d["paths"], d["extra"] = list(item.paths), [list(pair) for pair in item.extra]
    return d


def item_from_json(d: dict) -> Item:
    extra = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in d["extra"])
    return Item(**{**d, "paths": tuple(d["paths"]), "extra": extra})


def plan_to_json(plan: SentencePlan) -> dict:
    return {"key": plan.key, "meta": plan.meta.to_json()}


def plan_from_json(d: dict) -> SentencePlan:
    return SentencePlan(key=d["key"], meta=SentenceMeta.from_json(d["meta"]))


def reject_to_json(r: Reject) -> dict:
    return dataclasses.asdict(r)


def reject_from_json(d: dict) -> Reject:
    return Reject(**d)


# --- files -----------------------------------------------------------------------------------------

def write_jsonl(path: str, records, tmp_dir: str | None) -> None:
    """Gzipped JSON lines (fixed gzip header: same records, same bytes), committed atomically."""
    body = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    atomic_write(path, gzip.compress(body, compresslevel=6, mtime=0), tmp_dir)


def read_jsonl(path: str) -> list:
    return [json.loads(line) for line in gzip.decompress(storage.read_bytes(path)).decode("utf-8").splitlines() if line]


def parts(out_dir: str, name: str) -> list[str]:
    """The committed part files of a sharded record set (``name-*.jsonl.gz``)."""
    return storage.match(state_path(out_dir, f"{name}-*.jsonl.gz"))


def read_plan(out_dir: str) -> BuildPlan | None:
    path = state_path(out_dir, PLAN)
    if not storage.exists(path):
        return None
    return BuildPlan(**json.loads(storage.read_bytes(path)))


def write_plan(out_dir: str, plan: BuildPlan) -> None:
    atomic_write(state_path(out_dir, PLAN), json.dumps(dataclasses.asdict(plan), sort_keys=True).encode("utf-8"),
                 tmp_dir_for(out_dir))


def wave_done(out_dir: str, wave: int) -> bool:
    return storage.exists(wave_file(out_dir, wave, "done"))


def read_wave_states(path: str) -> list[ShardState]:
    return [ShardState.from_json(d) for d in read_jsonl(path)]
