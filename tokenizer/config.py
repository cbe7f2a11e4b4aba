"""The VQGAN's shape, as one frozen dataclass, plus a few named sizes.

Field names follow open-muse's ``VQGANModel`` so a config written by one reads naturally
next to the other; the architecture itself is taming-transformers' VQGAN (see modules.py).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

GROUPNORM_GROUPS = 32  # taming's Normalize(): every normalised width must divide by this


@dataclass(frozen=True)
class VQGANConfig:
    resolution: int = 256  # square input side, in pixels
    num_channels: int = 3  # RGB
    hidden_channels: int = 128  # width of the first level ("ch" in taming)
    channel_mult: tuple[int, ...] = (1, 1, 2, 2, 4)  # width multiplier per level ("ch_mult")
    num_res_blocks: int = 2  # per encoder level; the decoder has one more per level
    attn_resolutions: tuple[int, ...] = (16,)  # levels (by side length) that get self-attention
    z_channels: int = 256  # encoder output / decoder input width
    quantized_embed_dim: int = 256  # codebook vector size ("embed_dim" in taming)
    num_embeddings: int = 8192  # codebook size ("n_embed" in taming)
    dropout: float = 0.0
    commitment_cost: float = 0.25  # beta on the commitment term of the VQ loss
    # The pixel range the network itself sees: images in [0, 1] are mapped linearly onto it.
    # taming-transformers trained on [-1, 1]; the LVM / open-muse tokenizer on [0, 1] as is.
    model_input_range: tuple[float, float] = (-1.0, 1.0)

    def __post_init__(self) -> None:
        # JSON gives lists; keep the dataclass hashable and comparable.
        object.__setattr__(self, "channel_mult", tuple(int(m) for m in self.channel_mult))
        object.__setattr__(self, "attn_resolutions", tuple(int(r) for r in self.attn_resolutions))
        object.__setattr__(self, "model_input_range", tuple(float(v) for v in self.model_input_range))
        problems = []
        if len(self.model_input_range) != 2 or not self.model_input_range[0] < self.model_input_range[1]:
            problems.append(f"model_input_range must be (low, high) with low < high, got {self.model_input_range}")
        if not self.channel_mult:
            problems.append("channel_mult must not be empty")
        for mult in self.channel_mult:
            if mult <= 0 or (self.hidden_channels * mult) % GROUPNORM_GROUPS:
                problems.append(f"hidden_channels*{mult}={self.hidden_channels * mult} is not a positive "
                                f"multiple of {GROUPNORM_GROUPS} (GroupNorm groups)")
        if self.channel_mult and self.resolution % self.downsample_factor:
            problems.append(f"resolution {self.resolution} is not divisible by the downsample factor "
                            f"{self.downsample_factor}")
        for name in ("resolution", "num_channels", "z_channels", "quantized_embed_dim", "num_embeddings"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive")
        if self.num_res_blocks < 0 or (self.num_res_blocks == 0 and len(set(self.channel_mult)) > 1):
            problems.append("num_res_blocks must be positive, or 0 with one width at every level (the blocks "
                            "are what change the width)")
        if not 0.0 <= self.dropout < 1.0:
            problems.append("dropout must be in [0, 1)")
        if problems:
            raise ValueError("invalid VQGANConfig: " + "; ".join(problems))

    @property
    def downsample_factor(self) -> int:
        """Pixels per token side: one halving per level after the first."""
        return 2 ** (len(self.channel_mult) - 1)

    @property
    def latent_size(self) -> int:
        """Side of the token grid."""
        return self.resolution // self.downsample_factor

    @property
    def tokens_per_image(self) -> int:
        return self.latent_size ** 2

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VQGANConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown VQGANConfig field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> VQGANConfig:
        return cls.from_dict(json.loads(text))


CONFIGS: dict[str, VQGANConfig] = {
    # The LVM release's tokenizer (Bai et al. 2023): f16, 8192 codes, 256 tokens per 256x256 image,
    # fed [0, 1] pixels as they are (LVM's tokenize scripts pass ToTensor-range images to encode).
    "lvm": VQGANConfig(model_input_range=(0.0, 1.0)),
    # Same family (f16, 8192 codes, same depth) at a quarter of the width: a CPU demo.
    "small": VQGANConfig(hidden_channels=32),
    # For tests: still f16 and 256 tokens per 256x256 image, but one width and no ResnetBlock in the
    # encoder's levels (one per decoder level), so that the encoder does ~0.5 GFLOPs per image, not
    # ~3.5: the test suite's builds tokenize thousands of frames on 2 cores.
    "tiny": VQGANConfig(hidden_channels=32, channel_mult=(1, 1, 1, 1, 1), num_res_blocks=0, z_channels=32,
                        quantized_embed_dim=32, num_embeddings=512),
    # The tokenizer bundled in tokenizer/weights/bundled (`make tokenizer`): f16 like the others,
    # narrow enough to train on a 2-core CPU in well under an hour, with a low-dimensional codebook
    # (16-d codes are used far more evenly than 256-d ones) of 1024 codes; docs/benchmarks.md says
    # why not 8192.
    "bundled": VQGANConfig(hidden_channels=32, channel_mult=(1, 1, 2, 2, 2), num_res_blocks=1, z_channels=64,
                           quantized_embed_dim=16, num_embeddings=1024),
}


def get_config(name: str) -> VQGANConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown tokenizer config {name!r}; known configs: {', '.join(CONFIGS)}") from None


@dataclass(frozen=True)
class TokenizerInfo:
    spec: str  # what load_tokenizer was given
    config_name_or_path: str  # a CONFIGS name for random weights, else the checkpoint path
    format: str  # random | uvd-vqgan | open-muse | taming
    trained: bool  # False for random weights: their tokens say nothing about the images
    sha256: str  # of the weights' safetensors bytes
    codebook_size: int
    resolution: int
    tokens_per_image: int
