"""Shared fixtures: tiny inputs in real layouts, built from real sample media."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sample_media import PHOTOS, photo, write_video


def pytest_configure(config):
    """Under pytest-xdist with as many workers as cores (``make test``: ``-n auto``), each worker
    runs on a core of its own. torch, OpenCV and uvd's builds size their thread pools from the
    cores a process may use (resources.available_cores), so each worker's pools then fit its core,
    instead of every worker running a pool as wide as the machine (OpenMP threads spinning against
    each other: a fifth of the suite's CPU time went to system time). Subprocesses inherit the core.
    Results never depend on thread counts; only the time does."""
    worker, workers = os.environ.get("PYTEST_XDIST_WORKER", ""), os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not (worker.startswith("gw") and workers.isdigit() and hasattr(os, "sched_setaffinity")):
        return
    cores = sorted(os.sched_getaffinity(0))
    if int(workers) >= len(cores):
        os.sched_setaffinity(0, {cores[int(worker[2:]) % len(cores)]})


def make_media_dirs(tmp_path: Path) -> dict[str, Path]:
    """images/ with real photos (one in a sub-folder with a space and unicode in its name)
    and videos/ with one real MP4 long enough for exactly one clip."""
    images, videos = tmp_path / "images", tmp_path / "videos"
    (images / "sub dir é").mkdir(parents=True)
    videos.mkdir()
    for name in PHOTOS[:3]:
        shutil.copyfile(photo(name), images / name)
    shutil.copyfile(photo(PHOTOS[3]), images / "sub dir é" / "rocket.v2.jpg")
    (images / "README.txt").write_text("not an image; ignored")
    write_video(videos / "pan.mp4", 40)  # 40 frames: one clip of 16 at stride 2 (lowered from 8)
    return {"images": images, "videos": videos}


def add_bad_media(media_dirs: dict[str, Path]) -> dict[str, Path]:
    """Adds an unreadable image, an unreadable video and a too-short video."""
    (media_dirs["images"] / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (media_dirs["videos"] / "broken.mp4").write_bytes(b"not a video at all" * 10)
    write_video(media_dirs["videos"] / "short.mp4", 10)
    return media_dirs


@pytest.fixture
def media_dirs(tmp_path: Path) -> dict[str, Path]:
    return make_media_dirs(tmp_path)


@pytest.fixture
def bad_media(media_dirs: dict[str, Path]) -> dict[str, Path]:
    return add_bad_media(media_dirs)
