"""``uvd plan``: what building all of UVDv1 would take, per runner, from measured throughput figures.

The work is the UVDv1 table (uvdv1_sources.tsv): tokens / 256 images per group, decoded on CPU
workers (stills, or seeked video frames) and tokenized on GPUs. Rates come from ``figures.json``
next to this module, which the benchmarks write with their date and machine:
benchmarks/pipeline_bench.py (decode rates per core, bytes per token) and
benchmarks/scaling_bench.py (the whole CPU side of a build per core, without tokenizing, and the
bytes per image that cross to the tokenize step). Where no GPU figure was measured, the tokenizer
rate is estimated from the LVM encoder's FLOPs per image and the card's bf16 peak at an assumed
model FLOP utilisation, and the output says so. Runner jobs come from planning/waves.py, with an
assumed start-up per job. Prices are list prices (on-demand, us-central1, as dated in PRICES);
pass your own with --prices.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from uvd.dataset_specs import all_specs, uvdv1_rows
from uvd.format.storage import atomic_write
from uvd.pipeline.planning.waves import MIN_WAVE_SENTENCES, wave_layout

TOKENS_PER_IMAGE = 256
LVM_ENCODER_GFLOPS = 138.0  # per 256x256 image (the anchor; benchmarks/tokenizer_bench.py counts ours)
# Dense bf16 peak (vendor datasheets, no sparsity), TFLOP/s, by Beam accelerator name.
BF16_PEAK_TFLOPS = {"nvidia-l4": 121.0, "nvidia-a100": 312.0, "nvidia-h100": 989.0, "nvidia-h200": 989.0}


def bf16_peak_tflops(device_name: str) -> float | None:
    """The peak of a CUDA device by its ``torch.cuda.get_device_name()`` (e.g. "NVIDIA H100 80GB
    HBM3"), matched on whole name parts so that an L40S is not taken for an L4; None if unknown."""
    parts = set(re.split(r"[\s\-_]+", device_name.lower()))
    return next((peak for gpu, peak in BF16_PEAK_TFLOPS.items() if gpu.removeprefix("nvidia-") in parts), None)


FIGURES_FILE = Path(__file__).with_name("figures.json")  # package data; `make bench` rewrites it
# The benchmark that measures each figure (and writes it to its section of a figures file).
WRITTEN_BY = {"still_img_s_per_core": "pipeline_bench", "still_megapixels": "pipeline_bench",
              "video_frames_s_per_core": "pipeline_bench", "video_megapixels": "pipeline_bench",
              "bytes_per_token": "pipeline_bench", "cpu_side_img_s_per_core": "scaling_bench",
              "cpu_side_megapixels": "scaling_bench", "boundary_bytes_per_image": "scaling_bench"}
PROVENANCE = ("date", "machine", "load", "source")  # what every section records beside its figures


class FiguresError(ValueError):
    """A figures file that is not JSON, or lacks a figure or the date and machine of a section."""


@dataclass(frozen=True)
class Figures:
    """Measured throughput (per core, per GPU) and sizes, as recorded in a figures file."""

    still_img_s_per_core: float  # decode + resize only
    still_megapixels: float  # mean size of the images the still rate was measured on
    video_frames_s_per_core: float
    video_megapixels: float  # mean frame size of the clips the video rate was measured on
    bytes_per_token: float
    cpu_side_img_s_per_core: float  # a whole build's CPU work per still (list .. shard write), tokenizing aside
    cpu_side_megapixels: float  # the stills it was measured on (640x480 JPEG: 0.307)
    boundary_bytes_per_image: float  # what crosses decode -> tokenize per image
    tokenizer_img_s_per_gpu: dict[str, float]  # measured on a GPU kind; empty if none was
    measured: str  # when and where, per benchmark

    @classmethod
    def from_file(cls, path: str | Path = FIGURES_FILE) -> Figures:
        """The figures file: one section per benchmark, each with its date, machine, load and script."""
        sections = _read_sections(Path(path))
        merged = {k: v for section in sections.values() for k, v in section.items()}
        missing = [k for k in WRITTEN_BY if not isinstance(merged.get(k), (int, float)) or merged[k] <= 0]
        if missing:
            benches = sorted({f"benchmarks/{WRITTEN_BY[k]}.py" for k in missing})
            raise FiguresError(f"{path} has no measured {', '.join(missing)}; {' and '.join(benches)} "
                               "write(s) them (make bench)")
        when = "; ".join(f"{name} {s['date']} on {s['machine']} (load {s['load']})" for name, s in sections.items())
        return cls(**{k: float(merged[k]) for k in WRITTEN_BY},
                   tokenizer_img_s_per_gpu=merged.get("tokenizer_img_s_per_gpu", {}), measured=when)


def _read_sections(path: Path) -> dict[str, dict]:
    try:
        sections = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise FiguresError(f"{path}: not a figures file ({e})") from e
    if not isinstance(sections, dict) or not all(isinstance(s, dict) for s in sections.values()):
        raise FiguresError(f"{path}: not a figures file (expected one object per benchmark)")
    for name, section in sections.items():
        if any(k not in section for k in PROVENANCE):
            raise FiguresError(f"{path}: section {name} lacks its {', '.join(k for k in PROVENANCE if k not in section)}")
    return sections


def update_figures(section: str, figures: dict, path: str | Path = FIGURES_FILE) -> None:
    """Replace one benchmark's section of a figures file (``figures`` carries its date, machine, load
    and script), atomically: a figures file is never half written."""
    path = Path(path)
    missing = [k for k in PROVENANCE if k not in figures]
    if missing:
        raise FiguresError(f"section {section} lacks its {', '.join(missing)}")
    sections = json.loads(path.read_text()) if path.exists() else {}
    sections[section] = figures
    body = json.dumps(dict(sorted(sections.items())), indent=2, sort_keys=True) + "\n"
    atomic_write(str(path), body.encode("utf-8"))


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
    job_startup_min: float = 6.0  # per Dataflow job: CPU and GPU worker VMs, containers, GPU driver (not measured)
    samples_per_shard: int = 256  # the build config's default


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


def sentences_of_uvdv1() -> float:
    """Sentences of all of UVDv1 in uvd's layouts: a single_image spec makes one sentence per image,
    every other layout sentences of 16 images (8 pairs, 16-frame clips, LVM's length)."""
    sentences = 0.0
    for spec in all_specs().values():
        images = spec.uvdv1_tokens_millions * 1e6 / TOKENS_PER_IMAGE
        sentences += images / (1 if spec.layout == "single_image" else 16)
    return sentences


def runner_jobs(sentences: float, a: Assumptions, wave_hours: dict[str, float], wave_usd: float) -> dict:
    """Jobs of the whole build (planning/waves.py), their start-up, and what one kill can lose: one
    wave's share of the decode and tokenize work. Also the same for waves of a fixed 200 k sentences."""
    layout = wave_layout(int(sentences), a.samples_per_shard)
    fixed = wave_layout(int(sentences), a.samples_per_shard, wave_sentences=MIN_WAVE_SENTENCES)
    at_risk = layout.shards_per_wave / layout.num_shards
    return {"sentences": sentences, "waves": layout.waves, "jobs": layout.jobs,
            "sentences_per_wave": layout.shards_per_wave * a.samples_per_shard,
            "startup_hours": layout.jobs * a.job_startup_min / 60, "job_startup_min": a.job_startup_min,
            "at_risk_fraction": at_risk, "at_risk_usd": at_risk * wave_usd,
            "at_risk_hours": {k: at_risk * v for k, v in wave_hours.items()},
            "fixed_200k_waves": {"jobs": fixed.jobs, "startup_hours": fixed.jobs * a.job_startup_min / 60}}


def estimate(figures: Figures | None = None, assumptions: Assumptions = Assumptions(), prices: dict = PRICES) -> dict:
    figures = figures or Figures.from_file()
    work = work_of_uvdv1()
    a = assumptions
    # decode cost grows with pixels: scale the measured per-core rates to the assumed image sizes
    still_rate = figures.cpu_side_img_s_per_core * figures.cpu_side_megapixels / a.image_megapixels
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
    cpu_side = {"still_img_s_per_core": still_rate, "cores_per_gpu": gpu_rate / still_rate,
                "boundary_gbit_s_per_gpu": gpu_rate * figures.boundary_bytes_per_image * 8 / 1e9}
    jobs = runner_jobs(sentences_of_uvdv1(), a, {"cpu_worker_hours": core_hours / a.cores_per_worker,
                                                "gpu_hours": gpu_hours}, runners["dataflow"]["compute_usd"])
    return {"work": work, "figures": asdict(figures), "assumptions": asdict(assumptions),
            "tokenizer_img_s_per_gpu": gpu_rate, "cpu_side": cpu_side, "runner_jobs": jobs,
            "tokenizer_rate_is": "measured" if measured_gpu else
                                 f"estimated: {LVM_ENCODER_GFLOPS:g} GFLOPs/image at {a.mfu:.0%} of {a.gpu} bf16 peak",
            "storage_gb": storage_gb, "storage_usd_month": storage_gb * prices["storage_gb_month"],
            "prices_date": prices["date"], "runners": runners}


def load_figures(path: str | None) -> Figures:
    return Figures.from_file(path or FIGURES_FILE)


def with_overrides(assumptions: Assumptions, **changes) -> Assumptions:
    return replace(assumptions, **{k: v for k, v in changes.items() if v is not None})
