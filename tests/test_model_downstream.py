"""Batch generation on paired tasks: prompts from a build's [x, y] sentences, the metrics each kind of
task gets, and the candidates all scored."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from shard_helpers import make_sentence

from uvd.format.sample import SentenceMeta, VisualSentence
from uvd.media.drawing import PALETTE, draw_keypoints
from uvd.model.downstream import Prompt, build_prompts, kind_of_view, pair_views, run_downstream
from uvd.model.generate import GenerationConfig


def block_decode(tokens: np.ndarray) -> np.ndarray:
    """A stand-in decoder: each token is a 16 x 16 block in palette colour ``token``."""
    tokens = np.asarray(tokens).reshape(-1, 16, 16)
    return np.repeat(np.repeat(PALETTE[tokens % 256], 16, axis=1), 16, axis=2)


class Always(torch.nn.Module):
    """Predicts token ``token`` everywhere."""

    def __init__(self, token: int):
        super().__init__()
        self.token = token
        self.config = type("config", (), {"max_seq_len": 4096, "n_layers": 1})

    def forward(self, ids, *args, logits_to_keep: int = 0, **kw):
        logits = torch.zeros(ids.shape[0], logits_to_keep or ids.shape[1], 300)
        logits[..., self.token] = 20.0
        return logits, None


def paired(index: int, views: tuple[str, str], n_pairs: int = 3, source: str = "coco_segmentation") -> VisualSentence:
    base = make_sentence(index, n_images=2 * n_pairs, tokens_per_image=256)
    meta = SentenceMeta(source=source, group="images_with_annotations", layout="pairs",
                        item_keys=tuple(f"i{k}" for k in range(n_pairs)),
                        image_items=tuple(k // 2 for k in range(2 * n_pairs)), frame_indices=(0,) * (2 * n_pairs),
                        views=views * n_pairs, seed=index)
    return VisualSentence(f"s{index}", base.tokens, meta)


def test_views_say_which_metrics_a_task_gets():
    assert kind_of_view("segmentation") == kind_of_view("image|segmentation") == kind_of_view("panoptic") == \
        "segmentation"
    assert kind_of_view("mask") == "mask"
    assert kind_of_view("keypoints") == kind_of_view("image|pose") == "pose_coco17"
    assert kind_of_view("pose") == "pose_jhmdb15"  # JHMDB's puppets, drawn by its reader
    assert kind_of_view("target") == kind_of_view("image|depth") == "image"


def test_build_prompts_use_the_pairs_before_the_last_as_examples():
    sentences = [paired(0, ("image", "segmentation"), n_pairs=4), make_sentence(1, n_images=4, tokens_per_image=256),
                 paired(2, ("image", "segmentation")), paired(3, ("input", "target"), source="sidd_denoise")]
    assert pair_views(sentences[0]) == ("image", "segmentation") and pair_views(sentences[1]) is None
    prompts = list(build_prompts(sentences, block_decode, shots=2, max_per_task=1))
    assert [(p.task, p.kind) for p in prompts] == [("coco_segmentation", "segmentation"), ("sidd_denoise", "image")]
    first = sentences[0].tokens.astype(np.int64)
    assert np.array_equal(prompts[0].context, first[[2, 3, 4, 5, 6]])  # 2 example pairs, then the last x
    assert np.array_equal(prompts[0].truth, block_decode(first[7:]))
    assert len(list(build_prompts(sentences[:1], block_decode, shots=0))[0].context) == 1  # zero-shot: the query


def test_every_candidate_is_scored_with_its_task_metrics():
    truth_tokens = np.full(256, 5)
    truth_tokens[128:] = 7  # half class 5, half class 7
    person = np.array([[128, 40], [120, 35], [136, 35], [110, 40], [146, 40], [100, 80], [156, 80], [90, 120],
                       [166, 120], [85, 150], [171, 150], [110, 150], [146, 150], [105, 200], [151, 200],
                       [100, 240], [156, 240]], float)
    skeleton = draw_keypoints((256, 256), np.concatenate([person, np.ones((17, 1))], 1)[None])
    prompts = [Prompt("seg", "segmentation", np.zeros((3, 256), np.int64), block_decode(truth_tokens)),
               Prompt("same", "image", np.zeros((1, 256), np.int64), block_decode(np.full(256, 5))),
               Prompt("pose", "pose_coco17", np.zeros((1, 256), np.int64), skeleton[None])]
    seen = []
    report = run_downstream(Always(5), prompts, block_decode, GenerationConfig(n_candidates=2, temperature=0),
                            on_result=lambda p, pixels: seen.append(pixels.shape))
    assert seen == [(2, 1, 256, 256, 3)] * 3
    # the model draws class 5 everywhere: class 5 IoU 128 / 256, class 7 IoU 0
    assert report["seg"]["miou"] == pytest.approx(0.25) and report["seg"]["images"] == 2
    assert report["same"]["mse"] == 0 and report["same"]["psnr"] == float("inf")
    assert report["pose"]["pckh"] == 0.0 and report["pose"]["pckh_joints"] == 2 * 17  # no skeleton drawn
    assert "pckh" not in report["seg"] and "miou" not in report["same"]
