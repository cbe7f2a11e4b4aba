"""Hand14K: the EGTEA Gaze+ hand masks ("Hand Masks 14K", ``hand14k.zip``; Li et al., ECCV 2018).

LVM's "Hand14K" is the 14K-frame hand-mask set of EGTEA Gaze+ (cooking videos, first person),
downloaded as ``hand14k.zip``. Public loaders of it read two flat folders with one stem per frame:

    hand14k/                 (the spec's root)
      Images/<name>.jpg
      Masks/<name>.png       hand pixels non-zero (255), background 0

What could NOT be verified is how ``<name>`` encodes the source video and frame. This reader takes
``<name>`` to end in the frame number (``<video>_<number>``, ``<video>-<number>`` or
``<video>_frame_<number>``) and groups the masks of one video, in frame-number order, into an
item; a name without a trailing number is a one-frame video. Frames in per-video sub-folders
(``Images/<video>/<frame>.jpg`` with ``Masks/<video>/<frame>.png``) are grouped by folder instead.
The ``mask`` view is ``draw_mask``: hands white on black.
"""

from __future__ import annotations

import re

import numpy as np

from uvd.format import storage
from uvd.media.drawing import draw_mask
from uvd.media.images import IMAGE_EXTENSIONS
from uvd.pipeline.readers.video_annotations import LabelledFrameSequenceReader, pair_by_name
from uvd.pipeline.records.items import Item

FLAT_NAME = re.compile(r"^(?P<video>.*?)(?:[_-]?frame)?[_-]?(?P<frame>\d+)$")


def video_and_frame(relative_path: str) -> tuple[str, str]:
    """(video, frame id) of a path relative to Images/ or Masks/ (see the module docstring)."""
    stem = relative_path.rsplit(".", 1)[0]
    if "/" in stem:
        video, frame = stem.rsplit("/", 1)
        return video, frame
    m = FLAT_NAME.match(stem)
    if m is None or not m.group("video"):
        return stem, "0"
    return m.group("video"), m.group("frame")


def _index(folder: str, extensions: tuple[str, ...]) -> tuple[dict[tuple[str, str], str], list[tuple[str, str]]]:
    """{(video, frame id): path} of a folder, and (path, kept path) for names that parse the same."""
    out: dict[tuple[str, str], str] = {}
    clashes = []
    for path in storage.files_under(folder):
        rel = storage.relative(path, folder)
        if rel.lower().endswith(extensions) and not storage.is_hidden(rel):
            key = video_and_frame(rel)
            if key in out:
                clashes.append((path, out[key]))
            else:
                out[key] = path
    return out, clashes


class Hand14KReader(LabelledFrameSequenceReader):
    """Items are EGTEA Gaze+ videos; frames are their hand-masked frames; views ``frame`` and ``mask``."""

    name = "hand14k"
    EXPECTS = "{images_dir}/ frames with {masks_dir}/ PNG hand masks"
    views = ("frame", "mask")
    ARGS = {"images_dir": "Images", "masks_dir": "Masks"}

    def sequences(self, root: str, unit: str):
        images_dir = storage.join(root, self.args["images_dir"])
        masks_dir = storage.join(root, self.args["masks_dir"])
        frames, frame_clashes = _index(images_dir, IMAGE_EXTENSIONS)
        masks, mask_clashes = _index(masks_dir, (".png",))
        for path, kept in frame_clashes + mask_clashes:
            yield self.reject(storage.relative(path, root), "duplicate_frame",
                              f"{path}: names the same video frame as {kept}, which is used")
        videos, missing = pair_by_name(frames, masks)
        for label in missing:
            yield self.reject(storage.relative(label, root), "missing_pair",
                              f"{label}: hand mask without its frame in {images_dir}")
        yield from sorted(videos.items())

    def draw(self, labels: np.ndarray, item: Item, path: str) -> np.ndarray:
        return draw_mask(labels.any(axis=2) if labels.ndim == 3 else labels)
