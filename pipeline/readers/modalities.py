"""One picture in several modalities, each modality a folder of images named alike.

LVM's multi-task data (tokenize_multi_datasets_muse.py, ``match_mulitple_path_v2``) is laid out
this way: one root per modality (``kitti-cot_crop/image``, ``.../depth``, ...), each holding
``layer`` levels of folders and then ``<name>.png`` (or .jpg, .JPEG, .jpeg); the files of one
picture share ``name`` up to its first dot. An item is a name every modality has; its views are
the modality folders and its paths are their files, in view order. A name some modality lacks
is rejected (``missing_pair``, naming the folders without it), as is a name a modality holds
twice (``ambiguous_file``): the release kept only names found exactly once per modality.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Iterator
from typing import ClassVar

from uvd.format import storage
from uvd.format.rejects import Reject
from uvd.pipeline.readers.base import DecodeContext, Reader, read_image
from uvd.pipeline.records.items import Item, Picture

MODALITY_EXTENSIONS = (".png", ".jpg", ".JPEG", ".jpeg")  # the release's globs, case-sensitive


class ModalityFoldersReader(Reader):
    """Base: ``views`` name the modality folders under the root; ``layer`` folders above the files."""

    stills = True
    ARGS: ClassVar = {"layer": 1}

    def items(self, root: str, unit: str) -> Iterator[Item | Reject]:
        found: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for view in self.views:
            pattern = storage.join(unit, view, *(["*"] * int(self.args["layer"])))
            for path in storage.match(pattern):
                name = posixpath.basename(path)
                if name.endswith(MODALITY_EXTENSIONS) and not name.startswith("."):
                    found[name.split(".")[0]][view].append(path)
        for name in sorted(found):
            files = found[name]
            missing = [v for v in self.views if v not in files]
            doubled = sorted(p for v in self.views for p in files.get(v, ()) if len(files[v]) > 1)
            if missing:
                yield self.reject(name, "missing_pair", f"{name}: no file in {', '.join(storage.join(unit, v) for v in missing)}"
                                                        f" (has {', '.join(p for v in files for p in files[v])})")
            elif doubled:
                yield self.reject(name, "ambiguous_file", f"{name}: several files of one modality: {', '.join(doubled)}")
            else:
                yield Item(source=self.source, key=name, paths=tuple(files[v][0] for v in self.views))

    def pictures(self, item: Item, requests, ctx: DecodeContext) -> dict[tuple[int, str], Picture]:
        self.check_views(requests, item)
        paths = dict(zip(self.views, item.paths))
        images = {view: read_image(paths[view], ctx) for view in sorted({v for _, v in requests})}
        return {(frame, view): Picture(images[view]) for frame, view in requests}


class KittiModalitiesReader(ModalityFoldersReader):
    """LVM's KITTI multi-task folders (``kitti-cot_crop``): seven modalities of one driving frame,
    named as the release names them (its spelling kept: they are folder names)."""

    name = "kitti_modalities"
    views = ("image", "depth", "next_frame", "scene_flow", "sementic_seg", "sementic_seg_rbg", "stereo")
