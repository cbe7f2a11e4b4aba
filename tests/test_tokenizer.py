"""The VQGAN tokenizer: shapes, determinism, taming key names, the quantizer, checkpoints."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from sample_media import photo

from uvd.media.images import resize_still
from uvd.tokenizer import CONFIGS, VQGAN, VQGANConfig, get_config, load_tokenizer, save_tokenizer
from uvd.tokenizer.frames import TaggedFrame, model_inputs, preview
from uvd.tokenizer.modules import AttnBlock, VectorQuantizer


@pytest.fixture(scope="module")
def tiny() -> VQGAN:
    return load_tokenizer("random:tiny")


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 256, 256, generator=torch.Generator().manual_seed(seed))


# --- configs -------------------------------------------------------------------------------

def test_named_configs_are_f16_with_256_tokens():
    for name, cfg in CONFIGS.items():
        assert (cfg.downsample_factor, cfg.tokens_per_image) == (16, 256), name
    lvm = get_config("lvm")
    assert (lvm.num_embeddings, lvm.hidden_channels, lvm.channel_mult) == (8192, 128, (1, 1, 2, 2, 4))


def test_config_json_round_trip_and_errors():
    cfg = get_config("small")
    assert VQGANConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="lvm, small, tiny"):
        get_config("huge")
    with pytest.raises(ValueError, match="GroupNorm"):
        VQGANConfig(hidden_channels=48)
    with pytest.raises(ValueError, match="unknown VQGANConfig field"):
        VQGANConfig.from_dict({"hidden_channel": 32})


# --- architecture ----------------------------------------------------------------------------

def test_lvm_state_dict_uses_taming_names():
    with torch.device("meta"):  # ~74M parameters: shapes only
        model = VQGAN(config=get_config("lvm"))
    keys = set(model.state_dict())
    for key in ["encoder.conv_in.weight", "encoder.down.0.block.0.norm1.weight",
                "encoder.down.1.block.0.conv2.weight", "encoder.down.2.block.0.nin_shortcut.weight",
                "encoder.down.3.downsample.conv.weight", "encoder.down.4.attn.1.proj_out.weight",
                "encoder.mid.block_1.norm1.weight", "encoder.mid.attn_1.q.weight", "encoder.mid.block_2.conv2.bias",
                "encoder.norm_out.weight", "encoder.conv_out.weight",
                "decoder.conv_in.weight", "decoder.mid.attn_1.k.weight", "decoder.up.0.block.2.conv1.weight",
                "decoder.up.4.attn.2.v.weight", "decoder.up.1.upsample.conv.weight", "decoder.norm_out.weight",
                "decoder.conv_out.weight", "quant_conv.weight", "post_quant_conv.weight",
                "quantize.embedding.weight"]:
        assert key in keys, key
    # Attention only at the 16x16 level (level 4); no resampler past the ends.
    assert {k.split(".attn.")[0] for k in keys if ".attn." in k} == {"encoder.down.4", "decoder.up.4"}
    assert not any(k.startswith(("encoder.down.4.downsample", "decoder.up.0.upsample")) for k in keys)
    # decoder.up.0 is the full-resolution level: 128 channels out, 3 blocks; up.4 is the 512-wide one.
    sd = model.state_dict()
    assert sd["decoder.up.0.block.2.conv1.weight"].shape == (128, 128, 3, 3)
    assert sd["decoder.up.4.block.0.conv1.weight"].shape == (512, 512, 3, 3)
    assert sd["encoder.conv_out.weight"].shape[0] == 256  # z_channels: no double_z for VQ
    assert sd["quantize.embedding.weight"].shape == (8192, 256)

    enc = sum(p.numel() for p in model.encoder.parameters())
    dec = sum(p.numel() for p in model.decoder.parameters())
    print(f"lvm VQGAN: {model.num_params / 1e6:.1f}M params (encoder {enc / 1e6:.1f}M, decoder {dec / 1e6:.1f}M)")
    assert 10e6 < enc < 100e6 and 10e6 < dec < 100e6 and 50e6 < model.num_params < 100e6


def test_attention_matches_explicit_softmax():
    block = AttnBlock(in_channels=32).eval()
    x = torch.randn(2, 32, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        h = block.norm(x)
        q, k, v = (conv(h).flatten(2) for conv in (block.q, block.k, block.v))  # (B, C, HW)
        weights = torch.softmax(q.transpose(1, 2) @ k / 32 ** 0.5, dim=-1)  # (B, HW_q, HW_k)
        expected = x + block.proj_out((v @ weights.transpose(1, 2)).reshape_as(x))
        torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)


# --- encode / decode -------------------------------------------------------------------------

def test_encode_decode_shapes_and_ranges(tiny):
    codes = tiny.encode(images(2))
    assert codes.shape == (2, 256) and codes.dtype == torch.int64
    assert 0 <= int(codes.min()) and int(codes.max()) < tiny.config.num_embeddings
    decoded = tiny.decode_code(codes)
    assert decoded.shape == (2, 3, 256, 256) and decoded.dtype == torch.float32
    assert 0.0 <= float(decoded.min()) and float(decoded.max()) <= 1.0


def test_encode_is_deterministic_and_seeded(tiny):
    x = images(2, seed=1)
    assert torch.equal(tiny.encode(x), tiny.encode(x))
    rng_before = torch.get_rng_state()
    again = load_tokenizer("random:tiny:0")
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's RNG is untouched
    assert again.info.sha256 == tiny.info.sha256 and len(again.info.sha256) == 64
    assert torch.equal(again.encode(x), tiny.encode(x))
    other = load_tokenizer("random:tiny:1")
    assert other.info.sha256 != tiny.info.sha256
    assert tiny.info.trained is False and tiny.info.config_name_or_path == "tiny"
    assert (tiny.info.codebook_size, tiny.info.tokens_per_image, tiny.info.resolution) == (512, 256, 256)
    assert not tiny.training


def test_inference_paths_agree_with_the_training_forward():
    """In-place SiLU (no autograd) and the compiled path change speed, not results: the same codes as
    the out-of-place, autograd-enabled training forward, and the same pixels back."""
    model = load_tokenizer("bundled")
    x = images(2, seed=3)
    with torch.enable_grad():
        reference = model(x).indices.reshape(2, -1)  # training forward: out-of-place SiLU
    eager = model.encode(x)
    assert torch.equal(eager, reference)
    compiled = load_tokenizer("bundled", compile=True)
    assert torch.equal(compiled.encode(x), eager)
    assert torch.allclose(compiled.decode_code(eager), model.decode_code(eager), atol=1e-4)


def test_fp32_by_default_and_bf16_only_when_asked():
    """LVM encodes in fp32 on every device; bf16 autocast is an opt-in that changes some codes."""
    model = load_tokenizer("bundled")
    assert model.precision == "fp32" and type(model._autocast()).__name__ == "nullcontext"
    x = torch.from_numpy(np.stack([resize_still(np.asarray(Image.open(photo(n)).convert("RGB")), 256)
                                   for n in ("astronaut.png", "coffee.png")])).permute(0, 3, 1, 2).float() / 255
    fp32 = model.encode(x)
    bf16 = model.with_precision("bf16").encode(x)
    assert isinstance(model._autocast(), torch.autocast)
    agreement = float((bf16 == fp32).float().mean())
    assert 0.5 < agreement < 1.0, agreement  # close, not equal: why bf16 is not the default
    assert torch.equal(model.with_precision("fp32").encode(x), fp32)
    with pytest.raises(ValueError, match="not one of"):
        model.with_precision("fp16")


def test_gray_frames_reach_the_encoder_as_lvms_float_luma():
    """A TaggedFrame 'gray' becomes LVM's unrounded float luma of the [0, 1] image, not a uint8 gray."""
    frame = resize_still(np.asarray(Image.open(photo("chelsea.png")).convert("RGB")), 256)
    image = (frame / 255.0).astype(np.float32)
    release = np.array(np.stack((np.dot(image[..., :3], [0.2989, 0.5870, 0.1140]),) * 3, axis=-1), np.float32)
    inputs = model_inputs([frame, TaggedFrame(frame, "gray")], 4, torch.device("cpu"))
    assert inputs.shape == (4, 3, 256, 256) and inputs.dtype == torch.float32
    assert torch.equal(inputs[0], torch.from_numpy(image).permute(2, 0, 1))
    assert torch.equal(inputs[1], torch.from_numpy(release).permute(2, 0, 1))
    assert not torch.equal(inputs[1] * 255, (inputs[1] * 255).round())  # not quantised to 8 bits
    assert float(model_inputs([TaggedFrame(np.full((256, 256, 3), 255, np.uint8), "gray")], 1, "cpu").max()) == \
        pytest.approx(0.9999)  # the weights sum to 0.9999: white is not 1.0
    assert preview([TaggedFrame(frame, "gray")])[0].dtype == np.uint8
    with pytest.raises(ValueError, match="unknown float transform"):
        TaggedFrame(frame, "sepia")


def test_bad_specs():
    with pytest.raises(ValueError, match="known configs"):
        load_tokenizer("random:nope")
    with pytest.raises(ValueError, match="seed"):
        load_tokenizer("random:tiny:x")
    with pytest.raises(FileNotFoundError, match="neither"):
        load_tokenizer("/does/not/exist")


def test_input_validation(tiny):
    for bad, message in [(torch.rand(1, 3, 128, 128), "256x256"), (torch.rand(1, 4, 256, 256), "channels"),
                         (torch.rand(3, 256, 256), "4-D"), (torch.zeros(1, 3, 256, 256, dtype=torch.uint8), "float")]:
        with pytest.raises(ValueError, match=message):
            tiny.encode(bad)
    with pytest.raises(ValueError, match=r"\[0, 512\)"):
        tiny.decode_code(torch.full((1, 256), 512))
    with pytest.raises(ValueError, match=r"\(B, 256\)"):
        tiny.decode_code(torch.zeros(1, 255, dtype=torch.long))


# --- quantizer -------------------------------------------------------------------------------

@pytest.mark.parametrize("chunk_rows", [7, 1000, 16384])
def test_chunked_nearest_codes_match_brute_force(chunk_rows):
    gen = torch.Generator().manual_seed(0)
    quantizer = VectorQuantizer(num_embeddings=64, embedding_dim=8, chunk_rows=chunk_rows)
    with torch.no_grad():
        quantizer.embedding.weight.copy_(torch.randn(64, 8, generator=gen))
    z = torch.randn(1000, 8, generator=gen)
    expected = torch.cdist(z.double(), quantizer.embedding.weight.double()).argmin(dim=1)
    assert torch.equal(quantizer.nearest_codes(z), expected)
    # Under autocast the distances are still fp32: bf16 inputs are only upcast.
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        got = quantizer.nearest_codes(z.bfloat16())
    assert torch.equal(got, torch.cdist(z.bfloat16().double(), quantizer.embedding.weight.double()).argmin(dim=1))


def test_nearest_codes_ties_pick_the_first_index():
    quantizer = VectorQuantizer(num_embeddings=4, embedding_dim=2)
    with torch.no_grad():
        quantizer.embedding.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]))
    assert quantizer.nearest_codes(torch.tensor([[0.0, 0.0], [0.0, 2.0]])).tolist() == [0, 1]


# --- training forward ------------------------------------------------------------------------

def test_forward_losses_and_straight_through():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = VQGAN(config=get_config("tiny")).train()
    out = model(images(1, seed=2))
    assert out.reconstruction.shape == (1, 3, 256, 256) and out.indices.shape == (1, 256)
    assert torch.isfinite(out.codebook_loss) and torch.isfinite(out.commitment_loss)
    torch.testing.assert_close(out.commitment_loss, 0.25 * out.codebook_loss)
    (out.reconstruction.square().mean() + out.quantizer_loss).backward()
    assert model.encoder.conv_in.weight.grad.abs().sum() > 0  # reached through the straight-through estimator
    assert model.quantize.embedding.weight.grad.abs().sum() > 0  # from the codebook term


# --- checkpoints -----------------------------------------------------------------------------

def test_save_load_round_trip(tiny, tmp_path):
    directory = save_tokenizer(tiny, tmp_path / "tok", trained=True, notes="test")
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", "model.safetensors"]  # no temp files
    loaded = load_tokenizer(str(directory))
    x = images(2, seed=3)
    assert torch.equal(loaded.encode(x), tiny.encode(x))
    assert loaded.info.sha256 == hashlib.sha256((directory / "model.safetensors").read_bytes()).hexdigest()
    assert loaded.info.sha256 == tiny.info.sha256  # same weights, same bytes as the random spec's hash
    assert loaded.info.trained is True and loaded.config == tiny.config and not loaded.training


def test_load_reports_mismatched_tensors(tiny, tmp_path):
    directory = save_tokenizer(tiny, tmp_path / "tok", trained=False)
    weights = directory / "model.safetensors"
    tensors = load_file(weights)
    tensors["quant_conv.weight"] = torch.zeros(7, 32, 1, 1)
    del tensors["decoder.conv_out.bias"]
    tensors["extra.weight"] = torch.zeros(1)
    save_file(tensors, weights)
    with pytest.raises(ValueError, match="model.safetensors") as err:
        load_tokenizer(str(directory))
    message = str(err.value)
    assert "\n" not in message
    for fragment in ["quant_conv.weight: file (7, 32, 1, 1) vs model (32, 32, 1, 1)", "decoder.conv_out.bias",
                     "extra.weight"]:
        assert fragment in message
