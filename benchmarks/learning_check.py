"""The learning check: does the reasoning eval measure learning?

Trains the debug model on generated sequences, built through the normal pipeline, for at most 10
minutes of CPU time, then runs ``uvd eval reasoning`` on fresh items of all three kinds. By default
the training sequences are size sequences only (``--tasks``): that budget buys one rule, not three.
Colour and shape, never trained, are controls; a model that learned the size rule (the frame two
back) picks the frame two back in their 3-cycles too, which is always wrong, so they fall below
chance. The check passes when the size task's 95 % interval lies above chance (50 %).

    python benchmarks/learning_check.py --work out/learning-check [--json out/learning-check.json]

Every step is the user-facing command (``uvd eval synthetic-data``, ``uvd build --source
synthetic_reasoning:DIR``, ``uvd train``, ``uvd eval reasoning``), run as a child process; the
training child's CPU time (user + system, all threads) is what the 10-minute budget counts, so the
figure does not depend on what else the machine runs. Results go to docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

UVD = str(Path(sys.executable).with_name("uvd"))
CPU_BUDGET_S = 600.0


def run(args: list, log: Path, threads: int | None = None) -> dict:
    """Run one uvd command, appending its output to ``log``; its wall and CPU seconds (``threads``:
    the child's torch threads, which torch takes from OMP_NUM_THREADS)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log, "a") as f:
        f.write(f"$ uvd {' '.join(map(str, args))}\n")
        f.flush()
        subprocess.run([UVD, *map(str, args)], stdout=f, stderr=subprocess.STDOUT, check=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(time.perf_counter() - start, 1), "cpu_s": round(cpu, 1)}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", default="out/learning-check", help="Scratch folder (replaced).")
    p.add_argument("--sequences", type=int, default=320, help="Training sequences (16 frames each).")
    p.add_argument("--tasks", default="size", help="Tasks the training sequences show (comma-separated); the "
                   "eval asks all three, so the tasks left out are controls.")
    p.add_argument("--steps", type=int, default=420, help="About 1.2 s of CPU each on one thread.")
    p.add_argument("--batch-size", type=int, default=1, help="Sequences (4096 tokens) per step.")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--end-lr", type=float, default=3e-4, help="Where the cosine ends (a tenth of --lr).")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the training process (CPU time "
                   "counts every thread, so one is the cheapest).")
    p.add_argument("--eval-items", type=int, default=300, help="Reasoning items in all (100 per task).")
    p.add_argument("--seed", type=int, default=0, help="Data, build and item seeds (the items take seed + 1).")
    p.add_argument("--train-seed", type=int, default=None, help="uvd train's seed: model init and row order "
                   "(default: --seed); whether the rule is learned within the budget depends on it (docs/benchmarks.md).")
    p.add_argument("--json", help="Also write the results here.")
    return p.parse_args()


def main() -> int:
    a = parse_args()
    work = Path(a.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log = work / "log.txt"
    times = {"data": run(["eval", "synthetic-data", work / "data", "--sequences", a.sequences, "--tasks", a.tasks,
                          "--seed", a.seed], log)}
    times["build"] = run(["build", "--source", f"synthetic_reasoning:{work / 'data'}", "--out", work / "shards",
                          "--tokenizer", "bundled", "--seed", a.seed, "--no-progress", "--overwrite"], log)
    train = ["train", work / "shards", "--model", "debug", "--steps", a.steps, "--seq-len", 4096, "--packing", "rows",
             "--batch-size", a.batch_size, "--lr", a.lr, "--end-lr", a.end_lr, "--warmup-steps", 20, "--log-every", 20,
             "--seed", a.seed if a.train_seed is None else a.train_seed, "--out", work / "checkpoint"]
    times["train"] = run(train, log, threads=a.threads)
    times["eval"] = run(["eval", "reasoning", work / "checkpoint", "--items", a.eval_items, "--seed", a.seed + 1,
                         "--items-dir", work / "items", "--json", work / "reasoning.json"], log)
    report = json.loads((work / "reasoning.json").read_text())
    size = report["size"]
    passed = size["beats_chance"] and times["train"]["cpu_s"] <= CPU_BUDGET_S
    result = {"args": vars(a), "times": times, "reasoning": report, "passed": passed}
    print(f"training: {times['train']['cpu_s']:.0f} s CPU ({times['train']['wall_s']:.0f} s wall), "
          f"budget {CPU_BUDGET_S:.0f} s CPU")
    print("| task | accuracy | correct / items | 95 % CI (Wilson) | chance | CI excludes chance |")
    print("|---|---|---|---|---|---|")
    for task in ("colour", "shape", "size", "all"):
        r = report[task]
        print(f"| {task} | {100 * r['accuracy']:.1f} % | {r['correct']} / {r['items']} | {100 * r['ci95'][0]:.1f}-"
              f"{100 * r['ci95'][1]:.1f} % | {100 * r['chance']:.1f} % | {'yes' if r['beats_chance'] else 'no'} |")
    print("PASS" if passed else "FAIL: the size task's interval does not exclude chance, or training ran over budget")
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
