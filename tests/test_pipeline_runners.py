"""Right-fitting for real engines: only the tokenize step asks for an accelerator, and the CLI hands
the options it does not know to Beam."""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from click.testing import CliRunner
from fixtures.common import photo, write_image

from uvd.cli import main
from uvd.format.tables import read_manifest
from uvd.pipeline.graph import job, state
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


def test_shipped_build_configs_load():
    """The configs `make demo` and the runner recipes pass to `uvd build` must stay valid."""


    root = Path(__file__).resolve().parents[1] / "infra"
    configs = sorted(root.rglob("*.toml"))
    assert {p.name for p in configs} >= {"demo.toml", "build.toml"}
    for path in configs:
        assert isinstance(load_build_config(path), BuildConfig), path
