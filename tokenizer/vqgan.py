"""The VQGAN tokenizer: images in [0, 1] <-> token ids, plus the training forward pass.

Inference runs in float32 on every device by default, as LVM's release encodes and decodes
(open-muse's VQGANModel, never autocast). ``precision="bf16"`` opts into bfloat16 autocast for
speed; it changes codes (docs/benchmarks.md measures how many), so builds record the precision.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from uvd.tokenizer.config import TokenizerInfo, VQGANConfig
from uvd.tokenizer.modules import Decoder, Encoder, VectorQuantizer

PRECISIONS = ("fp32", "bf16")


def to_model_space(images: torch.Tensor, model_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """[0, 1] pixels -> the range the checkpoint was trained on (taming: [-1, 1]; LVM/open-muse: [0, 1])."""
    low, high = model_range
    return images * (high - low) + low


def from_model_space(images: torch.Tensor, model_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """Decoder output (about ``model_range``) -> [0, 1] pixels, clamped."""
    low, high = model_range
    return ((images.float() - low) / (high - low)).clamp_(0.0, 1.0)


@dataclass
class VQGANOutput:
    reconstruction: torch.Tensor  # (B, 3, R, R) in model space, unclamped: compare with model.to_model_space(images)
    indices: torch.Tensor  # (B, tokens_per_image) int64
    codebook_loss: torch.Tensor  # mean ||sg(z) - e||^2
    commitment_loss: torch.Tensor  # beta * mean ||z - sg(e)||^2

    @property
    def quantizer_loss(self) -> torch.Tensor:
        return self.codebook_loss + self.commitment_loss


class VQGAN(nn.Module):
    """taming-transformers' VQModel (state_dict keys identical), built from a VQGANConfig."""
    info: TokenizerInfo | None = None  # set by load_tokenizer: where the weights came from
    precision: str = "fp32"  # of encode / decode_code (PRECISIONS); see with_precision

    def __init__(self, *, config: VQGANConfig):
        super().__init__()
        self.config = config
        shape = dict(hidden_channels=config.hidden_channels, channel_mult=config.channel_mult,
                     num_res_blocks=config.num_res_blocks, attn_resolutions=config.attn_resolutions,
                     resolution=config.resolution, z_channels=config.z_channels, dropout=config.dropout)
        self.encoder = Encoder(in_channels=config.num_channels, **shape)
        self.decoder = Decoder(out_channels=config.num_channels, **shape)
        self.quant_conv = nn.Conv2d(config.z_channels, config.quantized_embed_dim, kernel_size=1)
        self.post_quant_conv = nn.Conv2d(config.quantized_embed_dim, config.z_channels, kernel_size=1)
        self.quantize = VectorQuantizer(num_embeddings=config.num_embeddings,
                                        embedding_dim=config.quantized_embed_dim, beta=config.commitment_cost)

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def to_model_space(self, images: torch.Tensor) -> torch.Tensor:
        return to_model_space(images, self.config.model_input_range)

    def from_model_space(self, images: torch.Tensor) -> torch.Tensor:
        return from_model_space(images, self.config.model_input_range)

    @property
    def device(self) -> torch.device:
        return self.quant_conv.weight.device

    def with_precision(self, precision: str) -> VQGAN:
        """Set the precision of ``encode`` / ``decode_code``: ``fp32`` (LVM's, the default) or ``bf16``
        (autocast on any device; the quantizer still measures distances in fp32)."""
        if precision not in PRECISIONS:
            raise ValueError(f"tokenizer precision {precision!r} is not one of {PRECISIONS}")
        self.precision = precision
        return self

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _check_images(self, images: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        expected = f"(B, {cfg.num_channels}, {cfg.resolution}, {cfg.resolution})"
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"expected a 4-D image batch {expected}, got {shape}")
        if images.shape[1] != cfg.num_channels:
            raise ValueError(f"expected {cfg.num_channels} channels {expected} (channels first), "
                             f"got shape {tuple(images.shape)}")
        if images.shape[2] != cfg.resolution or images.shape[3] != cfg.resolution:
            raise ValueError(f"expected images of {cfg.resolution}x{cfg.resolution} {expected}, "
                             f"got shape {tuple(images.shape)}; resize before tokenizing")
        if not images.is_floating_point():
            raise ValueError(f"expected float images in [0, 1], got dtype {images.dtype}")
        return images.to(self.device, non_blocking=True)

    def _check_codes(self, codes: torch.Tensor) -> torch.Tensor:
        n = self.config.tokens_per_image
        if not isinstance(codes, torch.Tensor) or codes.ndim != 2 or codes.shape[1] != n:
            shape = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
            raise ValueError(f"expected codes of shape (B, {n}), got {shape}")
        if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
            raise ValueError(f"expected integer codes, got dtype {codes.dtype}")
        codes = codes.to(self.device).long()
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.config.num_embeddings):
            raise ValueError(f"codes must lie in [0, {self.config.num_embeddings}), got range "
                             f"[{int(codes.min())}, {int(codes.max())}]")
        return codes

    def compile_for_inference(self) -> VQGAN:
        """torch.compile the encoder and decoder for ``encode`` / ``decode_code``: inductor fuses each
        GroupNorm with its SiLU, which eager mode runs as separate memory-bound passes (1.2x to 2.3x
        encode on CPU, by batch; benchmarks/tokenizer_bench.py checks the codes stay identical). Compiling
        costs ~20 s per process and batch shape, so it pays off for builds, not for a few images."""
        self.encoder.compile()
        self.decoder.compile()
        return self

    @torch.inference_mode()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, R, R) float images in [0, 1] -> (B, tokens_per_image) int64 token ids, row-major."""
        x = self.to_model_space(self._check_images(images)).contiguous(memory_format=torch.channels_last)
        with self._autocast():
            z = self.quant_conv(self.encoder(x))
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        return self.quantize.nearest_codes(flat).reshape(z.shape[0], -1)

    @torch.inference_mode()
    def decode_code(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, tokens_per_image) token ids -> (B, 3, R, R) float32 images in [0, 1]."""
        codes = self._check_codes(codes)
        side = self.config.latent_size
        quantized = self.quantize.lookup(codes, side, side).contiguous(memory_format=torch.channels_last)
        with self._autocast():
            images = self.decoder(self.post_quant_conv(quantized))
        return self.from_model_space(images).contiguous()

    def forward(self, images: torch.Tensor) -> VQGANOutput:
        """Training pass on (B, 3, R, R) images in [0, 1]; gradients reach the encoder through the
        straight-through estimator. The reconstruction is in model space (see VQGANOutput)."""
        x = self.to_model_space(self._check_images(images))
        quantized = self.quantize(self.quant_conv(self.encoder(x)))
        reconstruction = self.decoder(self.post_quant_conv(quantized.quantized))
        return VQGANOutput(reconstruction, quantized.indices, quantized.codebook_loss, quantized.commitment_loss)
