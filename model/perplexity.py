"""LVM's perplexity evals on image files: ``{input, target}`` records and video clips.

- records (evaluation/vqlm_demo/eval_perplexity.py): the input images (few-shot examples included)
  are the context, the target images are scored: an example's perplexity is exp of the mean
  negative log-likelihood of all its target tokens (full vocabulary, no BOS), and a task's figure is
  the mean of its examples' perplexities;
- videos (eval_video_perplexity.py): per video file or frame folder, 16 frames ``stride`` apart
  (the stride lowered to fit, a seeded random start), the first 15 the context and the last the
  target. A video shorter than 16 frames is counted as skipped (LVM draws another one instead).

The third input, a build's stored sentences, is model/evaluate.py's ``perplexity_by_task``; all
three report the same per-task table (``summarize``).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from uvd.model.evaluate import summarize, target_nll
from uvd.model.media import list_videos, read_clip, read_image
from uvd.model.records import Record

TOKENS_PER_IMAGE = 256


@dataclass(frozen=True)
class VideoConfig:
    context_frames: int = 15
    target_frames: int = 1
    stride: int = 8
    seed: int = 0  # LVM's random start, made reproducible
    max_videos: int = 0  # per folder; 0 = all


class ImageTokens:
    """Image path -> its token ids, each file read and encoded once (few-shot prompts share images)."""

    def __init__(self, encode: Callable[[np.ndarray], np.ndarray]):
        self.encode = encode
        self.cache: dict[Path, np.ndarray] = {}

    def __call__(self, paths: Iterable[Path]) -> np.ndarray:
        paths = list(paths)
        missing = list(dict.fromkeys(p for p in paths if p not in self.cache))
        if missing:
            for p, t in zip(missing, self.encode(np.stack([read_image(p) for p in missing]))):
                self.cache[p] = t
        return np.stack([self.cache[p] for p in paths])


def fits(model, n_images: int) -> bool:
    return n_images * TOKENS_PER_IMAGE <= model.config.max_seq_len


def records_perplexity(model, records: Iterable[Record], tokens: ImageTokens, device="cpu") -> dict[str, dict]:
    """{task: summary} over ``{input, target}`` records; records longer than the model's window are skipped."""
    nlls: dict[str, list[float]] = defaultdict(list)
    skipped: dict[str, int] = defaultdict(int)
    for record in records:
        if not fits(model, len(record.inputs) + len(record.targets)):
            skipped[record.task] += 1
            continue
        (nll,) = target_nll(model, tokens(record.inputs), [tokens(record.targets)], device)
        nlls[record.task].append(nll)
    return summarize(nlls, skipped)


def video_perplexity(model, folders: Iterable[str | Path], encode: Callable[[np.ndarray], np.ndarray],
                     cfg: VideoConfig = VideoConfig(), device="cpu") -> dict[str, dict]:
    """{folder name: summary}: each video's last frame(s) given the frames before."""
    n_frames = cfg.context_frames + cfg.target_frames
    if not fits(model, n_frames):
        raise ValueError(f"{n_frames} frames do not fit the model's {model.config.max_seq_len} tokens")
    nlls: dict[str, list[float]] = defaultdict(list)
    skipped: dict[str, int] = defaultdict(int)
    for folder in folders:
        task = Path(folder).resolve().name
        videos = list_videos(folder)
        for video in videos[:cfg.max_videos or None]:
            rng = random.Random(f"{cfg.seed}:{video.relative_to(folder)}")
            frames = read_clip(video, n_frames, cfg.stride, rng)
            if frames is None:
                skipped[task] += 1
                continue
            ids = encode(frames)
            (nll,) = target_nll(model, ids[:cfg.context_frames], [ids[cfg.context_frames:]], device)
            nlls[task].append(nll)
    return summarize(nlls, skipped)
