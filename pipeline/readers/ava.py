"""AVA v2.2 (Gu et al., CVPR 2018): person boxes on keyframes, one per second, of movie videos.

    ava/                                   (the spec's root)
      annotations/ava_train_v2.2.csv       found at the root or anywhere below it
      videos/trainval/<video_id>.mkv|mp4|webm

The CSV has no header; a row is ``video_id, middle_frame_timestamp, x1, y1, x2, y2, action_id,
person_id``: a keyframe time in seconds (902..1798 in the release) and a box normalised to [0, 1],
repeated once per action of the person. An item is a video, found by its file name
``<video_id>.<ext>`` below ``videos_dir`` (``""``: anywhere under the root); its annotated frames
are its keyframes in time order, each with its distinct (box, person) pairs.

Keyframe time ``t`` is video frame ``round((t - time_offset) * fps)``: the released trainval
videos are whole movies starting at 0 s, so ``time_offset`` is 0; for copies cut to the
annotated window (SlowFast's ``videos_15min`` start at 900 s) set it to 900, and small fixtures
use small timestamps. Probing opens the video for its frame count and rate and rejects it when a
keyframe falls outside (a truncated download). ``boxes`` is the keyframe with its boxes drawn
over it, coloured by person id, so a person keeps its colour across a sentence.
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from uvd.format import storage
from uvd.format.rejects import Reject
from uvd.media.drawing import draw_boxes
from uvd.media.images import DecodeError
from uvd.media.video import VIDEO_EXTENSIONS
from uvd.pipeline.readers.base import DecodeContext, Reader
from uvd.pipeline.readers.files import open_video_file
from uvd.pipeline.readers.video_annotations import frame_in_range
from uvd.pipeline.records.items import Item, Picture, to_json

CSV_COLUMNS = 8


def parse_row(row: list[str]) -> tuple[str, float, tuple[float, float, float, float], int]:
    """(video_id, timestamp, (x1, y1, x2, y2), person_id) of a CSV row; ValueError if malformed."""
    if len(row) != CSV_COLUMNS:
        raise ValueError(f"{len(row)} columns, expected {CSV_COLUMNS}")
    video_id = row[0].strip()
    timestamp = float(row[1])
    box = tuple(float(v) for v in row[2:6])
    int(row[6])  # the action id must be an integer, though only the boxes are drawn
    person = int(row[7])
    if not video_id or not math.isfinite(timestamp):
        raise ValueError("empty video id or non-finite timestamp")
    x1, y1, x2, y2 = box
    if not (0.0 <= x1 < x2 <= 1.0 and 0.0 <= y1 < y2 <= 1.0):
        raise ValueError(f"box {box} is not a normalised (x1 < x2, y1 < y2) box")
    return video_id, timestamp, box, person


def keyframe_indices(times: list[float], fps: float, offset: float) -> list[int]:
    return [int(round((t - offset) * fps)) for t in times]


class AvaDetectionReader(Reader):
    """Items are AVA videos; frames are their keyframes; views ``frame`` and ``boxes``."""

    name = "ava_detection"
    index_paths = True
    EXPECTS = "{annotations} (in it or below it) and the videos it names below {videos_dir}"
    views = ("frame", "boxes")
    ARGS = {"annotations": "ava_train_v2.2.csv", "videos_dir": "videos/trainval", "time_offset": 0.0}

    def units(self, root: str) -> list[str]:
        name = self.args["annotations"]
        direct = storage.join(root, name)
        if storage.exists(direct):
            return [direct]
        found = storage.match(storage.join(root, "**", name))
        if not found:
            raise ValueError(f"{root}: no {name} at the root or below it")
        return found[:1]

    def _folder(self, root: str) -> str:
        return storage.join(root, self.args["videos_dir"]) if self.args["videos_dir"] else root

    def _videos(self, folder: str) -> dict[str, str]:
        by_id: dict[str, str] = {}
        for path in storage.files_under(folder):
            rel = storage.relative(path, folder)
            if rel.lower().endswith(VIDEO_EXTENSIONS) and not storage.is_hidden(rel):
                by_id.setdefault(rel.rsplit("/", 1)[-1].rsplit(".", 1)[0], path)
        return by_id

    def items(self, root: str, unit: str):
        try:
            text = storage.read_text(unit)
        except (OSError, UnicodeDecodeError) as e:
            raise DecodeError("unreadable_annotation", f"{unit}: {e}") from e
        keyframes: dict[str, dict[float, set]] = {}
        for number, row in enumerate(csv.reader(io.StringIO(text)), 1):
            if not row or not "".join(row).strip():
                continue
            try:
                video_id, timestamp, box, person = parse_row(row)
            except ValueError as e:
                yield self.reject(f"{storage.relative(unit, root)}:{number}", "bad_row",
                                  f"{unit} line {number}: {e} ({','.join(row)!r})")
                continue
            keyframes.setdefault(video_id, {}).setdefault(timestamp, set()).add((*box, person))
        folder = self._folder(root)
        videos = self._videos(folder)
        for video_id in sorted(keyframes):
            yield self._item(unit, folder, video_id, videos.get(video_id), keyframes[video_id])

    def _item(self, unit: str, folder: str, video_id: str, video: str | None, keyframes: dict[float, set]):
        """The item of one video id of the CSV, or why it cannot be one."""
        named = self.confined(folder, video_id, key=video_id, named_by=unit)
        if isinstance(named, Reject):
            return named
        times = sorted(keyframes)
        if video is None:
            return self.reject(video_id, "missing_file", f"{unit}: {len(times)} keyframes of {video_id}, but no "
                                                         f"{video_id}.<{'|'.join(e[1:] for e in VIDEO_EXTENSIONS)}> "
                                                         f"under {folder}")
        path = self.confined(folder, storage.relative(video, folder), key=video_id, named_by=unit)  # a symlink out?
        if isinstance(path, Reject):
            return path
        annotation = {"times": times, "boxes": [sorted(keyframes[t]) for t in times]}
        return Item(source=self.source, key=video_id, paths=(path,), annotation=to_json(annotation),
                    num_frames=len(times))

    def probe(self, item: Item, ctx: DecodeContext) -> Item:
        """Map the keyframe times to frames of the file: they must all lie inside it."""
        path = item.paths[0]
        count = open_video_file(path, ctx)
        fps = ctx.video.fps(path)
        if not fps > 0:
            raise DecodeError("unreadable_video", f"{path}: frame rate {fps}")
        offset = float(self.args["time_offset"])
        times = item.annotation_json()["times"]
        frames = keyframe_indices(times, fps, offset)
        outside = [t for t, f in zip(times, frames) if not 0 <= f < count]
        if outside:
            raise DecodeError("keyframe_outside_video",
                              f"{path}: keyframes at {outside[:3]} s (time_offset {offset:g}) fall outside its "
                              f"{count} frames at {fps:.3f} fps")
        return item.with_(extra=(("frames", tuple(frames)),))

    def pictures(self, item: Item, requests, ctx: DecodeContext) -> dict[tuple[int, str], Picture]:
        self.check_views(requests, item)
        if item.get("frames") is None:
            item = self.probe(item, ctx)
        else:
            open_video_file(item.paths[0], ctx)
        video_frames = item.get("frames")
        for frame, _ in requests:
            frame_in_range(item, frame, len(video_frames))
        wanted = sorted({video_frames[f] for f, _ in requests})
        clip = dict(zip(wanted, ctx.video.read_clip(item.paths[0], wanted, ctx.image_size)))
        boxes = item.annotation_json()["boxes"]
        out = {}
        for frame, view in requests:
            image = clip[video_frames[frame]]
            if view == "frame":
                out[(frame, view)] = Picture(image)
            else:
                out[(frame, view)] = Picture(draw_person_boxes(image, boxes[frame]))
        return out


def draw_person_boxes(image: np.ndarray, boxes) -> np.ndarray:
    """Normalised (x1, y1, x2, y2, person) boxes over ``image``, coloured by person id."""
    h, w = image.shape[:2]
    rects = [(x1 * w, y1 * h, (x2 - x1) * w, (y2 - y1) * h) for x1, y1, x2, y2, _ in boxes]
    return draw_boxes(image, rects, [int(person) for *_, person in boxes])
