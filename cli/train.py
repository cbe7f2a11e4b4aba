"""``uvd train``: the LLaMA-style model on built shards (loads the trainer only, never the build)."""

from __future__ import annotations

import click

from uvd.cli.options import CHECKPOINT, InputPath, build_dir_argument, key_values
from uvd.model.train import TrainConfig
from uvd.model.train import train as run_training


@click.command()
@build_dir_argument("data_dirs", nargs=-1, required=True)
@click.option("--model", "model_name", default="debug", show_default=True, help="Model size (`uvd model sizes`).")
@click.option("--steps", type=int, default=20, show_default=True)
@click.option("--seq-len", type=int, default=4096, show_default=True)
@click.option("--batch-size", type=int, default=1, show_default=True, help="Rows per micro-batch, per rank.")
@click.option("--grad-accum", type=int, default=1, show_default=True, help="Micro-batches per optimizer step.")
@click.option("--packing", type=click.Choice(["stream", "rows"]), default="stream", show_default=True,
              help="stream: LVM's concatenated token stream; rows: one sentence per row, padding masked.")
@click.option("--mix", "mixture", multiple=True, metavar="STREAM=WEIGHT",
              help="Mixture weight of a stream (a build directory's name, or a source with --mix-by source); "
                   "default: in proportion to tokens. Repeatable.")
@click.option("--mix-by", type=click.Choice(["dir", "source"]), default="dir", show_default=True)
@click.option("--lr", type=float, default=None, help="Peak learning rate (default: LVM's 1.5e-4).")
@click.option("--end-lr", type=float, default=None, help="Final learning rate (default: LVM's 3e-5).")
@click.option("--warmup-steps", type=int, default=None)
@click.option("--val-fraction", type=float, default=0.0, show_default=True,
              help="Sentences held out (by key) for validation loss.")
@click.option("--eval-every", type=int, default=0, show_default=True)
@click.option("--num-workers", type=int, default=0, show_default=True, help="DataLoader workers per rank.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--compile", "compile_model", is_flag=True, help="torch.compile the model and its loss into one graph (a few percent faster on an idle CPU; docs/benchmarks.md).")
@click.option("--distributed", type=click.Choice(["none", "ddp", "fsdp"]), default="none", show_default=True,
              help="With torchrun: DistributedDataParallel or FSDP2.")
@click.option("--checkpoint-every", type=int, default=0, show_default=True, help="0 = at the end only.")
@click.option("--resume", is_flag=True, help="Continue from the latest checkpoint in --out.")
@click.option("--init-from", type=InputPath(CHECKPOINT), help="Start from these weights (a checkpoint).")
@click.option("--allow-tokenizer-mismatch", is_flag=True,
              help="Resume on shards made by another tokenizer than the checkpoint's data.")
@click.option("--log-every", type=int, default=10, show_default=True)
@click.option("--out", "out_dir", required=True, help="Checkpoint directory.")
def train(data_dirs, model_name, mixture, compile_model, **kwargs) -> None:
    """Train the LLaMA-style model on built shards (one or more build directories)."""
    weights = {k: float(v) for k, v in key_values(mixture, "--mix").items()}
    try:
        overrides = {k: kwargs.pop(k) for k in ("lr", "end_lr", "warmup_steps") if kwargs.get(k) is not None}
        for k in ("lr", "end_lr", "warmup_steps"):
            kwargs.pop(k, None)
        cfg = TrainConfig(data_dirs=list(data_dirs), model=model_name, mixture=weights, compile=compile_model,
                          **kwargs, **overrides)
        result = run_training(cfg)
    except (ValueError, FileNotFoundError) as e:  # a folder that is no build: one line naming it
        raise click.ClickException(str(e)) from e
    if result.losses:
        click.echo(f"trained to step {result.final_step}; loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f}")
    click.echo(f"checkpoint: {result.checkpoint_path}")
