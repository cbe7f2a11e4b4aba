"""Using a trained model: LVM's perplexity protocol, sampling and generation, the reasoning eval, and
their commands end to end on a tiny trained checkpoint."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from shard_helpers import make_sentence, write_test_shards

from uvd.cli import main
from uvd.model.evaluate import perplexity_by_task, target_nll
from uvd.model.generate import analogy_context
from uvd.model.llama import Llama, LlamaConfig
from uvd.model.reasoning import TASKS, draw, make_items
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


def test_reasoning_items_follow_their_rules():
    for task, n_candidates in TASKS.items():
        items = make_items(task, 24, seed=1)
        assert all(len(it.sequence) == 6 and len(it.candidates) == n_candidates for it in items)
        assert len({it.answer for it in items}) == n_candidates  # the right answer moves around
        assert make_items(task, 24, seed=1)[3].answer == items[3].answer  # seeded
    item = make_items("size", 1, seed=2)[0]
    area = lambda img: int((img != img[0, 0]).any(axis=2).sum())  # noqa: E731
    sizes = [area(img) for img in item.sequence]
    step = np.sign(sizes[1] - sizes[0])
    assert all(np.sign(b - a) == step for a, b in zip(sizes, sizes[1:]))  # monotone
    right = area(item.candidates[item.answer])
    assert np.sign(right - sizes[-1]) == step  # the right answer continues the trend
    circle = draw("circle", (255, 0, 0), 40, (128, 128), (255, 255, 255))
    assert tuple(circle[128, 128]) == (255, 0, 0) and tuple(circle[0, 0]) == (255, 255, 255)


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


def test_eval_and_generate_commands_end_to_end(trained, tmp_path):
    runner = CliRunner()
    ckpt, data = str(trained / "ckpt"), str(trained / "data")
    res = runner.invoke(main, ["eval", "perplexity", ckpt, data, "--json", str(tmp_path / "ppl.json")])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "ppl.json").read_text())
    assert report["synthetic"]["examples"] == 12 and report["synthetic"]["perplexity"] > 1

    res = runner.invoke(main, ["eval", "reasoning", ckpt, "--items", "3", "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    reasoning = json.loads((tmp_path / "r.json").read_text())
    assert set(reasoning) == {"colour", "shape", "size"}
    assert reasoning["size"]["chance"] == 0.5 and reasoning["colour"]["items"] == 3
    assert "chance 33.3%" in res.output and "chance 50.0%" in res.output

    res = runner.invoke(main, ["generate", "sequential", ckpt, "--from-build", data, "--context", "2", "--new", "1",
                               "--out", str(tmp_path / "seq.png"), "--top-k", "50"])
    assert res.exit_code == 0, res.output

    grid = cv2.imread(str(tmp_path / "seq.png"))
    assert grid is not None and grid.shape[1] > 3 * 256  # 2 context images + 1 generated

    res = runner.invoke(main, ["generate", "sequential", ckpt, "--from-build", data, "--tokenizer", "random:small",
                               "--out", str(tmp_path / "x.png")])
    assert res.exit_code != 0 and "allow-tokenizer-mismatch" in res.output
