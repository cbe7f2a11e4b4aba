"""JHMDB (Jhuang et al., ICCV 2013): 928 HMDB clips annotated frame by frame with a 2D puppet.

The release, unpacked under one root (files.is.tue.mpg.de/jhmdb):

    Rename_Images/<action>/<video>/00001.png ...          the frames (320x240)
    joint_positions/<action>/<video>/joint_positions.mat   pos_img: 2 x 15 x T pixel coordinates
    puppet_flow_com/<action>/<video>/puppet_flow.mat       the puppet's optical flow
    splits/<action>_test_split<n>.txt                      "<video>.avi 1" (1 training, 2 testing)

A split file is a unit; its lines name the videos (the spec's ``split``: ``train`` = set 1,
``test`` = set 2, ``all`` = both). Frame ``i`` of an item is ``Rename_Images/.../{i+1:05d}.png``
and column ``i`` of its annotation; probing reads the annotation's size (``whosmat``, no data) and
keeps the frames that have both.

The puppet flow file's variable names are not documented anywhere we could check, so the flow
reader takes the one 4-D array shaped H x W x 2 x T (u, v per frame; ``flow_key`` names it when
there are several); frame ``i``'s flow is ``[..., i]``, drawn with ``flow_to_color``.
"""

from __future__ import annotations

import io
from abc import abstractmethod

import numpy as np
import scipy.io

from uvd.format import storage
from uvd.format.rejects import Reject
from uvd.media.drawing import draw_keypoints, flow_to_color
from uvd.media.images import DecodeError, check_image_size
from uvd.pipeline.readers.base import DecodeContext, Reader, read_image
from uvd.pipeline.readers.video_annotations import FRAME_VIEW, frame_in_range
from uvd.pipeline.records.items import Item, Picture

SPLIT_SETS = {"train": {1}, "test": {2}, "all": {1, 2}}
NUM_JOINTS = 15


def _read_mat_bytes(path: str) -> bytes:
    try:
        return storage.read_bytes(path)
    except OSError as e:
        raise DecodeError("unreadable_file", f"{path}: {e}") from e


def mat_shapes(path: str) -> dict[str, tuple[int, ...]]:
    """{variable: shape} of a .mat file, from its headers only."""
    data = _read_mat_bytes(path)
    try:
        return {name: tuple(shape) for name, shape, _ in scipy.io.whosmat(io.BytesIO(data))}
    except Exception as e:  # scipy raises many types (even IndexError) for a damaged file
        raise DecodeError("unreadable_annotation", f"{path}: not a readable .mat file ({type(e).__name__}: {e})") from e


def load_mat(path: str, variable: str) -> np.ndarray:
    data = _read_mat_bytes(path)
    try:
        return np.asarray(scipy.io.loadmat(io.BytesIO(data), variable_names=[variable])[variable])
    except Exception as e:  # as above
        raise DecodeError("unreadable_annotation", f"{path}: cannot read {variable!r} ({type(e).__name__}: {e})") from e


class _JhmdbReader(Reader):
    """Listing and frames shared by the pose and flow readers; subclasses name the annotation."""

    index_paths = True
    ARGS = {"split_number": 1}

    def __init__(self, source, args=None, split="train"):
        super().__init__(source, args, split)
        if split not in SPLIT_SETS:
            raise ValueError(f"reader {self.name!r}: split {split!r} is not one of {sorted(SPLIT_SETS)}")

    @abstractmethod
    def annotation_path(self, root: str, action: str, video: str) -> str:
        """The annotation file of a video."""
    @abstractmethod
    def annotation_frames(self, item: Item) -> int:
        """How many frames the item's annotation covers (from the .mat headers)."""
    def units(self, root: str) -> list[str]:
        pattern = storage.join(root, "splits", f"*_test_split{int(self.args['split_number'])}.txt")
        units = storage.match(pattern)
        if not units:
            raise ValueError(f"{pattern}: no JHMDB split files")
        return units

    def items(self, root: str, unit: str):
        action = unit.rsplit("/", 1)[-1].rsplit("_test_split", 1)[0]
        wanted = SPLIT_SETS[self.split]
        try:
            lines = storage.read_text(unit).splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise DecodeError("unreadable_annotation", f"{unit}: {e}") from e
        frames_dir = storage.join(root, "Rename_Images", action)
        frames: dict[str, list[str]] = {}
        for path in storage.match(storage.join(frames_dir, "*", "*.png")):
            rel = storage.relative(path, frames_dir)
            if not storage.is_hidden(rel):
                frames.setdefault(rel.split("/")[0], []).append(path)
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            fields = line.split()
            if len(fields) != 2 or not fields[1].isdigit() or int(fields[1]) not in (1, 2):
                yield self.reject(f"{storage.relative(unit, root)}:{number}", "bad_row",
                                  f"{unit} line {number}: expected '<video>.avi <1|2>', got {line.strip()!r}")
                continue
            if int(fields[1]) in wanted:
                yield self._item(root, action, fields[0].rsplit(".", 1)[0], frames, unit)

    def _item(self, root: str, action: str, video: str, frames: dict[str, list[str]], unit: str) -> Item | Reject:
        key = f"{action}/{video}"
        folder = self.confined(storage.join(root, "Rename_Images", action), video, key=key, named_by=unit)
        if isinstance(folder, Reject):
            return folder
        if video not in frames:
            return self.reject(key, "missing_file", f"{unit} lists {video}, which has no frames in {folder}")
        annotation = self.confined(root, storage.relative(self.annotation_path(root, action, video), root), key=key,
                                   named_by=unit)
        if isinstance(annotation, Reject):
            return annotation
        if not storage.exists(annotation):
            return self.reject(key, "missing_file", f"{annotation}: missing (listed in {unit})")
        images = tuple(sorted(frames[video]))
        gaps = [f"{i:05d}.png" for i, path in enumerate(images, 1) if not path.endswith(f"/{i:05d}.png")]
        if gaps:  # frame i must be annotation column i: a missing or extra file would shift them all
            return self.reject(key, "missing_file", f"{storage.join(root, 'Rename_Images', action, video)}: frames "
                                                    f"are not 00001.png..{len(images):05d}.png (first off: {gaps[0]})")
        return Item(source=self.source, key=key, paths=(annotation, *images), label=action, num_frames=len(images))

    def probe(self, item: Item, ctx: DecodeContext) -> Item:
        return item.with_(num_frames=min(len(item.paths) - 1, self.annotation_frames(item)))

    def pictures(self, item: Item, requests, ctx: DecodeContext) -> dict[tuple[int, str], Picture]:
        self.check_views(requests, item)
        for frame, _ in requests:
            frame_in_range(item, frame, item.num_frames)
        annotations = self.load_annotation(item) if any(v != FRAME_VIEW for _, v in requests) else None
        out = {}
        for frame, view in requests:
            image_path = item.paths[1 + frame]
            if view == FRAME_VIEW:
                out[(frame, view)] = Picture(read_image(image_path, ctx))
            else:
                out[(frame, view)] = Picture(self.draw(annotations, frame, image_path, ctx))
        return out

    @abstractmethod
    def load_annotation(self, item: Item) -> np.ndarray:
        """The item's whole annotation array, checked against its frame count."""
    @abstractmethod
    def draw(self, annotation: np.ndarray, frame: int, image_path: str, ctx: DecodeContext) -> np.ndarray:
        """The annotation of ``frame`` as an RGB image."""

class JhmdbPoseReader(_JhmdbReader):
    """Frames and their puppet joints (``pose``: the jhmdb15 skeleton on black, frame-sized)."""

    name = "jhmdb_pose"
    EXPECTS = ("splits/<action>_test_split{split_number}.txt, Rename_Images/<action>/<video>/ frames and "
               "joint_positions/")
    views = ("frame", "pose")

    def annotation_path(self, root: str, action: str, video: str) -> str:
        return storage.join(root, "joint_positions", action, video, "joint_positions.mat")

    def annotation_frames(self, item: Item) -> int:
        shape = mat_shapes(item.paths[0]).get("pos_img")
        if shape is None or len(shape) != 3 or shape[:2] != (2, NUM_JOINTS):
            raise DecodeError("unreadable_annotation", f"{item.paths[0]}: pos_img is {shape}, expected "
                                                       f"(2, {NUM_JOINTS}, frames)")
        return shape[2]

    def load_annotation(self, item: Item) -> np.ndarray:
        pos = load_mat(item.paths[0], "pos_img")
        if pos.ndim != 3 or pos.shape[:2] != (2, NUM_JOINTS) or pos.shape[2] < item.num_frames:
            raise DecodeError("unreadable_annotation", f"{item.paths[0]}: pos_img is {pos.shape}, expected "
                                                       f"(2, {NUM_JOINTS}, >= {item.num_frames})")
        return pos.astype(np.float64)

    def draw(self, annotation: np.ndarray, frame: int, image_path: str, ctx: DecodeContext) -> np.ndarray:
        try:
            width, height = check_image_size(storage.read_bytes(image_path), max_pixels=ctx.max_pixels,
                                             name=image_path)
        except OSError as e:
            raise DecodeError("unreadable_file", f"{image_path}: {e}") from e
        joints = annotation[:, :, frame].T  # (15, 2) x, y in pixels
        people = np.concatenate([joints, np.ones((NUM_JOINTS, 1))], axis=1)[None]
        return draw_keypoints((height, width), people, "jhmdb15")


class JhmdbFlowReader(_JhmdbReader):
    """Frames and the puppet's optical flow (``flow``: Middlebury colours)."""
    name = "jhmdb_flow"
    EXPECTS = ("splits/<action>_test_split{split_number}.txt, Rename_Images/<action>/<video>/ frames and "
               "{flow_dir}/")
    views = ("frame", "flow")
    ARGS = {"split_number": 1, "flow_dir": "puppet_flow_com", "flow_key": ""}

    def annotation_path(self, root: str, action: str, video: str) -> str:
        return storage.join(root, self.args["flow_dir"], action, video, "puppet_flow.mat")

    def _flow_variable(self, path: str, shapes: dict[str, tuple[int, ...]]) -> str:
        if self.args["flow_key"]:
            candidates = [self.args["flow_key"]] if self.args["flow_key"] in shapes else []
        else:
            candidates = [n for n, s in shapes.items() if len(s) == 4 and s[2] == 2]
        if len(candidates) != 1:
            raise DecodeError("unreadable_annotation", f"{path}: expected one H x W x 2 x T flow array "
                                                       f"(flow_key={self.args['flow_key']!r}); variables {shapes}")
        if len(shapes[candidates[0]]) != 4 or shapes[candidates[0]][2] != 2:
            raise DecodeError("unreadable_annotation", f"{path}: {candidates[0]} is {shapes[candidates[0]]}, "
                                                       f"not H x W x 2 x T")
        return candidates[0]

    def annotation_frames(self, item: Item) -> int:
        shapes = mat_shapes(item.paths[0])
        return shapes[self._flow_variable(item.paths[0], shapes)][3]

    def load_annotation(self, item: Item) -> np.ndarray:
        path = item.paths[0]
        flow = load_mat(path, self._flow_variable(path, mat_shapes(path)))
        if flow.ndim != 4 or flow.shape[2] != 2 or flow.shape[3] < item.num_frames:
            raise DecodeError("unreadable_annotation", f"{path}: flow is {flow.shape}, expected H x W x 2 x "
                                                       f">= {item.num_frames}")
        return flow

    def draw(self, annotation: np.ndarray, frame: int, image_path: str, ctx: DecodeContext) -> np.ndarray:
        return flow_to_color(annotation[:, :, :, frame])
