"""The whole build job on real files: counts, rejects, manifest vs tars, CLI, end to end."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from beam_job_service import beam_job_service  # noqa: F401 - a fixture
from click.testing import CliRunner
from conftest import add_bad_media, make_media_dirs

from uvd.cli import main
from uvd.pipeline.graph import job
from uvd.pipeline.records.config import BuildConfig, SourceConfig

CONFIG = BuildConfig(tokenizer="random:tiny", batch_size=8, samples_per_shard=2)


def sources(dirs):
    return [SourceConfig(name="images", spec="images", root=str(dirs["images"])),
            SourceConfig(name="videos", spec="videos", root=str(dirs["videos"]))]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """The bad-media folders of conftest, made once for this module's shared build."""
    return add_bad_media(make_media_dirs(tmp_path_factory.mktemp("media")))


@pytest.fixture(scope="module")
def built(media, tmp_path_factory):
    """One build that the tests below read (and copy before changing)."""
    out = tmp_path_factory.mktemp("built") / "out"
    summary = job.run(sources(media), str(out), CONFIG)
    return out, summary


def test_summary_accounts_for_every_input(built):
    out, summary = built
    assert summary["inputs"] == {"images": 5, "videos": 3}
    assert summary["sentences"] == 5 and summary["images"] == 4 + 16
    assert summary["rejects"] == {"unreadable_image": 1, "unreadable_video": 1, "video_too_short": 1}
    written_items = 5  # 4 photos + 1 video
    assert written_items + summary["rejected_items"] == sum(summary["inputs"].values())


def test_rejects_record_names_files_and_reasons(built):
    out, _ = built
    rows = pq.read_table(out / "rejects.parquet").to_pylist()
    by_key = {r["item_key"]: r for r in rows}
    assert set(by_key) == {"broken.png", "broken.mp4", "short.mp4"}
    assert by_key["short.mp4"]["reason"] == "video_too_short" and "short.mp4" in by_key["short.mp4"]["message"]
    assert "10 frames" in by_key["short.mp4"]["message"]
    assert by_key["broken.png"]["stage"] == "decode" and "broken.png" in by_key["broken.png"]["message"]


def test_manifest_counts_equal_tar_contents(built):
    out, summary = built
    table = pq.read_table(out / "manifest.parquet").to_pylist()
    assert len(table) == summary["shards"] >= 2
    total = 0
    for row in table:
        samples = list(wds.WebDataset(str(out / row["path"]), shardshuffle=False).decode())
        assert len(samples) == row["samples"]
        assert sum(s["tokens.npy"].size for s in samples) == row["tokens"]
        assert sum(s["meta.json"]["num_images"] for s in samples) == row["images"]
        assert sorted({s["meta.json"]["source"] for s in samples}) == row["sources"]
        total += len(samples)
    assert total == summary["sentences"]
    assert not [p for p in out.iterdir() if p.name.startswith("_tmp")]


def test_nothing_is_substituted(built):
    out, _ = built
    keys = set()
    for path in sorted(out.glob("shard-*.tar.gz")):
        for s in wds.WebDataset(str(path), shardshuffle=False).decode():
            keys.update(s["meta.json"]["item_keys"])
    assert keys == {"astronaut.png", "chelsea.png", "coffee.png", "sub dir é/rocket.v2.jpg", "pan.mp4"}


def test_provenance_and_refusal_to_mix_builds(built, media, tmp_path):
    out = Path(shutil.copytree(built[0], tmp_path / "out"))  # this test rebuilds it with another seed
    meta = pq.read_schema(out / "manifest.parquet").metadata
    prov = json.loads(meta[b"uvd"])
    assert prov["tokenizer"]["spec"] == "random:tiny" and prov["tokenizer"]["trained"] is False
    assert prov["build_config"]["seed"] == 0 and len(prov["tokenizer"]["sha256"]) == 64
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert job.run(sources(media), str(out), CONFIG) == json.loads((out / "build_summary.json").read_text())
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before  # complete: nothing redone
    with pytest.raises(FileExistsError, match="another build.*--overwrite"):
        job.run(sources(media), str(out), CONFIG.replace(seed=1))
    job.run(sources(media), str(out), CONFIG.replace(seed=1), overwrite=True)
    assert json.loads(pq.read_schema(out / "manifest.parquet").metadata[b"uvd"])["build_config"]["seed"] == 1


def test_rebuild_is_byte_identical(built, media, tmp_path):
    out, _ = built
    again = tmp_path / "again"
    job.run(sources(media), str(again), CONFIG)
    for path in sorted(out.iterdir()):
        assert (again / path.name).read_bytes() == path.read_bytes(), path.name


@pytest.mark.slow
def test_portable_runner_is_byte_identical(built, media, tmp_path, beam_job_service):  # noqa: F811
    """The build on Beam's PortableRunner (its Python job service; SDK workers in separate processes,
    decode and the accelerator-hinted tokenize step each in their own, as on Dataflow Runner v2)
    writes the embedded build's bytes. Only the manifest's provenance names another runner."""
    out, summary = built
    portable = tmp_path / "portable"
    with beam_job_service.deadline(480):  # a hang fails here instead of blocking `make test`
        assert job.run(sources(media), str(portable), CONFIG, beam_job_service.beam_args()) == summary
    assert sorted(p.name for p in portable.iterdir()) == sorted(p.name for p in out.iterdir())
    for path in sorted(out.iterdir()):
        if path.name != "manifest.parquet":
            assert (portable / path.name).read_bytes() == path.read_bytes(), path.name
    embedded_m, portable_m = pq.read_table(out / "manifest.parquet"), pq.read_table(portable / "manifest.parquet")
    assert portable_m.equals(embedded_m, check_metadata=False)
    meta = [json.loads(pq.read_schema(d / "manifest.parquet").metadata[b"uvd"]) for d in (out, portable)]
    assert [m.pop("runner") for m in meta] == ["DirectRunner", "PortableRunner"]
    assert meta[0] == meta[1]
    assert summary["rejected_items"] > 0  # the broken files took the workers' reject paths too


@pytest.mark.slow
def test_cli_build_train_show_end_to_end(media_dirs, tmp_path):
    runner = CliRunner()
    out, ckpt, png = tmp_path / "shards", tmp_path / "ckpt", tmp_path / "grid.png"
    r = runner.invoke(main, ["build", "--source", f"images:{media_dirs['images']}",
                             "--source", f"videos:{media_dirs['videos']}", "--out", str(out),
                             "--tokenizer", "random:tiny", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "sentences" in r.output and "UNTRAINED" in r.output
    r = runner.invoke(main, ["train", str(out), "--steps", "2", "--seq-len", "256", "--out", str(ckpt)])
    assert r.exit_code == 0, r.output
    assert list(ckpt.glob("step-*/model.safetensors")) and "loss" in r.output
    r = runner.invoke(main, ["show", str(out), "--source", "videos", "--out", str(png)])
    assert r.exit_code == 0, r.output

    grid = cv2.imread(str(png))
    assert grid is not None and grid.shape[0] > 4 * 256 and grid.shape[1] > 4 * 256  # 16 frames, 4 per row
    assert np.asarray(grid).std() > 0
