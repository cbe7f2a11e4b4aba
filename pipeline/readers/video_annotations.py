"""Shared base of the annotated-video readers whose annotations are one label image per frame.

VIPSeg (panoptic PNGs) and Hand14K (hand masks) ship a video as frames plus, for the frames that
were annotated, a label image of the same name. An item is a video; its frames are the
*annotated* frames in time order (the ``multi_sequence`` layout's frame ``i`` is the i-th
annotated frame), and its paths interleave them: ``(image_0, label_0, image_1, label_1, ...)``.
Listing is driven by the label images: a label image without its frame is rejected
(``missing_pair``); a frame without a label image is simply not annotated and is left out.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Iterator

import numpy as np

from uvd.format.rejects import Reject
from uvd.media.images import DecodeError
from uvd.pipeline.readers.base import DecodeContext, Reader, read_image, read_label_png
from uvd.pipeline.records.items import Item, Picture

FRAME_VIEW = "frame"


def frame_in_range(item: Item, frame: int, count: int) -> None:
    """Refuse a request for an annotated frame the item does not have (a planning bug, named)."""
    if not 0 <= frame < count:
        raise DecodeError("frame_out_of_range", f"{item.key}: annotated frame {frame} requested, it has {count}")


class LabelledFrameSequenceReader(Reader):
    """Items are videos of (frame, label image) pairs; subclasses list them and draw the labels.
    Views: ``frame`` and one annotation view (the subclass's second view)."""

    @abstractmethod
    def sequences(self, root: str, unit: str) -> Iterable[tuple[str, list[tuple[str, str]]] | Reject]:
        """(video key, [(frame path, label path), ...] in time order), and rejects."""
    @abstractmethod
    def draw(self, labels: np.ndarray, item: Item, path: str) -> np.ndarray:
        """A label image (H, W) or (H, W, 3) as read from ``path`` -> (H, W, 3) uint8 RGB."""
    def item_extra(self, root: str) -> tuple:
        """Facts every item of ``root`` carries (e.g. the category count), read once per unit."""
        return ()

    def items(self, root: str, unit: str) -> Iterator[Item | Reject]:
        extra = self.item_extra(root)
        for entry in self.sequences(root, unit):
            if isinstance(entry, Reject):
                yield entry
                continue
            key, pairs = entry
            paths = tuple(p for pair in pairs for p in pair)
            yield Item(source=self.source, key=key, paths=paths, num_frames=len(pairs), extra=extra)

    def pictures(self, item: Item, requests, ctx: DecodeContext) -> dict[tuple[int, str], Picture]:
        self.check_views(requests, item)
        out: dict[tuple[int, str], Picture] = {}
        for frame, view in requests:
            frame_in_range(item, frame, item.num_frames)
            if view == FRAME_VIEW:
                out[(frame, view)] = Picture(read_image(item.paths[2 * frame], ctx))
            else:
                label_path = item.paths[2 * frame + 1]
                out[(frame, view)] = Picture(self.draw(read_label_png(label_path, ctx), item, label_path))
        return out


def pair_by_name(frames: dict[tuple[str, str], str],
                 labels: dict[tuple[str, str], str]) -> tuple[dict[str, list[tuple[str, str]]], list[str]]:
    """Group label images by video and pair each with its frame.

    ``frames`` and ``labels`` map (video, frame id) -> path. Returns {video: [(frame, label), ...]}
    in time order (numeric frame ids numerically), and the label paths whose frame is missing.
    """
    videos: dict[str, list[tuple[str, str]]] = {}
    missing: list[str] = []
    for video, frame_id in sorted(labels, key=lambda vf: (vf[0], _sort_key(vf[1]))):
        image = frames.get((video, frame_id))
        if image is None:
            missing.append(labels[(video, frame_id)])
        else:
            videos.setdefault(video, []).append((image, labels[(video, frame_id)]))
    return videos, missing


def _sort_key(frame_id: str) -> tuple:
    """Numeric ids in numeric order (``frame_9`` before ``frame_10``), others by name."""
    return (0, int(frame_id), frame_id) if frame_id.isdigit() else (1, 0, frame_id)
