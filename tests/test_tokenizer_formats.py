"""Loading the checkpoints people already have: LVM / open-muse folders (a), taming .ckpt (b), uvd (c).

Each test writes a checkpoint in the release's own layout (file names, key names, shapes,
config fields), loads it, and compares its codes with the model it was made from, and with an
independent functional re-statement of the release's forward pass (``reference_codes``).
"""

from __future__ import annotations

import json
import pickle

import pytest
import skimage.data
import torch
import torch.nn.functional as F
import yaml
from click.testing import CliRunner
from safetensors.torch import save_file

from uvd.cli.tokenizer import tokenizer as tokenizer_cli
from uvd.media.images import resize_still
from uvd.tokenizer import VQGAN, CheckpointError, VQGANConfig, load_tokenizer, save_tokenizer

# Small but complete: 5 levels (f16), attention at 16x16 with 2 blocks per level (so open-muse's
# "more than one attention block" rule applies it too), a codebook of 64 in 8 dimensions.
SMALL = dict(resolution=256, num_channels=3, hidden_channels=32, channel_mult=(1, 1, 1, 2, 2), num_res_blocks=2,
             attn_resolutions=(16,), z_channels=32, quantized_embed_dim=8, num_embeddings=64)


def make_model(model_input_range, seed=0) -> VQGAN:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VQGAN(config=VQGANConfig(**SMALL, model_input_range=model_input_range)).eval()
        with torch.no_grad():  # a spread-out codebook, so codes vary across the image
            model.quantize.embedding.weight.normal_()
    return model


def photos() -> torch.Tensor:


    frames = [resize_still(img, 256) for img in (skimage.data.astronaut(), skimage.data.coffee())]
    return torch.stack([torch.from_numpy(f).permute(2, 0, 1).float() / 255 for f in frames])


# --- an independent statement of the release forward pass (encoder + nearest code) -------------

def _gn(sd, p, h):
    return F.group_norm(h, 32, sd[p + ".weight"], sd[p + ".bias"], eps=1e-6)


def _conv(sd, p, h, **kw):
    return F.conv2d(h, sd[p + ".weight"], sd[p + ".bias"], **kw)


def _resblock(sd, p, x):
    h = _conv(sd, p + ".conv1", F.silu(_gn(sd, p + ".norm1", x)), padding=1)
    h = _conv(sd, p + ".conv2", F.silu(_gn(sd, p + ".norm2", h)), padding=1)
    return h + (_conv(sd, p + ".nin_shortcut", x) if p + ".nin_shortcut.weight" in sd else x)


def _attn(sd, p, x):
    b, c, hh, ww = x.shape
    h = _gn(sd, p + ".norm", x)
    q, k, v = (_conv(sd, f"{p}.{n}", h).reshape(b, c, hh * ww) for n in "qkv")
    w = torch.softmax(torch.bmm(q.permute(0, 2, 1), k) * c ** -0.5, dim=2)  # (b, hw_q, hw_k)
    out = torch.bmm(v, w.permute(0, 2, 1)).reshape(b, c, hh, ww)
    return x + _conv(sd, p + ".proj_out", out)


def reference_codes(sd, images01, *, pixel_range, attention_needs_two_blocks):
    """Codes as the release computes them: taming (attention whenever a level has it, [-1, 1]) or
    open-muse (attention only when a level has more than one attention block, [0, 1])."""
    low, high = pixel_range
    h = _conv(sd, "encoder.conv_in", images01 * (high - low) + low, padding=1)
    levels = len(SMALL["channel_mult"])
    for i in range(levels):
        n_attn = sum(1 for k in sd if k.startswith(f"encoder.down.{i}.attn.") and k.endswith(".q.weight"))
        use_attn = n_attn > 1 if attention_needs_two_blocks else n_attn > 0
        for j in range(SMALL["num_res_blocks"]):
            h = _resblock(sd, f"encoder.down.{i}.block.{j}", h)
            if use_attn:
                h = _attn(sd, f"encoder.down.{i}.attn.{j}", h)
        if i != levels - 1:
            h = _conv(sd, f"encoder.down.{i}.downsample.conv", F.pad(h, (0, 1, 0, 1)), stride=2)
    h = _resblock(sd, "encoder.mid.block_2", _attn(sd, "encoder.mid.attn_1", _resblock(sd, "encoder.mid.block_1", h)))
    z = _conv(sd, "quant_conv", _conv(sd, "encoder.conv_out", F.silu(_gn(sd, "encoder.norm_out", h)), padding=1))
    flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]).double()
    return torch.cdist(flat, sd["quantize.embedding.weight"].double()).argmin(1).reshape(z.shape[0], -1)


def state_dict(model):
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


# --- (a) LVM / open-muse ------------------------------------------------------------------------

def write_open_muse(model: VQGAN, directory, weights="pytorch_model.bin", **config_overrides):
    """An open-muse VQGANModel.save_pretrained folder, as LVM ships its tokenizer."""
    directory.mkdir(parents=True, exist_ok=True)
    cfg = model.config
    config = {"_class_name": "VQGANModel", "_version": "0.0.1", "resolution": cfg.resolution,
              "num_channels": cfg.num_channels, "hidden_channels": cfg.hidden_channels,
              "channel_mult": list(cfg.channel_mult), "num_res_blocks": cfg.num_res_blocks,
              "attn_resolutions": list(cfg.attn_resolutions), "no_attn_mid_block": False,
              "z_channels": cfg.z_channels, "num_embeddings": cfg.num_embeddings,
              "quantized_embed_dim": cfg.quantized_embed_dim, "dropout": 0.0, "resample_with_conv": True,
              "commitment_cost": 0.25, **config_overrides}
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    if weights == "pytorch_model.bin":
        torch.save(state_dict(model), directory / weights)
    else:
        save_file(state_dict(model), directory / weights)
    return directory


@pytest.mark.parametrize("weights", ["pytorch_model.bin", "model.safetensors"])
def test_open_muse_folder_gives_the_source_models_codes(tmp_path, weights):
    source = make_model((0.0, 1.0))
    folder = write_open_muse(source, tmp_path / "vqlm_muse", weights)
    loaded = load_tokenizer(str(folder))
    x = photos()
    codes = loaded.encode(x)
    assert torch.equal(codes, source.encode(x))
    assert torch.equal(codes, reference_codes(state_dict(source), x, pixel_range=(0.0, 1.0),
                                              attention_needs_two_blocks=True))
    assert len(codes.unique()) > 8  # not a degenerate constant image code
    assert loaded.config.model_input_range == (0.0, 1.0)
    assert loaded.info.format == "open-muse" and loaded.info.trained and loaded.info.codebook_size == 64
    assert loaded.decode_code(codes).shape == (2, 3, 256, 256)


def test_open_muse_defaults_and_unsupported_switches(tmp_path):
    source = make_model((0.0, 1.0))
    folder = write_open_muse(source, tmp_path / "a", no_attn_mid_block=True)
    with pytest.raises(CheckpointError, match="no_attn_mid_block=True is not supported"):
        load_tokenizer(str(folder))
    folder = write_open_muse(source, tmp_path / "b", num_res_blocks=1)
    with pytest.raises(CheckpointError, match="open-muse skips that attention"):
        load_tokenizer(str(folder))


# --- (b) taming-transformers ---------------------------------------------------------------------

def taming_yaml(cfg: VQGANConfig) -> dict:
    return {"model": {"base_learning_rate": 4.5e-06, "target": "taming.models.vqgan.VQModel", "params": {
        "embed_dim": cfg.quantized_embed_dim, "n_embed": cfg.num_embeddings, "monitor": "val/rec_loss",
        "ddconfig": {"double_z": False, "z_channels": cfg.z_channels, "resolution": cfg.resolution,
                     "in_channels": 3, "out_ch": 3, "ch": cfg.hidden_channels, "ch_mult": list(cfg.channel_mult),
                     "num_res_blocks": cfg.num_res_blocks, "attn_resolutions": list(cfg.attn_resolutions),
                     "dropout": 0.0},
        "lossconfig": {"target": "taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator",
                       "params": {"disc_conditional": False, "disc_in_channels": 3, "disc_start": 250001,
                                  "disc_weight": 0.8, "codebook_weight": 1.0}}}}}


def write_taming_run(model: VQGAN, run_dir, extra=None):
    """taming's logs/<run>/{checkpoints/last.ckpt, configs/model.yaml}; the .ckpt is a Lightning
    dict whose state_dict also holds the loss module (discriminator, LPIPS, logvar)."""
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "configs").mkdir()
    (run_dir / "configs" / "model.yaml").write_text(yaml.safe_dump(taming_yaml(model.config)))
    sd = state_dict(model)
    sd["loss.logvar"] = torch.zeros(())
    sd["loss.discriminator.main.0.weight"] = torch.randn(64, 3, 4, 4)
    sd["loss.perceptual_loss.lin0.model.1.weight"] = torch.rand(1, 64, 1, 1)
    ckpt = {"epoch": 3, "global_step": 1234, "pytorch-lightning_version": "1.0.8", "state_dict": sd,
            "optimizer_states": [{"state": {0: {"step": 10, "exp_avg": torch.zeros(3)}},
                                  "param_groups": [{"lr": 4.5e-6, "betas": (0.5, 0.9), "params": [0]}]}],
            "lr_schedulers": [], "callbacks": {}, **(extra or {})}
    path = run_dir / "checkpoints" / "last.ckpt"
    torch.save(ckpt, path)
    return path


def test_taming_ckpt_with_its_yaml_gives_the_source_models_codes(tmp_path):
    source = make_model((-1.0, 1.0), seed=1)
    ckpt = write_taming_run(source, tmp_path / "logs" / "vqgan_run")
    loaded = load_tokenizer(str(ckpt))  # YAML found in ../configs
    x = photos()
    codes = loaded.encode(x)
    assert torch.equal(codes, source.encode(x))
    assert torch.equal(codes, reference_codes(state_dict(source), x, pixel_range=(-1.0, 1.0),
                                              attention_needs_two_blocks=False))
    assert loaded.info.format == "taming" and loaded.config.model_input_range == (-1.0, 1.0)
    assert not any(k.startswith("loss.") for k in loaded.state_dict())


def test_taming_yaml_can_be_given_and_bad_targets_are_named(tmp_path):
    source = make_model((-1.0, 1.0))
    ckpt = write_taming_run(source, tmp_path / "run")
    moved = tmp_path / "elsewhere.yaml"
    (ckpt.parent.parent / "configs" / "model.yaml").rename(moved)
    with pytest.raises(CheckpointError, match="no taming YAML config found"):
        load_tokenizer(str(ckpt))
    assert torch.equal(load_tokenizer(str(ckpt), yaml_path=str(moved)).encode(photos()), source.encode(photos()))
    gumbel = taming_yaml(source.config)
    gumbel["model"]["target"] = "taming.models.vqgan.GumbelVQ"
    moved.write_text(yaml.safe_dump(gumbel))
    with pytest.raises(CheckpointError, match="GumbelVQ"):
        load_tokenizer(str(ckpt), yaml_path=str(moved))


# --- (c) uvd, and conversion -----------------------------------------------------------------------

def test_convert_keeps_codes_and_sha256(tmp_path):
    source = make_model((-1.0, 1.0), seed=2)
    ckpt = write_taming_run(source, tmp_path / "run")
    result = CliRunner().invoke(tokenizer_cli, ["convert", str(ckpt), "--out", str(tmp_path / "uvd")])
    assert result.exit_code == 0, result.output
    converted = load_tokenizer(str(tmp_path / "uvd"))
    original = load_tokenizer(str(ckpt))
    assert converted.info.format == "uvd-vqgan"
    assert converted.info.sha256 == original.info.sha256  # provenance does not change with the container
    assert torch.equal(converted.encode(photos()), source.encode(photos()))
    config = json.loads((tmp_path / "uvd" / "config.json").read_text())
    assert config["model_input_range"] == [-1.0, 1.0] and "taming" in config["notes"]


# --- malformed checkpoints: one line naming the problem -----------------------------------------------

class NotATensor:  # a class weights_only must refuse to construct
    def __reduce__(self):
        return (print, ("this must never run",))


def one_line_error(spec, **kwargs) -> str:
    with pytest.raises(CheckpointError) as err:
        load_tokenizer(spec, **kwargs)
    message = str(err.value)
    assert "\n" not in message, message
    return message


def test_malformed_checkpoints_give_one_line_errors(tmp_path, capsys):
    source = make_model((0.0, 1.0))
    # wrong shapes and missing keys in an open-muse .bin
    sd = state_dict(source)
    sd["quant_conv.weight"] = torch.zeros(4, 32, 1, 1)
    del sd["decoder.conv_out.bias"]
    folder = tmp_path / "bad_shapes"
    write_open_muse(source, folder)
    torch.save(sd, folder / "pytorch_model.bin")
    message = one_line_error(str(folder))
    assert "pytorch_model.bin" in message and "1 missing keys ['decoder.conv_out.bias']" in message
    assert "quant_conv.weight: file (4, 32, 1, 1) vs model (8, 32, 1, 1)" in message

    # a pickle that weights_only refuses (it would call print): refused, never executed
    folder = tmp_path / "evil"
    write_open_muse(source, folder)
    torch.save({"encoder.conv_in.weight": torch.zeros(1), "payload": NotATensor()}, folder / "pytorch_model.bin")
    message = one_line_error(str(folder))
    assert "weights_only=True" in message and "pytorch_model.bin" in message
    ckpt = write_taming_run(make_model((-1.0, 1.0)), tmp_path / "run", extra={"hparams": NotATensor()})
    assert "weights_only=True" in one_line_error(str(ckpt))
    assert "this must never run" not in capsys.readouterr().out

    # a pickle that is not a state dict, a truncated file, a missing weights file, broken JSON
    folder = tmp_path / "list"
    write_open_muse(source, folder)
    torch.save([torch.zeros(1)], folder / "pytorch_model.bin")
    assert "dict of name -> tensor" in one_line_error(str(folder))
    data = (folder / "pytorch_model.bin").read_bytes()
    (folder / "pytorch_model.bin").write_bytes(data[: len(data) // 2])
    assert "pytorch_model.bin" in one_line_error(str(folder))
    (folder / "pytorch_model.bin").unlink()
    assert "no weights file" in one_line_error(str(folder))
    uvd_dir = save_tokenizer(source, tmp_path / "uvd", trained=True)
    (uvd_dir / "config.json").write_text("{not json")
    assert "not valid JSON" in one_line_error(str(uvd_dir))


def test_refused_pickle_is_refused_by_torch_not_by_us(tmp_path):
    """Guard against a loader that only pattern-matches: the payload really is a pickle of a callable."""
    path = tmp_path / "x.bin"
    torch.save({"a": NotATensor()}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
