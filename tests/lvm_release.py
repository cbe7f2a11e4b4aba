"""LVM's release restated for tests, independent of uvd: its pixel path and its tokenizer's encoder.

- ``read_image_to_tensor`` and ``read_frames_from_video`` make the calls of ytongbai/LVM
  ``evaluation/vqlm_demo/utils.py`` (Pillow for stills, OpenCV seeks for video frames), with the
  frame indices given instead of drawn from ``np.random``;
- ``gray`` and ``masked`` are the float views of ``tokenize_colorization_dataset_muse.py`` and
  ``tokenize_inpainting_dataset_muse.py`` (the inpainting mask is passed in: the release draws
  it from an unseeded ``np.random``);
- ``ReferenceVQGAN`` is open-muse's ``VQGANModel.encode`` (huggingface/open-muse,
  ``muse/modeling_taming_vqgan.py``) as a plain fp32 functional forward pass over its state dict:
  NCHW tensors, explicit bmm attention, attention blocks only where a level has more than one,
  and ``compute_distances``' single ``addmm`` with a first-index ``argmin``.

Only numpy, Pillow, OpenCV and torch are imported here: nothing of uvd.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

GRAY_WEIGHTS = [0.2989, 0.5870, 0.1140]


def read_image_to_tensor(path) -> np.ndarray:
    """(256, 256, 3) float32 in [0, 1], as the release reads every still."""
    pil_im = Image.open(path).convert("RGB")
    input_img = pil_im.resize((256, 256))
    input_img = np.array(input_img) / 255.0
    return input_img.astype(np.float32)


def read_frames_from_video(video_path, frame_indices) -> np.ndarray:
    """(n, 256, 256, 3) float32 RGB in [0, 1]: a seek and a read per frame, ``cv2.resize`` of the BGR
    frame, then /255 and BGR -> RGB, as the release reads a clip."""
    cap = cv2.VideoCapture(str(video_path))
    frames = []
    for frame_index in sorted(frame_indices):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(frame_index))
        ret, frame = cap.read()
        assert ret, f"{video_path}: no frame {frame_index}"
        frames.append(cv2.resize(frame, (256, 256)))
    cap.release()
    frames = np.stack(frames, axis=0).astype(np.float32) / 255.0
    return np.stack([frames[..., 2], frames[..., 1], frames[..., 0]], axis=-1)


def gray(original_image: np.ndarray) -> np.ndarray:
    grayscale = np.dot(original_image[..., :3], GRAY_WEIGHTS)
    gray_image = np.stack((grayscale,) * 3, axis=-1)
    return np.array(gray_image, dtype=np.float32)


def masked(original_image: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Pixels where ``keep`` is False set to 0, in float, as both of the release's mask kinds do."""
    masked_image = original_image.copy()
    masked_image[~keep] = 0
    return masked_image


class ReferenceVQGAN:
    """open-muse's VQGANModel encoder and quantizer from an open-muse folder, in plain fp32."""

    def __init__(self, folder: Path):
        self.config = json.loads((folder / "config.json").read_text())
        weights = folder / "model.safetensors"
        self.sd = (load_file(weights) if weights.is_file()
                   else torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True))
        self.sd = {k: v.float().contiguous() for k, v in self.sd.items()}

    def _gn(self, p, h):
        return F.group_norm(h, 32, self.sd[p + ".weight"], self.sd[p + ".bias"], eps=1e-6)

    def _conv(self, p, h, **kw):
        return F.conv2d(h, self.sd[p + ".weight"], self.sd[p + ".bias"], **kw)

    def _resblock(self, p, x):
        h = self._conv(p + ".conv1", F.silu(self._gn(p + ".norm1", x)), padding=1)
        h = self._conv(p + ".conv2", F.silu(self._gn(p + ".norm2", h)), padding=1)
        return h + (self._conv(p + ".nin_shortcut", x) if p + ".nin_shortcut.weight" in self.sd else x)

    def _attn(self, p, x):
        b, c, hh, ww = x.shape
        h = self._gn(p + ".norm", x)
        query = self._conv(p + ".q", h).reshape(b, c, hh * ww).permute(0, 2, 1)
        key = self._conv(p + ".k", h).reshape(b, c, hh * ww)
        value = self._conv(p + ".v", h).reshape(b, c, hh * ww)
        weights = torch.softmax(torch.bmm(query, key) * (int(c) ** -0.5), dim=2)
        out = torch.bmm(value, weights.permute(0, 2, 1)).reshape(b, c, hh, ww)
        return self._conv(p + ".proj_out", out) + x

    @torch.no_grad()
    def latents(self, pixel_values: torch.Tensor) -> torch.Tensor:
        levels = len(self.config["channel_mult"])
        h = self._conv("encoder.conv_in", pixel_values, padding=1)
        for i in range(levels):
            n_attn = sum(1 for k in self.sd if k.startswith(f"encoder.down.{i}.attn.") and k.endswith(".q.weight"))
            for j in range(self.config["num_res_blocks"]):
                h = self._resblock(f"encoder.down.{i}.block.{j}", h)
                if n_attn > 1:
                    h = self._attn(f"encoder.down.{i}.attn.{j}", h)
            if i != levels - 1:
                h = self._conv(f"encoder.down.{i}.downsample.conv", F.pad(h, (0, 1, 0, 1)), stride=2)
        h = self._resblock("encoder.mid.block_1", h)
        h = self._resblock("encoder.mid.block_2", self._attn("encoder.mid.attn_1", h))
        h = self._conv("encoder.conv_out", F.silu(self._gn("encoder.norm_out", h)), padding=1)
        return self._conv("quant_conv", h)

    @torch.no_grad()
    def encode(self, images_nhwc: np.ndarray) -> np.ndarray:
        """(N, 256, 256, 3) float32 in [0, 1] -> (N, 256) int64 codes, as ``net.encode`` returns them."""
        pixel_values = torch.from_numpy(np.ascontiguousarray(images_nhwc)).permute(0, 3, 1, 2)
        hidden = self.latents(pixel_values).permute(0, 2, 3, 1).contiguous()
        flat = hidden.reshape(-1, hidden.shape[-1])
        emb_weights = self.sd["quantize.embedding.weight"].t()
        distances = torch.addmm(flat.pow(2.0).sum(dim=1, keepdim=True) + emb_weights.pow(2.0).sum(dim=0, keepdim=True),
                                flat, emb_weights, alpha=-2.0)
        return torch.argmin(distances, axis=1).reshape(hidden.shape[0], -1).numpy()
