"""VIPSeg (Miao et al., CVPR 2022), video panoptic segmentation, in its released VIPSeg_720P layout.

    VIPSeg_720P/                       (the spec's root)
      images/<video>/<frame>.jpg
      panomasks/<video>/<frame>.png      one channel, 8 or 16 bit
      panoVIPSeg_categories.json         [{"id": 0, "name": "wall", "isthing": 0, "color": [...]}, ...]

as written by change2_720p.py and read by create_panoptic_video_labels.py (VIPSeg-Dataset repo).
A panomask pixel is 0 for void, the category number ``c`` for "stuff", and ``c * 100 + instance``
for "things" (values of 125 and above; the release's own converter splits at 125); ``c`` is the
JSON id + 1. The ``panoptic`` view colours every pixel by ``c`` through the shared palette
(``colorize_labels``): void stays black and the instances of a category share its colour.
``split_file`` (e.g. the repo's ``train.txt``, one video per line) restricts the videos.
"""

from __future__ import annotations

import json

import numpy as np

from uvd.format import storage
from uvd.format.rejects import Reject
from uvd.media.drawing import colorize_labels
from uvd.media.images import IMAGE_EXTENSIONS, DecodeError
from uvd.pipeline.readers.video_annotations import LabelledFrameSequenceReader, pair_by_name
from uvd.pipeline.records.items import Item

CATEGORIES_FILE = "panoVIPSeg_categories.json"
THING_VALUES_FROM = 125  # create_panoptic_video_labels.py: values < 125 are stuff ids, others id * 100 + instance


def panoptic_categories(panoptic: np.ndarray) -> np.ndarray:
    """Panomask values -> category numbers (0 void, 1..124), as the release's converter reads them."""
    values = np.asarray(panoptic).astype(np.int64)
    return np.where(values < THING_VALUES_FROM, values, values // 100)


def _video_frame(path: str, root: str) -> tuple[str, str] | None:
    """(video, frame id) of ``root/<video>/<frame>.<ext>``; None for anything deeper or hidden."""
    rel = storage.relative(path, root)
    parts = rel.split("/")
    if len(parts) != 2 or storage.is_hidden(rel):
        return None
    return parts[0], parts[1].rsplit(".", 1)[0]


class VIPSegReader(LabelledFrameSequenceReader):
    """Items are VIPSeg videos; frames are the annotated frames; views ``frame`` and ``panoptic``."""

    name = "vipseg"
    index_paths = True
    EXPECTS = "images/<video>/ frames, panomasks/<video>/ PNGs and panoVIPSeg_categories.json"
    views = ("frame", "panoptic")
    ARGS = {"split_file": ""}  # "" = every video that has panomasks

    def item_extra(self, root: str) -> tuple:
        path = storage.join(root, CATEGORIES_FILE)
        try:
            categories = json.loads(storage.read_text(path))
            ids = [int(c["id"]) for c in categories]
        except OSError as e:
            raise DecodeError("missing_file", f"{path}: cannot read the category list ({e})") from e
        except (ValueError, TypeError, KeyError) as e:
            raise DecodeError("unreadable_annotation", f"{path}: not a list of categories with ids ({e})") from e
        if not ids:
            raise DecodeError("unreadable_annotation", f"{path}: no categories")
        return (("categories", max(ids) + 1),)

    def sequences(self, root: str, unit: str):
        images_dir, masks_dir = storage.join(root, "images"), storage.join(root, "panomasks")
        frames = {vf: p for p in storage.match(storage.join(images_dir, "*", "*"))
                  if p.lower().endswith(IMAGE_EXTENSIONS) and (vf := _video_frame(p, images_dir))}
        masks = {vf: p for p in storage.match(storage.join(masks_dir, "*", "*.png"))
                 if (vf := _video_frame(p, masks_dir))}
        videos, missing = pair_by_name(frames, masks)
        for label in missing:
            yield self.reject(storage.relative(label, root), "missing_pair",
                              f"{label}: panomask without its frame in {images_dir}")
        wanted, split_path = sorted(videos), ""
        if self.args["split_file"]:
            split_path = storage.join(root, self.args["split_file"])
            try:
                wanted = sorted({line.strip() for line in storage.read_text(split_path).splitlines() if line.strip()})
            except (OSError, UnicodeDecodeError) as e:
                raise DecodeError("missing_file", f"{split_path}: cannot read the split list ({e})") from e
        for video in wanted:
            unsafe = self.confined(masks_dir, video, key=video, named_by=split_path) if split_path else None
            if isinstance(unsafe, Reject):
                yield unsafe
            elif video in videos:
                yield video, videos[video]
            else:
                yield self.reject(video, "missing_file", f"{split_path}: lists video {video!r}, which has no "
                                                         f"panomasks under {storage.join(masks_dir, video)}")

    def draw(self, labels: np.ndarray, item: Item, path: str) -> np.ndarray:
        if labels.ndim != 2:
            raise DecodeError("unreadable_annotation", f"{path}: a panomask has one channel, this has {labels.shape}")
        categories = panoptic_categories(labels)
        known = int(item.get("categories", 0))
        if int(categories.max()) > known:
            raise DecodeError("unreadable_annotation", f"{path}: category {int(categories.max())} is not among the "
                                                       f"{known} of {CATEGORIES_FILE}")
        return colorize_labels(categories)
