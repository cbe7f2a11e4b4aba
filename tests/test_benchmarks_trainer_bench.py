"""benchmarks/trainer_bench.py's profile breakdown: every contender's step split into the op classes both
sides share and the rest, and the ceiling that puts on uvd / HF."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import torch

from uvd.model.llama import Llama, LlamaConfig
from uvd.model.train import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
trainer_bench = importlib.import_module("trainer_bench")


def test_breakdown_splits_each_step_and_bounds_the_ratio():
    torch.manual_seed(0)
    model = Llama(LlamaConfig(d_model=32, ff_dim=96, n_layers=1, n_heads=2, max_seq_len=32))
    cpu = torch.device("cpu")
    players = trainer_bench.contenders(model, ["uvd"], TrainConfig(), cpu)
    out = trainer_bench.breakdown(players, trainer_bench.make_batches(1, 2, 32, cpu), torch.autocast("cpu", enabled=False), 1.0)
    for name in ("hf", "uvd"):
        ms = out["contenders"][name]
        parts = [ms[f"{k}_ms"] for k in trainer_bench.SHARED_OPS] + [ms["other_ms"]]
        assert ms["matmul_ms"] > 0 and ms["attention_ms"] > 0 and ms["optimizer + clip_ms"] > 0
        assert min(parts) >= 0 and abs(sum(parts) - ms["total_ms"]) < 1e-6 * max(1.0, ms["total_ms"])
    shared = sum(out["contenders"]["hf"][f"{k}_ms"] for k in trainer_bench.SHARED_OPS)
    assert out["ceiling_vs_hf"] == out["contenders"]["hf"]["total_ms"] / shared > 1.0
    table = trainer_bench.breakdown_markdown([{"config": "t", "breakdown": out}])
    assert table.count("\n") == 4 and "ceiling" in table
