"""LVM's perplexity: the formula against a hand computation, {input, target} records with relative
paths, and video clips (15 + 1 frames, stride lowered to fit, seeded start)."""

from __future__ import annotations

import json
import math
import random

import cv2
import numpy as np
import pytest
import torch

from uvd.model.media import MediaError, clip_indices, read_clip
from uvd.model.perplexity import ImageTokens, VideoConfig, records_perplexity, video_perplexity
from uvd.model.records import read_records


class FixedLogits(torch.nn.Module):
    """Every position predicts token 0 with logit ln 2 and tokens 1..3 with 0: p = 2/5, 1/5, 1/5, 1/5."""

    class config:  # noqa: N801 - what the evals read of a model's config
        max_seq_len = 4096

    def forward(self, ids):
        logits = torch.zeros(*ids.shape, 4)
        logits[..., 0] = math.log(2)
        return logits, None


def constant_encoder(images: np.ndarray) -> np.ndarray:
    """An image's tokens are all its first pixel's red value (mod 4): pictures name their tokens."""
    return np.repeat(images[:, 0, 0, 0].astype(np.int64) % 4, 256).reshape(-1, 256)


def write_png(path, value: int) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((64, 48, 3), value, np.uint8))  # resized to 256 on reading
    return path.name


def test_record_perplexity_matches_a_hand_computation(tmp_path):
    for value in range(4):
        write_png(tmp_path / "imgs" / f"v{value}.png", value)
    lines = [{"input": ["imgs/v3.png", "imgs/v2.png"], "target": ["imgs/v0.png", "imgs/v1.png"]},
             {"input": ["imgs/v1.png"], "target": ["imgs/v0.png"], "task": "other"},
             {"input": ["imgs/v2.png"], "target": ["imgs/v0.png"]}]
    (tmp_path / "fewshot.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    records = read_records(tmp_path / "fewshot.jsonl")  # relative to the JSONL's folder
    assert [r.task for r in records] == ["fewshot", "other", "fewshot"]
    report = records_perplexity(FixedLogits(), records, ImageTokens(constant_encoder))
    # example 1: 256 targets of p = 2/5 and 256 of p = 1/5: exp((ln 5/2 + ln 5) / 2) = sqrt(12.5)
    # example 3: every target token has p = 2/5: perplexity 5/2
    assert report["fewshot"]["perplexity"] == pytest.approx((math.sqrt(12.5) + 2.5) / 2)
    assert report["fewshot"]["token_perplexity"] == pytest.approx(math.sqrt(math.sqrt(12.5) * 2.5))
    assert report["other"] == {"examples": 1, "skipped": 0, "perplexity": pytest.approx(2.5),
                               "token_perplexity": pytest.approx(2.5)}


def test_records_resolve_against_a_base_dir_and_fail_clearly(tmp_path):
    write_png(tmp_path / "base" / "a.png", 1)
    (tmp_path / "r.jsonl").write_text(json.dumps({"input": ["a.png"], "target": ["a.png"]}) + "\n")
    (r,) = read_records(tmp_path / "r.jsonl", base_dir=tmp_path / "base")
    assert r.inputs == (tmp_path / "base" / "a.png",)
    (tmp_path / "bad.jsonl").write_text('{"input": ["a.png"]}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: not a record with 'input' and 'target'"):
        read_records(tmp_path / "bad.jsonl")
    (tmp_path / "empty.jsonl").write_text('{"input": [], "target": ["a.png"]}\n')
    with pytest.raises(ValueError, match="empty.jsonl:1: .*non-empty lists"):
        read_records(tmp_path / "empty.jsonl")
    (missing,) = read_records(tmp_path / "r.jsonl")  # a.png is not next to r.jsonl
    with pytest.raises(MediaError, match=r"a.png: cannot read"):
        records_perplexity(FixedLogits(), [missing], ImageTokens(constant_encoder))
    for escape in ("../a.png", str(tmp_path / "base" / "a.png")):  # an index path stays inside its base
        (tmp_path / "out.jsonl").write_text(json.dumps({"input": [escape], "target": ["a.png"]}) + "\n")
        with pytest.raises(ValueError, match=r"out.jsonl:1: .*(climbs out|absolute path)"):
            read_records(tmp_path / "out.jsonl", base_dir=tmp_path / "base")


def test_clip_indices_follow_lvm_read_frames():
    assert clip_indices(200, 16, 8, 0) == list(range(0, 121, 8))
    assert clip_indices(40, 16, 8, 0) == list(range(0, 31, 2))  # stride lowered to (40 - 1) // 15 = 2
    assert clip_indices(15, 16, 8, 0) is None
    starts = {clip_indices(40, 16, 8, random.Random(s))[0] for s in range(200)}
    assert starts == set(range(10))  # LVM: randint(0, 40 - 15 * 2), upper bound excluded
    assert clip_indices(40, 16, 2, 99)[0] == 9  # a start past the end moves back to fit


def write_frames(folder, n: int) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"frame{i}.png"), np.full((32, 32, 3), i, np.uint8))


def test_video_perplexity_scores_the_16th_frame_of_each_clip(tmp_path):
    write_frames(tmp_path / "vids" / "long", 130)  # frame i has value i: tokens i % 4
    write_frames(tmp_path / "vids" / "short", 10)  # fewer than 16: skipped
    frames = read_clip(tmp_path / "vids" / "long", 16, 8, 0)
    assert frames.shape == (16, 256, 256, 3) and frames[:, 0, 0, 0].tolist() == list(range(0, 121, 8))
    report = video_perplexity(FixedLogits(), [tmp_path / "vids"], constant_encoder, VideoConfig(seed=1))
    assert report["vids"]["examples"] == 1 and report["vids"]["skipped"] == 1
    start = clip_indices(130, 16, 8, random.Random("1:long"))[0]
    target_token = (start + 15 * 8) % 4  # the 16th frame's tokens
    assert report["vids"]["perplexity"] == pytest.approx(2.5 if target_token == 0 else 5.0)
    with pytest.raises(ValueError, match="do not fit"):
        video_perplexity(FixedLogits(), [tmp_path / "vids"], constant_encoder, VideoConfig(context_frames=16 * 16))
