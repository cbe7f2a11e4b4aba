"""Generated visual sequences of colour, shape and size change, after the synthetic reasoning
examples of the LVM talk: one object on a plain background whose colour cycles through 3 random
colours, or whose shape cycles through 3 random shapes, or whose size alternates between 2 random
sizes (its resolution on the canvas); everything else stays fixed within a sequence.

The same generator makes the reasoning eval's items (model/reasoning.py) and the training source of
the learning check (``write_sequences``: folders of PNG frames with an index file, in the layout
the ``synthetic_reasoning`` dataset spec reads), so a model trained on one is asked the other in the
same format: a sequence's first frames, then its next frame.
"""

from __future__ import annotations

import colorsys
import math
import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from uvd.format.storage import atomic_write
from uvd.media.images import write_png

SIZE = 256
TASKS = {"colour": 3, "shape": 3, "size": 2}  # task -> values in the cycle (= candidates, 1 / chance)
MIN_COLOUR_DISTANCE = 120.0  # RGB distance between the colours of one sequence
MIN_SIZE_RATIO = 1.5  # the larger of a size pair is at least this much the smaller
SIZE_RANGE = (24, 112)  # object radius in pixels


@dataclass(frozen=True)
class Scene:
    """One frame: a filled polygon (unit-radius vertices) of ``radius`` pixels at ``centre``."""

    shape: tuple[tuple[float, float], ...]
    colour: tuple[int, int, int]
    radius: int
    centre: tuple[int, int]
    background: tuple[int, int, int]


def draw(scene: Scene) -> np.ndarray:
    """A Scene -> (256, 256, 3) uint8 RGB."""
    img = np.empty((SIZE, SIZE, 3), np.uint8)
    img[:] = scene.background
    points = np.round(np.asarray(scene.shape) * scene.radius + scene.centre).astype(np.int32)
    cv2.fillPoly(img, [points], scene.colour, cv2.LINE_AA)
    return img


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    return tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(h, s, v))


def random_colours(rng: random.Random, n: int) -> list[tuple[int, int, int]]:
    """``n`` saturated colours at least MIN_COLOUR_DISTANCE apart in RGB."""
    colours: list[tuple[int, int, int]] = []
    while len(colours) < n:
        c = _hsv(rng.random(), rng.uniform(0.55, 1.0), rng.uniform(0.45, 0.9))
        if all(math.dist(c, o) >= MIN_COLOUR_DISTANCE for o in colours):
            colours.append(c)
    return colours


def _polygon(radii: list[float], angles: list[float]) -> tuple[tuple[float, float], ...]:
    scale = max(radii)
    return tuple((r / scale * math.cos(a), r / scale * math.sin(a)) for r, a in zip(radii, angles))


def random_shape(rng: random.Random) -> tuple[str, tuple[tuple[float, float], ...]]:
    """(family, unit-radius vertices): a regular polygon, a star, an ellipse or an irregular blob,
    randomly rotated; the family names what kind it is, so one sequence's shapes can differ in kind."""
    rotation, family = rng.uniform(0, 2 * math.pi), rng.choice(("polygon", "star", "ellipse", "blob"))
    if family == "polygon":
        n = rng.randint(3, 8)
        family += str(n)
        return family, _polygon([1.0] * n, [rotation + 2 * math.pi * i / n for i in range(n)])
    if family == "star":
        n, inner = rng.randint(4, 7), rng.uniform(0.35, 0.6)
        family += str(n)
        return family, _polygon([1.0, inner] * n, [rotation + math.pi * i / n for i in range(2 * n)])
    if family == "ellipse":
        aspect, angles = rng.uniform(0.35, 0.7), [2 * math.pi * i / 48 for i in range(48)]
        points = [(math.cos(a), aspect * math.sin(a)) for a in angles]
        c, s = math.cos(rotation), math.sin(rotation)
        return family, tuple((x * c - y * s, x * s + y * c) for x, y in points)
    n = rng.randint(5, 9)
    angles = sorted(rotation + 2 * math.pi * (i + rng.uniform(-0.3, 0.3)) / n for i in range(n))
    return family + str(n), _polygon([rng.uniform(0.45, 1.0) for _ in range(n)], angles)


def random_shapes(rng: random.Random, n: int) -> list[tuple[tuple[float, float], ...]]:
    """``n`` random shapes of different families (a triangle and a hexagon, never two triangles)."""
    shapes: dict[str, tuple] = {}
    while len(shapes) < n:
        family, vertices = random_shape(rng)
        shapes.setdefault(family, vertices)
    return list(shapes.values())


def random_sizes(rng: random.Random, n: int = 2) -> list[int]:
    """``n`` radii in SIZE_RANGE, each at least MIN_SIZE_RATIO times the next smaller one."""
    while True:
        sizes = sorted(rng.randint(*SIZE_RANGE) for _ in range(n))
        if all(b >= MIN_SIZE_RATIO * a for a, b in zip(sizes, sizes[1:])):
            rng.shuffle(sizes)
            return sizes


def light_background(rng: random.Random) -> tuple[int, int, int]:
    return _hsv(rng.random(), rng.uniform(0.0, 0.15), rng.uniform(0.85, 1.0))


def cycle_scenes(task: str, rng: random.Random) -> list[Scene]:
    """The distinct frames of a sequence of ``task``, in cycle order (3 colours, 3 shapes or 2 sizes)."""
    if task not in TASKS:
        raise ValueError(f"unknown reasoning task {task!r}; known: {sorted(TASKS)}")
    n = TASKS[task]
    colours = random_colours(rng, n) if task == "colour" else random_colours(rng, 1) * n
    shapes = random_shapes(rng, n) if task == "shape" else random_shapes(rng, 1) * n
    radii = random_sizes(rng, n) if task == "size" else [rng.randint(48, 96)] * n
    margin = max(radii) + 4
    centre = (rng.randint(margin, SIZE - margin), rng.randint(margin, SIZE - margin))
    background = light_background(rng)
    return [Scene(shapes[i], colours[i], radii[i], centre, background) for i in range(n)]


def sequence_frames(task: str, rng: random.Random, length: int) -> tuple[list[np.ndarray], list[int]]:
    """(distinct frames in cycle order, the cycle index of each of ``length`` sequence positions)."""
    frames = [draw(scene) for scene in cycle_scenes(task, rng)]
    return frames, [i % len(frames) for i in range(length)]


def write_sequences(out_dir: str | Path, n_sequences: int, *, seed: int = 0, length: int = 16,
                    tasks: tuple[str, ...] = tuple(TASKS)) -> Path:
    """Training sequences as frame folders: ``sequences/<task>_<i>/frame_NN.png`` and ``index.csv``
    (columns sequence, task), the ``tasks`` taking turns. Returns the index file."""
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown or not tasks:
        raise ValueError(f"tasks must be some of {', '.join(TASKS)}; got {', '.join(tasks) or 'none'}")
    out = Path(out_dir)
    rows = ["sequence,task"]
    for i in range(n_sequences):
        task = tasks[i % len(tasks)]
        name = f"{task}_{i:06d}"
        frames, order = sequence_frames(task, random.Random(f"{seed}:train:{i}"), length)
        for position, index in enumerate(order):
            write_png(out / "sequences" / name / f"frame_{position:02d}.png", frames[index])
        rows.append(f"{name},{task}")
    index = out / "index.csv"
    atomic_write(str(index), ("\n".join(rows) + "\n").encode())  # last: a complete source has its index
    return index
