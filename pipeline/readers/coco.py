"""COCO 2017 as downloaded: ``annotations/instances_train2017.json`` (or ``person_keypoints_...``)
and the photos it names in ``train2017/``.

One unit per annotation file: a file is one JSON document, so it is parsed whole, once, by one
worker (instances_train2017.json is ~450 MB). Its items are the images that carry annotations of
the kind the spec draws (``annotations`` reader arg), each with just those annotations in
``Item.annotation``, so rendering never reopens the JSON:

- ``boxes``: images with at least one annotation (crowd regions included: they are ground truth);
- ``keypoints``: images with at least one person whose ``num_keypoints`` > 0;
- ``segmentation``: images with at least one non-empty mask (polygons or crowd RLE);
- ``none``: every image in the file, photo only (for model-made depth, normals, edges).

Masks are painted in decreasing area, so a small object over a large one stays visible. Crowd
masks are COCO run-length encodings (RLE), column-major, in either form the API writes: a list
of counts, or the compressed string of ``maskApi.c`` (6-bit chunks, counts after the second
stored as differences); both are decoded here with numpy, without pycocotools.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np

from uvd.format import storage
from uvd.format.rejects import Reject
from uvd.media.drawing import JOINTS, colorize_labels, draw_boxes, draw_keypoints
from uvd.media.images import DecodeError
from uvd.pipeline.readers.base import DecodeContext, Reader, read_image
from uvd.pipeline.records.items import Item, Picture, to_json

# What each ``annotations`` mode keeps, and the one annotation view it can draw.
MODE_VIEW = {"boxes": "boxes", "keypoints": "keypoints", "segmentation": "segmentation", "none": None}


def _r(value: Any) -> float:
    """Coordinates to 0.1 px: finer than any drawing, and keeps Item.annotation small."""
    return round(float(value), 1)


# --- COCO run-length encoding ------------------------------------------------------------------

def rle_string_to_counts(text: str) -> list[int]:
    """COCO's compressed RLE string -> run lengths (maskApi.c rleFrString)."""
    counts: list[int] = []
    pos = 0
    while pos < len(text):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(text):
                raise ValueError("RLE string ends inside a count")
            chunk = ord(text[pos]) - 48
            if not 0 <= chunk < 64:
                raise ValueError(f"RLE string has a character out of range: {text[pos]!r}")
            value |= (chunk & 0x1F) << shift
            more = bool(chunk & 0x20)
            pos += 1
            shift += 5
            if not more and chunk & 0x10:  # sign bit of the last chunk
                value |= -1 << shift
        if len(counts) > 2:  # from the third count on, the string stores the change from two counts back
            value += counts[-2]
        counts.append(value)
    return counts


def rle_counts(rle: dict) -> list[int]:
    counts = rle["counts"]
    if isinstance(counts, str):
        return rle_string_to_counts(counts)
    if isinstance(counts, list) and all(isinstance(c, int) for c in counts):
        return counts
    raise ValueError("RLE counts must be a list of integers or a compressed string")


def decode_rle(rle: dict) -> np.ndarray:
    """A COCO RLE ``{"size": [h, w], "counts": ...}`` -> (h, w) uint8 mask of 0/1.

    Runs alternate 0, 1, 0, ... starting with 0 and cover the mask in column-major order."""
    h, w = (int(v) for v in rle["size"])
    counts = np.asarray(rle_counts(rle), dtype=np.int64)
    if (counts < 0).any() or int(counts.sum()) != h * w:
        raise ValueError(f"RLE counts cover {int(counts.sum())} pixels (negative runs: {bool((counts < 0).any())}), "
                         f"not the {h}x{w} = {h * w} of its size")
    flat = np.repeat((np.arange(len(counts)) % 2).astype(np.uint8), counts)
    return flat.reshape(w, h).T


# --- listing ----------------------------------------------------------------------------------

def image_folder_of(annotation_file: str) -> str:
    """COCO's convention: ``annotations/instances_train2017.json`` describes ``train2017/``."""
    stem = posixpath.basename(annotation_file).rsplit(".", 1)[0]
    if "_" not in stem:
        raise ValueError(f"{annotation_file}: cannot tell its image folder from the name (expected "
                         f"<kind>_<split>.json, e.g. instances_train2017.json); set reader_args image_dir")
    return stem.rsplit("_", 1)[1]


def _boxes(anns: list[dict]) -> list[list[float]]:
    out = []
    for ann in anns:
        x, y, w, h = (float(v) for v in ann["bbox"])
        if w < 0 or h < 0:
            raise ValueError(f"annotation {ann.get('id')}: negative box size {ann['bbox']}")
        out.append([_r(x), _r(y), _r(w), _r(h), int(ann["category_id"])])
    return out


def _people(anns: list[dict]) -> list[list[float]]:
    out = []
    for ann in anns:
        if int(ann.get("num_keypoints", 0)) <= 0:
            continue
        points = [float(v) for v in ann["keypoints"]]
        if len(points) != JOINTS["coco17"] * 3:
            raise ValueError(f"annotation {ann.get('id')}: {len(points)} keypoint values, not 17 x (x, y, v)")
        out.append([_r(v) for v in points])
    return out


def _masks(anns: list[dict], size: tuple[int, int]) -> list[dict]:
    out = []
    for ann in sorted(anns, key=lambda a: (-float(a.get("area", 0)), a.get("id", 0))):
        seg, cat = ann.get("segmentation"), int(ann["category_id"])
        if isinstance(seg, list):
            polygons = [[_r(v) for v in poly] for poly in seg if poly]
            if any(len(p) % 2 or len(p) < 6 for p in polygons):
                raise ValueError(f"annotation {ann.get('id')}: a polygon is not a list of >= 3 (x, y) points")
            if polygons:
                out.append({"category": cat, "polygons": polygons})
        elif isinstance(seg, dict):
            if tuple(int(v) for v in seg["size"]) != size:
                raise ValueError(f"annotation {ann.get('id')}: RLE size {seg['size']} is not the image's {list(size)}")
            decode_rle(seg)  # validate now, so a bad mask is rejected with its JSON file named
            out.append({"category": cat, "rle": {"size": list(size), "counts": seg["counts"]}})
        elif seg not in (None, []):
            raise ValueError(f"annotation {ann.get('id')}: segmentation is neither polygons nor RLE")
    return out


class CocoReader(Reader):
    """COCO annotation JSON + photo folder; views: the photo, its boxes, skeletons, or instance masks."""

    name = "coco"
    index_paths = True
    EXPECTS = "the COCO annotation file(s) {annotation_files} and the photo folder they describe"
    stills = True
    views = ("image", "boxes", "keypoints", "segmentation")
    ARGS = {
        "annotation_files": ("annotations/instances_train2017.json",),  # relative to the root; one unit each
        "image_dir": "",  # default: the split the file names (instances_train2017.json -> train2017/)
        "annotations": "boxes",  # which items and annotations: boxes | keypoints | segmentation | none
    }

    def __init__(self, source, args=None, split="train"):
        super().__init__(source, args, split)
        if self.args["annotations"] not in MODE_VIEW:
            raise ValueError(f"reader coco: annotations={self.args['annotations']!r}; known: {sorted(MODE_VIEW)}")
        files = self.args["annotation_files"]
        self.annotation_files = (files,) if isinstance(files, str) else tuple(files)

    def units(self, root: str) -> list[str]:
        return [storage.join(root, f) for f in self.annotation_files]

    def found(self, root: str) -> bool:
        try:
            return all(storage.exists(unit) for unit in self.units(root))
        except OSError:
            return False

    def items(self, root: str, unit: str) -> Iterator[Item | Reject]:
        rel = storage.relative(unit, root)
        try:
            data = json.loads(storage.read_text(unit))
        except OSError as e:
            yield self.reject(rel, "unreadable_annotation", f"{unit}: {e}")
            return
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            yield self.reject(rel, "unreadable_annotation", f"{unit}: not valid JSON ({e})")
            return
        if not (isinstance(data, dict) and isinstance(data.get("images"), list)
                and isinstance(data.get("annotations"), list)):
            yield self.reject(rel, "unreadable_annotation", f"{unit}: not a COCO annotation file (needs 'images' "
                                                            f"and 'annotations' lists)")
            return
        image_dir = storage.join(root, self.args["image_dir"] or image_folder_of(rel))
        images: dict[Any, dict] = {}
        for image in data["images"]:
            if isinstance(image, dict) and isinstance(image.get("id"), (int, str)):
                images[image["id"]] = image
            else:
                yield self.reject(f"{rel}#images", "bad_annotation", f"{unit}: an image entry without an id: "
                                                                     f"{str(image)[:80]}")
        by_image: dict[Any, list[dict]] = {}
        for ann in data["annotations"]:
            image_id = ann.get("image_id") if isinstance(ann, dict) else None
            if isinstance(image_id, (int, str)) and image_id in images:
                by_image.setdefault(image_id, []).append(ann)
            else:
                yield self.reject(f"{rel}#annotation={ann.get('id') if isinstance(ann, dict) else '?'}",
                                  "unknown_image", f"{unit}: annotation names image id {image_id!r}, which is "
                                                   f"not in its images list")
        for image_id, image in images.items():
            key = str(image.get("file_name") or f"{rel}#image={image_id}")
            try:
                annotation = self._annotation(image, sorted(by_image.get(image_id, []), key=lambda a: a.get("id", 0)))
            except (KeyError, TypeError, ValueError) as e:
                yield self.reject(key, "bad_annotation", f"{unit}: image id {image_id}: {type(e).__name__}: {e}")
                continue
            if annotation is None:
                continue
            path = self.confined(image_dir, key, key=key, named_by=f"{unit}: image id {image_id}")
            yield path if isinstance(path, Reject) else Item(source=self.source, key=key, paths=(path,),
                                                             annotation=to_json(annotation),
                                                             extra=(("annotation_file", unit),))

    def _annotation(self, image: dict, anns: list[dict]) -> dict | None:
        """The item's annotation JSON, or None when the image has nothing of the wanted kind."""
        if not image.get("file_name"):
            raise ValueError("no file_name")
        size = (int(image["height"]), int(image["width"]))
        mode = self.args["annotations"]
        if mode == "none":
            return {"size": list(size)}
        if mode == "boxes":
            found = _boxes(anns)
        elif mode == "keypoints":
            found = _people(anns)
        else:
            found = _masks(anns, size)
        return {"size": list(size), mode: found} if found else None

    # --- rendering ------------------------------------------------------------------------------

    def pictures(self, item: Item, requests, ctx: DecodeContext) -> dict[tuple[int, str], Picture]:
        self.check_views(requests, item)
        mode = self.args["annotations"]
        wanted = {v for _, v in requests}
        unsupported = sorted(v for v in wanted if v != "image" and v != MODE_VIEW[mode])
        if unsupported:
            raise ValueError(f"reader coco with annotations={mode!r} keeps no data for view(s) {unsupported}")
        ann = item.annotation_json()
        h, w = ann["size"]
        photo = None
        if wanted & {"image", "boxes"}:
            photo = read_image(item.paths[0], ctx)
            if photo.shape[:2] != (h, w):
                raise DecodeError("size_mismatch", f"{item.paths[0]}: decoded {photo.shape[1]}x{photo.shape[0]}, but "
                                                   f"{item.get('annotation_file')} says {w}x{h}")
        drawn: dict[str, Picture] = {}
        if "image" in wanted:
            drawn["image"] = Picture(photo)
        if "boxes" in wanted:
            boxes = ann["boxes"]
            drawn["boxes"] = Picture(draw_boxes(photo, [b[:4] for b in boxes], [b[4] for b in boxes]))
        if "keypoints" in wanted:
            drawn["keypoints"] = Picture(draw_keypoints((h, w), ann["keypoints"], "coco17"))
        if "segmentation" in wanted:
            drawn["segmentation"] = Picture(colorize_labels(self._paint(item, ann["segmentation"], (h, w))))
        return {(f, v): drawn[v] for f, v in requests}

    @staticmethod
    def _paint(item: Item, masks: list[dict], size: tuple[int, int]) -> np.ndarray:
        """Category ids painted mask by mask (largest first) on a 0 background."""
        labels = np.zeros(size, np.int32)
        for m in masks:
            if "rle" in m:
                try:
                    inside = decode_rle(m["rle"]).astype(bool)
                except (KeyError, TypeError, ValueError) as e:
                    raise DecodeError("bad_annotation", f"{item.get('annotation_file')}: {item.key}: {e}") from e
            else:
                canvas = np.zeros(size, np.uint8)
                polygons = [np.rint(np.asarray(p, np.float64).reshape(-1, 2)).astype(np.int32) for p in m["polygons"]]
                cv2.fillPoly(canvas, polygons, 1)
                inside = canvas.astype(bool)
            labels[inside] = m["category"]
        return labels
