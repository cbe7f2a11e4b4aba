"""The training loop: learning, checkpoints, exact resume after kill -9, other worker counts, DDP."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from shard_helpers import write_test_shards
from torch._dynamo.utils import counters

from uvd.format.sample import SentenceMeta, VisualSentence
from uvd.model import checkpoint
from uvd.model.train import TrainConfig, learning_rate, train


def learnable_sentence(index: int, n_images: int = 2, tokens_per_image: int = 256) -> VisualSentence:
    """Tokens follow a fixed successor rule from a per-sentence start: a bigram model
    predicts them perfectly, so a tiny transformer's loss falls fast."""
    tokens = np.empty(n_images * tokens_per_image, dtype=np.int64)
    tokens[0] = (index * 37) % 512
    for t in range(1, len(tokens)):
        tokens[t] = (tokens[t - 1] * 5 + 3) % 512
    meta = SentenceMeta(source="synthetic", group="videos", layout="video", item_keys=(f"clip{index}.mp4",),
                        image_items=(0,) * n_images, frame_indices=tuple(range(n_images)),
                        views=("frame",) * n_images, seed=index)
    return VisualSentence(key=f"synthetic_{index:05d}", tokens=tokens.astype(np.uint16).reshape(n_images, -1),
                          meta=meta)


@pytest.fixture
def data(tmp_path) -> Path:
    write_test_shards(tmp_path / "data", [learnable_sentence(i, n_images=1 + i % 2) for i in range(24)], 4)
    return tmp_path / "data"


def config(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(data_dirs=[str(data)], model="debug", seq_len=64, batch_size=2, steps=8, lr=3e-3, end_lr=3e-4,
                warmup_steps=2, seed=1, out_dir=str(out), log_every=100, device="cpu")
    return TrainConfig(**{**base, **kw})


def logged_losses(out: Path) -> dict[int, float]:
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in lines if "loss" in r}


def test_learning_rate_schedule():
    cfg = TrainConfig(lr=1e-3, end_lr=1e-4, warmup_steps=10, steps=110)
    assert learning_rate(0, cfg) == pytest.approx(1e-4)
    assert learning_rate(9, cfg) == pytest.approx(1e-3)
    assert learning_rate(60, cfg) == pytest.approx(1e-4 + 0.5 * 9e-4)
    assert learning_rate(110, cfg) == pytest.approx(1e-4)
    lrs = [learning_rate(s, cfg) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert learning_rate(500, TrainConfig(lr=1e-3, end_lr=1e-4, warmup_steps=0, steps=1000,
                                          lr_decay_steps=400)) == pytest.approx(1e-4)


def test_debug_model_learns_and_checkpoint_round_trips(data, tmp_path, capsys):
    cfg = config(data, tmp_path / "ckpt", seq_len=256, batch_size=4, steps=30, log_every=10, val_fraction=0.2)
    result = train(cfg)
    out = capsys.readouterr().out
    assert out.count("tok/s") == 3 and "step     30/30 | loss" in out and "val loss" in out
    losses = result.losses
    assert len(losses) == 30 and result.final_step == 30 and all(math.isfinite(x) for x in losses)
    start, end = np.mean(losses[:3]), np.mean(losses[-3:])
    assert losses[0] > 8.5 and end < start - 3.0  # ln(8292) = 9.02 at init
    assert result.validation["val_loss"] < result.validation["val_unigram_entropy"]  # it uses context

    ckpt = result.checkpoint_path
    assert sorted(p.name for p in ckpt.iterdir()) == ["model.safetensors", "optimizer.pt", "trainer.json"]
    assert checkpoint.latest(tmp_path / "ckpt") == ckpt
    model, meta = checkpoint.load_model(tmp_path / "ckpt")
    assert meta.step == 30 and meta.model_config == result.model.config
    assert TrainConfig(**meta.trainer["train"]) == cfg
    ids = torch.from_numpy(learnable_sentence(99).tokens.reshape(1, -1)[:, :64].astype(np.int64))
    with torch.no_grad():
        assert torch.equal(model(ids)[0], result.model(ids)[0])
    torch.load(ckpt / "optimizer.pt", weights_only=True)  # no pickled objects beyond tensors and containers


def test_grad_accumulation_equals_the_larger_batch(data, tmp_path):
    big = train(config(data, tmp_path / "big", batch_size=4, steps=3))
    accumulated = train(config(data, tmp_path / "acc", batch_size=2, grad_accum=2, steps=3))
    assert np.allclose(big.losses, accumulated.losses, rtol=1e-5, atol=1e-6)


def run_cli(out: Path, data: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "uvd.cli", "train", str(data), "--model", "debug", "--seq-len", "64",
           "--batch-size", "2", "--steps", "12", "--lr", "3e-3", "--warmup-steps", "2", "--seed", "1",
           "--checkpoint-every", "3", "--device", "cpu", "--out", str(out), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def test_kill_9_and_resume_reproduce_the_uninterrupted_losses_bitwise(data, tmp_path):
    whole = run_cli(tmp_path / "whole", data)
    assert whole.wait(timeout=300) == 0, whole.stdout.read().decode()
    reference = logged_losses(tmp_path / "whole")
    assert sorted(reference) == list(range(1, 13))

    out = tmp_path / "killed"
    victim = run_cli(out, data, "--num-workers", "2")
    deadline = time.time() + 300
    while checkpoint.latest(out) is None or checkpoint.read(out).step < 6:
        assert victim.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = checkpoint.read(out).step
    assert 6 <= killed_at < 12
    resumed = run_cli(out, data, "--resume", "--num-workers", "0")  # another worker count on resume
    assert resumed.wait(timeout=300) == 0, resumed.stdout.read().decode()
    losses = logged_losses(out)
    assert sorted(losses) == list(range(1, 13))
    assert losses == reference  # bitwise: weights, optimizer and data position restored exactly


def test_resume_is_refused_for_another_model_or_tokenizer(data, tmp_path):
    train(config(data, tmp_path / "run", steps=2))
    with pytest.raises(ValueError, match="different model"):
        train(config(data, tmp_path / "run", steps=4, model="vqlm_100m", resume=True))
    manifest = data / "manifest.parquet"

    table = pq.read_table(manifest)
    meta = {b"uvd": json.dumps({"tokenizer": {"spec": "other", "sha256": "f" * 64}}).encode()}
    pq.write_table(table.replace_schema_metadata(meta), manifest)
    with pytest.raises(ValueError, match="allow-tokenizer-mismatch"):
        train(config(data, tmp_path / "run", steps=4, resume=True))
    assert train(config(data, tmp_path / "run", steps=4, resume=True, allow_tokenizer_mismatch=True)).final_step == 4


@pytest.mark.parametrize("mode,port", [("ddp", 29517), ("fsdp", 29519)])
def test_distributed_over_two_processes_matches_one_process(data, tmp_path, mode, port):
    """torchrun, gloo on CPU: 2 ranks x 2 rows see the same rows per step as 1 process x 4 rows,
    with replicated (DDP) or sharded (FSDP2) parameters; its step-4 checkpoint resumes in 1 process."""
    single = train(config(data, tmp_path / "single", batch_size=4, steps=6))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(port),
           "-m", "uvd.cli", "train", str(data), "--model", "debug", "--seq-len", "64", "--batch-size", "2",
           "--steps", "6", "--lr", "3e-3", "--end-lr", "3e-4", "--warmup-steps", "2", "--seed", "1",
           "--device", "cpu", "--checkpoint-every", "2", "--distributed", mode, "--out", str(tmp_path / mode)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    losses = logged_losses(tmp_path / mode)
    assert np.allclose([losses[s] for s in range(1, 7)], single.losses, rtol=1e-5, atol=1e-6)

    (tmp_path / mode / "latest").write_text("step-00000004")  # world size 2 -> 1 from step 4
    resumed = train(config(data, tmp_path / mode, batch_size=4, steps=6, resume=True))
    assert np.allclose(resumed.losses, single.losses[4:], rtol=1e-5, atol=1e-6)


def test_compiled_model_trains_like_the_eager_one(data, tmp_path):
    """--compile (inductor; on CPU it needs a C++ compiler, which CI images have) changes kernels, not math:
    the whole model, loss included, is one graph (RMSNorm, RoPE and SwiGLU fused into its kernels), and
    four steps give the eager losses within 1e-5 (absolute; fp32 sums in another order)."""
    eager = train(config(data, tmp_path / "eager", steps=4))
    counters.clear()
    compiled = train(config(data, tmp_path / "compiled", steps=4, compile=True))
    assert counters["stats"]["unique_graphs"] >= 1 and not counters["graph_break"], dict(counters["graph_break"])
    assert np.abs(np.array(compiled.losses) - np.array(eager.losses)).max() <= 1e-5
    assert eager.losses[-1] < eager.losses[0] - 0.1  # the steps did train (not four equal losses)
