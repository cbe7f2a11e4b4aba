"""Video generation as LVM's generate_videos.py: 12 context frames ``stride`` apart, then 4 new
frames per candidate (generate_once's whole-frame windows), shown as a strip (a row per candidate:
the context, then its new frames) and as an MP4 whose frames hold the candidates side by side."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from uvd.media.images import write_png
from uvd.model.generate import GenerationConfig, generate_frames
from uvd.model.media import MediaError, decode_images, encode_images, read_clip, strip, write_mp4


def context_clip(video: str | Path, n_context: int, stride: int, *, start: int | None = None,
                 seed: int = 0) -> np.ndarray:
    """(n_context, 256, 256, 3) frames of a video file or frame folder, from frame ``start`` or, as
    LVM's reader, from a random start (seeded)."""
    frames = read_clip(video, n_context, stride, random.Random(f"{seed}:{video}") if start is None else start)
    if frames is None:
        raise MediaError(f"{video}: fewer than {n_context} frames")
    return frames


def continue_video(model, tokenizer, video: str | Path, out_prefix: str | Path, cfg: GenerationConfig, *,
                   n_context: int = 12, stride: int = 8, start: int | None = None, fps: float = 4.0,
                   device="cpu") -> tuple[Path, Path]:
    """Generate ``cfg.n_new_frames`` after ``n_context`` frames of ``video``; write OUT.png and OUT.mp4."""
    frames = context_clip(video, n_context, stride, start=start, seed=cfg.seed)
    new = generate_frames(model, encode_images(tokenizer, frames), cfg, device)  # (candidates, n_new, 256)
    pixels = decode_images(tokenizer, new.reshape(-1, new.shape[-1])).reshape(*new.shape[:2], *frames.shape[1:])
    marked = pixels.copy()
    marked[:, :, :4] = marked[:, :, -4:] = (255, 0, 0)  # red edges: generated
    png, mp4 = Path(f"{out_prefix}.png"), Path(f"{out_prefix}.mp4")
    write_png(png, strip([np.concatenate([frames, row]) for row in marked]))
    movie = [np.concatenate([frame] * cfg.n_candidates, axis=1) for frame in frames]
    movie += [np.concatenate(list(marked[:, t]), axis=1) for t in range(cfg.n_new_frames)]
    write_mp4(mp4, np.stack(movie), fps)
    return png, mp4

