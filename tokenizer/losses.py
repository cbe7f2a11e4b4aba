"""Tokenizer training losses: L1+L2 reconstruction, a hinge PatchGAN with taming's adaptive
weight, and LPIPS when the user supplies its weights.

The VQ terms live in the quantizer (modules.VectorQuantizer): codebook ``||sg(z) - e||^2`` plus
commitment ``beta * ||z - sg(e)||^2``, beta on the commitment term as in the VQ-VAE paper
(taming's "legacy" quantizer puts beta on the codebook term instead; we do not).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn


def reconstruction_loss(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean L1 plus mean L2, in fp32, both in model space [-1, 1]."""
    r, t = reconstruction.float(), target.float()
    return (r - t).abs().mean() + (r - t).square().mean()


def psnr(reconstruction01: torch.Tensor, target01: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of (B, C, H, W) images in [0, 1]."""
    mse = (reconstruction01.float() - target01.float()).square().flatten(1).mean(dim=1)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-10))


# --- PatchGAN -------------------------------------------------------------------------------

class NLayerDiscriminator(nn.Module):
    """pix2pix / taming PatchGAN: strided 4x4 convs, one logit per overlapping patch.
    Uses GroupNorm rather than BatchNorm so a logit does not depend on the rest of the batch."""

    def __init__(self, *, in_channels: int = 3, ndf: int = 32, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=False),
                       nn.GroupNorm(min(32, ndf * mult // 4), ndf * mult), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.main = nn.Sequential(*layers)
        for m in self.modules():  # taming's weights_init
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, nn.GroupNorm):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())


def generator_adversarial_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    return -logits_fake.mean()


def adaptive_weight(nll_loss: torch.Tensor, g_loss: torch.Tensor, last_layer: torch.Tensor, *,
                    disc_weight: float = 1.0, max_weight: float = 1e4) -> torch.Tensor:
    """taming's calculate_adaptive_weight: ||d nll / d W_last|| / (||d g / d W_last|| + 1e-4),
    clamped to [0, max_weight], times ``disc_weight``; detached (a weight, not a loss term)."""
    nll_grads = torch.autograd.grad(nll_loss, last_layer, retain_graph=True)[0]
    g_grads = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    weight = nll_grads.norm() / (g_grads.norm() + 1e-4)
    return (weight.clamp(0.0, max_weight) * disc_weight).detach()


# --- LPIPS ----------------------------------------------------------------------------------

_VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
_LPIPS_TAPS = (3, 8, 15, 22, 29)  # indices in VGG16 ``features`` after relu1_2 .. relu5_3
_LPIPS_CHANNELS = (64, 128, 256, 512, 512)


class LPIPS(nn.Module):
    """LPIPS (Zhang et al. 2018) with the VGG16 backbone, built without torchvision.

    Weights are never downloaded: :meth:`from_file` reads one safetensors file the user supplies
    holding torchvision's VGG16 ``features.{i}.weight/bias`` and the lpips package's linear
    heads ``lin{k}.model.1.weight`` (k = 0..4). Frozen; inputs in [-1, 1].
    """

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for v in _VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU(inplace=False)]
                channels = v
        self.features = nn.Sequential(*layers)
        for k, c in enumerate(_LPIPS_CHANNELS):
            setattr(self, f"lin{k}", nn.Module())
            getattr(self, f"lin{k}").model = nn.Sequential(nn.Dropout(), nn.Conv2d(c, 1, 1, bias=False))
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_file(cls, path: str | Path) -> LPIPS:
        model = cls()
        tensors = load_file(str(path))
        expected = model.state_dict()
        missing = sorted(set(expected) - set(tensors))
        unexpected = sorted(set(tensors) - set(expected))
        if missing or unexpected:
            raise ValueError(f"{path}: not LPIPS-VGG16 weights (missing {missing[:5]}..., unexpected "
                             f"{unexpected[:5]}...); expected torchvision 'features.*' and lpips 'lin*.model.1.weight'")
        model.load_state_dict({k: v.float() for k, v in tensors.items()})
        return model

    def train(self, mode: bool = True) -> LPIPS:  # always eval: frozen, dropout off
        return super().train(False)

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        h = (x - self.shift) / self.scale
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in _LPIPS_TAPS:
                out.append(h)
                if i == _LPIPS_TAPS[-1]:
                    break
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean LPIPS distance between two (B, 3, H, W) batches in [-1, 1]."""
        total = x.new_zeros(())
        for k, (a, b) in enumerate(zip(self._taps(x.float()), self._taps(y.float()))):
            a = a / (a.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
            b = b / (b.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
            total = total + getattr(self, f"lin{k}").model((a - b).square()).mean()
        return total
