"""Using a trained model: LVM's perplexity protocol on stored sentences, and the eval and generate
commands end to end on a tiny trained checkpoint (the parts: test_model_generate, _perplexity,
_reasoning, _raven, _metrics, _downstream)."""

from __future__ import annotations

import json
import math

import cv2
import decord
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from shard_helpers import make_sentence, write_test_shards
from test_model_downstream import paired

from uvd.cli import main
from uvd.media.drawing import colorize_labels
from uvd.model.evaluate import perplexity_by_task, target_nll
from uvd.model.generate import analogy_context
from uvd.model.llama import Llama, LlamaConfig
from uvd.model.media import write_mp4
from uvd.model.train import TrainConfig, train
from uvd.tokenizer import load_tokenizer

TINY = LlamaConfig(d_model=64, ff_dim=128, n_layers=2, n_heads=4)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return Llama(TINY).eval()


def test_target_nll_is_the_loss_over_the_target_tokens_only(tiny):
    rng = np.random.default_rng(0)
    context, target = rng.integers(0, 8192, (2, 256)), rng.integers(0, 8192, (1, 256))
    (nll,) = target_nll(tiny, context, [target], "cpu")
    ids = torch.from_numpy(np.concatenate([context, target]).reshape(1, -1))
    with torch.no_grad():
        logits, _ = tiny(ids)
    manual = F.cross_entropy(logits[0, 511:767], ids[0, 512:]).item()  # position p predicts p + 1, no BOS
    assert nll == pytest.approx(manual, rel=1e-5)


def test_perplexity_by_task_follows_lvm_and_skips_single_images(tiny):
    sentences = [make_sentence(i, n_images=1 + i % 3, tokens_per_image=256) for i in range(6)]
    report = perplexity_by_task(tiny, sentences)
    r = report["synthetic"]
    assert r["examples"] == 4 and r["skipped"] == 2
    nlls = [target_nll(tiny, s.tokens[:-1], [s.tokens[-1]], "cpu")[0] for s in sentences if s.num_images > 1]
    assert r["perplexity"] == pytest.approx(np.mean(np.exp(nlls)))  # mean of per-example perplexities
    assert r["token_perplexity"] == pytest.approx(math.exp(np.mean(nlls)))


def test_analogy_context_interleaves_pairs_then_the_query():
    pairs = [(np.full(256, 1), np.full(256, 2)), (np.full(256, 3), np.full(256, 4))]
    assert analogy_context(pairs, np.full(256, 5))[:, 0].tolist() == [1, 2, 3, 4, 5]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A debug model trained for a few steps on shards made by the tiny tokenizer."""
    root = tmp_path_factory.mktemp("use")
    sentences = [make_sentence(i, n_images=2 + i % 3, tokens_per_image=256) for i in range(12)]
    for s in sentences:
        s.tokens[:] %= 512  # the tiny tokenizer's codebook
    write_test_shards(root / "data", sentences, 4)
    info = load_tokenizer("random:tiny").info
    table = pq.read_table(root / "data" / "manifest.parquet")
    meta = {b"uvd": json.dumps({"tokenizer": {"spec": "random:tiny", "sha256": info.sha256}}).encode()}
    pq.write_table(table.replace_schema_metadata(meta), root / "data" / "manifest.parquet")
    train(TrainConfig(data_dirs=[str(root / "data")], seq_len=256, batch_size=2, steps=3, device="cpu",
                      out_dir=str(root / "ckpt"), log_every=100))
    return root


def write_png(path, rgb) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2BGR))
    return path.name


def frame_folder(folder, n: int):
    for i in range(n):
        write_png(folder / f"f{i}.png", np.full((40, 40, 3), (10 * i, 100, 200 - 5 * i)))
    return folder


def run(args, ok: bool = True):
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert (res.exit_code == 0) == ok, res.output
    return res


def test_eval_perplexity_reads_builds_records_and_videos(trained, tmp_path):
    ckpt, data = trained / "ckpt", trained / "data"
    rng = np.random.default_rng(0)
    for name in ("x1", "y1", "x2", "y2"):
        write_png(tmp_path / "imgs" / f"{name}.png", rng.integers(0, 255, (32, 32, 3)))
    (tmp_path / "fewshot.jsonl").write_text(json.dumps({"input": ["imgs/x1.png", "imgs/y1.png", "imgs/x2.png"],
                                                        "target": ["imgs/y2.png"]}) + "\n")
    frame_folder(tmp_path / "clips" / "a", 20)
    frame_folder(tmp_path / "clips" / "b", 5)  # too short for 16 frames
    run(["eval", "perplexity", ckpt, data, "--jsonl", tmp_path / "fewshot.jsonl", "--videos", tmp_path / "clips",
         "--json", tmp_path / "ppl.json"])
    report = json.loads((tmp_path / "ppl.json").read_text())
    assert report["build"]["synthetic"]["examples"] == 12 and report["build"]["synthetic"]["perplexity"] > 1
    assert report["records"]["fewshot"]["examples"] == 1 and report["records"]["fewshot"]["perplexity"] > 1
    assert report["videos"]["clips"] == {**report["videos"]["clips"], "examples": 1, "skipped": 1}
    (tmp_path / "missing.jsonl").write_text(json.dumps({"input": ["nope.png"], "target": ["imgs/y2.png"]}) + "\n")
    res = run(["eval", "perplexity", ckpt, "--jsonl", tmp_path / "missing.jsonl"], ok=False)
    assert "nope.png: cannot read" in res.output


def test_eval_reasoning_and_raven_store_and_reuse_their_items(trained, tmp_path):
    ckpt = trained / "ckpt"
    res = run(["eval", "reasoning", ckpt, "--items", 6, "--items-dir", tmp_path / "set", "--json", tmp_path / "a.json"])
    first = json.loads((tmp_path / "a.json").read_text())
    assert set(first) == {"colour", "shape", "size", "all"} and first["colour"]["items"] == 2
    assert first["size"]["chance"] == 0.5 and "chance 33.3%" in res.output and "LVM-7B in the talk: 94%" in res.output
    res = run(["eval", "reasoning", ckpt, "--items-dir", tmp_path / "set", "--json", tmp_path / "b.json"])
    assert "6 items from" in res.output and json.loads((tmp_path / "b.json").read_text()) == first
    run(["eval", "raven", ckpt, "--items", 3, "--json", tmp_path / "raven.json"])
    raven = json.loads((tmp_path / "raven.json").read_text())
    assert set(raven) == {"center_single", "grid_2x2", "grid_3x3", "all"} and raven["all"]["chance"] == pytest.approx(0.2)


def test_eval_downstream_on_records_and_a_paired_build(trained, tmp_path):
    rng = np.random.default_rng(1)
    names = []
    for i in range(2):
        labels = np.zeros((64, 64), int)
        labels[rng.integers(0, 32):, rng.integers(0, 32):] = 1 + i
        names += [write_png(tmp_path / f"x{i}.png", rng.integers(0, 255, (64, 64, 3))),
                  write_png(tmp_path / f"y{i}.png", colorize_labels(labels))]
    (tmp_path / "seg.jsonl").write_text(json.dumps({"input": names[:3], "target": names[3:]}) + "\n")
    sentences = [paired(0, ("image", "segmentation"))]
    sentences[0].tokens[:] %= 512  # the tiny tokenizer's codebook
    write_test_shards(tmp_path / "pairs", sentences, 4)
    run(["eval", "downstream", trained / "ckpt", tmp_path / "pairs", "--jsonl", tmp_path / "seg.jsonl", "--kind",
         "segmentation", "--shots", 1, "--out-dir", tmp_path / "strips", "--json", tmp_path / "d.json"])
    report = json.loads((tmp_path / "d.json").read_text())
    assert set(report) == {"seg", "coco_segmentation"}
    for r in report.values():
        assert r["kind"] == "segmentation" and r["prompts"] == 1 and 0 <= r["miou"] <= 1 and r["psnr"] > 0
    assert sorted(p.name for p in (tmp_path / "strips").iterdir()) == ["coco_segmentation_0.png", "seg_0.png"]


def test_generate_commands_write_candidates_strips_and_video(trained, tmp_path):
    ckpt, data = trained / "ckpt", trained / "data"
    run(["generate", "sequential", ckpt, "--from-build", data, "--context", 2, "--new", 1, "--candidates", 2,
         "--out", tmp_path / "seq.png"])
    grid = cv2.imread(str(tmp_path / "seq.png"))
    assert grid.shape[:2] == (2 * 256 + 4, 3 * 256 + 2 * 4)  # a row per candidate: 2 context images + 1 new
    frame_folder(tmp_path / "clip", 12)
    res = run(["generate", "video", ckpt, tmp_path / "clip", "--context", 3, "--new", 1, "--stride", 4,
               "--candidates", 2, "--out", tmp_path / "vid"])
    assert "vid.png" in res.output
    strip = cv2.imread(str(tmp_path / "vid.png"))
    assert strip.shape[:2] == (2 * 256 + 4, 4 * 256 + 3 * 4)
    movie = decord.VideoReader(str(tmp_path / "vid.mp4"))
    assert len(movie) == 4 and movie[0].shape == (256, 2 * 256, 3)  # 3 context + 1 new; candidates side by side
    clip = np.stack([np.full((48, 64, 3), (20 * i, 120, 240 - 20 * i), np.uint8) for i in range(10)])
    write_mp4(tmp_path / "clip.mp4", clip, fps=10)  # a video file: decoded in the guarded child process
    run(["generate", "video", ckpt, tmp_path / "clip.mp4", "--context", 2, "--new", 1, "--stride", 4,
         "--out", tmp_path / "file"])
    assert cv2.imread(str(tmp_path / "file.png")).shape[:2] == (256, 3 * 256 + 2 * 4)
    assert len(decord.VideoReader(str(tmp_path / "file.mp4"))) == 3
    res = run(["generate", "video", ckpt, tmp_path / "clip", "--context", 16, "--out", tmp_path / "v2"], ok=False)
    assert "fewer than 16 frames" in res.output
    res = run(["generate", "sequential", ckpt, "--from-build", data, "--tokenizer", "random:small",
               "--out", tmp_path / "x.png"], ok=False)
    assert "allow-tokenizer-mismatch" in res.output
