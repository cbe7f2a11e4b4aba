"""The durable state of a build in progress: what lets a killed build resume without redoing work.

A build runs in three phases, each a Beam pipeline (a runner job), each committing files under
``OUT/_uvd_resume/`` before the next starts:

1. plan: every item listed, probed, deduplicated, planned, mixed and placed. Commits the plans of
   each wave (``waves/wave-NNNNN/plan-PPPPP.jsonl.gz``: its sentence plans and the items they
   need), the early rejects, the listed and skipped item keys, then ``plan.json`` (last: the
   phase is done).
2. one pipeline per wave (a contiguous range of shards; planning/waves.py sizes them so a build
   is a bounded number of jobs): decode, tokenize, assemble, dedup, write shards, then
   ``waves/wave-NNNNN/states-PPPPP.jsonl.gz`` (its shard states), ``waves/wave-NNNNN/seen-PPPPP.jsonl.gz``
   (the token hashes of every sentence kept so far) and ``waves/wave-NNNNN.done.json`` (last: the
   wave is done).
3. records: accounting, rejects.parquet, build_summary.json, manifest.parquet; then this folder goes.

A wave reads the ``seen`` index of the wave before it, never the states of every earlier wave:
what one wave job reads does not grow with its index. A rerun skips every committed phase and
wave. Nothing committed depends on how the work was split in time, so the output is
byte-identical to an uninterrupted build's. Records are gzipped JSON lines split into parts, so no
single worker holds a whole source's keys or a whole wave's plans.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import shutil
from dataclasses import dataclass

from uvd.format import storage, tables
from uvd.format.rejects import Reject
from uvd.format.sample import SentenceMeta
from uvd.format.shards import SHARD_PREFIX, ShardInfo
from uvd.pipeline.graph import provenance
from uvd.pipeline.planning.waves import WaveLayout
from uvd.pipeline.planning.waves import num_shards_for as num_shards_for  # re-exported: placement
from uvd.pipeline.planning.waves import shard_index as shard_index
from uvd.pipeline.records.items import Item
from uvd.pipeline.records.sentences import SentencePlan

PLAN = "plan.json"
RECORDS_PER_PART = 500_000
SHARDS_PER_PART = 1024  # shards whose plans, or states, share one file of a wave
STATE_DIR = "_uvd_resume"  # the records of a build in progress; removed when it completes
BUILD_MARKER = "_uvd_build.json"  # what build this directory holds (its fingerprint)


@dataclass(frozen=True)
class ShardState:
    """Everything a build needs to know about a committed shard without reading it again."""

    info: ShardInfo
    rejects: tuple[Reject, ...]  # decode, assembly and dedup rejects attributed to this shard
    sentences: tuple[tuple[str, str, tuple[str, ...], str], ...]  # (key, source, item keys, token sha256)

    def to_json(self) -> dict:
        return {"info": dataclasses.asdict(self.info), "rejects": [r.to_json() for r in self.rejects],
                "sentences": [[k, s, list(items), sha] for k, s, items, sha in self.sentences]}

    @classmethod
    def from_json(cls, d: dict) -> ShardState:
        info = d["info"]
        info = ShardInfo(**{**info, "sources": tuple(info["sources"]),
                            "tokens_by_source": tuple(tuple(x) for x in info["tokens_by_source"])})
        return cls(info=info, rejects=tuple(Reject.from_json(r) for r in d["rejects"]),
                   sentences=tuple((k, s, tuple(items), sha) for k, s, items, sha in d["sentences"]))


def clear_build_state(out_dir: str) -> None:
    """Remove the resume records of a build (done, or about to be planned again) and the staging folder."""
    if storage.is_local(out_dir):
        shutil.rmtree(storage.join(out_dir, STATE_DIR), ignore_errors=True)
        staging = storage.staging_dir_for(out_dir)
        if staging and os.path.isdir(staging):
            shutil.rmtree(staging, ignore_errors=True)
        return
    storage.delete(storage.files_under(storage.join(out_dir, STATE_DIR)))


def prepare_output(out_dir: str, record: dict, *, overwrite: bool) -> bool:
    """Make ``out_dir`` ready for the build described by ``record``; True if it is already complete.

    A directory holds one build, named by ``_uvd_build.json``: the same build resumes (committed
    shards are kept), another is refused unless ``overwrite`` clears what uvd wrote there.
    """
    marker, manifest = storage.join(out_dir, BUILD_MARKER), storage.join(out_dir, tables.MANIFEST_NAME)
    ours = provenance.fingerprint(record)
    if overwrite:
        patterns = [f"{SHARD_PREFIX}*", tables.MANIFEST_NAME, tables.REJECTS_NAME, tables.SUMMARY_NAME, BUILD_MARKER]
        old = [path for pattern in patterns for path in storage.match(storage.join(out_dir, pattern))]
        storage.delete(old)
        clear_build_state(out_dir)
    elif storage.exists(marker):
        theirs = json.loads(storage.read_bytes(marker)).get("fingerprint")
        if theirs != ours:
            raise FileExistsError(f"{out_dir} holds another build (different sources, config, tokenizer or uvd "
                                  f"version); pass --overwrite to replace it")
        if storage.exists(manifest):
            return True
    elif storage.exists(manifest) or storage.match(storage.join(out_dir, f"{SHARD_PREFIX}*")):
        raise FileExistsError(f"{out_dir} already holds shards of an unknown build; pass --overwrite to replace them")
    if storage.is_local(out_dir):  # object stores have no directories
        os.makedirs(out_dir, exist_ok=True)
    if not storage.exists(marker):
        body = json.dumps({"fingerprint": ours, "provenance": {k: v for k, v in record.items() if k != "runner"}},
                          indent=2, sort_keys=True)
        storage.atomic_write(marker, body.encode("utf-8"), storage.staging_dir_for(out_dir))
    return False


def read_summary(out_dir: str) -> dict:
    return json.loads(storage.read_bytes(storage.join(out_dir, tables.SUMMARY_NAME)))


@dataclass(frozen=True)
class BuildPlan:
    """What phase 1 decided: how many shards, and how they are grouped into waves."""
    planned_sentences: int
    num_shards: int
    shards_per_wave: int
    wave_sentences: list[int]  # planned sentences in each wave
    mixture: dict | None  # shares, quotas and available tokens of a --mix build

    @property
    def layout(self) -> WaveLayout:
        return WaveLayout(self.planned_sentences, self.num_shards, self.shards_per_wave)

    @property
    def waves(self) -> int:
        return self.layout.waves

    @property
    def seen_parts(self) -> int:
        """Files of the index of kept sentences' token hashes (fixed for the build)."""
        return parts_for(self.planned_sentences)


def parts_for(records: int) -> int:
    return max(1, -(-records // RECORDS_PER_PART))


def part_of_shard(shard: int) -> int:
    return shard // SHARDS_PER_PART


def part_of_hash(token_sha256: str, parts: int) -> int:
    return int(token_sha256[:16], 16) % parts


def state_path(out_dir: str, *parts: str) -> str:
    return storage.join(out_dir, STATE_DIR, *parts)


def wave_part(out_dir: str, wave: int, kind: str, part: int) -> str:
    """A part file of a wave's ``plan``, ``states`` or ``seen`` records."""
    return state_path(out_dir, "waves", f"wave-{wave:05d}", f"{kind}-{part:05d}.jsonl.gz")


def wave_parts(out_dir: str, wave: int, kind: str) -> list[str]:
    """The committed part files of one kind of a wave."""
    return storage.match(state_path(out_dir, "waves", f"wave-{wave:05d}", f"{kind}-*.jsonl.gz"))


def done_marker(out_dir: str, wave: int) -> str:
    return state_path(out_dir, "waves", f"wave-{wave:05d}.done.json")


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


# --- files -----------------------------------------------------------------------------------------

def write_jsonl(path: str, records, tmp_dir: str | None) -> None:
    """Gzipped JSON lines (fixed gzip header: same records, same bytes), committed atomically."""
    body = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    storage.atomic_write(path, gzip.compress(body, compresslevel=6, mtime=0), tmp_dir)


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
    storage.atomic_write(state_path(out_dir, PLAN), json.dumps(dataclasses.asdict(plan), sort_keys=True).encode("utf-8"),
                 storage.staging_dir_for(out_dir))


def wave_done(out_dir: str, wave: int) -> bool:
    return storage.exists(done_marker(out_dir, wave))


def write_done(out_dir: str, wave: int, files: int) -> None:
    """Commit a wave: written after its shards, states and seen index (``files`` of them)."""
    storage.atomic_write(done_marker(out_dir, wave), json.dumps({"wave": wave, "files": files}).encode("utf-8"),
                         storage.staging_dir_for(out_dir))


def drop_seen_index(out_dir: str, wave: int) -> None:
    """The seen index of ``wave``, once the next wave is committed: no later wave reads it."""
    storage.delete(wave_parts(out_dir, wave, "seen"))


def read_wave_states(path: str) -> list[ShardState]:
    return [ShardState.from_json(d) for d in read_jsonl(path)]
