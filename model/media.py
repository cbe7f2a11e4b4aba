"""Pixels in and out of the evals: image and video files to 256x256 frames, frames to tokens and back,
and the PNG / MP4 files the eval and generate commands write.

Every path to pixels goes through :func:`read_image` (stills) or :func:`read_clip` (videos and frame
folders), which decode and resize as the build does (``uvd.media``: LVM's still resize, and video
frames decoded in the guarded child process and resized as LVM's reader), so an eval sees the pixels
a training sentence was made from. A file that cannot be read raises :class:`MediaError`, one line
naming the file and the reason.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import cv2
import numpy as np

from uvd.media.guarded_video import GuardedVideoDecoder, VideoGuard
from uvd.media.images import IMAGE_EXTENSIONS, DecodeError, decode_image, resize_still
from uvd.media.video import VIDEO_EXTENSIONS
from uvd.tokenizer.frames import DEFAULT_BATCH_SIZE, decode_frames, encode_frames

SIZE = 256  # the tokenizer's input side: 256 tokens per image at f16
MAX_PIXELS = 89_478_485  # PIL's decompression-bomb limit, as the build's default
VIDEO_GUARD = VideoGuard(timeout_s=120.0)  # one eval clip: open + 16 seeks


class MediaError(ValueError):
    """An input file the evals cannot use; the message names the file and the reason."""


def _media_error(path, error: DecodeError) -> MediaError:
    return MediaError(f"{path}: {error.message.removeprefix(f'{path}: ')}")


def read_image(path: str | Path) -> np.ndarray:
    """Image file -> (256, 256, 3) uint8 RGB, decoded and resized as the build does."""
    try:
        data = Path(path).read_bytes()
        return resize_still(decode_image(data, max_pixels=MAX_PIXELS, name=str(path)), SIZE)
    except OSError as e:
        raise MediaError(f"{path}: cannot read ({e.strerror or e})") from None
    except DecodeError as e:
        raise _media_error(path, e) from None


def natural_key(path: Path) -> list:
    """Sort key that orders numbers by value: ``frame9.png`` before ``frame10.png``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def frame_files(folder: str | Path) -> list[Path]:
    """The image files of a frame folder, in natural order (hidden files skipped)."""
    return sorted((p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS
                   and not p.name.startswith(".")), key=natural_key)


def clip_indices(total: int, n_frames: int, stride: int, start: random.Random | int = 0) -> list[int] | None:
    """LVM's read_frames_from_video: ``n_frames`` indices ``stride`` apart, the stride lowered to fit,
    from a random start (drawn from ``start`` when it is a Random) or frame ``start`` (moved back to
    fit); None when the video is shorter than ``n_frames``."""
    if total < n_frames:
        return None
    used = min(stride, (total - 1) // (n_frames - 1)) if n_frames > 1 else stride
    last_start = total - (n_frames - 1) * used - 1
    first = start.randint(0, last_start) if isinstance(start, random.Random) else min(max(start, 0), last_start)
    return [first + used * j for j in range(n_frames)]


def read_clip(path: str | Path, n_frames: int, stride: int, start: random.Random | int = 0,
              guard: VideoGuard = VIDEO_GUARD) -> np.ndarray | None:
    """A video file or a folder of frames -> (n_frames, 256, 256, 3) uint8 frames ``stride`` apart
    (see :func:`clip_indices`); None when it holds fewer than ``n_frames`` frames. Video files are
    decoded in the build's guarded child process (timeout, memory limit)."""
    path = Path(path)
    if path.is_dir():
        files = frame_files(path)
        indices = clip_indices(len(files), n_frames, stride, start)
        return None if indices is None else np.stack([read_image(files[i]) for i in indices])
    decoder = GuardedVideoDecoder(guard)
    try:
        indices = clip_indices(decoder.open(str(path), str(path)), n_frames, stride, start)
        return None if indices is None else decoder.read_clip(str(path), indices, SIZE)
    except DecodeError as e:
        raise _media_error(path, e) from None
    finally:
        decoder.close()


def list_videos(folder: str | Path) -> list[Path]:
    """Video files under ``folder`` (recursively) and frame folders (folders holding images), sorted."""
    root = Path(folder)
    if not root.is_dir():
        raise MediaError(f"{folder}: not a folder")
    found = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS]
    found += [d for d in [root, *root.rglob("*")] if d.is_dir() and any(
        p.suffix.lower() in IMAGE_EXTENSIONS for p in d.iterdir())]
    return sorted(found)


def encode_images(tokenizer, images: np.ndarray) -> np.ndarray:
    """(N, 256, 256, 3) uint8 -> (N, 256) int64 token ids, batched as the build batches them."""
    if not len(images):
        return np.zeros((0, tokenizer.info.tokens_per_image), np.int64)
    return encode_frames(tokenizer, images, DEFAULT_BATCH_SIZE).astype(np.int64)


def decode_images(tokenizer, tokens: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """(N, 256) token ids -> (N, 256, 256, 3) uint8 through the tokenizer's decoder, in batches."""
    tokens = np.asarray(tokens).reshape(-1, tokenizer.info.tokens_per_image)
    return np.concatenate([decode_frames(tokenizer, tokens[start:start + batch_size])
                           for start in range(0, len(tokens), batch_size)])


def strip(rows: list[np.ndarray], *, pad: int = 4) -> np.ndarray:
    """Rows of frames [(n_i, H, W, 3)] -> one image, a row per entry, frames left to right, white gutters."""
    h, w = np.asarray(rows[0][0]).shape[:2]
    cols = max(len(r) for r in rows)
    canvas = np.full((len(rows) * (h + pad) - pad, cols * (w + pad) - pad, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, frame in enumerate(row):
            canvas[i * (h + pad):i * (h + pad) + h, j * (w + pad):j * (w + pad) + w] = frame
    return canvas


def write_mp4(path: str | Path, frames: np.ndarray, fps: float = 4.0) -> None:
    """(N, H, W, 3) uint8 RGB -> an MPEG-4 Part 2 MP4 (opencv's built-in ``mp4v`` encoder)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise MediaError(f"{path}: opencv cannot open an mp4v writer here")
    for frame in frames:
        writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
    writer.release()
