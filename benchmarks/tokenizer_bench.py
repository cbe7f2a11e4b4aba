"""Tokenizer throughput: uvd's encode/decode paths vs a plain eager fp32 reference.

All paths use the same weights and the same real photos, side by side in one run (these
machines are noisy, so compare the ratio, not the absolute numbers). The reference is
what a straightforward port does: NCHW tensors, autograd bookkeeping off via no_grad only,
fp32 everywhere, out-of-place SiLU, ``torch.cdist`` + argmin for the nearest code. Ours:
``encode`` / ``decode_code`` as loaded (inference_mode, channels_last, in-place SiLU, chunked
addmm code search; fp32 as LVM, bf16 only when asked), and the same after ``compile_for_inference``
(``uvd build --compile-tokenizer``). Codes must be identical; a profile of encode says where
CPU time goes.

    python benchmarks/tokenizer_bench.py --tokenizer bundled --batch-sizes 1,8,32,128
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import json
import platform
import time

import numpy as np
import skimage.data as data
import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from uvd.media.images import resize_still
from uvd.pipeline.tools.estimate import bf16_peak_tflops
from uvd.tokenizer import load_tokenizer, modules
from uvd.tokenizer.config import CONFIGS
from uvd.tokenizer.vqgan import VQGAN


def photos(n: int, size: int) -> torch.Tensor:
    """n real photos (cycled) from scikit-image, plain-resized: [n,3,size,size] in [0,1]."""


    base = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.stereo_motorcycle()[0]]
    frames = [resize_still(np.ascontiguousarray(base[i % len(base)]), size) for i in range(n)]
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div(255)


@contextlib.contextmanager
def plain_silu():
    """The reference's SiLU allocates its output, as a straightforward port's does (ours works in place)."""
    saved = modules._swish
    modules._swish = torch.nn.functional.silu
    try:
        yield
    finally:
        modules._swish = saved


class Reference:
    """A plain eager fp32 forward with the same weights: NCHW, no_grad, out-of-place SiLU, cdist."""

    def __init__(self, model):
        self.model = copy.deepcopy(model).to(memory_format=torch.contiguous_format).float().eval()

    @torch.no_grad()
    def latents(self, images: torch.Tensor) -> torch.Tensor:
        m = self.model
        low, high = m.config.model_input_range
        with plain_silu():
            z = m.quant_conv(m.encoder(images * (high - low) + low))  # (B, D, h, w)
        return z.permute(0, 2, 3, 1).reshape(z.shape[0], -1, z.shape[1])  # (B, h*w, D)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        flat = self.latents(images)
        b, n, d = flat.shape
        codes = torch.cdist(flat.reshape(-1, d), self.model.quantize.embedding.weight).argmin(dim=1)
        return codes.view(b, n)


    @torch.no_grad()
    def decode_code(self, codes: torch.Tensor) -> torch.Tensor:
        m = self.model
        b, n = codes.shape
        side = int(n ** 0.5)
        q = m.quantize.embedding(codes).view(b, side, side, -1).permute(0, 3, 1, 2)  # (B, D, h, w)
        low, high = m.config.model_input_range
        with plain_silu():
            return ((m.decoder(m.post_quant_conv(q)) - low) / (high - low)).clamp(0, 1)


def tie_gaps(ref: Reference, images: torch.Tensor, ours: torch.Tensor, theirs: torch.Tensor) -> list[float]:
    """For each code that differs, the relative fp64 distance gap between the two choices.

    Layouts pick different conv kernels, so latents differ in the last bits; a code may then
    flip only where two codebook entries are (nearly) equally close. A gap near 0 is such a
    tie, not a bug.
    """
    diff = (ours.cpu() != theirs.cpu())
    if not diff.any():
        return []
    z = ref.latents(images).cpu().double()[diff]  # (M, D)
    book = ref.model.quantize.embedding.weight.detach().cpu().double()
    d_ours = (z - book[ours.cpu()[diff]]).square().sum(1)
    d_ref = (z - book[theirs.cpu()[diff]]).square().sum(1)
    return ((d_ours - d_ref).abs() / d_ref.clamp_min(1e-12)).tolist()


def timed(fn, x, repeats: int, device: torch.device) -> tuple[float, torch.Tensor]:
    out = fn(x)  # warm-up (allocators, kernel selection)
    if device.type == "cuda":
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, out


def flops_per_image(config_name: str) -> dict[str, float]:
    """Encoder and decoder FLOPs for one image, counted by torch's FlopCounterMode on meta tensors."""

    cfg = CONFIGS[config_name]
    with torch.device("meta"):
        model = VQGAN(config=cfg)
        x = torch.zeros(1, 3, cfg.resolution, cfg.resolution)
        side = cfg.latent_size
        out = {}
        with FlopCounterMode(display=False) as counter:
            model.quant_conv(model.encoder(x))
        out["encode"] = float(counter.get_total_flops())
        with FlopCounterMode(display=False) as counter:
            model.decoder(model.post_quant_conv(torch.zeros(1, cfg.quantized_embed_dim, side, side)))
        out["decode"] = float(counter.get_total_flops())
    return out


def profile_encode(model, ref: Reference, images: torch.Tensor, top: int = 8) -> dict[str, list]:
    """Where encode time goes, ours and the reference: the top ops by self CPU time and their shares.

    On a CPU both paths are bound by the same convolution kernels (oneDNN), so this is what says
    whether a faster wrapper could matter at all."""

    out = {}
    for name, fn in (("ours", model.encode), ("reference", ref.encode)):
        fn(images)  # warm-up
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            fn(images)
        events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
        total = sum(e.self_cpu_time_total for e in events)
        events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
        out[name] = [(e.key, e.self_cpu_time_total / total) for e in events[:top]]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", default="bundled")
    ap.add_argument("--batch-sizes", default="1,8,32,128")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                    help="also time the torch.compile path (VQGAN.compile_for_inference)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--profile-batch", type=int, default=32, help="profile encode at this batch (0: skip)")
    ap.add_argument("--json", dest="json_path")
    args = ap.parse_args()

    device = torch.device(args.device)
    model = load_tokenizer(args.tokenizer, device=str(device))
    ref = Reference(model)
    cfg = model.config
    cfg_name = next((k for k, v in CONFIGS.items() if v == cfg), None)
    flops = flops_per_image(cfg_name) if cfg_name else {}
    lvm = flops_per_image("lvm")
    peak = None
    if device.type == "cuda":
        peak = bf16_peak_tflops(torch.cuda.get_device_name())

    paths = {"eager": model}
    if args.compile:
        paths["compiled"] = load_tokenizer(args.tokenizer, device=str(device), compile=True)
    rows = []
    for bs in [int(b) for b in args.batch_sizes.split(",")]:
        x = photos(bs, cfg.resolution).to(device)
        t_ref, ref_codes = timed(ref.encode, x, args.repeats, device)
        td_ref, _ = timed(ref.decode_code, ref_codes, args.repeats, device)
        row = {"batch": bs, "codes": int(ref_codes.numel()),
               "encode_ref_img_s": bs / t_ref, "decode_ref_img_s": bs / td_ref}
        for name, path in paths.items():
            t_enc, codes = timed(path.encode, x, args.repeats, device)
            t_dec, _ = timed(path.decode_code, ref_codes, args.repeats, device)
            gaps = tie_gaps(ref, x, codes, ref_codes)
            row.update({
                f"encode_{name}_img_s": bs / t_enc, f"encode_{name}_speedup": t_ref / t_enc,
                f"decode_{name}_img_s": bs / t_dec, f"decode_{name}_speedup": td_ref / t_dec,
                f"{name}_code_mismatches": int((codes.cpu() != ref_codes.cpu()).sum()),
                f"{name}_max_tie_gap": max(gaps, default=0.0),  # relative; < 1e-4 means a numerical tie
            })
            if peak and flops:
                row[f"encode_{name}_frac_peak"] = bs / t_enc * flops["encode"] / (peak * 1e12)
                row[f"decode_{name}_frac_peak"] = bs / t_dec * flops["decode"] / (peak * 1e12)
        rows.append(row)
        print(json.dumps(row), flush=True)

    report = {
        "date": dt.date.today().isoformat(), "machine": f"{platform.machine()} {torch.get_num_threads()} threads",
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "torch": torch.__version__,
        "tokenizer": args.tokenizer, "gflops_per_image": {k: v / 1e9 for k, v in flops.items()},
        "lvm_gflops_per_image": {k: v / 1e9 for k, v in lvm.items()}, "rows": rows,
    }
    for name in paths:
        print(f"\n{name} path vs the reference")
        print("| batch | encode img/s (ours / ref / x) | decode img/s (ours / ref / x) | codes vs reference |")
        print("|---|---|---|---|")
        for r in rows:
            print(f"| {r['batch']} | {r[f'encode_{name}_img_s']:.2f} / {r['encode_ref_img_s']:.2f} / "
                  f"{r[f'encode_{name}_speedup']:.2f}x | {r[f'decode_{name}_img_s']:.2f} / {r['decode_ref_img_s']:.2f} / "
                  f"{r[f'decode_{name}_speedup']:.2f}x | {r['codes'] - r[f'{name}_code_mismatches']} of {r['codes']} "
                  f"identical; differing ones are ties within {r[f'{name}_max_tie_gap']:.1e} |")
    print(f"\nGFLOPs/image ({args.tokenizer}): {report['gflops_per_image']}; LVM-size: {report['lvm_gflops_per_image']}")
    if flops:
        for name in ["ref", *paths]:
            print(f"achieved GFLOP/s, {name}, encode / decode by batch: " + ", ".join(
                f"{r['batch']}: {r[f'encode_{name}_img_s'] * flops['encode'] / 1e9:.0f} / "
                f"{r[f'decode_{name}_img_s'] * flops['decode'] / 1e9:.0f}" for r in rows))
    if args.profile_batch:
        report["encode_profile"] = profile_encode(model, ref, photos(args.profile_batch, cfg.resolution).to(device))
        for name, ops in report["encode_profile"].items():
            print(f"\nencode profile at batch {args.profile_batch}, {name}: share of self CPU time")
            for op, share in ops:
                print(f"  {share:6.1%}  {op}")
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
