"""Tokenizer throughput: uvd's encode/decode paths vs a plain eager fp32 reference.

All paths use the same weights and the same real photos, side by side in one run (these
machines are noisy, so compare the ratio, not the absolute numbers). The reference is
what a straightforward port does: NCHW tensors, autograd bookkeeping off via no_grad only,
fp32 everywhere, out-of-place SiLU, ``torch.cdist`` + argmin for the nearest code. Ours:
``encode`` / ``decode_code`` as loaded (inference_mode, channels_last, in-place SiLU, chunked
addmm code search; fp32 as LVM, bf16 only when asked), and the same after ``compile_for_inference``
(``uvd build --compile-tokenizer``). A profile of encode says where CPU time goes.

The contenders alternate: every round times each of them once, in an order that rotates from
round to round, and the report gives the median and the spread (min-max) over the rounds, of
the rates and of the per-round ratios. The bench fails (AssertionError) unless every path agrees
with the reference: codes identical except at numerical ties, and the decoded pixels of the same
codes within a tolerance.

    python benchmarks/tokenizer_bench.py --tokenizer bundled --batch-sizes 1,8,32,128 --rounds 5
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


# What "agrees with the reference" means, per device. CPU paths are fp32: a code may flip only at a tie
# (relative distance gap < 1e-4) and pixels differ by rounding. GPU paths run in bf16 autocast, so
# ties are wider and pixels differ more (these two were not measured here: no GPU was available).
TIE_TOLERANCE = {"cpu": 1e-4, "cuda": 2e-2}
PIXEL_TOLERANCE = {"cpu": 1 / 255, "cuda": 8 / 255}


def call_seconds(fn, x, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def alternate(contenders: dict, x, rounds: int, device: torch.device) -> dict[str, list[float]]:
    """Seconds per call of each contender over ``rounds`` rounds. Each round runs every contender once,
    starting one further along than the round before, so none always runs first or last."""
    names = list(contenders)
    for name in names:
        contenders[name](x)  # warm-up: allocators, kernel selection
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            seconds[name].append(call_seconds(contenders[name], x, device))
    return seconds


def spread(values: list[float]) -> dict[str, float]:
    return {"median": float(np.median(values)), "min": float(min(values)), "max": float(max(values))}


def rates_and_ratios(seconds: dict[str, list[float]], batch: int, reference: str = "reference") -> dict:
    """Per contender: images/s and the per-round ratio to the reference, each as median and spread."""
    return {name: {"img_s": spread([batch / t for t in times]),
                   "vs_reference": spread([r / t for r, t in zip(seconds[reference], times)])}
            for name, times in seconds.items()}


def check_agreement(name: str, ref: Reference, images: torch.Tensor, path, ref_codes: torch.Tensor,
                    ref_pixels: torch.Tensor, device: torch.device) -> dict:
    """Codes and decoded pixels of ``path`` against the reference's; raises unless they agree."""
    codes = path.encode(images)
    gaps = tie_gaps(ref, images, codes, ref_codes)
    pixels = path.decode_code(ref_codes).float()
    pixel_diff = float((pixels.cpu() - ref_pixels.cpu()).abs().max())
    agreement = {"code_mismatches": len(gaps), "max_tie_gap": max(gaps, default=0.0), "max_pixel_diff": pixel_diff}
    if agreement["max_tie_gap"] > TIE_TOLERANCE[device.type]:
        raise AssertionError(f"{name}: {len(gaps)} codes differ from the reference, and not only at ties "
                             f"(relative gap {agreement['max_tie_gap']:.1e} > {TIE_TOLERANCE[device.type]:.0e})")
    if pixel_diff > PIXEL_TOLERANCE[device.type]:
        raise AssertionError(f"{name}: decoded pixels differ from the reference's by {pixel_diff:.4f} "
                             f"(> {PIXEL_TOLERANCE[device.type]:.4f})")
    return agreement


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


def bench_batch(batch: int, ref: Reference, paths: dict, rounds: int, device: torch.device) -> dict:
    """One batch size: agreement first (the bench stops on a disagreement), then alternating rounds."""
    x = photos(batch, ref.model.config.resolution).to(device)
    ref_codes = ref.encode(x)
    ref_pixels = ref.decode_code(ref_codes)
    contenders = {"reference": ref, **paths}
    return {
        "batch": batch, "codes": int(ref_codes.numel()),
        "agreement": {name: check_agreement(name, ref, x, path, ref_codes, ref_pixels, device)
                      for name, path in paths.items()},
        "encode": rates_and_ratios(alternate({n: c.encode for n, c in contenders.items()}, x, rounds, device), batch),
        "decode": rates_and_ratios(alternate({n: c.decode_code for n, c in contenders.items()}, ref_codes, rounds,
                                             device), batch),
    }


def fmt(s: dict, unit: str = "") -> str:
    return f"{s['median']:.2f}{unit} ({s['min']:.2f}-{s['max']:.2f})"


def print_report(report: dict) -> None:
    print(f"\n{report['rounds']} alternating rounds; median (min-max) over the rounds")
    print("| batch | path | encode img/s | encode vs reference | decode img/s | decode vs reference | codes identical "
          "| max pixel diff |")
    print("|---|---|---|---|---|---|---|---|")
    for r in report["rows"]:
        for name in r["encode"]:
            a = r["agreement"].get(name, {"code_mismatches": 0, "max_pixel_diff": 0.0})
            print(f"| {r['batch']} | {name} | {fmt(r['encode'][name]['img_s'])} | "
                  f"{fmt(r['encode'][name]['vs_reference'], 'x')} | {fmt(r['decode'][name]['img_s'])} | "
                  f"{fmt(r['decode'][name]['vs_reference'], 'x')} | {r['codes'] - a['code_mismatches']} of "
                  f"{r['codes']} | {a['max_pixel_diff']:.1e} |")
    flops = report["gflops_per_image"]
    print(f"\nGFLOPs/image ({report['tokenizer']}): {flops}; LVM-size: {report['lvm_gflops_per_image']}")
    for name in report["rows"][0]["encode"] if flops else []:
        print(f"achieved GFLOP/s (median), {name}, encode / decode by batch: " + ", ".join(
            f"{r['batch']}: {r['encode'][name]['img_s']['median'] * flops['encode']:.0f} / "
            f"{r['decode'][name]['img_s']['median'] * flops['decode']:.0f}" for r in report["rows"]))
    if report.get("peak_tflops"):
        for r in report["rows"]:
            print(f"batch {r['batch']}: share of bf16 peak, encode / decode: " + ", ".join(
                f"{n} {r['encode'][n]['img_s']['median'] * flops['encode'] / 1e3 / report['peak_tflops']:.3f} / "
                f"{r['decode'][n]['img_s']['median'] * flops['decode'] / 1e3 / report['peak_tflops']:.3f}"
                for n in r["encode"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", default="bundled")
    ap.add_argument("--batch-sizes", default="1,8,32,128")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds per batch size")
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                    help="also time the torch.compile path (VQGAN.compile_for_inference)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--profile-batch", type=int, default=32, help="profile encode at this batch (0: skip)")
    ap.add_argument("--json", dest="json_path")
    args = ap.parse_args()

    device = torch.device(args.device)
    model = load_tokenizer(args.tokenizer, device=str(device))
    ref = Reference(model)
    cfg_name = next((k for k, v in CONFIGS.items() if v == model.config), None)
    paths = {"eager": model}
    if args.compile:
        paths["compiled"] = load_tokenizer(args.tokenizer, device=str(device), compile=True)
    report = {
        "date": dt.date.today().isoformat(), "machine": f"{platform.machine()} {torch.get_num_threads()} threads",
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "torch": torch.__version__,
        "tokenizer": args.tokenizer, "rounds": args.rounds,
        "gflops_per_image": {k: v / 1e9 for k, v in (flops_per_image(cfg_name) if cfg_name else {}).items()},
        "lvm_gflops_per_image": {k: v / 1e9 for k, v in flops_per_image("lvm").items()},
        "peak_tflops": bf16_peak_tflops(torch.cuda.get_device_name()) if device.type == "cuda" else None,
        "rows": [],
    }
    for batch in [int(b) for b in args.batch_sizes.split(",")]:
        report["rows"].append(bench_batch(batch, ref, paths, args.rounds, device))
        print(json.dumps(report["rows"][-1]), flush=True)
    print_report(report)
    if args.profile_batch:
        report["encode_profile"] = profile_encode(model, ref, photos(args.profile_batch, model.config.resolution)
                                                  .to(device))
        for name, ops in report["encode_profile"].items():
            print(f"\nencode profile at batch {args.profile_batch}, {name}: share of self CPU time")
            for op, share in ops:
                print(f"  {share:6.1%}  {op}")
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
