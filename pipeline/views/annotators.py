"""Model-derived annotations (depth, normals, segmentation, pose, edges) behind one interface.

LVM labelled COCO and ImageNet with DPT (depth), NLL-AngMF (normals), Mask2Former
(segmentation), MMPose (pose) and DexiNed (edges). uvd does not bundle those networks: an
``Annotator`` takes 256x256 RGB frames and returns the annotation drawn as RGB, and a model
annotator runs a torch model the user exported from the original code, from a local folder:
    annotator.json   {"kind": "depth", "model": "model.pt2", "input_size": [384, 384],
                      "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "name": "DPT-Hybrid"}
    model.pt2        torch.export.save(torch.export.export(model, (example,)), "model.pt2")

A ``.pt2`` archive holds a graph, raw weights and a pickle of example inputs; torch.export.load
can unpickle, load libraries and evaluate Python from such a file, so uvd checks every member
first and refuses what could run code (``exported.py``); ``model`` must name a file inside the
folder. The model takes (B, 3, H, W) float images (``(x/255 - mean) / std``)
and returns, per kind:

- depth: (B, 1, h, w) or (B, h, w) depth or inverse depth (any scale; min-max per image);
- normals: (B, 3, h, w) normals (normalised here, then ``(n + 1) / 2`` as RGB);
- segmentation: (B, C, h, w) class scores (argmax here) or (B, h, w) class ids;
- edges: (B, 1, h, w) or (B, h, w) edge probability in [0, 1];
- pose: (B, P, 17, 3) COCO-17 keypoints (x, y in [0, 1] of the image, score).

``edges`` has a built-in default, opencv's Canny, so the edges task needs no weights; every
other kind needs a folder, and asking for one without it is an error that says so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from abc import ABC, abstractmethod
from pathlib import Path

import cv2
import numpy as np
import torch

from uvd.dataset_specs.base import MODEL_VIEWS
from uvd.format import storage
from uvd.media import drawing
from uvd.pipeline.views.exported import UnsafeModelFile, check_archive, load_exported_program

ANNOTATOR_CONFIG = "annotator.json"
UVDV1_MODELS = {"depth": "DPT", "normals": "NLL-AngMF", "segmentation": "Mask2Former", "pose": "MMPose",
                "edges": "DexiNed"}
BUILTIN = {"edges": "canny"}


class AnnotatorMissing(ValueError):
    """A spec needs a model annotator that the build was not given."""


class NotAnAnnotatorFolder(ValueError):
    """An --annotator folder lacks annotator.json or its model, or is for another kind."""


class Annotator(ABC):
    kind: str
    label_map: bool = False  # segmentation: resize by nearest neighbour

    @abstractmethod
    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 RGB frames -> (B, H, W, 3) uint8 RGB annotation images."""
    def describe(self) -> dict:
        return {"kind": self.kind, "model": type(self).__name__}


class CannyEdges(Annotator):
    """opencv's Canny on the luma, white edges on black (DexiNed draws edges the same way round)."""

    kind = "edges"

    def __init__(self, low: int = 100, high: int = 200):
        self.low, self.high = low, high

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        out = [cv2.Canny(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), self.low, self.high) for f in frames]
        return np.repeat(np.stack(out)[..., None], 3, axis=3)

    def describe(self) -> dict:
        return {"kind": self.kind, "model": "canny", "low": self.low, "high": self.high}


@dataclasses.dataclass(frozen=True)
class AnnotatorFolder:
    """An annotator folder, read and checked: its annotator.json, and the bytes of a model archive
    that cannot run code (``exported.check_archive``), not yet loaded."""

    config: dict
    config_bytes: bytes
    model_path: Path
    archive: bytes

    @classmethod
    def read(cls, kind: str, directory: str | Path) -> AnnotatorFolder:
        if kind not in MODEL_VIEWS:
            raise ValueError(f"unknown annotator kind {kind!r}; known: {MODEL_VIEWS}")
        directory = Path(directory)
        config_path = directory / ANNOTATOR_CONFIG
        if not config_path.is_file():
            raise NotAnAnnotatorFolder(f"{directory}: no {ANNOTATOR_CONFIG}; an annotator folder holds "
                                       f"{ANNOTATOR_CONFIG} and a torch.export .pt2 model")
        config_bytes = config_path.read_bytes()
        try:
            config = json.loads(config_bytes)
        except ValueError as e:
            raise NotAnAnnotatorFolder(f"{config_path}: not JSON ({e})") from None
        if config.get("kind") != kind:
            raise NotAnAnnotatorFolder(f"{config_path}: kind {config.get('kind')!r}, but it was given as the "
                                       f"{kind} annotator")
        try:
            model_path = Path(storage.confined_join(str(directory), str(config.get("model", "model.pt2"))))
        except storage.UnsafePath as e:
            raise UnsafeModelFile(f"{config_path}: model {e}") from None
        if not model_path.is_file():
            raise NotAnAnnotatorFolder(f"{config_path}: its model {model_path} does not exist")
        archive = model_path.read_bytes()
        check_archive(archive, str(model_path))
        return cls(config, config_bytes, model_path, archive)


class ExportedModelAnnotator(Annotator):
    """A torch.export model from a local annotator folder (see the module docstring)."""
    def __init__(self, kind: str, directory: str | Path, *, device: str = "cpu"):
        folder = AnnotatorFolder.read(kind, directory)
        self.config = folder.config
        self.kind, self.label_map = kind, kind == "segmentation"
        self.size = tuple(int(v) for v in self.config.get("input_size", (256, 256)))
        self.mean = np.asarray(self.config.get("mean", (0.0, 0.0, 0.0)), np.float32)
        self.std = np.asarray(self.config.get("std", (1.0, 1.0, 1.0)), np.float32)
        self.score_threshold = float(self.config.get("score_threshold", 0.3))
        self.sha256 = hashlib.sha256(folder.archive + folder.config_bytes).hexdigest()
        self.device = torch.device(device)
        self.model = load_exported_program(folder.archive, str(folder.model_path)).module().to(self.device)

    def describe(self) -> dict:
        return {"kind": self.kind, "model": self.config.get("name", "exported"), "sha256": self.sha256}

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        b, h, w, _ = frames.shape
        x = np.stack([cv2.resize(f, self.size[::-1], interpolation=cv2.INTER_AREA) for f in frames])
        x = (x.astype(np.float32) / 255.0 - self.mean) / self.std  # (B, h', w', 3)
        with torch.inference_mode():
            out = self.model(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous().to(self.device))
        out = out.float().cpu().numpy()
        return np.stack([self._draw(o, (h, w)) for o in out])

    def _draw(self, out: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        h, w = shape
        if self.kind == "pose":
            people = np.asarray(out, np.float64).reshape(-1, 17, 3).copy()
            people[..., 0] *= w
            people[..., 1] *= h
            people[..., 2] = people[..., 2] > self.score_threshold
            return drawing.draw_keypoints((h, w), people, "coco17")
        if self.kind == "segmentation":
            labels = out.argmax(0) if out.ndim == 3 else out
            labels = cv2.resize(labels.astype(np.int32).astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
            return drawing.colorize_labels(labels.astype(np.int64))
        if self.kind == "normals":
            n = np.moveaxis(out.reshape(3, *out.shape[-2:]), 0, -1)
            n = n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-6)
            return drawing.colorize_normals(cv2.resize(n, (w, h), interpolation=cv2.INTER_LINEAR))
        plane = cv2.resize(out.reshape(out.shape[-2:]).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        if self.kind == "depth":
            return drawing.colorize_depth(plane)
        return np.repeat(np.clip(np.rint(plane * 255), 0, 255).astype(np.uint8)[..., None], 3, axis=2)  # edges


def load_annotator(kind: str, directory: str | None, *, device: str = "cpu") -> Annotator:
    if kind not in MODEL_VIEWS:
        raise ValueError(f"unknown annotator kind {kind!r}; known: {MODEL_VIEWS}")
    if directory:
        return ExportedModelAnnotator(kind, directory, device=device)
    if kind == "edges":
        return CannyEdges()
    raise AnnotatorMissing(missing_message(kind))


def missing_message(kind: str, spec: str | None = None) -> str:
    who = f"dataset spec {spec!r} needs" if spec else "this build needs"
    return (f"{who} a {kind} annotator (UVDv1 used {UVDV1_MODELS[kind]}), and none is configured: pass "
            f"--annotator {kind}=DIR, a folder with {ANNOTATOR_CONFIG} and a torch.export .pt2 model "
            f"(see pipeline/views/annotators.py)")
