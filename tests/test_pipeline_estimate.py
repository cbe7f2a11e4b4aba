"""`uvd plan`'s figures: read from a file the benchmarks write (every section dated, with its machine
and script), refused clearly when a figure is missing, and followed by the estimate. The numbers
here are test inputs, not measurements: no test depends on what a benchmark measured."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from uvd.cli import main
from uvd.dataset_specs import uvdv1_rows
from uvd.pipeline.tools.estimate import (
    FIGURES_FILE,
    PROVENANCE,
    WRITTEN_BY,
    Assumptions,
    Figures,
    FiguresError,
    bf16_peak_tflops,
    estimate,
    update_figures,
)

REPO = Path(__file__).resolve().parents[1]


def write_figures(path: Path, *, skip: str | None = None, **figures: float) -> Path:
    """A figures file as the two benchmarks write it, with made-up figures (``skip``: leave one out)."""
    values = {"still_img_s_per_core": 200.0, "still_megapixels": 0.3, "video_frames_s_per_core": 100.0,
              "video_megapixels": 0.4, "bytes_per_token": 1.5, "cpu_side_img_s_per_core": 160.0,
              "cpu_side_megapixels": 0.3072, "boundary_bytes_per_image": 196_800.0, **figures}
    for bench in ("pipeline_bench", "scaling_bench"):
        update_figures(bench, {"date": "2026-01-02", "machine": f"test machine of {bench}", "load": 0.5,
                               "source": f"benchmarks/{bench}.py",
                               **{k: v for k, v in values.items() if WRITTEN_BY[k] == bench and k != skip}}, path)
    return path


def test_the_packaged_figures_are_dated_records_of_the_benchmarks():
    sections = json.loads(FIGURES_FILE.read_text())
    assert set(sections) >= {"pipeline_bench", "scaling_bench"}
    for name, section in sections.items():
        assert all(section[k] for k in PROVENANCE), name
        assert section["source"] == f"benchmarks/{name}.py" and (REPO / section["source"]).is_file()
    for figure, bench in WRITTEN_BY.items():
        assert sections[bench][figure] > 0, figure  # each figure in the section of the script that measures it
    measured = Figures.from_file()
    assert all(sections[name]["date"] in measured.measured for name in sections)


def test_a_figures_file_round_trips_section_by_section(tmp_path):
    path = write_figures(tmp_path / "figures.json", cpu_side_img_s_per_core=123.0)
    update_figures("scaling_bench", {**json.loads(path.read_text())["scaling_bench"], "machine": "another"}, path)
    figures = Figures.from_file(path)
    assert figures.cpu_side_img_s_per_core == 123.0 and figures.tokenizer_img_s_per_gpu == {}
    assert "scaling_bench 2026-01-02 on another" in figures.measured
    assert "pipeline_bench 2026-01-02 on test machine of pipeline_bench" in figures.measured
    with pytest.raises(FiguresError, match="lacks its date, machine"):
        update_figures("pipeline_bench", {"load": 1.0, "source": "x"}, path)


def test_a_missing_figure_is_refused_naming_the_benchmark_that_measures_it(tmp_path):
    path = write_figures(tmp_path / "figures.json", skip="cpu_side_img_s_per_core")
    with pytest.raises(FiguresError, match=r"no measured cpu_side_img_s_per_core; benchmarks/scaling_bench\.py"):
        Figures.from_file(path)
    result = CliRunner().invoke(main, ["plan", "--figures", str(path)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {path} has no measured cpu_side_img_s_per_core; "
                                                  "benchmarks/scaling_bench.py write(s) them (make bench)"]
    undated = tmp_path / "undated.json"
    undated.write_text(json.dumps({"pipeline_bench": {"still_img_s_per_core": 1.0}}))
    with pytest.raises(FiguresError, match="section pipeline_bench lacks its date, machine, load, source"):
        Figures.from_file(undated)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(FiguresError, match="not a figures file"):
        Figures.from_file(tmp_path / "bad.json")


def test_the_plan_follows_its_figures(tmp_path):
    base = estimate(Figures.from_file(write_figures(tmp_path / "a.json")))
    faster = estimate(Figures.from_file(write_figures(tmp_path / "b.json", cpu_side_img_s_per_core=320.0)))
    a = Assumptions()
    assert base["cpu_side"]["still_img_s_per_core"] == pytest.approx(160.0 * 0.3072 / a.image_megapixels)
    assert faster["cpu_side"]["cores_per_gpu"] == pytest.approx(base["cpu_side"]["cores_per_gpu"] / 2)
    assert base["cpu_side"]["cores_per_gpu"] == pytest.approx(
        base["tokenizer_img_s_per_gpu"] / base["cpu_side"]["still_img_s_per_core"])
    assert base["cpu_side"]["boundary_gbit_s_per_gpu"] == pytest.approx(
        base["tokenizer_img_s_per_gpu"] * 196_800 * 8 / 1e9)
    assert base["storage_gb"] == pytest.approx(base["work"]["tokens"] * 1.5 / 1e9)
    assert faster["runners"]["dataflow"]["gpu_hours"] == base["runners"]["dataflow"]["gpu_hours"]
    assert faster["runners"]["dataflow"]["cpu_worker_hours"] < base["runners"]["dataflow"]["cpu_worker_hours"]


def test_plan_covers_all_of_uvdv1_and_scales_with_the_gpu(tmp_path):
    figures = Figures.from_file(write_figures(tmp_path / "figures.json"))
    result = estimate(figures)
    total = sum(r.tokens_millions for r in uvdv1_rows()) * 1e6
    assert result["work"]["tokens"] == pytest.approx(total)
    assert result["tokenizer_rate_is"].startswith("estimated")  # no GPU rate in the file
    dataflow = result["runners"]["dataflow"]
    assert dataflow["gpu_hours"] > 0 and dataflow["cpu_worker_hours"] > 0 and dataflow["compute_usd"] > 0
    faster = estimate(figures, assumptions=Assumptions(gpu="nvidia-h100"))
    assert faster["runners"]["dataflow"]["gpu_hours"] < dataflow["gpu_hours"] / 5  # 989 vs 121 TFLOP/s
    measured_gpu = estimate(replace(figures, tokenizer_img_s_per_gpu={"nvidia-l4": 1000.0}))
    assert measured_gpu["tokenizer_rate_is"] == "measured" and measured_gpu["tokenizer_img_s_per_gpu"] == 1000.0


def test_plan_command_with_the_packaged_figures():
    result = CliRunner().invoke(main, ["plan"])
    assert result.exit_code == 0, result.output
    for runner in ("dataflow", "flink (VMs)", "spark (VMs)"):
        assert runner in result.output
    result = CliRunner().invoke(main, ["plan", "--json", "--gpu", "nvidia-a100"])
    assert json.loads(result.output)["assumptions"]["gpu"] == "nvidia-a100"


def test_gpu_peak_is_found_by_device_name():
    assert bf16_peak_tflops("NVIDIA H100 80GB HBM3") == bf16_peak_tflops("NVIDIA H200") == 989.0
    assert bf16_peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0 and bf16_peak_tflops("NVIDIA L4") == 121.0
    assert bf16_peak_tflops("NVIDIA L40S") is None  # not an L4
