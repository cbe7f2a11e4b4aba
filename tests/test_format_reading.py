"""A shard is verified before any of its samples is used, by every reader of a build: one flipped
byte, where nothing but the checksum can see it, and the reader, the trainer's dataset, ``uvd
train``, ``uvd jsonl export``, ``uvd show`` and ``uvd stats`` use zero samples of that shard and
say which shard failed its sha256."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures.common import photo, write_image

from uvd.cli import main
from uvd.format.reading import ShardError, read_shard
from uvd.format.tables import read_manifest
from uvd.model.data import ShardDataset
from uvd.pipeline.graph import job
from uvd.pipeline.records.config import BuildConfig, SourceConfig

SHARDS = 3


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    """A real build: 6 photos, 2 sentences per shard, 3 gzip shards."""
    root = tmp_path_factory.mktemp("reading")
    for i in range(2 * SHARDS):
        write_image(root / "photos" / f"p{i}.jpg", photo(i))
    config = BuildConfig(tokenizer="random:tiny", batch_size=8, samples_per_shard=2, seed=0)
    job.run([SourceConfig(name="photos", spec="images", root=str(root / "photos"))], str(root / "out"), config,
            device="cpu")
    assert len(read_manifest(str(root / "out")).shards) == SHARDS
    return root / "out"


def damaged_copy(build: Path, tmp_path: Path, *shards: int) -> tuple[Path, Path]:
    """A copy of the build with one byte of each of these shards' gzip header flipped (its MTIME
    field): the file still decompresses to the same tar, so only the sha256 can tell. Returns the
    copy and the (first) damaged shard's path."""
    out = Path(shutil.copytree(build, tmp_path / "build"))
    paths = [Path(read_manifest(str(out)).shards[shard].path) for shard in shards]
    for path in paths:
        data = bytearray(path.read_bytes())
        data[4] ^= 0x01
        assert gzip.decompress(bytes(data)) == gzip.decompress(path.read_bytes())
        path.write_bytes(bytes(data))
    return out, paths[0]


def test_read_shard_yields_nothing_of_a_shard_that_fails_its_sha256(build, tmp_path):
    out, path = damaged_copy(build, tmp_path, 0)
    entry = read_manifest(str(out)).shards[0]
    got = []
    with pytest.raises(ShardError, match=f"shard {path}: sha256 differs from the manifest"):
        for sentence in read_shard(entry):
            got.append(sentence)
    assert got == []
    assert len(list(read_shard(entry, verify=False))) == 2  # the damage is invisible to parsing


def test_the_trainers_dataset_stops_at_the_damaged_shard(build, tmp_path):
    out, path = damaged_copy(build, tmp_path, 1)
    first = [s.key for s in read_shard(read_manifest(str(out)).shards[0])]
    got = []
    with pytest.raises(ShardError, match=f"{path}: sha256 differs"):
        for sentence in ShardDataset(out):
            got.append(sentence.key)
    assert got == first  # the shard before it, and nothing of the damaged one


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output  # no crash
    return result.exit_code, result.output


def test_uvd_train_fails_before_a_step(build, tmp_path):
    out, _ = damaged_copy(build, tmp_path, *range(SHARDS))  # whichever shard the seeded order reads first
    code, output = cli("train", str(out), "--steps", "2", "--seq-len", "64", "--out", str(tmp_path / "ckpt"))
    assert code != 0 and "sha256 differs from the manifest" in output, output
    assert "loss" not in output and not list((tmp_path / "ckpt").glob("step-*"))


def test_uvd_jsonl_export_writes_no_line_of_the_damaged_shard(build, tmp_path):
    out, path = damaged_copy(build, tmp_path, 0)
    target = tmp_path / "lvm.jsonl"
    code, output = cli("jsonl", "export", str(out), "--out", str(target))
    assert code != 0 and f"{path}: sha256 differs" in output
    assert not target.exists() or target.read_text() == ""


def test_uvd_show_draws_nothing(build, tmp_path):
    out, path = damaged_copy(build, tmp_path, 0)
    code, output = cli("show", str(out), "--index", "0", "--out", str(tmp_path / "s.png"))
    assert code != 0 and f"{path}: sha256 differs" in output and not (tmp_path / "s.png").exists()


def test_uvd_stats_reports_nothing(build, tmp_path):
    out, path = damaged_copy(build, tmp_path, 2)
    code, output = cli("stats", str(out), "--psnr-per-shard", "0", "--out", str(tmp_path / "report"))
    assert code != 0 and f"{path}: sha256 differs" in output
    assert not (tmp_path / "report.json").exists() and not (tmp_path / "report.html").exists()


def test_undamaged_build_reads_everywhere(build, tmp_path):
    """The same commands succeed on the build as written: the failures above are the flipped byte's."""
    assert len(list(ShardDataset(build))) == 2 * SHARDS
    assert cli("jsonl", "export", str(build), "--out", str(tmp_path / "ok.jsonl"))[0] == 0
    assert len((tmp_path / "ok.jsonl").read_text().splitlines()) == 2 * SHARDS
    assert cli("show", str(build), "--index", "5", "--out", str(tmp_path / "ok.png"))[0] == 0
    assert cli("stats", str(build), "--psnr-per-shard", "0", "--out", str(tmp_path / "ok"))[0] == 0
