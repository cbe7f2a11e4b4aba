"""Drawing annotations as images (opencv), so a task's answer is a picture the VQGAN can tokenize.

All functions are pure: arrays in, (H, W, 3) uint8 RGB out. Colours come from fixed tables, so
the same annotation always becomes the same pixels:

- ``PALETTE``: one 256-colour palette for class ids (segmentation, boxes, limbs), as LVM maps
  Mask2Former labels through one fixed random palette (tokenize_examples/map_color.py); ours is
  drawn from a fixed seed, with id 0 black;
- depth through opencv's INFERNO map after per-image min-max normalisation, normals as
  ``(n + 1) / 2`` per channel, optical flow through the standard (Middlebury) colour wheel.
"""

from __future__ import annotations

import cv2
import numpy as np

PALETTE_SEED = 20231201  # the LVM paper's month; any fixed value would do, this one never changes
PALETTE = np.random.default_rng(PALETTE_SEED).integers(0, 256, size=(256, 3), dtype=np.uint8)
PALETTE[0] = 0

# COCO person keypoints (17): nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles.
COCO17_SKELETON = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
                   (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))
# JHMDB puppet joints (15): neck, belly, face, r/l shoulder, r/l hip, r/l elbow, r/l knee, r/l wrist, r/l ankle.
JHMDB15_SKELETON = ((0, 1), (0, 2), (0, 3), (0, 4), (1, 5), (1, 6), (3, 7), (4, 8), (5, 9), (6, 10), (7, 11),
                    (8, 12), (9, 13), (10, 14))
SKELETONS = {"coco17": COCO17_SKELETON, "jhmdb15": JHMDB15_SKELETON}
JOINTS = {"coco17": 17, "jhmdb15": 15}


def line_width(shape: tuple[int, ...], at_256: float = 2.0) -> int:
    """A stroke that is about ``at_256`` pixels wide once the image is resized to 256x256."""
    return max(1, int(round(max(shape[0], shape[1]) / 256 * at_256)))


def colorize_labels(labels: np.ndarray) -> np.ndarray:
    """(H, W) integer class ids -> RGB through PALETTE (ids taken modulo 256)."""
    return PALETTE[np.asarray(labels).astype(np.int64) % 256]


def draw_boxes(image: np.ndarray, boxes, categories) -> np.ndarray:
    """Rectangles over a copy of ``image``; ``boxes`` are (x, y, w, h) in pixels, coloured by category id."""
    out = np.ascontiguousarray(image).copy()
    width = line_width(out.shape)
    for (x, y, w, h), cat in zip(boxes, categories):
        colour = tuple(int(c) for c in PALETTE[1 + int(cat) % 255])  # never black
        cv2.rectangle(out, (int(round(x)), int(round(y))), (int(round(x + w)), int(round(y + h))), colour, width)
    return out


def draw_keypoints(shape: tuple[int, int], people, skeleton: str = "coco17", *, background=None) -> np.ndarray:
    """Skeletons on black (or over ``background``): ``people`` is (P, K, 3) of (x, y, visible) in
    pixels; a joint with visible <= 0 is not drawn, nor are its limbs."""
    edges = SKELETONS[skeleton]
    out = (np.zeros((shape[0], shape[1], 3), np.uint8) if background is None
           else np.ascontiguousarray(background).copy())
    width = line_width(out.shape)
    for person in np.asarray(people, dtype=np.float64).reshape(-1, JOINTS[skeleton], 3):
        for limb, (a, b) in enumerate(edges):
            if person[a, 2] > 0 and person[b, 2] > 0:
                colour = tuple(int(c) for c in PALETTE[1 + limb])
                cv2.line(out, (int(round(person[a, 0])), int(round(person[a, 1]))),
                         (int(round(person[b, 0])), int(round(person[b, 1]))), colour, width, cv2.LINE_AA)
        for x, y, v in person:
            if v > 0:
                cv2.circle(out, (int(round(x)), int(round(y))), width + 1, (255, 255, 255), -1, cv2.LINE_AA)
    return out


def colorize_depth(depth: np.ndarray) -> np.ndarray:
    """(H, W) depth or inverse depth -> INFERNO colours after per-image min-max scaling."""
    d = np.asarray(depth, dtype=np.float64)
    finite = np.isfinite(d)
    lo, hi = (d[finite].min(), d[finite].max()) if finite.any() else (0.0, 0.0)
    scaled = np.zeros_like(d) if hi <= lo else (np.where(finite, d, lo) - lo) / (hi - lo)
    u8 = np.clip(np.rint(scaled * 255), 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(u8, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


def colorize_normals(normals: np.ndarray) -> np.ndarray:
    """(H, W, 3) unit normals in [-1, 1] -> RGB ``(n + 1) / 2``."""
    n = np.clip(np.asarray(normals, dtype=np.float64), -1.0, 1.0)
    return np.rint((n + 1.0) * 127.5).astype(np.uint8)


def draw_mask(mask: np.ndarray) -> np.ndarray:
    """(H, W) mask (any non-zero = inside) -> white on black."""
    return np.repeat(((np.asarray(mask) > 0) * 255).astype(np.uint8)[..., None], 3, axis=2)


def _color_wheel() -> np.ndarray:
    """The Middlebury flow colour wheel (Baker et al. 2011): 55 hues, red-yellow-green-cyan-blue-magenta."""
    segments = ((15, (255, 0, 0), (255, 255, 0)), (6, (255, 255, 0), (0, 255, 0)), (4, (0, 255, 0), (0, 255, 255)),
                (11, (0, 255, 255), (0, 0, 255)), (13, (0, 0, 255), (255, 0, 255)), (6, (255, 0, 255), (255, 0, 0)))
    rows = []
    for n, start, end in segments:
        t = np.floor(255 * np.arange(n) / n) / 255  # the wheel's integer ramps, as fractions
        rows.append(np.asarray(start, float)[None] + t[:, None] * (np.asarray(end, float) - start)[None])
    return np.concatenate(rows)  # (55, 3) in [0, 255]


COLOR_WHEEL = _color_wheel()


def flow_to_color(flow: np.ndarray, max_radius: float | None = None) -> np.ndarray:
    """(H, W, 2) optical flow (u, v) -> RGB: hue is direction, saturation is magnitude relative
    to ``max_radius`` (default: the largest in the field)."""
    u, v = (np.nan_to_num(np.asarray(flow[..., i], np.float64)) for i in (0, 1))
    radius = np.hypot(u, v)
    scale = max_radius if max_radius else max(float(radius.max()), 1e-9)
    u, v, radius = u / scale, v / scale, radius / scale
    ncols = len(COLOR_WHEEL)
    angle = np.arctan2(-v, -u) / np.pi  # [-1, 1]
    fk = (angle + 1) / 2 * (ncols - 1)
    k0 = np.floor(fk).astype(int)
    k1 = (k0 + 1) % ncols
    f = (fk - k0)[..., None]
    colour = ((1 - f) * COLOR_WHEEL[k0] + f * COLOR_WHEEL[k1]) / 255  # (H, W, 3)
    inside = (radius <= 1)[..., None]
    colour = np.where(inside, 1 - radius[..., None] * (1 - colour), colour * 0.75)
    return np.clip(np.floor(255 * colour), 0, 255).astype(np.uint8)
