"""Batch generation on paired tasks, scored with the downstream metrics (model/metrics.py).

A prompt is LVM's analogy prompt: example pairs (x, y), then a query x; the model generates the
next image(s) with ``generate_once`` (model/generate.py), ``n_candidates`` times, and each candidate
is scored against the true y. Prompts come from

- a build: every sentence of alternating (x, y) views ([x, y] x 8: the ``pairs``, ``colorization``,
  ``inpainting`` and ``video_annotated`` layouts): its first pairs are the examples, its last x the
  query and its last y the truth (decoded from its tokens, so both sides pass the tokenizer);
- ``{"input": [paths], "target": [paths]}`` JSONL, as LVM's batch_generation.py reads it: the
  input images are the prompt, the targets the truth, as many new images as targets.

What a task's y is decides its metrics: ``segmentation`` / ``mask`` renders give mIoU, pose
renders PCKh, and every task gets MSE and PSNR.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from uvd.format.sample import VisualSentence
from uvd.model.generate import GenerationConfig, generate_frames
from uvd.model.metrics import KINDS, IoU, PCKh, decode_keypoints, mse, psnr, segmentation_classes


@dataclass(frozen=True)
class Prompt:
    task: str
    kind: str  # one of metrics.KINDS
    context: np.ndarray  # (n, 256) token ids: example pairs, then the query
    truth: np.ndarray  # (m, 256, 256, 3) uint8: what the m new images should be
    name: str = ""


def kind_of_view(view: str) -> str:
    """What a y view's pictures are: a reader's ``keypoints`` (COCO-17) or ``pose`` (JHMDB-15
    puppets), a pose annotator's ``image|pose`` (COCO-17), palette segmentations, masks, or images."""
    base = view.split("|")[-1]
    if base in ("segmentation", "panoptic"):
        return "segmentation"
    if base == "mask":
        return "mask"
    if base == "keypoints" or view.endswith("|pose"):
        return "pose_coco17"
    if base == "pose":
        return "pose_jhmdb15"
    return "image"


def pair_views(sentence: VisualSentence) -> tuple[str, str] | None:
    """(x view, y view) when the sentence alternates two views, x first, in whole pairs."""
    views = sentence.meta.views
    if len(views) < 2 or len(views) % 2 or views[0] == views[1]:
        return None
    if set(views[0::2]) != {views[0]} or set(views[1::2]) != {views[1]}:
        return None
    return views[0], views[1]


def build_prompts(sentences: Iterable[VisualSentence], decode, *, shots: int = 7,
                  max_per_task: int = 0) -> Iterator[Prompt]:
    """Prompts from a build's paired sentences: ``shots`` example pairs (fewer when the sentence has
    fewer), the last pair's x as the query, its y (``decode``d from tokens) as the truth."""
    counts: dict[str, int] = {}
    for sentence in sentences:
        views = pair_views(sentence)
        task = sentence.meta.source
        if views is None or (max_per_task and counts.get(task, 0) >= max_per_task):
            continue
        counts[task] = counts.get(task, 0) + 1
        tokens = sentence.tokens.astype(np.int64)
        examples = tokens[:-2][-2 * shots:] if shots else tokens[:0]
        yield Prompt(task, kind_of_view(views[1]), np.concatenate([examples, tokens[-2:-1]]),
                     decode(tokens[-1:]), sentence.key)


@dataclass
class TaskScores:
    """Running metrics of one task."""

    kind: str
    mse: list[float] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    iou: IoU = field(default_factory=IoU)
    pck: PCKh | None = None
    prompts: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown task kind {self.kind!r}; known: {KINDS}")
        if self.kind.startswith("pose_"):
            self.pck = PCKh(self.kind.removeprefix("pose_"))

    def add(self, pred: np.ndarray, truth: np.ndarray) -> None:
        self.mse.append(mse(pred, truth))
        self.psnr.append(psnr(pred, truth))
        if self.kind in ("segmentation", "mask"):
            self.iou.add(segmentation_classes(pred, self.kind), segmentation_classes(truth, self.kind))
        elif self.pck is not None:
            self.pck.add(decode_keypoints(pred, self.pck.skeleton), decode_keypoints(truth, self.pck.skeleton))

    def summary(self) -> dict:
        finite = [p for p in self.psnr if math.isfinite(p)]
        out = {"kind": self.kind, "prompts": self.prompts, "images": len(self.mse),
               "mse": float(np.mean(self.mse)) if self.mse else None,
               "psnr": float(np.mean(finite)) if finite else (math.inf if self.psnr else None)}
        if self.kind in ("segmentation", "mask"):
            out["miou"] = self.iou.miou()
        if self.pck is not None:
            out["pckh"] = self.pck.value()
            out["pckh_joints"] = self.pck.total
        return out


def run_downstream(model, prompts: Iterable[Prompt], decode, cfg: GenerationConfig, *, device="cpu",
                   on_result=None) -> dict[str, dict]:
    """Generate every prompt's images ``cfg.n_candidates`` times and score each candidate against
    the truth; {task: metrics}. ``on_result(prompt, generated pixels)`` sees each prompt's output."""
    scores: dict[str, TaskScores] = {}
    for prompt in prompts:
        task = scores.setdefault(prompt.task, TaskScores(prompt.kind))
        run = dataclasses.replace(cfg, n_new_frames=len(prompt.truth))
        new = generate_frames(model, prompt.context, run, device)  # (candidates, m, 256)
        pixels = decode(new.reshape(-1, new.shape[-1])).reshape(*new.shape[:2], *prompt.truth.shape[1:])
        for candidate in pixels:
            for pred, truth in zip(candidate, prompt.truth):
                task.add(pred, truth)
        task.prompts += 1
        if on_result is not None:
            on_result(prompt, pixels)
    return {name: s.summary() for name, s in sorted(scores.items())}
