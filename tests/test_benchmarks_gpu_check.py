"""benchmarks/gpu_check.py, the one-shot GPU check: its CPU dry run takes every code path of the four
checks and reports every figure; codes, tokens or losses that differ end a run with one line."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from uvd.model.llama import CONFIGS as LLAMA_CONFIGS
from uvd.model.loader import MixtureRows, Partition, Stream, StreamConfig
from uvd.tokenizer import load_tokenizer
from uvd.tokenizer.config import CONFIGS as TOKENIZER_CONFIGS

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the script imports its sibling benchmarks by module name
gpu_check = importlib.import_module("gpu_check")

# The dry run takes under a minute of CPU (its compilations use aot_eager: no C++ to build, docs/benchmarks.md);
# the timeout allows for a machine loaded many times over.
DRY_RUN_TIMEOUT_S = 1500
DRY = gpu_check.DRY_RUN_SIZES


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check") / "report.json"
    done = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_check.py"), "--dry-run", "--json", str(out)],
                          capture_output=True, text=True, timeout=DRY_RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done, json.loads(out.read_text())


@pytest.fixture
def dry_sizes(monkeypatch):
    """The dry run's own model sizes, known to load_tokenizer and get_config, as the script registers them."""
    monkeypatch.setitem(TOKENIZER_CONFIGS, *gpu_check.DRY_RUN_VQGAN)
    monkeypatch.setitem(LLAMA_CONFIGS, *gpu_check.DRY_RUN_LLAMA)


def make_context(tmp_path: Path, *, seconds: float) -> gpu_check.Context:
    report = gpu_check.Report(str(tmp_path / "report.json"), {"sizes": {}})
    ctx = gpu_check.Context(DRY, torch.device("cpu"), None, report, tmp_path)
    ctx.deadline = time.monotonic() + seconds
    return ctx


@pytest.mark.slow
def test_dry_run_runs_all_four_checks_to_the_end(dry_run):
    _, report = dry_run
    assert report["failures"] == []
    checks = report["checks"]
    assert {name: c["status"] for name, c in checks.items()} == dict.fromkeys(gpu_check.CHECKS, "done")
    assert not [n for c in checks.values() for n in c["notes"] if "budget" in n]  # nothing cut short


@pytest.mark.slow
def test_dry_run_times_every_tokenizer_path_and_compares_codes(dry_run):
    _, report = dry_run
    rows = report["checks"]["tokenizer"]["rows"]
    timed = [r for r in rows if "encode_img_s" in r]
    assert [(r["path"], r["batch"]) for r in timed] == [(p, b) for p in DRY.tokenizer_paths for b in DRY.tokenizer_batches]
    assert any(gpu_check.TOKENIZER_PATHS[r["path"]][1] for r in timed)  # a compiled path ran
    for r in timed:
        assert r["encode_img_s"]["median"] > 0 and r["decode_img_s"]["median"] > 0
        assert r["encode_img_s"]["n"] == r["decode_img_s"]["n"] == DRY.tokenizer_repeats
        assert 0 < r["agreement_vs_fp32"] <= 1
    assert [r["agreement_vs_fp32"] for r in timed if r["path"] == "fp32"] == [1.0] * len(DRY.tokenizer_batches)
    [cpu] = [r for r in rows if r["path"] == "fp32-vs-cpu"]
    assert cpu["equal"] == cpu["codes"] == DRY.cpu_agreement_images * 256  # the dry run's "device" is the CPU


@pytest.mark.slow
def test_dry_run_builds_the_sample_and_matches_the_cpu_build(dry_run):
    _, report = dry_run
    built, compared = report["checks"]["pipeline"]["rows"]
    assert built["images"] > 0 and built["tokenize_calls"] > 0 and built["tokenize_img_s"] > 0
    assert compared["same_keys"] and compared["equal"] == compared["tokens"] == built["images"] * 256


@pytest.mark.slow
def test_dry_run_races_uvd_eager_compiled_and_hf(dry_run):
    _, report = dry_run
    rows = report["checks"]["trainer"]["rows"]
    assert [r["contender"] for r in rows] == ["uvd", "hf", "uvd-compiled"]
    hf_loss = rows[1]["first_loss"]
    for r in rows:
        assert r["rounds"] == DRY.trainer_rounds and r["tokens_s"]["n"] == DRY.trainer_rounds
        assert r["tokens_s"]["median"] > 0 and abs(r["first_loss"] - hf_loss) <= DRY.loss_tol


@pytest.mark.slow
def test_dry_run_times_the_loader_against_a_memmap(dry_run):
    _, report = dry_run
    rows = report["checks"]["loader"]["rows"]
    assert [r["reader"] for r in rows] == ["uvd loader", "memmap (nanoGPT)"]
    for r in rows:
        assert r["tokens_s_per_core"]["n"] == r["tokens_s_wall"]["n"] == DRY.loader_rounds
        assert r["tokens_s_per_core"]["median"] > 0 and r["tokens_s_wall"]["median"] > 0


@pytest.mark.slow
def test_dry_run_prints_the_markdown_of_its_report(dry_run):
    done, report = dry_run
    restored = gpu_check.Report("unused.json", {})
    restored.data = report
    printed = gpu_check.markdown(restored)
    assert printed in done.stdout  # what --markdown JSON prints again
    targets = gpu_check.targets(restored, DRY.target_config)
    assert [t["goal"] for t in targets] == [0.55, 0.99, 0.50, 1.2, 20.0]
    for t in targets:
        assert f"| {t['target']} |" in printed
    measured = {t["target"]: t["measured"] for t in targets}
    bf16 = [r["agreement_vs_fp32"] for r in report["checks"]["tokenizer"]["rows"] if r["path"] == "bf16"]
    assert measured["bf16 codes equal to fp32 (worst batch)"] == min(bf16)


def test_builds_with_different_tokens_fail_in_one_line(tmp_path):
    gpu_check.write_corpus(tmp_path / "a", 6, per_shard=4)
    gpu_check.write_corpus(tmp_path / "b", 6, per_shard=4)
    gpu_check.write_corpus(tmp_path / "c", 6, per_shard=4, seed=1)  # same keys, other tokens
    gpu_check.write_corpus(tmp_path / "d", 5, per_shard=4)  # a sentence missing
    same = gpu_check.compare_builds(tmp_path / "b", tmp_path / "a")
    assert same == {"sentences": 6, "same_keys": True, "tokens": 6 * 4096, "equal": 6 * 4096, "agreement": 1.0}
    gpu_check.require_same(same, "b vs a")
    for other in ("c", "d"):
        differ = gpu_check.compare_builds(tmp_path / other, tmp_path / "a")
        assert differ["equal"] < differ["tokens"]
        with pytest.raises(gpu_check.Mismatch, match=r"^pipeline: .* vs a: [\d,]+ of 24,576 tokens equal") as e:
            gpu_check.require_same(differ, f"{other} vs a")
        assert "\n" not in str(e.value)


def test_loader_rows_must_be_the_memmap_windows(tmp_path):
    gpu_check.write_corpus(tmp_path, 4, per_shard=2)
    stream = Stream(StreamConfig("corpus", (str(tmp_path),)), seq_len=128, seed=0)
    flat = np.concatenate([s.tokens.reshape(-1) for _, _, s in stream.sentences(0)])
    gpu_check.check_rows(iter(MixtureRows([stream], Partition(2))), flat, 128, 2, count=4)
    flat[3 * 128 + 5] += 1  # row 3's sixth token
    with pytest.raises(gpu_check.Mismatch, match="^loader: row 3 differs"):
        gpu_check.check_rows(iter(MixtureRows([stream], Partition(2))), flat, 128, 2, count=4)


def test_first_step_losses_must_agree():
    gpu_check.check_losses("m", {"uvd": 9.0125, "hf": 9.0120, "uvd-compiled": 9.0118}, 1e-3)
    with pytest.raises(gpu_check.Mismatch, match="^trainer: m first-step loss of uvd-compiled 9.030000 differs"):
        gpu_check.check_losses("m", {"uvd": 9.0125, "hf": 9.0120, "uvd-compiled": 9.03}, 1e-3)


def test_a_failed_check_is_recorded_and_ends_the_run_in_one_line(tmp_path, monkeypatch, capsys):
    def mismatched(ctx):
        ctx.report.add("tokenizer", {"path": "fp32", "measured": True})
        raise gpu_check.Mismatch("tokenizer: 3 of 512 codes differ")

    def broken(ctx):
        raise RuntimeError("CUDA out of memory.\nTried to allocate 2 GiB")

    monkeypatch.setitem(gpu_check.CHECK_FUNCTIONS, "tokenizer", mismatched)
    monkeypatch.setitem(gpu_check.CHECK_FUNCTIONS, "trainer", broken)
    rate = {"median": 5.0, "min": 4.0, "max": 6.0, "n": 1}
    measured = {"reader": "uvd loader", "batch": 1, "seq_len": 8, "tokens_s_per_core": rate, "tokens_s_wall": rate}
    monkeypatch.setitem(gpu_check.CHECK_FUNCTIONS, "loader", lambda ctx: ctx.report.add("loader", measured))
    ctx = make_context(tmp_path, seconds=60)
    ctx.report.data.update(date="d", device_name="cpu", peak_bf16_tflops=None, torch="t", machine="m",
                           dry_run=True, device_type="cpu", sizes={"target_config": "debug", "trainer_seq_len": 64})
    for name in ("tokenizer", "trainer", "loader"):
        gpu_check.run_check(ctx, name, time.monotonic() + 60)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert {n: c["status"] for n, c in saved["checks"].items()} == {"tokenizer": "mismatch", "trainer": "failed",
                                                                     "loader": "done"}
    assert saved["checks"]["tokenizer"]["rows"] == [{"path": "fp32", "measured": True}]  # kept what it measured
    assert saved["failures"] == ["tokenizer: 3 of 512 codes differ", "trainer: RuntimeError: CUDA out of memory."]
    capsys.readouterr()
    assert gpu_check.finish(ctx.report) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gpu_check: FAILED: tokenizer: 3 of 512 codes differ; trainer: RuntimeError: CUDA out of memory."]


def test_checks_stop_when_their_budget_is_spent(tmp_path, dry_sizes):
    ctx = make_context(tmp_path, seconds=-1)  # spent before they start
    gpu_check.loader_check(ctx)
    assert [r["tokens_s_per_core"]["n"] for r in ctx.report.rows("loader")] == [1, 1]  # one round, then stop
    assert ctx.report.check("loader")["notes"] == ["budget spent after 1 rounds"]
    model = load_tokenizer(DRY.tokenizer)
    gpu_check.tokenizer_path(ctx, "fp32", model, gpu_check.photo_batch(2, 32), {}, {})
    assert ctx.report.rows("tokenizer") == []
    assert ctx.report.check("tokenizer")["notes"] == ["budget spent: fp32 stopped before batch 2"]
    players = gpu_check.contenders(gpu_check.DRY_RUN_LLAMA[0], ctx.device)[:2]  # uvd and hf: nothing to compile
    batches = [torch.randint(0, 8192, (1, 17)) for _ in range(4)]
    assert gpu_check.race(ctx, players, batches) == 1 and [len(p.seconds) for p in players] == [1, 1]


def test_the_deadline_ends_the_run_with_what_it_measured(tmp_path):
    out = tmp_path / "report.json"
    done = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_check.py"), "--dry-run", "--checks", "loader,trainer",
                           "--deadline", "1", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 3
    # a line of its own, though the check still running may write to stderr around it (a busy machine)
    assert f"gpu_check: stopped at the 1 s deadline; what was measured is in {out}" in done.stderr.splitlines()
    assert json.loads(out.read_text())["deadline_passed"] is True


def test_dry_run_compiles_through_dynamo_with_aot_eager_and_restores_torch_compile():
    original = torch.compile
    with gpu_check.dry_run_compilation():
        assert torch.compile.keywords == {"backend": "aot_eager"}
        double_plus_one = torch.compile(lambda x: x * 2 + 1)
        assert torch.equal(double_plus_one(torch.ones(3)), torch.full((3,), 3.0))
    assert torch.compile is original
