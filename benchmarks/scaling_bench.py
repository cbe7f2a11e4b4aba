"""Scaling of ``uvd build`` with workers, and the CPU side of a build per core.

The corpus: ``--stills`` distinct 640x480 JPEG stills cut from the bundled sample photos (distinct
seeded crops of upscaled photos), plus the three sample MP4s. Every run builds all of it.

1. Scaling. For each tokenizer, ``uvd build`` with 1, 2 (and, on a bigger machine, all-core)
   workers and a plain Python loop making the same sentences alternate over ``--rounds`` rounds.
   Reported: median seconds and spread, images/s, images/s per core, speed-up against 1 worker
   and against the plain loop, and byte identity of every output. With ``random:tiny`` the
   1-worker run is pinned to one core (taskset), so the ratio shows what a second worker adds;
   with the bundled tokenizer nothing is pinned.
2. The CPU side per core: the whole build (list, probe, dedup, plan, decode, resize, Beam's
   element overhead between stages, assembly, shard writing), one worker pinned to one core,
   with a pass-through encoder (a frame's tokens are every 16th pixel of its red channel) in
   place of the VQGAN, used only here. On a GPU the tokenizer does ~3,000 images/s, so this rate
   decides how many cores feed one GPU. The same sentences through the plain loop with the same
   encoder must give the same shards.
3. The bytes per image that cross the decode -> tokenize boundary (a shuffle between the CPU and
   GPU pools on Dataflow), with the coder of the hinted graph, against their budget.

Each byte-identity check and each target of issue 14 prints a PASS or FAIL line. If any outputs
differ the run exits 1 and records nothing; a missed target exits 0 (2 with ``--require-targets``).
The CPU-side rate and the boundary bytes go to the ``scaling_bench`` section of the figures file
that ``uvd plan`` reads, with the date, machine and load.

    python benchmarks/scaling_bench.py --stills 1500 --rounds 3 --json out/bench/scaling.json   (make bench)
    python benchmarks/scaling_bench.py --stills 40 --rounds 1 --figures ''                      (does it run?)
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from unittest import mock

import apache_beam as beam
import cv2
import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions
from harness import alternate, exit_code, machine, passed, plain_loop, same_bytes, spread, uvd_build, verdict

from uvd.format.sample import sentence_key
from uvd.media.images import PREPROCESS_MODES, decode_image, resize_still
from uvd.pipeline.graph import job, resources, state
from uvd.pipeline.graph.inference import VQGANModelHandler
from uvd.pipeline.records.config import BuildConfig, SourceConfig
from uvd.pipeline.tools.estimate import FIGURES_FILE, update_figures
from uvd.pipeline.tools.sample_data import collect_sample

STILL_SIZE = (640, 480)
SAMPLES_PER_SHARD = 64
BATCH_SIZE = 16
CPU_SIDE_CONFIG = BuildConfig(tokenizer="random:tiny", batch_size=BATCH_SIZE, samples_per_shard=SAMPLES_PER_SHARD)
TARGETS = {"tiny_2_workers_vs_1_pinned": 1.6, "bundled_2_workers_vs_1": 1.0, "cpu_side_img_s_per_core": 150.0}


def make_corpus(dest: Path, stills: int, seed: int = 0) -> dict[str, Path]:
    """``stills`` distinct 640x480 JPEGs (crops at distinct offsets of the sample photos, upscaled
    where smaller) and the sample videos."""
    sample = collect_sample(dest / "sample")
    width, height = STILL_SIZE
    photos = []
    for path in sample["images"]:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        scale = max(1.0, 1.5 * height / img.shape[0], 1.5 * width / img.shape[1])
        photos.append(cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)),
                                 interpolation=cv2.INTER_CUBIC))
    out, rng, used = dest / "stills", random.Random(seed), set()
    out.mkdir(parents=True, exist_ok=True)
    while len(used) < stills:
        k = len(used) % len(photos)
        y, x = rng.randrange(photos[k].shape[0] - height + 1), rng.randrange(photos[k].shape[1] - width + 1)
        if (k, y, x) not in used:
            cv2.imwrite(str(out / f"still_{len(used):05d}.jpg"), photos[k][y:y + height, x:x + width],
                        [cv2.IMWRITE_JPEG_QUALITY, 90])
            used.add((k, y, x))
    return {"images": out, "videos": dest / "sample" / "videos"}


def passthrough(frames: np.ndarray) -> np.ndarray:
    """A frame's 256 'tokens': every 16th pixel of its red channel (distinct frames, distinct tokens)."""
    return np.ascontiguousarray(np.asarray(frames)[:, ::16, ::16, 0].reshape(len(frames), -1)).astype(np.uint16)


# --- 1. scaling -------------------------------------------------------------------------------------

def scaling(corpus: dict[str, Path], work: Path, tokenizer: str, rounds: int, pin_one: bool) -> dict:
    """Plain loop and uvd build at 1, 2 (and all-core) workers, alternated; byte identity of all."""
    cores = os.cpu_count() or 1
    config = BuildConfig(tokenizer=tokenizer, batch_size=BATCH_SIZE, samples_per_shard=SAMPLES_PER_SHARD)
    runs = {"plain_loop": (None, None, cores)}
    runs["1_worker_pinned" if pin_one else "1_worker"] = (1, "0" if pin_one else None, 1 if pin_one else cores)
    for workers in sorted({2, cores} - {1}):
        runs[f"{workers}_workers"] = (workers, None, cores)
    counts: dict = {}

    def contender(name: str):
        workers, cpus, _ = runs[name]
        out = work / f"{tokenizer.replace(':', '_')}-{name}"  # the same folders are compared below
        if workers is None:
            return lambda _r: _plain(corpus, out, config, counts)
        return lambda _r: uvd_build(corpus, out, tokenizer=tokenizer, batch_size=BATCH_SIZE,
                                    samples_per_shard=SAMPLES_PER_SHARD, workers=workers, cpus=cpus)

    times = alternate({name: contender(name) for name in runs}, rounds)
    one = next(name for name in runs if name.startswith("1_worker"))
    table = {}
    for name, seconds in times.items():
        s = spread(seconds)
        img_s = counts["images"] / s["median_s"]
        table[name] = {**s, "cores": runs[name][2], "img_s": img_s, "img_s_per_core": img_s / runs[name][2],
                       "vs_1_worker": statistics.median(times[one]) / s["median_s"],
                       "vs_plain_loop": statistics.median(times["plain_loop"]) / s["median_s"]}
    out = {name: work / f"{tokenizer.replace(':', '_')}-{name}" for name in runs}
    builds = [out[name] for name in runs if name != "plain_loop"]
    return {"tokenizer": tokenizer, **counts, "runs": table, "one_worker": one,
            "builds_byte_identical": same_bytes(builds[0], builds[1:]),
            "plain_loop_shards_identical": same_bytes(out["plain_loop"], builds, "shard-*")}


def _plain(corpus: dict[str, Path], out: Path, config: BuildConfig, counts: dict) -> float:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    counts.update(plain_loop(corpus, out, config))
    return time.perf_counter() - started


# --- 2. the CPU side per core -------------------------------------------------------------------------

class PhaseTimes(logging.Handler):
    """Collects job.py's "<phase>: <seconds> s" lines."""

    def __init__(self):
        super().__init__()
        self.phases: dict[str, float] = {}

    def emit(self, record):
        match = re.fullmatch(r"(.+): ([0-9.]+) s", record.getMessage())
        if match:
            self.phases[match.group(1)] = float(match.group(2))


def cpu_side_once(corpus: dict[str, Path], out: Path, preprocess: str) -> dict:
    """One build with the pass-through encoder, in this process (run pinned to one core by cpu_side)."""
    sources = [SourceConfig(name=name, spec=name, root=str(root)) for name, root in corpus.items()]
    phases = PhaseTimes()
    logging.getLogger("uvd").addHandler(phases)
    logging.getLogger("uvd").setLevel(logging.INFO)
    with mock.patch.object(VQGANModelHandler, "load_model", lambda self: None), \
            mock.patch.object(VQGANModelHandler, "run_inference", lambda self, batch, model, args=None: list(
                passthrough(np.stack(batch)))):
        summary = job.run(sources, str(out), replace(CPU_SIDE_CONFIG, preprocess=preprocess), overwrite=True,
                          device="cpu")
    return {"images": summary["images"], "sentences": summary["sentences"], "phases_s": phases.phases}


def pinned_build(corpus: dict[str, Path], out: Path, preprocess: str) -> dict:
    """cpu_side_once in a child pinned to core 0: its wall seconds and the CPU seconds of its whole
    process tree (the guarded video decoders included)."""
    cmd = ["taskset", "-c", "0", sys.executable, __file__, "_cpu_side", "--out", str(out), "--preprocess", preprocess,
           *[f"--corpus={name}={root}" for name, root in corpus.items()]]
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise RuntimeError(done.stdout[-3000:] + done.stderr[-3000:])
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "seconds": seconds, "cpu_seconds": cpu}


def quarter_of(corpus: dict[str, Path], work: Path) -> dict[str, Path]:
    """The corpus with the first quarter of its stills (links), the same videos."""
    quarter = work / "quarter-stills"
    if not quarter.exists():
        quarter.mkdir()
        stills = sorted(corpus["images"].iterdir())
        for path in stills[: len(stills) // 4]:
            (quarter / path.name).symlink_to(path)
    return {**corpus, "images": quarter}


def marginal_rate(extra_stills: int, extra_seconds: float) -> float:
    """Stills per second of the extra work; NaN when the difference drowned in noise (too few stills)."""
    return extra_stills / extra_seconds if extra_seconds > 0 else math.nan


def median_rate(rates: list[float]) -> float:
    """The median, or NaN if any round was not measurable (a figure is never made of the lucky rounds)."""
    return statistics.median(rates) if all(math.isfinite(r) for r in rates) else math.nan


def cpu_side(corpus: dict[str, Path], work: Path, rounds: int, preprocess: str) -> dict:
    """The cost of one more 640x480 still: pinned builds of all the stills and of a quarter of them
    (the same videos in both) alternate; their difference leaves out what does not grow with the
    data (imports, pipeline construction, worker set-up), as a build of millions of stills does.
    ``preprocess``: the build's still resize (BuildConfig.preprocess: lvm, or fast)."""
    corpora = {"all": corpus, "quarter": quarter_of(corpus, work)}
    runs: dict[str, list[dict]] = {"all": [], "quarter": []}
    for r in range(rounds):
        for name in ("all", "quarter") if r % 2 == 0 else ("quarter", "all"):
            runs[name].append(pinned_build(corpora[name], work / f"cpu-side-{preprocess}-{name}", preprocess))
            print(f"  round {r + 1}/{rounds} cpu side ({preprocess}), {name}: {runs[name][-1]['seconds']:.1f} s, "
                  f"{runs[name][-1]['cpu_seconds']:.1f} CPU s (load {os.getloadavg()[0]:.1f})", flush=True)
    extra = runs["all"][0]["images"] - runs["quarter"][0]["images"]
    per_cpu = [marginal_rate(extra, a["cpu_seconds"] - q["cpu_seconds"]) for a, q in zip(runs["all"], runs["quarter"])]
    per_wall = [marginal_rate(extra, a["seconds"] - q["seconds"]) for a, q in zip(runs["all"], runs["quarter"])]
    plain = plain_loop(corpus, work / f"cpu-side-{preprocess}-plain", replace(CPU_SIDE_CONFIG, preprocess=preprocess),
                       encode=passthrough)
    return {"preprocess": preprocess, "images": runs["all"][0]["images"], "extra_stills": extra,
            "img_s_per_core": median_rate(per_cpu), "img_s_per_core_runs": per_cpu,
            "img_s_per_core_spread": spread(per_cpu)["spread"] if math.isfinite(median_rate(per_cpu)) else "n/a",
            "img_s_per_pinned_core_wall": median_rate(per_wall),
            "whole_build": {**spread([a["cpu_seconds"] for a in runs["all"]]),
                            "img_s_per_cpu_s": runs["all"][0]["images"] / statistics.median(
                                [a["cpu_seconds"] for a in runs["all"]])},
            "megapixels": STILL_SIZE[0] * STILL_SIZE[1] / 1e6, "phases_s": runs["all"][0]["phases_s"],
            "plain_loop_shards_identical": same_bytes(work / f"cpu-side-{preprocess}-plain",
                                                      [work / f"cpu-side-{preprocess}-all"], "shard-*")
            and plain["sentences"] == runs["all"][0]["sentences"]}


# --- 3. the decode -> tokenize boundary ----------------------------------------------------------------

def boundary_bytes(corpus: dict[str, Path], samples: int = 32) -> dict:
    """Encoded bytes of real frames with the coder of the frames the hinted wave graph ships to
    tokenize, and what lossless PNG would save and cost instead (bytes, CPU ms per frame)."""
    options = PipelineOptions([])
    p = beam.Pipeline(options=options)
    build = job.BuildContext(sources=[SourceConfig("images", "images", str(corpus["images"]))], out_dir="unused",
                             config=BuildConfig(), options=options, record={}, tokens_per_image=256)
    job.chain_wave(p, build, state.BuildPlan(1, 1, 1, [1], None), 0)
    coder = resources.boundary_coder(p)
    sizes, png = [], []
    for path in sorted(corpus["images"].iterdir())[:samples]:
        started = time.process_time()
        frame = resize_still(decode_image(path.read_bytes(), max_pixels=10**9, name=path.name), 256)
        decode_ms = (time.process_time() - started) * 1e3
        sizes.append(len(coder.encode(((sentence_key("images", path.name, 0), 0), frame))))
        png.append((*png_round_trip(frame), decode_ms))
    return {"bytes_per_image": statistics.mean(sizes), "budget": resources.FRAME_BOUNDARY_BUDGET_BYTES,
            "coder": str(coder), "png_bytes_per_image": statistics.mean(b for b, _, _ in png),
            "png_ms_per_image": statistics.median(ms for _, ms, _ in png),
            "decode_resize_ms_per_image": statistics.median(ms for _, _, ms in png)}


def png_round_trip(frame: np.ndarray) -> tuple[int, float]:
    """PNG bytes of a frame (OpenCV, fastest level) and the CPU ms to encode and decode it, one thread."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        started = time.process_time()
        ok, encoded = cv2.imencode(".png", frame, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        restored = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
        ms = (time.process_time() - started) * 1e3
    finally:
        cv2.setNumThreads(threads)
    if not ok or not np.array_equal(restored, frame):
        raise RuntimeError("PNG did not round-trip a frame exactly")
    return len(encoded), ms


# --- report ---------------------------------------------------------------------------------------------

def print_tables(report: dict) -> None:
    print(f"\n{report['stills']} stills of 640x480 + 3 videos; {report['rounds']} rounds; load {report['load']} -> "
          f"{report['load_after']}; {report['machine']}\n")
    print("| tokenizer | run | cores | median s | spread | images/s | images/s per core | vs 1 worker | vs plain loop |")
    print("|---|---|---|---|---|---|---|---|---|")
    for result in report["scaling"]:
        for name, r in result["runs"].items():
            print(f"| {result['tokenizer']} | {name} | {r['cores']} | {r['median_s']:.1f} | {r['spread']} | "
                  f"{r['img_s']:.1f} | {r['img_s_per_core']:.1f} | {r['vs_1_worker']:.2f}x | {r['vs_plain_loop']:.2f}x |")
    c, w = report["cpu_side"], report["cpu_side"]["whole_build"]
    print(f"\nCPU side, pass-through encoder, 1 worker pinned to one core, preprocess {c['preprocess']}: "
          f"{c['img_s_per_core']:.0f} images/s per "
          f"core for each further still (CPU time; median of {len(c['img_s_per_core_runs'])} rounds, "
          f"{c['img_s_per_core_spread']}), {c['img_s_per_pinned_core_wall']:.0f} per pinned core by the clock; the "
          f"whole build of {c['images']} images: {w['median_s']:.1f} CPU s ({w['spread']}), "
          f"{w['img_s_per_cpu_s']:.0f} images per CPU second; phases {c['phases_s']}")
    for mode, o in report.get("cpu_side_other_preprocess", {}).items():
        print(f"CPU side, preprocess {mode}: {o['img_s_per_core']:.0f} images/s per core ({o['img_s_per_core_spread']}); "
              f"whole build {o['whole_build']['img_s_per_cpu_s']:.0f} images per CPU second")
    b = report["boundary"]
    print(f"decode -> tokenize boundary: {b['bytes_per_image']:,.0f} bytes per image (budget {b['budget']:,}); "
          f"as PNG {b['png_bytes_per_image']:,.0f} bytes for {b['png_ms_per_image']:.2f} CPU ms to encode and decode, "
          f"against {b['decode_resize_ms_per_image']:.2f} ms to decode and resize the still\n")


def verdicts(report: dict) -> dict[str, list[str]]:
    """PASS/FAIL lines: ``identity`` (outputs that must be equal) and ``targets`` (issue 14's ratios)."""
    identity = [verdict(f"byte identity ({r['tokenizer']})", r["builds_byte_identical"] and
                        r["plain_loop_shards_identical"], "every build's files, and the plain loop's shards")
                for r in report["scaling"]]
    c, b = report["cpu_side"], report["boundary"]
    identity += [verdict(f"CPU side ({side['preprocess']}), same shards as the plain loop",
                         side["plain_loop_shards_identical"], "pass-through encoder")
                 for side in (c, *report.get("cpu_side_other_preprocess", {}).values())]
    ratios = {r["tokenizer"]: r["runs"]["2_workers"]["vs_1_worker"] for r in report["scaling"]}
    targets = []
    if "random:tiny" in ratios:
        targets.append(verdict("random:tiny, 2 workers vs 1 pinned", ratios["random:tiny"] >= TARGETS[
            "tiny_2_workers_vs_1_pinned"], f"{ratios['random:tiny']:.2f}x (target >= 1.6x)"))
    if "bundled" in ratios:
        targets.append(verdict("bundled, 2 workers vs 1", ratios["bundled"] >= TARGETS["bundled_2_workers_vs_1"],
                               f"{ratios['bundled']:.2f}x (target >= 1.0x)"))
    targets.append(verdict("CPU side per core", c["img_s_per_core"] >= TARGETS["cpu_side_img_s_per_core"],
                           f"{c['img_s_per_core']:.0f} images/s (target >= 150)"))
    targets.append(verdict("boundary bytes", b["bytes_per_image"] <= b["budget"],
                           f"{b['bytes_per_image']:,.0f} per image (budget {b['budget']:,})"))
    return {"identity": identity, "targets": targets}


def record_figures(report: dict, path: str) -> None:
    """The scaling_bench section of the figures file ``uvd plan`` reads; nothing when outputs
    differed or the CPU-side figure was not measurable."""
    if not passed(report["verdicts"]["identity"]):
        return
    if not math.isfinite(report["cpu_side"]["img_s_per_core"]):
        print("the CPU-side difference was lost in noise (too few --stills, or a busy machine): figures not recorded")
        return
    update_figures("scaling_bench", {
        **{k: report[k] for k in ("date", "machine", "load")}, "source": "benchmarks/scaling_bench.py",
        "stills": report["stills"], "rounds": report["rounds"], "cpu_side_preprocess": report["cpu_side"]["preprocess"],
        "cpu_side_img_s_per_core": report["cpu_side"]["img_s_per_core"],
        "cpu_side_megapixels": report["cpu_side"]["megapixels"],
        "boundary_bytes_per_image": report["boundary"]["bytes_per_image"]}, path)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_cpu_side":  # the pinned child of cpu_side()
        ap = argparse.ArgumentParser()
        ap.add_argument("--out", type=Path)
        ap.add_argument("--corpus", action="append")
        ap.add_argument("--preprocess")
        args = ap.parse_args(sys.argv[2:])
        corpus = {k: Path(v) for k, v in (c.split("=", 1) for c in args.corpus)}
        print(json.dumps(cpu_side_once(corpus, args.out, args.preprocess)))  # the parent reads the last line
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stills", type=int, default=1500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tokenizers", default="random:tiny,bundled")
    ap.add_argument("--cpu-side-preprocess", default=",".join(PREPROCESS_MODES),
                    help="Still resizes to measure the CPU side with; the target applies to the default "
                         f"({BuildConfig().preprocess}), which the figures file records.")
    ap.add_argument("--json", dest="json_path")
    ap.add_argument("--figures", default=str(FIGURES_FILE), help="Figures file to update ('' for none).")
    ap.add_argument("--require-targets", action="store_true", help="Exit 2 if a target is missed.")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="uvd-scaling-"))
    try:
        corpus = make_corpus(work / "corpus", args.stills)
        report = {**machine(), "stills": args.stills, "rounds": args.rounds}
        report["boundary"] = boundary_bytes(corpus)
        modes = [m for m in args.cpu_side_preprocess.split(",") if m]
        sides = {m: cpu_side(corpus, work, args.rounds, m) for m in dict.fromkeys([BuildConfig().preprocess, *modes])}
        report["cpu_side"] = sides.pop(BuildConfig().preprocess)
        report["cpu_side_other_preprocess"] = sides
        report["scaling"] = [scaling(corpus, work, t, args.rounds, pin_one=t == "random:tiny")
                             for t in args.tokenizers.split(",") if t]
        report["load_after"] = machine()["load"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_tables(report)
    report["verdicts"] = verdicts(report)
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(json.dumps(report, indent=2))
    if args.figures:
        record_figures(report, args.figures)
    sys.exit(exit_code(report["verdicts"]["identity"], report["verdicts"]["targets"], args.require_targets))


if __name__ == "__main__":
    main()
