"""What the build benchmarks share: where and when they ran, contenders alternated round by round
with median and spread, ``uvd build`` as a user runs it, the same build as a plain Python loop,
and byte comparison of what they wrote.

These machines are shared and noisy: every contender runs once per round, in a rotated order,
and the figures to read are medians and ratios of medians, next to the load they ran under.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from uvd.format.shards import write_shard
from uvd.pipeline import steps
from uvd.pipeline.planning.waves import num_shards_for, shard_index
from uvd.pipeline.records.config import BuildConfig, SourceConfig
from uvd.pipeline.records.sentences import assemble_sentence
from uvd.pipeline.tools.local import plan_source, sentence_frames, tokenize


def machine() -> dict:
    """Date, CPU model and cores (lscpu), Python, and the load average when the run started."""
    model = next((line.split(":", 1)[1].strip() for line in _lscpu().splitlines() if line.startswith("Model name")),
                 platform.processor() or platform.machine())
    return {"date": dt.date.today().isoformat(), "machine": f"{platform.machine()} {model}, {os.cpu_count()} cores",
            "python": platform.python_version(), "load": round(os.getloadavg()[0], 2)}


def _lscpu() -> str:
    try:
        return subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return ""


def alternate(contenders: dict[str, Callable[[int], float]], rounds: int) -> dict[str, list[float]]:
    """Each contender once per round, the order rotated every round; ``fn(round)`` returns seconds."""
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            seconds = contenders[name](r)
            times[name].append(seconds)
            print(f"  round {r + 1}/{rounds} {name}: {seconds:.1f} s (load {os.getloadavg()[0]:.1f})", flush=True)
    return times


def spread(seconds: list[float]) -> dict:
    """Median and the range around it, as fractions of the median."""
    med = statistics.median(seconds)
    return {"median_s": med, "min_s": min(seconds), "max_s": max(seconds),
            "spread": f"-{(med - min(seconds)) / med:.0%}/+{(max(seconds) - med) / med:.0%}", "runs_s": seconds}


def uvd_build(sources: dict[str, Path], out: Path, *, tokenizer: str, batch_size: int, samples_per_shard: int,
              workers: int, cpus: str | None = None) -> float:
    """Seconds of ``uvd build`` in a fresh process, as a user runs it (``cpus``: taskset's CPU list)."""
    config = out.parent / f"{out.name}.toml"
    config.write_text(f"[build]\nbatch_size = {batch_size}\nsamples_per_shard = {samples_per_shard}\n")
    cmd = [sys.executable, "-m", "uvd.cli", "build", *[a for name, root in sources.items()
                                                      for a in ("--source", f"{name}:{root}")],
           "--out", str(out), "--overwrite", "--config", str(config), "--tokenizer", tokenizer, "--no-progress",
           "--device", "cpu", "--workers", str(workers)]
    return _timed([*(["taskset", "-c", cpus] if cpus else []), *cmd])


def _timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return seconds


def plain_loop(sources: dict[str, Path], out: Path, config: BuildConfig,
               encode: Callable[[np.ndarray], np.ndarray] | None = None) -> dict:
    """The build's sentences as a plain single-process loop: plan, decode, resize, tokenize in full
    batches across sentences (as RunInference batches them), assemble and write the same shards."""
    planned, frames = [], []
    with steps.DecodeResources(config) as ctx:
        for name, root in sources.items():
            source = SourceConfig(name=name, spec=name, root=str(root))
            plans, items = plan_source(source, config, ctx)
            for plan in plans:
                rendered = sentence_frames(source, plan.meta, items, config, ctx)
                planned.append((plan, len(frames), len(rendered)))
                frames.extend(rendered)
    tokens = (encode or (lambda f: tokenize(f, config)))(np.stack(frames))
    sentences = [assemble_sentence(plan, list(enumerate(tokens[start:start + n]))) for plan, start, n in planned]
    n = num_shards_for(len(sentences), config.samples_per_shard)
    by_shard: dict[int, list] = {}
    for s in sentences:
        by_shard.setdefault(shard_index(s.key, n), []).append(s)
    out.mkdir(parents=True, exist_ok=True)
    for index, group in sorted(by_shard.items()):
        write_shard(str(out), index, group)
    return {"images": len(frames), "sentences": len(sentences)}


def same_bytes(reference: Path, others: list[Path], pattern: str = "*") -> bool:
    """Whether every ``others`` folder holds exactly the files of ``reference`` matching ``pattern``."""
    want = {p.name: p.read_bytes() for p in sorted(reference.glob(pattern)) if p.is_file()}
    return bool(want) and all({p.name: p.read_bytes() for p in sorted(o.glob(pattern)) if p.is_file()} == want
                              for o in others)


def verdict(name: str, ok: bool, detail: str) -> str:
    line = f"{'PASS' if ok else 'FAIL'} {name}: {detail}"
    print(line, flush=True)
    return line


def passed(lines: list[str]) -> bool:
    return all(line.startswith("PASS") for line in lines)


def exit_code(identity: list[str], targets: list[str], require_targets: bool) -> int:
    """1 if compared outputs differ (the run proves nothing, and records no figures); 2 if a target
    was missed and ``require_targets``; else 0, so that a missed target, printed FAIL, does not
    stop the other benchmarks of `make bench`."""
    if not passed(identity):
        print("FAIL: the contenders' outputs differ; no figures recorded", flush=True)
        return 1
    return 2 if require_targets and not passed(targets) else 0
