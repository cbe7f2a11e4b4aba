"""Frames for tokenizer training: image and video folders -> 256x256 RGB uint8 frames in memory.

A training file is a photo (one frame) or a video (every ``frame_stride``-th frame). The
train/validation split is by file, so validation frames come from photos and videos the tokenizer
never trained on. Everything is deterministic: files are sorted, the split is
explicit (``holdout`` names) or drawn by a seeded generator, and training batches (frame choice,
random crop, horizontal flip) come from a torch.Generator whose state a checkpoint saves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from uvd.media.images import decode_image, resize_still_fast
from uvd.media.video import open_video, read_frames

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
MAX_PIXELS = 100_000_000


@dataclass(frozen=True)
class MediaFile:
    """One photo or video to train on (not a build's ``pipeline.records.Item``)."""

    path: Path
    kind: str  # "image" or "video"

    @property
    def name(self) -> str:
        return self.path.name


def list_media_files(image_dirs=(), video_dirs=()) -> list[MediaFile]:
    """Every image and video file directly or recursively under the given folders, sorted."""
    files: list[MediaFile] = []
    for kind, dirs, suffixes in (("image", image_dirs, IMAGE_SUFFIXES), ("video", video_dirs, VIDEO_SUFFIXES)):
        for d in dirs:
            d = Path(d)
            if not d.is_dir():
                raise FileNotFoundError(f"{kind} folder {d} does not exist")
            found = sorted(p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                raise FileNotFoundError(f"no {kind} files ({', '.join(suffixes)}) under {d}")
            files.extend(MediaFile(p, kind) for p in found)
    if not files:
        raise ValueError("no training data: give at least one image or video folder")
    return files


def split_files(files: list[MediaFile], *, holdout: tuple[str, ...] = (), val_fraction: float = 0.0,
                seed: int = 0) -> tuple[list[MediaFile], list[MediaFile]]:
    """(train, val) by whole files: the names in ``holdout`` if given, else a seeded
    ``val_fraction`` of the files (at least one when the fraction is positive)."""
    if holdout:
        names = {f.name for f in files}
        missing = sorted(set(holdout) - names)
        if missing:
            raise ValueError(f"held-out file(s) {missing} are not among the training files")
        val = [f for f in files if f.name in set(holdout)]
    elif val_fraction > 0:
        n = max(1, round(len(files) * val_fraction))
        order = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed)).tolist()
        chosen = set(order[:n])
        val = [f for k, f in enumerate(files) if k in chosen]
    else:
        val = []
    train = [f for f in files if f not in val]
    if not train:
        raise ValueError("every file is held out: nothing left to train on")
    return train, val


def load_frames(files: list[MediaFile], *, size: int, frame_stride: int = 1,
                max_frames_per_video: int = 0) -> np.ndarray:
    """(N, size, size, 3) uint8 RGB frames of ``files``, each plainly resized (LVM's default)."""
    if frame_stride <= 0:
        raise ValueError("frame_stride must be positive")
    frames: list[np.ndarray] = []
    for file in files:
        if file.kind == "image":
            frame = decode_image(file.path.read_bytes(), max_pixels=MAX_PIXELS, name=str(file.path))
            frames.append(resize_still_fast(frame, size))
        else:
            reader = open_video(str(file.path), name=str(file.path))
            indices = list(range(0, len(reader), frame_stride))
            if max_frames_per_video > 0:
                indices = indices[:max_frames_per_video]
            for frame in read_frames(reader, indices, name=str(file.path)):
                frames.append(resize_still_fast(np.ascontiguousarray(frame), size))
            del reader
    if not frames:
        return np.zeros((0, size, size, 3), np.uint8)
    return np.stack(frames)


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255.0).contiguous()


class CropSampler:
    """Seeded training batches: random frames (with replacement), random ``crop`` x ``crop``
    windows and random horizontal flips. ``state()``/``load_state()`` make resume exact."""

    def __init__(self, frames: torch.Tensor, *, crop: int, seed: int):
        if frames.ndim != 4 or frames.shape[0] == 0:
            raise ValueError("need a non-empty (N, 3, H, W) frame tensor")
        side = frames.shape[-1]
        if not 0 < crop <= side or frames.shape[-2] != side:
            raise ValueError(f"crop {crop} must be in (0, {side}] for square {side}x{side} frames")
        self.frames = frames
        self.crop = crop
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self, batch_size: int) -> torch.Tensor:
        g = self.generator
        n, _, side, _ = self.frames.shape
        which = torch.randint(n, (batch_size,), generator=g)
        offsets = torch.randint(side - self.crop + 1, (batch_size, 2), generator=g)
        flips = torch.rand(batch_size, generator=g) < 0.5
        out = []
        for k in range(batch_size):
            y, x = offsets[k].tolist()
            patch = self.frames[which[k], :, y:y + self.crop, x:x + self.crop]
            out.append(patch.flip(-1) if flips[k] else patch)
        return torch.stack(out)

    def state(self) -> torch.Tensor:
        return self.generator.get_state()

    def load_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)
