"""Tiny torch models exported as annotator folders (annotator.json + model.pt2), for tests.

They are random, so their annotations mean nothing; they follow the output contract of
pipeline/views/annotators.py exactly, which is what the pipeline is tested against.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn


class _Dense(nn.Module):
    def __init__(self, out_channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, out_channels, 3, padding=1))

    def forward(self, x):
        return self.body(x)


class _Edges(_Dense):
    def forward(self, x):
        return torch.sigmoid(self.body(x))  # probabilities in [0, 1]


class _Pose(nn.Module):
    """Two people, 17 keypoints each: (x, y) in [0, 1] from pooled features, score from a sigmoid."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(3, 2 * 17 * 3)

    def forward(self, x):
        pooled = x.mean(dim=(2, 3))  # (B, 3)
        return torch.sigmoid(self.head(pooled)).reshape(x.shape[0], 2, 17, 3)


MODELS = {"depth": lambda: _Dense(1), "normals": lambda: _Dense(3), "segmentation": lambda: _Dense(12),
          "edges": lambda: _Edges(1), "pose": _Pose}


def export_annotator(kind: str, folder: Path, *, input_size=(64, 64), seed: int = 0) -> Path:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MODELS[kind]().eval()
    return export_module(model, kind, folder, input_size=input_size, name=f"tiny-random-{kind}")


def export_module(model: nn.Module, kind: str, folder: Path, *, input_size=(64, 64), mean=(0.5, 0.5, 0.5),
                  std=(0.25, 0.25, 0.25), name: str = "test-model") -> Path:
    """``model`` (taking ``x``: (B, 3, H, W)) saved as an annotator folder of ``kind``, batch size dynamic."""
    folder.mkdir(parents=True, exist_ok=True)
    example = torch.rand(2, 3, *input_size)
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(model.eval(), (example,), dynamic_shapes={"x": {0: batch}})
    torch.export.save(program, str(folder / "model.pt2"))
    (folder / "annotator.json").write_text(json.dumps({
        "kind": kind, "model": "model.pt2", "input_size": list(input_size), "mean": list(mean), "std": list(std),
        "name": name}))
    return folder


def export_all(root: Path) -> dict[str, str]:
    """kind -> folder for every model annotator kind (edges too, though it has a built-in)."""
    return {kind: str(export_annotator(kind, root / kind)) for kind in ("depth", "normals", "segmentation", "pose")}
