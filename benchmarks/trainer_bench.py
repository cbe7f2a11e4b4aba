"""Trainer throughput: the training step of ``uvd train`` vs ``transformers.LlamaForCausalLM``.

Contenders, each with its own copy of the same initial weights, the same batches and the trainer's
optimizer (``make_optimizer``: fused AdamW with LVM's betas and weight decay, none on norm gains, which
is also HF Trainer's default optimizer) and gradient clip:

* ``hf``: LlamaForCausalLM, ``attn_implementation="sdpa"``, eager, its loss from its own ``labels``
  path: the baseline as users run it;
* ``uvd``: uvd's ``Llama`` as ``uvd train`` runs it (loss mask included), eager;
* ``uvd-compile``: the same after ``torch.compile``, through the trainer's own code (what ``uvd train
  --compile`` does); compilation happens in the warm-up and is not timed.

Timing: after the warm-up steps, ``--rounds`` rounds run every contender for ``--steps`` steps, the
order reversed every other round, so that the load of a shared machine falls on all alike. Reported per
contender: the median tokens/s over rounds and their spread (min-max, IQR); per uvd path: the ratio of
the medians and the per-round ratios. Checks: the first-step losses (same weights, same batch, before
any update) of both uvd paths equal HF's within ``--loss-tol`` (the run fails otherwise).

Model FLOPs use 6N + 12·L·d·T per token (``LlamaConfig.flops_per_token``). On a GPU every contender
runs under bf16 autocast and MFU is against the card's bf16 peak; on a CPU pass ``--peak-tflops`` for
an MFU, otherwise the achieved TFLOP/s stands alone.

    python benchmarks/trainer_bench.py --configs debug,vqlm_100m --rounds 5 --json out/trainer_bench.json
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime as dt
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass

import torch
import transformers
from torch.profiler import ProfilerActivity, profile

from uvd.model.hf import hf_config
from uvd.model.llama import NUM_CODES, Llama, get_config
from uvd.model.train import Distributed, TrainConfig, make_optimizer
from uvd.pipeline.tools.estimate import bf16_peak_tflops

# Rows x tokens per step, chosen so that a run of both configs stays within minutes on 2 CPU cores.
CPU_SHAPES = {"debug": (4, 1024), "vqlm_100m": (1, 512)}
GPU_SHAPE = (8, 4096)


@dataclass
class Contender:
    name: str
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    hf: bool  # loss from HF's labels path, else uvd's (targets, loss mask)

    def step(self, batch: dict, autocast, clip: float) -> float:
        """One optimizer step as the trainer takes it: forward, backward, clip, AdamW."""
        with autocast:
            if self.hf:
                loss = self.model(input_ids=batch["input_ids"], labels=batch["targets"],
                                  shift_labels=batch["targets"]).loss
            else:
                loss = self.model(batch["input_ids"], batch["targets"], batch["loss_mask"])[1]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.item()


def hf_twin(model: Llama) -> transformers.LlamaForCausalLM:
    """A LlamaForCausalLM with the same config and weights (module names are the same)."""
    cfg = transformers.LlamaConfig(**{k: v for k, v in hf_config(model.config).items()
                                      if k not in ("architectures", "rope_parameters")})
    hf = transformers.LlamaForCausalLM._from_config(cfg, attn_implementation="sdpa")
    missing, unexpected = hf.load_state_dict(model.state_dict(), strict=False)
    if [k for k in missing if "rotary" not in k] or unexpected:
        raise RuntimeError(f"weights do not map onto LlamaForCausalLM: missing {missing}, unexpected {unexpected}")
    return hf


def contenders(ours: Llama, paths: list[str], train_cfg: TrainConfig, device: torch.device) -> list[Contender]:
    """HF and the requested uvd paths, each on its own copy of ``ours``' weights."""
    hf = hf_twin(ours).to(device).train()
    out = [Contender("hf", hf, make_optimizer(hf, train_cfg, device), hf=True)]
    for path in paths:
        net = copy.deepcopy(ours).to(device).train()
        cfg = dataclasses.replace(train_cfg, compile=path == "uvd-compile")
        model = Distributed(device=device).wrap(net, cfg)  # the trainer's wrapping: torch.compile if asked
        out.append(Contender(path, model, make_optimizer(model, cfg, device), hf=False))
    return out


def make_batches(n: int, batch: int, seq_len: int, device: torch.device) -> list[dict]:
    """Random code rows, as the loader yields them: inputs, next-token targets and an all-true mask."""
    gen = torch.Generator().manual_seed(1)
    rows = [torch.randint(0, NUM_CODES, (batch, seq_len + 1), generator=gen) for _ in range(n)]
    return [{"input_ids": r[:, :-1].contiguous().to(device), "targets": r[:, 1:].contiguous().to(device),
             "loss_mask": torch.ones(batch, seq_len, dtype=torch.bool, device=device)} for r in rows]


def spread(values: list[float]) -> dict:
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "q1": q1, "q3": q3}


def timed_rounds(players: list[Contender], batches: list[dict], args, device, autocast) -> dict[str, list[float]]:
    """Seconds per round for each contender; the order flips every round."""
    seconds = {c.name: [] for c in players}
    for r in range(args.rounds):
        round_batches = batches[r * args.steps:(r + 1) * args.steps]
        for c in (players if r % 2 == 0 else players[::-1]):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for batch in round_batches:
                c.step(batch, autocast, args.clip)  # .item() waits for the step, as the trainer's logging does
            seconds[c.name].append(time.perf_counter() - t0)
    return seconds


def warm_up(name: str, players: list[Contender], batches: list[dict], autocast, args) -> tuple[dict, dict]:
    """Untimed steps (compilation, allocator, thread pools); the first step's losses must agree."""
    first, seconds = {}, {}
    for c in players:
        t0 = time.perf_counter()
        losses = [c.step(b, autocast, args.clip) for b in batches]
        first[c.name], seconds[c.name] = losses[0], time.perf_counter() - t0
    for c in players[1:]:
        diff = abs(first[c.name] - first["hf"])
        if diff > args.loss_tol:
            raise AssertionError(f"{name}: first-step loss {c.name} {first[c.name]:.7f} vs hf {first['hf']:.7f}: "
                                 f"|diff| {diff:.2e} > {args.loss_tol:g}")
    return first, seconds


def bench(name: str, args, device: torch.device, peak_tflops: float | None) -> dict:
    torch._dynamo.reset()  # each config compiles afresh, with static shapes, as in its own `uvd train` process
    gpu = device.type == "cuda"
    default = GPU_SHAPE if gpu else CPU_SHAPES.get(name, (1, 512))
    batch, seq_len = args.batch_size or default[0], args.seq_len or default[1]
    cfg = get_config(name, max_seq_len=max(seq_len, 16))
    torch.manual_seed(0)
    players = contenders(Llama(cfg), args.uvd, TrainConfig(), device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=gpu)
    first, warmup_s = warm_up(name, players, make_batches(args.warmup, batch, seq_len, device), autocast, args)
    seconds = timed_rounds(players, make_batches(args.rounds * args.steps, batch, seq_len, device), args, device,
                           autocast)

    tokens, flops_per_token = batch * seq_len * args.steps, cfg.flops_per_token(seq_len)
    row = {"config": name, "params": cfg.num_params(), "batch": batch, "seq_len": seq_len, "steps": args.steps,
           "rounds": args.rounds, "warmup_steps": args.warmup, "gflops_per_token": flops_per_token / 1e9,
           "loss_tol": args.loss_tol, "first_loss": first, "warmup_s": warmup_s, "tokens_s": {}, "vs_hf": {}}
    for c in players:
        per_round = [tokens / s for s in seconds[c.name]]
        stats = {"rounds": per_round, **spread(per_round)}
        stats["tflops"] = stats["median"] * flops_per_token / 1e12
        if peak_tflops:
            stats["mfu"] = stats["tflops"] / peak_tflops
        row["tokens_s"][c.name] = stats
    for c in players[1:]:
        ratios = [h / s for h, s in zip(seconds["hf"], seconds[c.name])]  # per round: c's tokens/s over hf's
        row["vs_hf"][c.name] = {"ratio_of_medians": row["tokens_s"][c.name]["median"] / row["tokens_s"]["hf"]["median"],
                                "first_loss_diff": abs(first[c.name] - first["hf"]), "per_round": ratios,
                                **{f"per_round_{k}": v for k, v in spread(ratios).items()}}
    if args.breakdown:
        row["breakdown"] = breakdown(players, make_batches(args.steps, batch, seq_len, device), autocast, args.clip)
    return row


# What both sides run the same kernels for, whatever the model code: the GEMMs (x @ W and their backward;
# uvd's fused q/k/v and gate/up do the same FLOPs), SDPA's kernels, the optimizer and the clip's norms.
SHARED_OPS = {"matmul": ("aten::mm", "aten::addmm", "aten::bmm"),
              "attention": ("scaled_dot_product",),
              "optimizer + clip": ("aten::_fused_adamw_", "aten::linalg_vector_norm", "aten::_foreach_norm")}


def breakdown(players: list[Contender], batches: list[dict], autocast, clip: float) -> dict:
    """Self CPU ms per op class over ``batches`` for each contender (torch.profiler), and the ceiling it
    puts on any uvd / HF ratio: HF's total over the ms of the ops both sides share (SHARED_OPS), the
    ratio uvd would reach if everything else it runs took no time at all."""
    contenders_ms = {}
    for c in players:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for batch in batches:
                c.step(batch, autocast, clip)
        events = [e for e in prof.key_averages() if not e.key.startswith(("autograd::", "## ", "Optimizer."))]
        total = sum(e.self_cpu_time_total for e in events) / 1e3
        shares = {k: sum(e.self_cpu_time_total for e in events if any(n in e.key for n in names)) / 1e3
                  for k, names in SHARED_OPS.items()}
        contenders_ms[c.name] = {"total_ms": total, **{f"{k}_ms": v for k, v in shares.items()},
                                 "other_ms": total - sum(shares.values())}
    hf = contenders_ms["hf"]
    return {"contenders": contenders_ms, "ceiling_vs_hf": hf["total_ms"] / sum(hf[f"{k}_ms"] for k in SHARED_OPS)}


def markdown(rows: list[dict], paths: list[str]) -> str:
    """Rows for docs/benchmarks.md: tokens/s median (min-max), ratio of medians (per-round min-max)."""
    head = ["config", "params", "batch x seq", "HF tok/s"] + [f"{p} tok/s" for p in paths] \
        + [f"{p} / HF" for p in paths] + ["first-step loss HF / " + " / ".join(paths)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        t = r["tokens_s"]
        cells = [r["config"], f"{r['params'] / 1e6:.1f} M", f"{r['batch']} x {r['seq_len']}"]
        cells += [f"{t[n]['median']:.0f} ({t[n]['min']:.0f}-{t[n]['max']:.0f})" for n in ["hf", *paths]]
        cells += [f"**{r['vs_hf'][p]['ratio_of_medians']:.2f}x** ({r['vs_hf'][p]['per_round_min']:.2f}-"
                  f"{r['vs_hf'][p]['per_round_max']:.2f})" for p in paths]
        cells.append(" / ".join(f"{r['first_loss'][n]:.6f}" for n in ["hf", *paths]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def breakdown_markdown(rows: list[dict]) -> str:
    """Per config and contender: self CPU ms of one profiled step by op class; the ceiling on uvd / HF."""
    classes = [*SHARED_OPS, "other"]
    lines = ["| config | contender | total ms | " + " | ".join(f"{k} ms" for k in classes) + " |",
             "|" + "---|" * (3 + len(classes))]
    for r in rows:
        b = r["breakdown"]
        for name, ms in b["contenders"].items():
            lines.append(f"| {r['config']} | {name} | {ms['total_ms']:.0f} | "
                         + " | ".join(f"{ms[f'{k}_ms']:.0f}" for k in classes) + " |")
        lines.append(f"| {r['config']} | ceiling of uvd / HF (HF total over its shared ops) | "
                     f"**{b['ceiling_vs_hf']:.2f}x** |" + " |" * len(classes))
    return "\n".join(lines)


def cpu_name() -> str:
    """The CPU's model name (Linux), else the architecture."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="debug,vqlm_100m")
    ap.add_argument("--uvd", default="uvd,uvd-compile", help="uvd paths to time against hf: uvd, uvd-compile")
    ap.add_argument("--seq-len", type=int, default=None, help=f"default: {GPU_SHAPE[1]} on GPU; on CPU {CPU_SHAPES}")
    ap.add_argument("--batch-size", type=int, default=None, help=f"default: {GPU_SHAPE[0]} on GPU; on CPU as above")
    ap.add_argument("--rounds", type=int, default=5, help="alternating timed rounds (at least 2)")
    ap.add_argument("--steps", type=int, default=1, help="optimizer steps per contender per round")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first; the first gives the loss check")
    ap.add_argument("--loss-tol", type=float, default=None,
                    help="max |first-step loss - HF's|; default 1e-5 in fp32 (CPU), 1e-3 under bf16 autocast")
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--peak-tflops", type=float, default=None, help="peak for MFU (default: the GPU's bf16 peak)")
    ap.add_argument("--breakdown", action="store_true",
                    help="then profile each contender's step: ms per op class, and the ceiling on uvd / HF")
    ap.add_argument("--json", dest="json_path")
    args = ap.parse_args()
    args.uvd = [p for p in args.uvd.split(",") if p]
    if args.rounds < 2 or args.warmup < 1 or not set(args.uvd) <= {"uvd", "uvd-compile"}:
        ap.error("need --rounds >= 2, --warmup >= 1 and --uvd among uvd, uvd-compile")
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    args.loss_tol = args.loss_tol if args.loss_tol is not None else (1e-3 if gpu else 1e-5)
    peak = args.peak_tflops
    if peak is None and gpu:
        peak = bf16_peak_tflops(torch.cuda.get_device_name())

    started = time.perf_counter()
    rows = []
    for name in args.configs.split(","):
        row = bench(name, args, device, peak)
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "tokens_s"}), flush=True)
    report = {"date": dt.datetime.now().isoformat(timespec="seconds"),
              "machine": f"{cpu_name()}, {os.cpu_count()} CPUs, torch {torch.get_num_threads()} threads, "
                         f"load average {os.getloadavg()[0]:.1f} at the end (other jobs share the machine)",
              "device": torch.cuda.get_device_name() if gpu else "cpu", "torch": torch.__version__,
              "transformers": transformers.__version__, "peak_tflops": peak, "loss_tol": args.loss_tol,
              "wall_s": time.perf_counter() - started, "rows": rows}
    print(f"\nfirst-step losses equal within {args.loss_tol:g} (absolute); {args.rounds} alternating rounds of "
          f"{args.steps} steps after {args.warmup} warm-up steps; tokens/s median (min-max); ratio of medians "
          f"(per-round min-max); wall {report['wall_s']:.0f} s\n")
    print(markdown(rows, args.uvd))
    if args.breakdown:
        print("\n" + breakdown_markdown(rows))
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
