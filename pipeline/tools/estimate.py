"""``uvd plan``: what building all of UVDv1 would take, per runner, from measured throughput figures.

The work is the UVDv1 table (uvdv1_sources.tsv): tokens / 256 images per group, decoded on CPU
workers (stills, or seeked video frames) and tokenized on GPUs. Rates come from
benchmarks/pipeline_bench.py (CPU side, per core) and benchmarks/tokenizer_bench.py (GPU img/s);
where no GPU figure was measured, the tokenizer rate is estimated from the LVM encoder's FLOPs per
image and the card's bf16 peak at an assumed model FLOP utilisation, and the output says so.
Prices are list prices (on-demand, us-central1, as dated in PRICES); pass your own with --prices.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace

from uvd.dataset_specs import uvdv1_rows

TOKENS_PER_IMAGE = 256
LVM_ENCODER_GFLOPS = 138.0  # per 256x256 image (the anchor; benchmarks/tokenizer_bench.py counts ours)
# Dense bf16 peak (vendor datasheets, no sparsity), TFLOP/s, by Beam accelerator name.
BF16_PEAK_TFLOPS = {"nvidia-l4": 121.0, "nvidia-a100": 312.0, "nvidia-h100": 989.0, "nvidia-h200": 989.0}


def bf16_peak_tflops(device_name: str) -> float | None:
    """The peak of a CUDA device by its ``torch.cuda.get_device_name()`` (e.g. "NVIDIA H100 80GB
    HBM3"), matched on whole name parts so that an L40S is not taken for an L4; None if unknown."""
    parts = set(re.split(r"[\s\-_]+", device_name.lower()))
    return next((peak for gpu, peak in BF16_PEAK_TFLOPS.items() if gpu.removeprefix("nvidia-") in parts), None)


@dataclass(frozen=True)
class Figures:
    """Measured throughput (one core, one GPU) and on-disk size."""

    still_img_s_per_core: float
    still_megapixels: float  # mean size of the images the still rate was measured on
    video_frames_s_per_core: float
    video_megapixels: float  # mean frame size of the clips the video rate was measured on
    bytes_per_token: float
    tokenizer_img_s_per_gpu: dict[str, float]  # measured on a GPU kind; empty if none was
    measured: str  # when and where

    @classmethod
    def from_bench(cls, report: dict) -> Figures:
        cpu = report["cpu_side_per_core"]
        return cls(still_img_s_per_core=cpu["stills_decode_resize_img_s"],
                   still_megapixels=cpu["stills_mean_megapixels"],
                   video_frames_s_per_core=cpu["video_seek_decode_resize_frames_s"],
                   video_megapixels=cpu["video_mean_megapixels"],
                   bytes_per_token=report["on_disk"]["gzip_bytes_per_token"],
                   tokenizer_img_s_per_gpu=report.get("tokenizer_img_s_per_gpu", {}),
                   measured=f"{report['date']}, {report['machine']}")


# benchmarks/pipeline_bench.py, 2026-11-23, on this project's 2-core x86_64 CI-class machine (docs/benchmarks.md)
MEASURED = Figures(still_img_s_per_core=258.7, still_megapixels=0.342, video_frames_s_per_core=122.0,
                   video_megapixels=0.381, bytes_per_token=1.60, tokenizer_img_s_per_gpu={},
                   measured="2026-11-23, x86_64 2 cores")

# On-demand list prices (USD per hour), us-central1, as published mid-2026; override with --prices.
PRICES = {
    "date": "2026-06",
    "dataflow": {"vcpu_hour": 0.056, "gb_ram_hour": 0.003557, "gpu_hour": {"nvidia-l4": 0.56, "nvidia-a100": 2.93,
                                                                            "nvidia-h100": 9.80}},
    "vm": {"vcpu_hour": 0.0316, "gb_ram_hour": 0.00424, "gpu_hour": {"nvidia-l4": 0.56, "nvidia-a100": 2.93,
                                                                      "nvidia-h100": 9.80}},
    "storage_gb_month": 0.020,
}


@dataclass(frozen=True)
class Assumptions:
    image_megapixels: float = 0.5  # a typical still after img2dataset / dataset resizing
    video_megapixels: float = 0.9  # 720p-class source video
    cores_per_worker: int = 8
    ram_gb_per_core: float = 4.0
    gpu: str = "nvidia-l4"
    mfu: float = 0.35  # assumed encoder FLOP utilisation when no GPU rate was measured
    parallel_efficiency: float = 0.7  # shuffles, stragglers, start-up at scale


def work_of_uvdv1() -> dict[str, float]:
    """Images to decode, by kind: video frames (the video groups) and stills (the rest)."""
    frames = stills = 0.0
    for row in uvdv1_rows():
        images = row.tokens_millions * 1e6 / TOKENS_PER_IMAGE
        if row.group.startswith("videos"):
            frames += images
        else:
            stills += images
    return {"stills": stills, "video_frames": frames, "tokens": (stills + frames) * TOKENS_PER_IMAGE}


def estimate(figures: Figures = MEASURED, assumptions: Assumptions = Assumptions(), prices: dict = PRICES) -> dict:
    work = work_of_uvdv1()
    a = assumptions
    # decode cost grows with pixels: scale the measured per-core rates to the assumed image sizes
    still_rate = figures.still_img_s_per_core * figures.still_megapixels / a.image_megapixels
    frame_rate = figures.video_frames_s_per_core * figures.video_megapixels / a.video_megapixels
    core_hours = (work["stills"] / still_rate + work["video_frames"] / frame_rate) / 3600 / a.parallel_efficiency
    measured_gpu = figures.tokenizer_img_s_per_gpu.get(a.gpu)
    gpu_rate = measured_gpu or BF16_PEAK_TFLOPS[a.gpu] * 1e12 * a.mfu / (LVM_ENCODER_GFLOPS * 1e9)
    gpu_hours = (work["stills"] + work["video_frames"]) / gpu_rate / 3600 / a.parallel_efficiency
    storage_gb = work["tokens"] * figures.bytes_per_token / 1e9
    runners = {}
    for runner, table in (("dataflow", prices["dataflow"]), ("flink (VMs)", prices["vm"]), ("spark (VMs)", prices["vm"])):
        cpu_cost = core_hours * (table["vcpu_hour"] + a.ram_gb_per_core * table["gb_ram_hour"])
        gpu_cost = gpu_hours * (table["gpu_hour"][a.gpu] + 4 * table["vcpu_hour"] + 16 * table["gb_ram_hour"])
        runners[runner] = {"cpu_worker_hours": core_hours / a.cores_per_worker, "gpu_hours": gpu_hours,
                           "compute_usd": cpu_cost + gpu_cost}
    return {"work": work, "figures": asdict(figures), "assumptions": asdict(assumptions),
            "tokenizer_img_s_per_gpu": gpu_rate,
            "tokenizer_rate_is": "measured" if measured_gpu else
                                 f"estimated: {LVM_ENCODER_GFLOPS:g} GFLOPs/image at {a.mfu:.0%} of {a.gpu} bf16 peak",
            "storage_gb": storage_gb, "storage_usd_month": storage_gb * prices["storage_gb_month"],
            "prices_date": prices["date"], "runners": runners}


def load_figures(path: str | None) -> Figures:
    if not path:
        return MEASURED
    with open(path) as f:
        data = json.load(f)
    return Figures.from_bench(data) if "cpu_side_per_core" in data else Figures(**data)


def with_overrides(assumptions: Assumptions, **changes) -> Assumptions:
    return replace(assumptions, **{k: v for k, v in changes.items() if v is not None})
