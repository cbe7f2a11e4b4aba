"""Folders of photos: ImageNet (ILSVRC2012) as users download it, and plain image folders.

ImageNet's train split is one folder per class (``train/<wnid>/<wnid>_<n>.JPEG``); each class
folder is one unit, so the 1000 classes list in parallel. Its validation split comes either
the same way or flat (``val/ILSVRC2012_val_00000001.JPEG``) with the Kaggle release's
``LOC_val_solution.csv`` (``ImageId,PredictionString``; the wnid is the prediction string's
first token); the flat folder is one unit.

``ImageFolderReader`` serves photo-only sources whose annotation a model makes (the pose
datasets): the images under one sub-folder, optionally only those a split list names.
"""

from __future__ import annotations

import csv
import io
import posixpath
from collections.abc import Iterator

from uvd.format import storage
from uvd.format.rejects import Reject
from uvd.media.images import IMAGE_EXTENSIONS, DecodeError
from uvd.pipeline.readers.files import ImageFileReader, media_files
from uvd.pipeline.records.items import Item

VAL_SOLUTION_HEADER = ["ImageId", "PredictionString"]
VAL_IMAGE_EXTENSION = ".JPEG"


def _is_image(relpath: str) -> bool:
    return relpath.lower().endswith(IMAGE_EXTENSIONS) and not storage.is_hidden(relpath)


class ImageNetReader(ImageFileReader):
    """ILSVRC2012 class folders (label = the folder's wnid), or a flat folder labelled by the CSV."""

    name = "imagenet"
    index_paths = True  # the flat validation folder's CSV
    EXPECTS = "{split_dir}/<wnid>/ class folders of images, or a flat {split_dir}/ labelled by {val_solution}"
    ARGS = {"split_dir": "train", "val_solution": "LOC_val_solution.csv"}

    def _split(self, root: str) -> str:
        return storage.join(root, self.args["split_dir"])

    def units(self, root: str) -> list[str]:
        split = self._split(root)
        classes, flat = set(), False
        for path in storage.files_under(split):
            rel = storage.relative(path, split)
            if _is_image(rel):
                if "/" in rel:
                    classes.add(rel.split("/", 1)[0])
                else:
                    flat = True
        if not classes and not flat:
            raise ValueError(f"{split}: no images, neither in class folders nor flat")
        return [storage.join(split, wnid) for wnid in sorted(classes)] + ([split] if flat else [])

    def items(self, root: str, unit: str) -> Iterator[Item | Reject]:
        if unit.rstrip("/") == self._split(root).rstrip("/"):
            yield from self._flat_items(root, unit)
            return
        wnid = posixpath.basename(unit.rstrip("/"))
        for _, path in media_files(unit, IMAGE_EXTENSIONS):
            yield Item(source=self.source, key=storage.relative(path, root), paths=(path,), label=wnid)

    def _flat_items(self, root: str, split: str) -> Iterator[Item | Reject]:
        """The flat folder's images, labelled by the solution CSV; a CSV row naming no image
        and an image with no row are both rejected."""
        csv_path = storage.join(root, self.args["val_solution"])
        labels, rejects = self._solution(csv_path, split)
        yield from rejects
        for path in storage.match(storage.join(split, "*")):
            name = posixpath.basename(path)
            if not _is_image(name):
                continue
            image_id, key = posixpath.splitext(name)[0], storage.relative(path, root)
            if image_id not in labels:
                yield self.reject(key, "missing_label", f"{path}: no row for {image_id} in {csv_path}")
            elif (wnid := labels.pop(image_id)) is not None:  # None: its row is already rejected
                checked = self.confined(split, name, key=key, named_by=csv_path)  # a symlink out of the folder?
                yield checked if isinstance(checked, Reject) else Item(source=self.source, key=key,
                                                                       paths=(checked,), label=wnid)
        split_dir = self.args["split_dir"].strip("/")
        for image_id in sorted(i for i, wnid in labels.items() if wnid is not None):
            missing = storage.join(split, image_id + VAL_IMAGE_EXTENSION)
            yield self.reject(f"{split_dir}/{image_id}{VAL_IMAGE_EXTENSION}", "missing_file",
                              f"{csv_path} labels {image_id}, but {missing} does not exist")

    def _solution(self, csv_path: str, split: str) -> tuple[dict[str, str | None], list[Reject]]:
        """{image id: wnid, or None for a rejected row} of the solution CSV, and the rows' rejects."""
        try:
            text = storage.read_text(csv_path)
        except (OSError, UnicodeDecodeError) as e:
            raise DecodeError("unreadable_annotation", f"{csv_path}: cannot read the labels of the flat "
                                                       f"folder {split} ({e})") from e
        split_dir = self.args["split_dir"].strip("/")
        labels: dict[str, str | None] = {}
        rejects: list[Reject] = []
        rows = csv.reader(io.StringIO(text.lstrip("\ufeff")))
        header = next(rows, None)
        if header != VAL_SOLUTION_HEADER:
            raise DecodeError("unreadable_annotation", f"{csv_path}: header {header}, expected {VAL_SOLUTION_HEADER}")
        for line, row in enumerate(rows, start=2):
            if not row:
                continue
            image_id = row[0].strip()
            tokens = row[1].split() if len(row) == 2 else []
            key = f"{split_dir}/{image_id}{VAL_IMAGE_EXTENSION}" if image_id else f"{csv_path}:{line}"
            if not image_id or not tokens:
                labels[image_id] = None
                rejects.append(self.reject(key, "bad_row", f"{csv_path} line {line}: {row!r} is not "
                                                           f"ImageId,PredictionString with a wnid first"))
                continue
            checked = self.confined(split, image_id + VAL_IMAGE_EXTENSION, key=key, named_by=f"{csv_path} line {line}")
            labels[image_id] = None if isinstance(checked, Reject) else tokens[0]
            if isinstance(checked, Reject):
                rejects.append(checked)
        return labels, rejects


class ImageFolderReader(ImageFileReader):
    """The images under ``folder`` (relative to the root) whose names end with ``suffix``, or,
    with ``list_file`` (relative to ``folder``), those it names, one per line (first token, a
    leading ``/`` ignored). Keys are paths relative to the root."""

    name = "image_folder"
    index_paths = True
    EXPECTS = "images in {folder}"

    def expects(self) -> str:
        listed = f", those {self.args['list_file']} names" if self.args["list_file"] else ""
        return super().expects() + listed
    ARGS = {"folder": "", "suffix": "", "list_file": ""}

    def items(self, root: str, unit: str) -> Iterator[Item | Reject]:
        folder = storage.join(unit, self.args["folder"])
        found = dict(media_files(folder, IMAGE_EXTENSIONS))
        if not found:
            raise DecodeError("missing_file", f"{folder}: no images")
        if self.args["list_file"]:
            yield from self._listed(root, folder, found)
            return
        for key, path in sorted(found.items()):
            if key.endswith(self.args["suffix"]):
                yield Item(source=self.source, key=storage.relative(path, root), paths=(path,))

    def _listed(self, root: str, folder: str, found: dict[str, str]) -> Iterator[Item | Reject]:
        list_path = storage.join(folder, self.args["list_file"])
        try:
            lines = storage.read_text(list_path).splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise DecodeError("unreadable_annotation", f"{list_path}: {e}") from e
        seen: set[str] = set()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            name = line.split()[0].lstrip("/")
            if name in seen:
                continue
            seen.add(name)
            checked = self.confined(folder, name, key=f"{list_path}:{number}", named_by=f"{list_path} line {number}")
            if isinstance(checked, Reject):
                yield checked
            elif name in found:
                path = found[name]
                yield Item(source=self.source, key=storage.relative(path, root), paths=(path,))
            else:
                missing = storage.join(folder, name)
                yield self.reject(storage.relative(missing, root), "missing_file",
                                  f"{list_path} line {number} names {missing}, which does not exist")
