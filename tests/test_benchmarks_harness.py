"""What the build benchmarks rely on (benchmarks/harness.py, scaling_bench.py): contenders alternate,
byte comparison that can fail, and an exit status that fails the run when outputs differ."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the scripts import their sibling harness by module name
harness = importlib.import_module("harness")
scaling_bench = importlib.import_module("scaling_bench")


def test_contenders_alternate_in_a_rotated_order():
    calls = []
    times = harness.alternate({name: (lambda r, name=name: calls.append((r, name)) or 1.0 + r)
                               for name in ("a", "b", "c")}, rounds=3)
    assert calls == [(0, "a"), (0, "b"), (0, "c"), (1, "b"), (1, "c"), (1, "a"), (2, "c"), (2, "a"), (2, "b")]
    assert times == {name: [1.0, 2.0, 3.0] for name in "abc"}
    s = harness.spread([2.0, 4.0, 5.0])
    assert (s["median_s"], s["min_s"], s["max_s"], s["spread"]) == (4.0, 2.0, 5.0, "-50%/+25%")


def test_same_bytes_fails_on_one_byte_a_missing_file_or_nothing(tmp_path):
    def folder(name, files):
        (tmp_path / name).mkdir()
        for file, data in files.items():
            (tmp_path / name / file).write_bytes(data)
        return tmp_path / name

    ref = folder("ref", {"shard-000000.tar.gz": b"abc", "manifest.parquet": b"m"})
    assert harness.same_bytes(ref, [folder("same", {"shard-000000.tar.gz": b"abc", "manifest.parquet": b"m"})])
    assert not harness.same_bytes(ref, [folder("flip", {"shard-000000.tar.gz": b"abd", "manifest.parquet": b"m"})])
    assert not harness.same_bytes(ref, [folder("short", {"shard-000000.tar.gz": b"abc"})])
    assert harness.same_bytes(ref, [tmp_path / "short"], "shard-*")  # only the shards compared
    assert not harness.same_bytes(folder("empty", {}), [folder("empty2", {})])  # nothing compared is no pass


def report(identical: bool, tiny_ratio: float) -> dict:
    """A scaling_bench report as main() assembles it, with made-up figures."""
    def scaling(tokenizer, ratio):
        return {"tokenizer": tokenizer, "builds_byte_identical": identical, "plain_loop_shards_identical": True,
                "runs": {"2_workers": {"vs_1_worker": ratio}}}
    return {"scaling": [scaling("random:tiny", tiny_ratio), scaling("bundled", 1.1)],
            "cpu_side": {"preprocess": "lvm", "plain_loop_shards_identical": True, "img_s_per_core": 200.0},
            "boundary": {"bytes_per_image": 196_787, "budget": 200_000}}


def test_outputs_that_differ_fail_the_run_and_a_missed_target_is_reported():
    differ = scaling_bench.verdicts(report(identical=False, tiny_ratio=2.0))
    assert any(line.startswith("FAIL byte identity (random:tiny)") for line in differ["identity"])
    assert harness.exit_code(differ["identity"], differ["targets"], require_targets=False) == 1
    slow = scaling_bench.verdicts(report(identical=True, tiny_ratio=1.2))
    assert harness.passed(slow["identity"])
    assert [line.rsplit(":", 1)[0] for line in slow["targets"] if line.startswith("FAIL")] == [
        "FAIL random:tiny, 2 workers vs 1 pinned"]
    assert harness.exit_code(slow["identity"], slow["targets"], require_targets=False) == 0
    assert harness.exit_code(slow["identity"], slow["targets"], require_targets=True) == 2
    good = scaling_bench.verdicts(report(identical=True, tiny_ratio=1.7))
    assert harness.exit_code(good["identity"], good["targets"], require_targets=True) == 0


def test_the_pass_through_encoder_gives_distinct_frames_distinct_tokens():
    frames = np.random.default_rng(0).integers(0, 256, (3, 256, 256, 3), dtype=np.uint8)
    tokens = scaling_bench.passthrough(frames)
    assert tokens.shape == (3, 256) and tokens.dtype == np.uint16
    assert np.array_equal(tokens[1], frames[1, ::16, ::16, 0].reshape(-1))
    assert len({t.tobytes() for t in tokens}) == 3


def test_a_cpu_side_difference_lost_in_noise_is_no_figure():
    assert scaling_bench.marginal_rate(30, 0.2) == 150.0
    assert np.isnan(scaling_bench.marginal_rate(30, -2.2))  # the smaller build took longer: not a rate
    assert scaling_bench.median_rate([100.0, 150.0, 120.0]) == 120.0
    assert np.isnan(scaling_bench.median_rate([100.0, scaling_bench.marginal_rate(30, 0.0), 120.0]))
