"""Right-fitting for real engines: only the tokenize step asks for an accelerator, and the CLI hands
the options it does not know to Beam."""

from __future__ import annotations

import json
import re
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from click.testing import CliRunner
from fixtures.common import photo, write_image

from uvd.cli import main
from uvd.format.sample import sentence_key
from uvd.format.tables import read_manifest
from uvd.media.images import decode_image, resize_still
from uvd.pipeline.graph import job, resources, state
from uvd.pipeline.records.config import BuildConfig, SourceConfig, load_build_config

ACCELERATOR = "beam:resources:accelerator:v1"


def wave_graph(tmp_path, accelerator):
    options = PipelineOptions([])
    p = beam.Pipeline(options=options)  # built, never run
    build = job.BuildContext(sources=[SourceConfig("images", "images", str(tmp_path))], out_dir=str(tmp_path / "out"),
                    config=BuildConfig(tokenizer="random:tiny"), options=options, record={}, tokens_per_image=256,
                    accelerator=accelerator)
    plan = state.BuildPlan(planned_sentences=1, num_shards=1, shards_per_wave=1, wave_sentences=[1], mixture=None)
    job.chain_wave(p, build, plan, 0)
    proto = p.to_runner_api()
    hinted = {}
    for t in proto.components.transforms.values():
        env = proto.components.environments.get(t.environment_id)
        if env is not None and ACCELERATOR in env.resource_hints:
            hinted[t.unique_name] = env.resource_hints[ACCELERATOR].decode()
    return proto, hinted


def test_only_the_tokenize_step_asks_for_an_accelerator(tmp_path):
    proto, hinted = wave_graph(tmp_path, job.DEFAULT_ACCELERATOR)
    assert "TokenizedFrames/EncodeWithVQGAN" in hinted
    assert set(hinted.values()) == {"type:nvidia-l4;count:1;install-nvidia-driver"}
    assert all(name.startswith("TokenizedFrames/") for name in hinted)  # decoding stays on CPU workers
    names = {t.unique_name for t in proto.components.transforms.values()}
    assert "DecodedFrames/DrawFrames" in names and "DecodedFrames/DrawFrames" not in hinted
    _, none = wave_graph(tmp_path, None)
    assert none == {}


def test_frames_cross_the_decode_tokenize_boundary_as_uint8_within_budget(tmp_path, media_dirs):
    """On Dataflow the hinted tokenize step runs on the GPU pool, so every frame is shuffled to it
    with the coder of the decode step's output: one uint8 frame and its key, nothing more."""
    p = beam.Pipeline(options=PipelineOptions([]))
    build = job.BuildContext(sources=[SourceConfig("images", "images", str(media_dirs["images"]))],
                             out_dir=str(tmp_path / "out"), config=BuildConfig(tokenizer="random:tiny"),
                             options=PipelineOptions([]), record={}, tokens_per_image=256,
                             accelerator=job.DEFAULT_ACCELERATOR)
    plan = state.BuildPlan(planned_sentences=1, num_shards=1, shards_per_wave=1, wave_sentences=[1], mixture=None)
    job.chain_wave(p, build, plan, 0)
    path = media_dirs["images"] / "chelsea.png"
    frame = resize_still(decode_image(path.read_bytes(), max_pixels=10**8, name=path.name), 256)
    encoded = resources.boundary_coder(p).encode(((sentence_key("images", "chelsea.png", 0), 0), frame))
    assert frame.nbytes < len(encoded) <= resources.FRAME_BOUNDARY_BUDGET_BYTES  # raw pixels + ~200 B
    as_float = ((sentence_key("images", "chelsea.png", 0), 0), frame.astype("float32") / 255)
    assert len(resources.boundary_coder(p).encode(as_float)) > 3 * resources.FRAME_BOUNDARY_BUDGET_BYTES


def test_unknown_options_go_to_beam(tmp_path):
    for i in range(2):
        write_image(tmp_path / "images" / f"p{i}.jpg", photo(i))
    args = ["build", "--source", f"images:{tmp_path / 'images'}", "--out", str(tmp_path / "out"), "--tokenizer",
            "random:tiny", "--no-progress", "--device", "cpu", "--runner=DirectRunner",
            "--direct_running_mode=in_memory", "--direct_num_workers=1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "sentences" in result.output

    assert read_manifest(str(tmp_path / "out")).provenance["runner"] == "DirectRunner"  # Beam got --runner


def test_plan_reports_runner_jobs_startup_and_work_at_risk_for_uvdv1():
    result = CliRunner().invoke(main, ["plan"])
    assert result.exit_code == 0, result.output
    jobs = int(re.search(r"Runner jobs on Dataflow: (\d+) \(plan, (\d+) waves", result.output).group(1))
    assert jobs <= 20
    assert re.search(r"start-up overhead: [0-9.]+ h", result.output)
    assert re.search(r"work at risk per kill \(one wave, [0-9.]+% of the build\): [0-9,]+ CPU worker-hours, "
                     r"[0-9,]+ GPU-hours", result.output)
    assert re.search(r"cores per nvidia-l4", result.output)
    plan = json.loads(CliRunner().invoke(main, ["plan", "--json", "--job-startup-min", "10"]).output)
    j = plan["runner_jobs"]
    assert j["jobs"] == jobs == j["waves"] + 2 and j["sentences"] > 1e9  # LAION's single-image sentences
    assert j["startup_hours"] == pytest.approx(jobs * 10 / 60)
    assert j["waves"] <= 16 and j["at_risk_fraction"] == pytest.approx(1 / j["waves"], rel=1e-3)  # one wave's shards
    assert j["fixed_200k_waves"]["jobs"] > 100 * jobs  # what one job per 200 k sentences would have been
    assert plan["cpu_side"]["cores_per_gpu"] == pytest.approx(
        plan["tokenizer_img_s_per_gpu"] / plan["cpu_side"]["still_img_s_per_core"])
    assert "scaling_bench" in plan["figures"]["measured"] and "pipeline_bench" in plan["figures"]["measured"]


def test_shipped_build_configs_load():
    """The configs `make demo` and the runner recipes pass to `uvd build` must stay valid."""


    root = Path(__file__).resolve().parents[1] / "infra"
    configs = sorted(root.rglob("*.toml"))
    assert {p.name for p in configs} >= {"demo.toml", "build.toml"}
    for path in configs:
        assert isinstance(load_build_config(path), BuildConfig), path
