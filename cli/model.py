"""``uvd model ...``: the size table and Hugging Face export/import."""

from __future__ import annotations

import dataclasses

import click

from uvd.cli.options import CHECKPOINT, InputPath
from uvd.model import checkpoint
from uvd.model.checkpoint import load_model
from uvd.model.hf import export_hf, import_hf
from uvd.model.llama import CONFIGS


@click.group("model")
def model() -> None:
    """The LLaMA-style model: its size table and Hugging Face interop."""


@model.command("sizes")
def sizes() -> None:
    """The LVM size table (and the debug size) with exact parameter counts."""
    click.echo(f"{'config':<10} {'d':>5} {'ff':>6} {'layers':>6} {'heads':>5} {'parameters':>15}")
    for name, cfg in CONFIGS.items():
        click.echo(f"{name:<10} {cfg.d_model:>5} {cfg.ff_dim:>6} {cfg.n_layers:>6} {cfg.n_heads:>5} "
                   f"{cfg.num_params():>15,}")
    click.echo("\nvocab 8192 codes + 100 special ids; untied embeddings; counts equal LlamaForCausalLM's")


@model.command("export-hf")
@click.argument("checkpoint", type=InputPath(CHECKPOINT, folder=True))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
def export_hf_cmd(checkpoint: str, out_dir: str) -> None:
    """Write a uvd checkpoint as a Hugging Face Llama folder (config.json + model.safetensors)."""
    net, _ = load_model(checkpoint)
    export_hf(net, out_dir)
    click.echo(f"{out_dir}: loads with transformers.LlamaForCausalLM.from_pretrained")


@model.command("import-hf")
@click.argument("hf_dir", type=InputPath("a Hugging Face Llama folder (config.json + model.safetensors)", folder=True))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
def import_hf_cmd(hf_dir: str, out_dir: str) -> None:
    """Make a uvd checkpoint (for eval, generate, or fine-tuning with --init) from a HF Llama folder."""
    net = import_hf(hf_dir)
    path = checkpoint.save(out_dir, 0, net, None, {"model": dataclasses.asdict(net.config),
                                                   "imported_from": str(hf_dir), "tokenizer": {}})
    click.echo(f"{path}: {net.num_params():,} parameters (use as --init-from, or with eval and generate)")
