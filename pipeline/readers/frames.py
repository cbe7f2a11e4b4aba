"""Frame-folder sequences: an item is a folder of numbered frames (DAVIS, YouTube-VOS, Jester, CO3D).

Such releases ship a video as its decoded frames, one image file each. The frames are listed at
listing time, in natural order (``frame9`` before ``frame10``), so ``num_frames`` is known before
planning and no probe is needed; ``render`` reads only the frame files a sentence uses.

- ``frame_folders``: the sequences are named by an index file, parsed like the video indexes
  (``SplitIndex``: DAVIS' ``ImageSets/2017/train.txt``, YouTube-VOS' ``train/meta.json``, Jester's
  ``jester-v1-train.csv``); ``path`` formats a record into its frame folder, relative to the root.
  A named folder without frames is rejected as ``missing_file``.
- ``co3d_sequences``: CO3D v2 has no split of whole sequences (its set lists pick frames for
  few/many-view evaluation), so every ``<category>/<sequence>/images/`` folder is a sequence; each
  category (a folder with ``sequence_annotations.jgz``) is a unit, listed with one match. Its
  views are the frame and, at the same position of their sorted folders (as LVM's
  tokenize_co3d_muse.py pairs them), the foreground mask (``masks/``) and the depth-validity mask
  (``depth_masks/``); a sequence whose three folders hold different numbers of images is rejected.
"""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator

from uvd.format import storage
from uvd.format.rejects import Reject
from uvd.media.images import IMAGE_EXTENSIONS
from uvd.pipeline.readers.base import DecodeContext, Reader, read_image
from uvd.pipeline.readers.videos import INDEX_ARGS, Entry, SplitIndex
from uvd.pipeline.records.items import Item, Picture


def natural_key(path: str) -> list:
    """Sort key that orders numbers by value: ``frame9.jpg`` before ``frame10.jpg``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", posixpath.basename(path))]


def frame_files(paths: Iterable[str]) -> list[str]:
    """The image files among ``paths``, hidden ones skipped, in natural order."""
    return sorted((p for p in paths if p.lower().endswith(IMAGE_EXTENSIONS)
                   and not posixpath.basename(p).startswith(".")), key=natural_key)


class FrameSequenceReader(Reader):
    """Base: an Item's paths are its frames in order; frame i of the sequence is paths[i]."""

    views = ("frame",)

    def sequence(self, key: str, frames: list[str], label: str = "") -> Item:
        return Item(source=self.source, key=key, paths=tuple(frames), label=label, num_frames=len(frames))

    def pictures(self, item: Item, requests, ctx: DecodeContext) -> dict[tuple[int, str], Picture]:
        self.check_views(requests, item)
        images = {f: read_image(item.paths[f], ctx) for f in sorted({f for f, _ in requests})}
        return {(f, v): Picture(images[f]) for f, v in requests}


class FrameFolderReader(SplitIndex, FrameSequenceReader):
    """Frame folders named by an index file; ``path`` is a record's frame folder, relative to the root."""
    name = "frame_folders"
    index_paths = True
    EXPECTS = "the index file {index} and the frame folders it names ({path})"
    ARGS = dict(INDEX_ARGS)

    def items(self, root: str, unit: str) -> Iterator[Item | Reject]:
        for entry in self.index_entries(unit):
            yield entry if isinstance(entry, Reject) else self._sequence(root, unit, entry)

    def _sequence(self, root: str, unit: str, entry: Entry) -> Item | Reject:
        folder = self.confined(root, entry.path, key=entry.key, named_by=unit)
        if isinstance(folder, Reject):
            return folder
        frames = frame_files(storage.match(storage.join(folder, "*")))
        for frame in frames:  # a frame may be a symlink out of the root
            checked = self.confined(root, storage.relative(frame, root), key=entry.key, named_by=unit)
            if isinstance(checked, Reject):
                return checked
        if not frames:
            return self.reject(entry.key, "missing_file", f"{unit} names sequence {entry.key!r}, but {folder} "
                                                          f"holds no frames")
        return self.sequence(entry.key, frames, entry.label)


class Co3dReader(FrameSequenceReader):
    """CO3D v2: ``<category>/<sequence>/{images,masks,depth_masks}/frame000001.*``; one unit per
    category folder. An item's paths are its frames, then its masks, then its depth masks."""
    name = "co3d_sequences"
    EXPECTS = "<category>/sequence_annotations.jgz with <category>/<sequence>/images/ frames"
    MARKER = "sequence_annotations.jgz"  # every category folder of the release has one
    FOLDERS = {"frame": "images", "mask": "masks", "depth_mask": "depth_masks"}
    views = tuple(FOLDERS)

    def units(self, root: str) -> list[str]:
        return [posixpath.dirname(m) for m in storage.match(storage.join(root, "*", self.MARKER))]

    def items(self, root: str, unit: str) -> Iterator[Item | Reject]:
        by_sequence: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for folder in self.FOLDERS.values():
            for path in storage.match(storage.join(unit, "*", folder, "*")):
                by_sequence[posixpath.dirname(posixpath.dirname(path))][folder].append(path)
        category = posixpath.basename(unit)
        for sequence in sorted(by_sequence):
            found = {folder: frame_files(by_sequence[sequence][folder]) for folder in self.FOLDERS.values()}
            key = storage.relative(sequence, root)
            counts = {len(files) for files in found.values()}
            if counts == {0} or not found["images"]:
                continue
            if len(counts) > 1:
                yield self.reject(key, "missing_pair", f"{sequence}: {', '.join(f'{len(v)} {k}' for k, v in found.items())}"
                                                       f"; the frames and their masks must pair up by position")
                continue
            item = self.sequence(key, found["images"], label=category)
            yield item.with_(paths=tuple(p for folder in self.FOLDERS.values() for p in found[folder]))

    def pictures(self, item: Item, requests, ctx: DecodeContext) -> dict[tuple[int, str], Picture]:
        self.check_views(requests, item)
        offset = {view: i * item.num_frames for i, view in enumerate(self.FOLDERS)}
        images = {(f, v): read_image(item.paths[offset[v] + f], ctx) for f, v in sorted(set(requests))}
        return {(f, v): Picture(images[(f, v)]) for f, v in requests}
