"""Objaverse objects rendered from several viewpoints, in the Zero-1-to-3 ``views_release`` layout.

    objaverse/                     (the spec's root)
      views_release/
        valid_paths.json           optional: ["<uid>", ...], the objects to use
        <uid>/000.png ... 011.png  RGBA renders on a transparent background
        <uid>/000.npy ... 011.npy  3x4 world-to-camera [R|t] of each render (np.save of a float array)

as read by zero123's ``ObjaverseData`` (ldm/data/simple.py). An item is an object; its frames are
its views in rotation order: the camera centre ``-R^T t`` gives each view's azimuth
``atan2(y, x)`` around the object, and the views are sorted by azimuth counter-clockwise from the
first file's (so frame 0 is ``000.png``). Without cameras (no .npy at all) the order is the file
order. Cameras are read with ``np.load(allow_pickle=False)``: data, never code. The renders are
alpha-composited onto white, as zero123 fills their transparent background with white.
"""

from __future__ import annotations

import io
import json
import math

import cv2
import numpy as np

from uvd.format import storage
from uvd.format.rejects import Reject
from uvd.media.images import DecodeError
from uvd.pipeline.readers.base import DecodeContext, Reader, decode_unchanged
from uvd.pipeline.readers.video_annotations import frame_in_range
from uvd.pipeline.records.items import Item, Picture

VALID_PATHS = "valid_paths.json"


def camera_azimuth(rt: np.ndarray) -> float:
    """Azimuth (radians) of the camera centre of a world-to-camera [R|t] around the world z axis."""
    rotation, translation = rt[:3, :3], rt[:3, 3]
    centre = -rotation.T @ translation
    return math.atan2(float(centre[1]), float(centre[0]))


def rotation_order(azimuths: list[float]) -> list[int]:
    """View indices sorted by azimuth, counter-clockwise from view 0's azimuth."""
    start = azimuths[0]
    return sorted(range(len(azimuths)), key=lambda i: ((azimuths[i] - start) % (2 * math.pi), i))


def load_camera(path: str) -> np.ndarray:
    """A 3x4 (or 4x4) camera matrix from a .npy file, without unpickling."""
    try:
        matrix = np.load(io.BytesIO(storage.read_bytes(path)), allow_pickle=False)
    except OSError as e:
        raise DecodeError("unreadable_file", f"{path}: {e}") from e
    except ValueError as e:
        raise DecodeError("unreadable_annotation", f"{path}: not a plain .npy array ({e})") from e
    if matrix.shape not in ((3, 4), (4, 4)) or not np.issubdtype(matrix.dtype, np.number) \
            or not np.isfinite(matrix).all():
        raise DecodeError("unreadable_annotation", f"{path}: camera is {matrix.shape} {matrix.dtype}, "
                                                   f"expected a finite 3x4 [R|t]")
    return matrix.astype(np.float64)


def read_rgba_on_white(path: str, ctx: DecodeContext) -> np.ndarray:
    """A render (RGBA, RGB or grey; 8 or 16 bit) -> RGB uint8, alpha-composited onto white."""
    arr = decode_unchanged(path, ctx, reason="unreadable_image")
    scale = 65535.0 if arr.dtype == np.uint16 else 255.0
    arr = arr.astype(np.float32) / scale
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.shape[2] == 4:
        alpha = arr[..., 3:4]
        arr = arr[..., :3] * alpha + (1.0 - alpha)
    rgb = cv2.cvtColor(np.ascontiguousarray(arr[..., :3]), cv2.COLOR_BGR2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


class ObjaverseViewsReader(Reader):
    """Items are objects; frames are their renders in rotation order; the one view is ``view``."""

    name = "objaverse_views"
    index_paths = True
    EXPECTS = "{views_dir}/<uid>/000.png ... renders (with .npy cameras)"
    views = ("view",)
    ARGS = {"views_dir": "views_release"}

    def items(self, root: str, unit: str):
        views_dir = storage.join(root, self.args["views_dir"])
        renders: dict[str, dict[str, dict[str, str]]] = {}
        for path in storage.match(storage.join(views_dir, "*", "*")):
            rel = storage.relative(path, views_dir)
            uid, _, name = rel.partition("/")
            stem, _, ext = name.rpartition(".")
            if storage.is_hidden(rel) or ext.lower() not in ("png", "npy") or not stem:
                continue
            renders.setdefault(uid, {}).setdefault(ext.lower(), {})[stem] = path
        uids = sorted(renders)
        listing = storage.join(views_dir, VALID_PATHS)
        if storage.exists(listing):
            try:
                uids = [str(u) for u in json.loads(storage.read_text(listing))]
            except (ValueError, TypeError, UnicodeDecodeError) as e:
                raise DecodeError("unreadable_annotation", f"{listing}: not a JSON list of object ids ({e})") from e
        for uid in uids:
            yield self._item(uid, renders.get(uid, {}), views_dir, listing)

    def _item(self, uid: str, files: dict[str, dict[str, str]], views_dir: str, listing: str) -> Item | Reject:
        folder = self.confined(views_dir, uid, key=uid, named_by=listing)
        if isinstance(folder, Reject):
            return folder
        pngs, cameras = files.get("png", {}), files.get("npy", {})
        if not pngs:
            return self.reject(uid, "missing_file", f"{storage.join(views_dir, uid)}: no renders (listed in {listing})")
        stems = sorted(pngs)
        if cameras and set(cameras) != set(stems):
            odd = sorted(set(stems) ^ set(cameras))[:3]
            return self.reject(uid, "missing_pair", f"{storage.join(views_dir, uid)}: renders and cameras do not "
                                                    f"pair up (e.g. {odd}: a .png without its .npy or the reverse)")
        paths = tuple(pngs[s] for s in stems) + tuple(cameras[s] for s in stems if cameras)
        return Item(source=self.source, key=uid, paths=paths, num_frames=len(stems))

    def probe(self, item: Item, ctx: DecodeContext) -> Item:
        """Order the views by camera azimuth (file order when the object has no cameras)."""
        n = item.num_frames
        if len(item.paths) == 2 * n:
            order = rotation_order([camera_azimuth(load_camera(p)) for p in item.paths[n:]])
        else:
            order = list(range(n))
        return item.with_(extra=(("order", tuple(order)),))

    def pictures(self, item: Item, requests, ctx: DecodeContext) -> dict[tuple[int, str], Picture]:
        self.check_views(requests, item)
        if item.get("order") is None:
            item = self.probe(item, ctx)
        order = item.get("order")
        out = {}
        for frame, view in requests:
            frame_in_range(item, frame, len(order))
            out[(frame, view)] = Picture(read_rgba_on_white(item.paths[order[frame]], ctx))
        return out
