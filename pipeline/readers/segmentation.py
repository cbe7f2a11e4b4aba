"""Photos paired with label maps of class ids, matched by name under two folders.

The reader args say where each half lives and how its file names end, so one reader serves the
releases that ship this way:

- ADE20K (ADEChallengeData2016/): ``images/training/ADE_train_00000001.jpg`` with
  ``annotations/training/ADE_train_00000001.png`` (8-bit, 0 = other, 1..150 the classes);
- Cityscapes: ``leftImg8bit/train/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` with
  ``gtFine/train/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png`` (8-bit label ids 0..33);
  gtFine's other files (``_color.png``, ``_instanceIds.png``, ``_polygons.json``) do not end
  with the label suffix and are ignored.

A pair is the image and the label map with the same path below their folders once the suffixes
are cut. Either half without its partner is a ``missing_pair`` reject naming the file found.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from uvd.format import storage
from uvd.format.rejects import Reject
from uvd.media.drawing import colorize_labels
from uvd.media.images import DecodeError
from uvd.pipeline.readers.base import DecodeContext, Reader, read_image, read_label_png
from uvd.pipeline.records.items import Item, Picture


def files_by_stem(folder: str, suffix: str) -> dict[str, str]:
    """{path below ``folder`` without ``suffix``: full path} of the files ending with ``suffix``."""
    found = {}
    for path in storage.files_under(folder):
        rel = storage.relative(path, folder)
        if rel.endswith(suffix) and not storage.is_hidden(rel):
            found[rel[:-len(suffix)]] = path
    return found


def class_ids(labels: np.ndarray, path: str) -> np.ndarray:
    """A decoded label map -> (H, W) class ids; an RGB map is accepted only when it is grey."""
    if labels.ndim == 2:
        return labels
    if labels.ndim == 3 and (labels == labels[..., :1]).all():
        return labels[..., 0]
    raise DecodeError("bad_label_map", f"{path}: a colour image, not a single-channel map of class ids")


class SegmentationMasksReader(Reader):
    """Image + label-map pairs; views: the photo, and its label map through the fixed palette."""

    name = "segmentation_masks"
    EXPECTS = "{image_dir}/*{image_suffix} images with {label_dir}/*{label_suffix} label maps"
    stills = True
    views = ("image", "segmentation")
    ARGS = {
        "image_dir": "images/training",  # relative to the root (ADE20K's defaults)
        "label_dir": "annotations/training",
        "image_suffix": ".jpg",
        "label_suffix": ".png",
    }

    def found(self, root: str) -> bool:
        try:
            return bool(storage.match(storage.join(root, self.args["image_dir"], "**" + self.args["image_suffix"])))
        except OSError:
            return False

    def items(self, root: str, unit: str) -> Iterator[Item | Reject]:
        image_dir, label_dir = storage.join(unit, self.args["image_dir"]), storage.join(unit, self.args["label_dir"])
        images = files_by_stem(image_dir, self.args["image_suffix"])
        labels = files_by_stem(label_dir, self.args["label_suffix"])
        if not images and not labels:
            raise DecodeError("missing_file", f"{image_dir}: no *{self.args['image_suffix']} images, and {label_dir}: "
                                              f"no *{self.args['label_suffix']} label maps")
        for stem in sorted(images.keys() | labels.keys()):
            image, label = images.get(stem), labels.get(stem)
            if image and label:
                yield Item(source=self.source, key=storage.relative(image, root), paths=(image, label))
            elif image:
                expected = storage.join(label_dir, stem + self.args["label_suffix"])
                yield self.reject(storage.relative(image, root), "missing_pair",
                                  f"{image}: no label map {expected}")
            else:
                expected = storage.join(image_dir, stem + self.args["image_suffix"])
                yield self.reject(storage.relative(label, root), "missing_pair", f"{label}: no image {expected}")

    def pictures(self, item: Item, requests, ctx: DecodeContext) -> dict[tuple[int, str], Picture]:
        self.check_views(requests, item)
        image_path, label_path = item.paths
        wanted = {v for _, v in requests}
        drawn: dict[str, Picture] = {}
        shapes = {}
        if "image" in wanted:
            photo = read_image(image_path, ctx)
            shapes[image_path] = photo.shape[:2]
            drawn["image"] = Picture(photo)
        if "segmentation" in wanted:
            labels = class_ids(read_label_png(label_path, ctx), label_path)
            shapes[label_path] = labels.shape[:2]
            drawn["segmentation"] = Picture(colorize_labels(labels))
        if len(set(shapes.values())) > 1:
            raise DecodeError("size_mismatch", "; ".join(f"{p}: {s[1]}x{s[0]}" for p, s in shapes.items()))
        return {(f, v): drawn[v] for f, v in requests}
