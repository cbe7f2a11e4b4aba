"""KITTI stereo: left and right colour images of the same instant, paired by file name.

KITTI stereo 2015 keeps them in ``training/image_2`` (left) and ``training/image_3`` (right),
KITTI stereo 2012 in ``training/colored_0`` and ``training/colored_1``; both name a pair
``000000_10.png`` on each side. A root may hold either release or both.
"""

from __future__ import annotations

from collections.abc import Iterator

from uvd.format import storage
from uvd.format.rejects import Reject
from uvd.media.images import IMAGE_EXTENSIONS, DecodeError
from uvd.pipeline.readers.base import DecodeContext, Reader, view_file_pictures
from uvd.pipeline.readers.files import media_files
from uvd.pipeline.records.items import Item, Picture

STEREO_FOLDERS = (("image_2", "image_3"), ("colored_0", "colored_1"))  # (left, right): 2015, 2012


class KittiStereoReader(Reader):
    """Items are (left, right) pairs; a file without its partner on the other side is rejected."""

    name = "kitti_stereo"
    EXPECTS = "{split}/image_2 and image_3 (KITTI stereo 2015) or {split}/colored_0 and colored_1 (2012)"
    stills = True
    views = ("left", "right")
    ARGS = {"split": "training"}

    def items(self, root: str, unit: str) -> Iterator[Item | Reject]:
        split = storage.join(unit, self.args["split"])
        found = False
        for left_dir, right_dir in STEREO_FOLDERS:
            lefts = dict(media_files(storage.join(split, left_dir), IMAGE_EXTENSIONS))
            rights = dict(media_files(storage.join(split, right_dir), IMAGE_EXTENSIONS))
            found = found or bool(lefts or rights)
            for name in sorted(lefts.keys() | rights.keys()):
                left, right = lefts.get(name), rights.get(name)
                if left and right:
                    yield Item(source=self.source, key=storage.relative(left, root), paths=(left, right))
                elif left:
                    yield self.reject(storage.relative(left, root), "missing_pair",
                                      f"{left}: no right image {storage.join(split, right_dir, name)}")
                else:
                    yield self.reject(storage.relative(right, root), "missing_pair",
                                      f"{right}: no left image {storage.join(split, left_dir, name)}")
        if not found:
            raise DecodeError("missing_file", f"{split}: neither image_2/image_3 (KITTI stereo 2015) nor "
                                              f"colored_0/colored_1 (KITTI stereo 2012)")

    def pictures(self, item, requests, ctx: DecodeContext) -> dict[tuple[int, str], Picture]:
        return view_file_pictures(self, item, requests, ctx)
