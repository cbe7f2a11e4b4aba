"""Trainer throughput: uvd's Llama vs ``transformers.LlamaForCausalLM`` of the same config.

Both models get the same weights, the same batches and the same number of AdamW steps (LVM's
betas, weight decay and clip), side by side in one run: the ratio is the figure to read, since
these machines are noisy. Tokens/s counts trained tokens; model FLOPs use 6N + 12·L·d·T per
token (``LlamaConfig.flops_per_token``), so MFU = tokens/s x FLOPs/token / peak. On a GPU the
peak is the card's bf16 dense peak and both models run under bf16 autocast; on a CPU pass
``--peak-tflops`` to get an MFU (there is no reliable way to read a CPU's peak), otherwise
the achieved TFLOP/s is reported alone. The first step's losses must agree (same model).

    python benchmarks/trainer_bench.py --configs debug,vqlm_100m --seq-len 512 --steps 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import time

import torch
import torch.nn.functional as F
import transformers

from uvd.model.hf import hf_config
from uvd.model.llama import NUM_CODES, Llama, get_config
from uvd.pipeline.tools.estimate import bf16_peak_tflops


def hf_twin(model: Llama):
    """A LlamaForCausalLM with the same config and weights (module names are the same)."""

    cfg = transformers.LlamaConfig(**{k: v for k, v in hf_config(model.config).items()
                                      if k not in ("architectures", "rope_parameters")})
    hf = transformers.LlamaForCausalLM._from_config(cfg, attn_implementation="sdpa")
    missing, unexpected = hf.load_state_dict(model.state_dict(), strict=False)
    if [k for k in missing if "rotary" not in k] or unexpected:
        raise RuntimeError(f"weights do not map onto LlamaForCausalLM: missing {missing}, unexpected {unexpected}")
    return hf


def ours_loss(model, ids):
    return model(ids[:, :-1], ids[:, 1:])[1]


def hf_loss(model, ids):
    logits = model(input_ids=ids[:, :-1]).logits  # (B, T, V)
    return F.cross_entropy(logits.float().flatten(0, 1), ids[:, 1:].flatten())


def run_steps(model, loss_fn, batches, device: torch.device) -> tuple[float, list[float]]:
    """Train on every batch (AdamW with LVM's settings); seconds for all but the first (warm-up)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.1)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    losses, t0 = [], None
    for i, ids in enumerate(batches):
        if i == 1:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        with autocast:
            loss = loss_fn(model, ids)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, losses


def bench(name: str, args, device: torch.device, peak_tflops: float | None) -> dict:
    cfg = get_config(name, max_seq_len=max(args.seq_len, 16))
    torch.manual_seed(0)
    ours = Llama(cfg).to(device)
    theirs = hf_twin(ours).to(device)
    gen = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, NUM_CODES, (args.batch_size, args.seq_len + 1), generator=gen).to(device)
               for _ in range(args.steps + 1)]
    tokens = args.batch_size * args.seq_len * args.steps  # timed steps only
    flops_per_token = cfg.flops_per_token(args.seq_len)
    row = {"config": name, "params": cfg.num_params(), "batch": args.batch_size, "seq_len": args.seq_len,
           "steps": args.steps, "rounds": args.rounds, "gflops_per_token": flops_per_token / 1e9}
    # Rounds alternate the two models and each keeps its best round: the first steps of a process
    # pay for thread pools and allocator growth, which would otherwise count against whichever ran first.
    contenders = (("uvd", ours, ours_loss), ("hf", theirs, hf_loss))
    for model in (ours, theirs):
        model.train()
    for round_ in range(args.rounds):
        for label, model, loss_fn in contenders:
            seconds, losses = run_steps(model, loss_fn, batches, device)
            if round_ == 0:
                row[f"{label}_losses"] = losses  # from the shared initial weights
            row[f"{label}_tokens_s"] = max(row.get(f"{label}_tokens_s", 0.0), tokens / seconds)
    for label, _, _ in contenders:
        row[f"{label}_tflops"] = row[f"{label}_tokens_s"] * flops_per_token / 1e12
        if peak_tflops:
            row[f"{label}_mfu"] = row[f"{label}_tflops"] / peak_tflops
    row["speedup_vs_hf"] = row["uvd_tokens_s"] / row["hf_tokens_s"]
    row["first_loss_diff"] = abs(row["uvd_losses"][0] - row["hf_losses"][0])
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="debug,vqlm_100m")
    ap.add_argument("--seq-len", type=int, default=None, help="default: 4096 on GPU, 512 on CPU")
    ap.add_argument("--batch-size", type=int, default=None, help="default: 8 on GPU, 1 on CPU")
    ap.add_argument("--steps", type=int, default=3, help="timed steps (one more runs first as warm-up)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; each model keeps its best")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--peak-tflops", type=float, default=None, help="peak for MFU (default: the GPU's bf16 peak)")
    ap.add_argument("--json", dest="json_path")
    args = ap.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    args.seq_len = args.seq_len or (4096 if gpu else 512)
    args.batch_size = args.batch_size or (8 if gpu else 1)
    peak = args.peak_tflops
    if peak is None and gpu:
        peak = bf16_peak_tflops(torch.cuda.get_device_name())

    rows = []
    for name in args.configs.split(","):
        row = bench(name, args, device, peak)
        rows.append(row)
        print(json.dumps(row), flush=True)
    report = {"date": dt.date.today().isoformat(),
              "machine": f"{platform.machine()} {torch.get_num_threads()} threads",
              "device": torch.cuda.get_device_name() if gpu else "cpu", "torch": torch.__version__,
              "peak_tflops": peak, "rows": rows}
    mfu = " | MFU uvd / hf" if peak else ""
    print(f"\n| config | params | batch x seq | tokens/s uvd / hf / x | TFLOP/s uvd / hf{mfu} | first loss uvd / hf |")
    print("|---|---|---|---|---|---|" + ("---|" if peak else ""))
    for r in rows:
        cells = [r["config"], f"{r['params'] / 1e6:.1f}M", f"{r['batch']} x {r['seq_len']}",
                 f"{r['uvd_tokens_s']:.0f} / {r['hf_tokens_s']:.0f} / {r['speedup_vs_hf']:.2f}x",
                 f"{r['uvd_tflops']:.3f} / {r['hf_tflops']:.3f}"]
        if peak:
            cells.append(f"{r['uvd_mfu']:.1%} / {r['hf_mfu']:.1%}")
        cells.append(f"{r['uvd_losses'][0]:.4f} / {r['hf_losses'][0]:.4f}")
        print("| " + " | ".join(cells) + " |")
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
