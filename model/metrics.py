"""The downstream metrics of batch generation, on pictures: what the model drew against the truth.

- image to image (denoising, deraining, low-light, depth, edges...): MSE as LVM's batch_generation.py
  reports it (squared error of [0, 1] pixels, averaged over pixels and summed over the 3 channels)
  and PSNR (10 log10(1 / mean squared error), the usual definition);
- segmentation: the picture's colours are turned back into class ids by the nearest colour of the
  palette the build painted them with (uvd.media.drawing.PALETTE; masks: black and white),
  then mIoU: per class, intersection over union summed over all images, averaged over the classes
  that occur in a prediction or a truth;
- pose: joints are read back from the rendered skeleton (white joint dots, limbs in palette colours:
  a dot is the joint whose limbs touch it), then PCKh@0.5: a visible true joint counts as found when
  the predicted one lies within half the head segment (COCO-17: ear to ear; JHMDB-15: face to neck).
"""

from __future__ import annotations

import math
from collections import defaultdict

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from uvd.media.drawing import JOINTS, PALETTE, SKELETONS

MASK_COLOURS = np.array([[0, 0, 0], [255, 255, 255]], np.uint8)
HEAD_SEGMENT = {"coco17": (3, 4), "jhmdb15": (2, 0)}  # joints whose distance is the head size
KINDS = ("image", "segmentation", "mask", "pose_coco17", "pose_jhmdb15")


def mse(pred: np.ndarray, target: np.ndarray) -> float:
    """LVM's figure: mean over pixels of the squared [0, 1] error, summed over channels."""
    diff = pred.astype(np.float64) / 255 - target.astype(np.float64) / 255
    return float(np.mean(diff ** 2) * diff.shape[-1])


def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB of uint8 images (inf when they are identical)."""
    err = float(np.mean((pred.astype(np.float64) / 255 - target.astype(np.float64) / 255) ** 2))
    return math.inf if err == 0 else 10 * math.log10(1 / err)


def nearest_colour(image: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB -> (H, W) index of the nearest of ``colours`` (K, 3)."""
    pixels = image.reshape(-1, 1, 3).astype(np.int32)
    table = np.asarray(colours, np.int32).reshape(1, -1, 3)
    best = np.zeros(len(pixels), np.int64)
    for start in range(0, len(pixels), 16384):  # bounded memory: 16 k pixels x K colours at a time
        d = ((pixels[start:start + 16384] - table) ** 2).sum(-1)
        best[start:start + 16384] = d.argmin(1)
    return best.reshape(image.shape[:2])


def segmentation_classes(image: np.ndarray, kind: str = "segmentation") -> np.ndarray:
    """A segmentation render -> class ids (palette index; for masks 0 / 1)."""
    return nearest_colour(image, MASK_COLOURS if kind == "mask" else PALETTE)


class IoU:
    """Intersections and unions per class, summed over images; ``miou`` averages over classes seen."""

    def __init__(self):
        self.inter: dict[int, int] = defaultdict(int)
        self.union: dict[int, int] = defaultdict(int)

    def add(self, pred: np.ndarray, target: np.ndarray) -> None:
        for c in np.union1d(np.unique(pred), np.unique(target)):
            p, t = pred == c, target == c
            self.inter[int(c)] += int((p & t).sum())
            self.union[int(c)] += int((p | t).sum())

    def miou(self) -> float:
        classes = [c for c, u in self.union.items() if u > 0]
        return float(np.mean([self.inter[c] / self.union[c] for c in classes])) if classes else math.nan


def _pixel_classes(image: np.ndarray, n_limbs: int, tolerance: float = 60.0) -> np.ndarray:
    """(H, W) class per pixel: 0 background, 1 joint dot (white), 2 + limb for limb colours, -1 other."""
    colours = np.concatenate([[[0, 0, 0], [255, 255, 255]], PALETTE[1:1 + n_limbs]]).astype(np.int32)
    d = ((image.reshape(-1, 1, 3).astype(np.int32) - colours[None]) ** 2).sum(-1)
    classes = d.argmin(1)
    classes[np.sqrt(d.min(1)) > tolerance] = -1
    return classes.reshape(image.shape[:2])


def _limb_ends(mask: np.ndarray) -> np.ndarray | None:
    """(2, 2) ends (x, y) of the pixels of one limb colour along their main axis; blended edge pixels
    of other colours that land on this one form specks, which are dropped."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if not len(areas) or areas.max() < 5:  # a drawn limb is at least 2 x 3 pixels; blends make 1-4
        return None
    keep = np.isin(labels, 1 + np.nonzero(areas >= max(3, 0.3 * areas.max()))[0])
    ys, xs = np.nonzero(keep)
    if len(xs) < 3:
        return None
    points = np.stack([xs, ys], 1).astype(np.float64)
    centred = points - points.mean(0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    t = centred @ axis
    return points[[t.argmin(), t.argmax()]]


def decode_keypoints(image: np.ndarray, skeleton: str = "coco17", snap: float = 8.0) -> np.ndarray:
    """A skeleton render (media.drawing.draw_keypoints on black) -> (J, 3) of (x, y, visible).

    A limb's colour names its two joints and its ends lie at them; each end snaps to the nearest
    white joint dot (or stands for one when no dot is near). A dot is the joint with the most
    limbs ending at it (one dot per joint, Hungarian matching). A joint none of whose limbs is
    drawn cannot be named and reads as not visible. One person per render."""
    edges, n_joints = SKELETONS[skeleton], JOINTS[skeleton]
    classes = _pixel_classes(image, len(edges))
    n_dots, _, stats, centroids = cv2.connectedComponentsWithStats((classes == 1).astype(np.uint8), 8)
    points = [centroids[i] for i in range(1, n_dots) if stats[i, cv2.CC_STAT_AREA] >= 2]
    votes: dict[tuple[int, int], int] = defaultdict(int)  # (point, joint) -> limbs ending there
    for limb, joints in enumerate(edges):
        ends = _limb_ends(classes == 2 + limb)
        for end in ([] if ends is None else ends):
            d = [np.hypot(*(end - p)) for p in points]
            if not d or min(d) > snap:
                points.append(end)
                d.append(0.0)
            for j in joints:
                votes[(int(np.argmin(d)), j)] += 1
    out = np.zeros((n_joints, 3))
    if votes:
        scores = np.zeros((len(points), n_joints))
        for (p, j), v in votes.items():
            scores[p, j] = v
        for p, j in zip(*linear_sum_assignment(scores, maximize=True)):
            if scores[p, j] > 0:
                out[j] = (*points[p], 1)
    return out


def head_size(keypoints: np.ndarray, skeleton: str) -> float | None:
    a, b = HEAD_SEGMENT[skeleton]
    if keypoints[a, 2] <= 0 or keypoints[b, 2] <= 0:
        return None
    return float(np.hypot(*(keypoints[a, :2] - keypoints[b, :2])))


class PCKh:
    """Visible true joints found within alpha x the head size, summed over images."""

    def __init__(self, skeleton: str, alpha: float = 0.5):
        self.skeleton, self.alpha = skeleton, alpha
        self.found = self.total = self.no_head = 0

    def add(self, pred: np.ndarray, truth: np.ndarray) -> None:
        head = head_size(truth, self.skeleton)
        if not head:
            self.no_head += 1  # no head segment: the image cannot be scored
            return
        for p, t in zip(pred, truth):
            if t[2] > 0:
                self.total += 1
                self.found += int(p[2] > 0 and np.hypot(*(p[:2] - t[:2])) <= self.alpha * head)

    def value(self) -> float:
        return self.found / self.total if self.total else math.nan
