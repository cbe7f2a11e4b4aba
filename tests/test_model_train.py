import json
import math

import numpy as np
import pytest
import torch

from uvd.model.train import TrainConfig, learning_rate, load_checkpoint, train
from uvd.pipeline.format import SentenceMeta, VisualSentence
from test_model_data import write_test_shards


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


def test_debug_model_learns_and_checkpoint_round_trips(tmp_path, capsys):
    data = tmp_path / "data"
    write_test_shards(data, [learnable_sentence(i) for i in range(16)], samples_per_shard=4)
    cfg = TrainConfig(data_dirs=[str(data)], model="debug", seq_len=256, batch_size=4, steps=30,
                      lr=3e-3, end_lr=3e-4, warmup_steps=3, seed=1, out_dir=str(tmp_path / "ckpt"),
                      log_every=10, device="cpu")
    result = train(cfg)

    out = capsys.readouterr().out
    assert out.count("tok/s") == 3 and "step     30/30 | loss" in out
    losses = result.losses
    assert len(losses) == 30 and result.final_step == 30 and all(math.isfinite(x) for x in losses)
    start, end = np.mean(losses[:3]), np.mean(losses[-3:])
    print(f"loss {start:.3f} -> {end:.3f}")
    assert losses[0] > 8.5 and end < start - 3.0  # ln(8292) = 9.02 at init

    ckpt = result.checkpoint_path
    assert sorted(p.name for p in ckpt.iterdir()) == ["config.json", "model.safetensors", "optimizer.pt"]
    assert json.loads((ckpt / "config.json").read_text())["step"] == 30
    model, meta = load_checkpoint(ckpt)
    assert meta.step == 30 and meta.train_config == cfg and meta.model_config == result.model.config
    ids = torch.from_numpy(learnable_sentence(99).tokens.reshape(1, -1)[:, :64].astype(np.int64))
    with torch.no_grad():
        expected, _ = result.model(ids)
        loaded, _ = model(ids)
    assert torch.allclose(loaded, expected, atol=1e-6, rtol=0)


def test_training_is_deterministic_with_workers(tmp_path):
    data = tmp_path / "data"
    write_test_shards(data, [learnable_sentence(i, n_images=1) for i in range(12)], samples_per_shard=2)
    runs = []
    for run in range(2):
        cfg = TrainConfig(data_dirs=[str(data)], seq_len=64, batch_size=2, steps=4, lr=1e-3, warmup_steps=1,
                          num_workers=2, out_dir=str(tmp_path / f"ckpt{run}"), device="cpu", log_every=100)
        runs.append(train(cfg).losses)
    assert runs[0] == runs[1]


def test_too_little_data_is_a_clear_error(tmp_path):
    write_test_shards(tmp_path, [learnable_sentence(0, n_images=1)], 1)  # 256 tokens
    cfg = TrainConfig(data_dirs=[str(tmp_path)], seq_len=256, batch_size=2, steps=5, device="cpu",
                      out_dir=str(tmp_path / "ckpt"))
    with pytest.raises(ValueError, match="hold 256 tokens; one batch"):
        train(cfg)
    # Enough tokens in total, but split over 2 workers no worker fills a batch on its own.
    write_test_shards(tmp_path / "split", [learnable_sentence(i, n_images=1) for i in range(2)], 1)
    cfg = TrainConfig(data_dirs=[str(tmp_path / "split")], seq_len=64, batch_size=5, steps=5, device="cpu",
                      num_workers=2, out_dir=str(tmp_path / "ckpt"))
    with pytest.raises(ValueError, match="no full batch"):
        train(cfg)
