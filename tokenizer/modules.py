"""Building blocks of taming-transformers' VQGAN (the one open-muse's VQGANModel reimplements).

Key-name convention: attribute names here are chosen so that ``VQGAN.state_dict()`` keys are
exactly taming's ``VQModel`` keys (also open-muse's), making checkpoint loading an identity map:

    encoder.conv_in
    encoder.down.{level}.block.{j}.{norm1,conv1,norm2,conv2,nin_shortcut}   j < num_res_blocks
    encoder.down.{level}.attn.{j}.{norm,q,k,v,proj_out}          only where side in attn_resolutions
    encoder.down.{level}.downsample.conv                         every level but the last
    encoder.mid.{block_1,attn_1,block_2}, encoder.norm_out, encoder.conv_out
    decoder.conv_in, decoder.mid.{block_1,attn_1,block_2}
    decoder.up.{level}.block.{j}                                 j < num_res_blocks + 1
    decoder.up.{level}.attn.{j}, decoder.up.{level}.upsample.conv  every level but level 0
    decoder.norm_out, decoder.conv_out
    quant_conv, post_quant_conv, quantize.embedding.weight       (on VQGAN, see vqgan.py)

``level`` counts from the full-resolution level 0 in both encoder and decoder: taming builds
the decoder's levels lowest-resolution first but inserts each at the front of ``up``, so
``decoder.up.0`` is the 256x256 level and the decoder runs ``up`` in reverse.

Two deliberate departures that do not change any key or shape:
- open-muse applies a level's attention only when it has more than one attention block
  (``len(self.attn) > 1``); taming applies it whenever there is one. We follow taming. The two
  agree for every config with num_res_blocks >= 2, which includes the LVM tokenizer.
- taming's quantizer weights beta on the codebook term (its "legacy" ordering); ours puts beta
  on the commitment term, as in the VQ-VAE paper. This only matters for training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


def _swish(x: torch.Tensor) -> torch.Tensor:
    # SiLU = x * sigmoid(x); the fused kernel makes one pass over memory instead of two. Every call
    # site passes a fresh norm output, so without autograd it may be overwritten: no new buffer,
    # half the memory traffic (SiLU and GroupNorm are about half of CPU encode time).
    return torch.nn.functional.silu(x, inplace=not torch.is_grad_enabled())


class ResnetBlock(nn.Module):
    """norm-swish-conv twice plus a residual (1x1 ``nin_shortcut`` when the width changes)."""

    def __init__(self, *, in_channels: int, out_channels: int | None = None, dropout: float = 0.0):
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        self.norm1 = _group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm2 = _group_norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.nin_shortcut = (nn.Conv2d(in_channels, out_channels, kernel_size=1)
                             if in_channels != out_channels else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(_swish(self.norm1(x)))
        h = self.conv2(self.dropout(_swish(self.norm2(h))))
        shortcut = x if self.nin_shortcut is None else self.nin_shortcut(x)
        return shortcut + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all positions, with 1x1-conv projections and a residual."""

    def __init__(self, *, in_channels: int):
        super().__init__()
        self.norm = _group_norm(in_channels)
        self.q = nn.Conv2d(in_channels, in_channels, kernel_size=1)
        self.k = nn.Conv2d(in_channels, in_channels, kernel_size=1)
        self.v = nn.Conv2d(in_channels, in_channels, kernel_size=1)
        self.proj_out = nn.Conv2d(in_channels, in_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        normed = self.norm(x)

        def tokens(t: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, 1 head, H*W, C)
            return t.flatten(2).transpose(1, 2).unsqueeze(1)

        # Default scale 1/sqrt(C), as taming's explicit softmax(q k^T * C^-0.5) v.
        out = F.scaled_dot_product_attention(tokens(self.q(normed)), tokens(self.k(normed)),
                                             tokens(self.v(normed)))
        out = out.squeeze(1).transpose(1, 2).reshape(b, c, h, w)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """Halve the side: zero-pad right and bottom by one, then a stride-2 3x3 conv (taming's
    asymmetric padding, which checkpoints were trained with)."""

    def __init__(self, *, in_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))


class Upsample(nn.Module):
    """Double the side: nearest-neighbour x2, then a 3x3 conv."""

    def __init__(self, *, in_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _MidBlock(nn.Module):
    """ResnetBlock, attention, ResnetBlock at the lowest resolution (``mid.*`` keys)."""

    def __init__(self, *, channels: int, dropout: float):
        super().__init__()
        self.block_1 = ResnetBlock(in_channels=channels, dropout=dropout)
        self.attn_1 = AttnBlock(in_channels=channels)
        self.block_2 = ResnetBlock(in_channels=channels, dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class _Level(nn.Module):
    """One resolution level: ResnetBlocks, each followed by attention where the level has it, then
    an optional resampler. Holds ``block``/``attn`` and ``downsample`` or ``upsample`` as taming does."""

    def __init__(self, *, in_channels: int, out_channels: int, num_blocks: int, with_attention: bool,
                 dropout: float):
        super().__init__()
        self.block = nn.ModuleList()
        self.attn = nn.ModuleList()
        for _ in range(num_blocks):
            self.block.append(ResnetBlock(in_channels=in_channels, out_channels=out_channels, dropout=dropout))
            in_channels = out_channels
            if with_attention:
                self.attn.append(AttnBlock(in_channels=out_channels))

    def run_blocks(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.block):
            x = block(x)
            if len(self.attn) > 0:
                x = self.attn[i](x)
        return x


class Encoder(nn.Module):
    """Image in [-1, 1] (B, C, R, R) -> latent (B, z_channels, R/f, R/f)."""

    def __init__(self, *, in_channels: int, hidden_channels: int, channel_mult: tuple[int, ...],
                 num_res_blocks: int, attn_resolutions: tuple[int, ...], resolution: int, z_channels: int,
                 dropout: float = 0.0):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, hidden_channels, kernel_size=3, padding=1)
        side = resolution
        width = hidden_channels
        self.down = nn.ModuleList()
        for level, mult in enumerate(channel_mult):
            stage = _Level(in_channels=width, out_channels=hidden_channels * mult, num_blocks=num_res_blocks,
                           with_attention=side in attn_resolutions, dropout=dropout)
            width = hidden_channels * mult
            if level != len(channel_mult) - 1:
                stage.downsample = Downsample(in_channels=width)
                side //= 2
            self.down.append(stage)
        self.mid = _MidBlock(channels=width, dropout=dropout)
        self.norm_out = _group_norm(width)
        self.conv_out = nn.Conv2d(width, z_channels, kernel_size=3, padding=1)  # taming's double_z=False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for stage in self.down:
            h = stage.run_blocks(h)
            if hasattr(stage, "downsample"):
                h = stage.downsample(h)
        h = self.mid(h)
        return self.conv_out(_swish(self.norm_out(h)))


class Decoder(nn.Module):
    """Latent (B, z_channels, R/f, R/f) -> image in roughly [-1, 1] (B, C, R, R), unclamped."""

    def __init__(self, *, out_channels: int, hidden_channels: int, channel_mult: tuple[int, ...],
                 num_res_blocks: int, attn_resolutions: tuple[int, ...], resolution: int, z_channels: int,
                 dropout: float = 0.0):
        super().__init__()
        num_levels = len(channel_mult)
        width = hidden_channels * channel_mult[-1]
        side = resolution // 2 ** (num_levels - 1)
        self.conv_in = nn.Conv2d(z_channels, width, kernel_size=3, padding=1)
        self.mid = _MidBlock(channels=width, dropout=dropout)
        levels: list[_Level] = []  # built lowest resolution first, stored full resolution first
        for level in reversed(range(num_levels)):
            stage = _Level(in_channels=width, out_channels=hidden_channels * channel_mult[level],
                           num_blocks=num_res_blocks + 1, with_attention=side in attn_resolutions, dropout=dropout)
            width = hidden_channels * channel_mult[level]
            if level != 0:
                stage.upsample = Upsample(in_channels=width)
                side *= 2
            levels.insert(0, stage)
        self.up = nn.ModuleList(levels)
        self.norm_out = _group_norm(width)
        self.conv_out = nn.Conv2d(width, out_channels, kernel_size=3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for stage in reversed(self.up):
            h = stage.run_blocks(h)
            if hasattr(stage, "upsample"):
                h = stage.upsample(h)
        return self.conv_out(_swish(self.norm_out(h)))


@dataclass
class QuantizerOutput:
    quantized: torch.Tensor  # (B, D, h, w): codebook vectors, with straight-through gradients to z
    indices: torch.Tensor  # (B, h*w) int64, row-major over the token grid
    codebook_loss: torch.Tensor  # mean ||sg(z) - e||^2: moves the codebook toward the encoder
    commitment_loss: torch.Tensor  # beta * mean ||z - sg(e)||^2: keeps the encoder near its codes


class VectorQuantizer(nn.Module):
    """Nearest-codebook-vector quantization (VQ-VAE), taming's ``quantize.embedding`` codebook.

    The nearest code is found by squared L2 distance written as one matmul per chunk of rows,
    ``|z|^2 - 2 z.E^T + |E|^2`` (``torch.addmm``), so the (rows x codes) distance matrix never
    exceeds ``chunk_rows`` rows; it is always computed in float32, since bf16 distances would
    flip near-ties and so change tokens.
    """

    def __init__(self, *, num_embeddings: int, embedding_dim: int, beta: float = 0.25, chunk_rows: int = 16384):
        super().__init__()
        if chunk_rows <= 0:
            raise ValueError("chunk_rows must be positive")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.beta = beta
        self.chunk_rows = chunk_rows
        self.embedding = nn.Embedding(num_embeddings, embedding_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / num_embeddings, 1.0 / num_embeddings)  # as taming

    def nearest_codes(self, z_flat: torch.Tensor) -> torch.Tensor:
        """(N, D) vectors -> (N,) int64 index of the nearest codebook vector (first one on ties)."""
        if z_flat.ndim != 2 or z_flat.shape[1] != self.embedding_dim:
            raise ValueError(f"expected (N, {self.embedding_dim}) vectors, got {tuple(z_flat.shape)}")
        with torch.no_grad(), torch.autocast(device_type=z_flat.device.type, enabled=False):
            codebook = self.embedding.weight.detach().float()
            codebook_sq = codebook.square().sum(dim=1)  # (K,)
            indices = []
            for chunk in z_flat.detach().float().split(self.chunk_rows):
                # addmm: |E|^2 - 2 z.E^T in one fused call; |z|^2 does not change the argmin but
                # keeps these true squared distances.
                distances = torch.addmm(codebook_sq.unsqueeze(0), chunk, codebook.t(), beta=1.0, alpha=-2.0)
                distances += chunk.square().sum(dim=1, keepdim=True)
                indices.append(distances.argmin(dim=1))
            return torch.cat(indices) if indices else z_flat.new_empty(0, dtype=torch.long)

    def lookup(self, indices: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """(B, height*width) row-major indices -> (B, D, height, width) codebook vectors."""
        vectors = self.embedding(indices)  # (B, height*width, D)
        return vectors.reshape(indices.shape[0], height, width, -1).permute(0, 3, 1, 2)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        b, d, h, w = z.shape
        indices = self.nearest_codes(z.permute(0, 2, 3, 1).reshape(-1, d)).reshape(b, h * w)
        codes = self.lookup(indices, h, w)
        with torch.autocast(device_type=z.device.type, enabled=False):
            z32, codes32 = z.float(), codes.float()
            codebook_loss = F.mse_loss(codes32, z32.detach())
            commitment_loss = self.beta * F.mse_loss(z32, codes32.detach())
        quantized = z + (codes.to(z.dtype) - z).detach()  # straight-through: forward = codes, grad -> z
        return QuantizerOutput(quantized, indices, codebook_loss, commitment_loss)

    # --- training-only codebook maintenance ---------------------------------------------------
    # Everything below keeps its state in non-persistent buffers, so state_dict() (and so every
    # checkpoint's keys) is the same with or without it; a trainer saves training_state() itself.

    @property
    def ema_enabled(self) -> bool:
        return getattr(self, "ema_cluster_size", None) is not None

    def enable_ema(self, *, decay: float = 0.99, eps: float = 1e-5) -> None:
        """Learn the codebook by exponential moving averages of its assigned encoder outputs
        (VQ-VAE appendix / VQ-VAE-2) instead of by gradient: the codebook weight stops requiring
        grad and ``ema_update`` moves it. ``eps`` is the Laplace smoothing of the cluster sizes."""
        if not 0.0 < decay < 1.0:
            raise ValueError("EMA decay must be in (0, 1)")
        weight = self.embedding.weight
        self.ema_decay, self.ema_eps = float(decay), float(eps)
        # Cluster sizes start at one (not zero) so never-assigned codes keep their vector instead
        # of being divided by the smoothing epsilon.
        self.register_buffer("ema_cluster_size", torch.ones(self.num_embeddings, device=weight.device),
                             persistent=False)
        self.register_buffer("ema_embed_sum", weight.detach().float().clone(), persistent=False)
        weight.requires_grad_(False)

    @torch.no_grad()
    def ema_update(self, z_flat: torch.Tensor, indices: torch.Tensor) -> None:
        """One EMA step from (N, D) encoder outputs and their (N,) assigned codes; fp32 always."""
        if not self.ema_enabled:
            raise RuntimeError("call enable_ema() first")
        with torch.autocast(device_type=z_flat.device.type, enabled=False):
            z32 = z_flat.detach().float()
            indices = indices.reshape(-1)
            counts = torch.bincount(indices, minlength=self.num_embeddings).float()
            sums = torch.zeros_like(self.ema_embed_sum).index_add_(0, indices, z32)
            d = self.ema_decay
            self.ema_cluster_size.mul_(d).add_(counts, alpha=1.0 - d)
            self.ema_embed_sum.mul_(d).add_(sums, alpha=1.0 - d)
            n = self.ema_cluster_size.sum()
            smoothed = (self.ema_cluster_size + self.ema_eps) / (n + self.num_embeddings * self.ema_eps) * n
            self.embedding.weight.copy_(self.ema_embed_sum / smoothed.unsqueeze(1))

    @torch.no_grad()
    def restart_dead_codes(self, z_flat: torch.Tensor, indices: torch.Tensor, *, dead_after: int,
                           generator: torch.Generator | None = None) -> torch.Tensor:
        """Count, per code, the steps since it was last assigned; re-initialise every code unused
        for ``dead_after`` steps to a random row of this batch's encoder outputs ``z_flat``.
        Returns the (sorted) indices of the restarted codes. Deterministic given ``generator``."""
        if dead_after <= 0:
            raise ValueError("dead_after must be positive")
        if getattr(self, "code_age", None) is None:
            self.register_buffer("code_age", torch.zeros(self.num_embeddings, dtype=torch.long,
                                                         device=self.embedding.weight.device), persistent=False)
        self.code_age += 1
        self.code_age[indices.reshape(-1).unique()] = 0
        dead = torch.nonzero(self.code_age >= dead_after).flatten()
        if dead.numel() == 0 or z_flat.shape[0] == 0:
            return dead[:0]
        rows = torch.randint(z_flat.shape[0], (dead.numel(),), generator=generator, device="cpu")
        vectors = z_flat.detach().float()[rows.to(z_flat.device)]
        self.embedding.weight[dead] = vectors.to(self.embedding.weight.dtype)
        if self.ema_enabled:
            self.ema_embed_sum[dead] = vectors
            self.ema_cluster_size[dead] = 1.0
        self.code_age[dead] = 0
        return dead

    def training_state(self) -> dict[str, torch.Tensor]:
        """The non-persistent training buffers (EMA statistics, code ages), for a trainer's resume file."""
        return {name: buf.detach().cpu().clone() for name in ("ema_cluster_size", "ema_embed_sum", "code_age")
                if (buf := getattr(self, name, None)) is not None}

    def load_training_state(self, state: dict[str, torch.Tensor]) -> None:
        for name, value in state.items():
            if name not in ("ema_cluster_size", "ema_embed_sum", "code_age"):
                raise KeyError(f"unknown quantizer training state {name!r}")
            if name != "code_age" and not self.ema_enabled:
                raise RuntimeError("resume state has EMA statistics but EMA is not enabled")
            self.register_buffer(name, value.to(self.embedding.weight.device).clone(), persistent=False)
