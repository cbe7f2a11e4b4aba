"""``uvd tokenizer ...``: convert released VQGAN weights, or train a tokenizer (loads the tokenizer only)."""

from __future__ import annotations

import json

import click

from uvd.cli.options import BUILD_DIR, InputPath
from uvd.format.tables import NotABuild, read_manifest
from uvd.tokenizer.checkpoint import load_tokenizer, save_tokenizer
from uvd.tokenizer.config import CONFIGS
from uvd.tokenizer.formats import CheckpointError
from uvd.tokenizer.train import TokenizerTrainConfig, train_tokenizer


@click.group("tokenizer")
def tokenizer() -> None:
    """Train, convert and inspect the VQGAN image tokenizer."""


@tokenizer.command("convert")
@click.argument("source")
@click.option("--yaml", "yaml_path", type=InputPath("a taming YAML file", folder=False),
              help="taming YAML for a .ckpt (default: found beside it, as taming's releases lay it out).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Where the uvd checkpoint goes (config.json + model.safetensors).")
def convert(source: str, yaml_path: str | None, out_dir: str) -> None:
    """Convert an LVM / open-muse folder or a taming .ckpt into uvd's pickle-free format.

    The weights' sha256 (recorded in every build's provenance) is unchanged by the conversion.
    """
    try:
        model = load_tokenizer(source, yaml_path=yaml_path)
    except (CheckpointError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e
    info = model.info
    save_tokenizer(model, out_dir, trained=True, notes=f"converted from the {info.format} checkpoint {source}")
    click.echo(f"{info.format} -> uvd: {out_dir} (codebook {info.codebook_size}, {info.tokens_per_image} tokens "
               f"per {info.resolution}x{info.resolution} image, sha256 {info.sha256})")


@tokenizer.command("train")
@click.option("--images", "image_dirs", multiple=True, type=InputPath("a folder of images", folder=True),
              help="Folder of images (searched recursively). Repeatable. To train on a build's data, pass the "
                   "build's source folders: shards hold only tokens, not pixels.")
@click.option("--videos", "video_dirs", multiple=True, type=InputPath("a folder of videos", folder=True),
              help="Folder of videos (searched recursively). Repeatable.")
@click.option("--from-build", "from_builds", multiple=True, type=InputPath(BUILD_DIR, folder=True),
              help="A build output directory: train on the image and video folders its manifest records as "
                   "sources. Repeatable; adds to --images/--videos.")
@click.option("--holdout", multiple=True, help="File name held out for validation (whole file). Repeatable.")
@click.option("--val-fraction", default=0.0, show_default=True,
              help="Without --holdout: hold out this seeded fraction of the files.")
@click.option("--config", "config_name", default="tiny", show_default=True, type=click.Choice(sorted(CONFIGS)),
              help="Tokenizer architecture (tokenizer/config.py CONFIGS).")
@click.option("--codebook-size", "num_embeddings", default=0, show_default=True,
              help="Override the config's codebook size (0 = keep).")
@click.option("--steps", default=1000, show_default=True)
@click.option("--batch-size", default=8, show_default=True)
@click.option("--crop", default=128, show_default=True, help="Training crop side; validation uses whole frames.")
@click.option("--frame-stride", default=4, show_default=True, help="Use every k-th video frame.")
@click.option("--max-frames-per-video", default=0, show_default=True, help="0 = no limit.")
@click.option("--lr", default=2e-4, show_default=True)
@click.option("--warmup-steps", default=100, show_default=True)
@click.option("--min-lr-ratio", default=0.1, show_default=True, help="Cosine decay floor, as a fraction of --lr.")
@click.option("--beta1", default=0.5, show_default=True)
@click.option("--beta2", default=0.9, show_default=True)
@click.option("--weight-decay", default=0.01, show_default=True)
@click.option("--grad-clip", default=1.0, show_default=True, help="Max gradient norm; 0 = off.")
@click.option("--seed", default=0, show_default=True)
@click.option("--eval-every", default=250, show_default=True)
@click.option("--checkpoint-every", default=250, show_default=True)
@click.option("--disc-weight", default=0.0, show_default=True, help="PatchGAN weight; 0 = no discriminator.")
@click.option("--disc-start", default=0, show_default=True, help="Step at which the discriminator starts.")
@click.option("--lpips-weights", type=InputPath("a safetensors file", folder=False), default=None,
              help="safetensors with torchvision VGG16 'features.*' and lpips 'lin*.model.1.weight'; enables LPIPS.")
@click.option("--lpips-weight", default=1.0, show_default=True)
@click.option("--ema/--no-ema", default=False, show_default=True, help="EMA codebook instead of the codebook loss.")
@click.option("--ema-decay", default=0.99, show_default=True)
@click.option("--dead-code-steps", default=0, show_default=True,
              help="Restart codes unused for this many steps; 0 = off.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Where the trained tokenizer goes (config.json, model.safetensors, metrics.json).")
@click.option("--work-dir", default=None, type=click.Path(file_okay=False),
              help="Checkpoints for --resume (default OUT/checkpoint).")
@click.option("--resume", is_flag=True, help="Continue from the latest checkpoint in the work dir.")
@click.option("--stop-after", default=0, show_default=True,
              help="Stop with a checkpoint after this many steps of this call (0 = run to --steps); "
                   "go on later with --resume.")
@click.option("--threads", default=0, show_default=True, help="torch threads; 0 = torch's default.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--amp", is_flag=True, help="bf16 autocast on CUDA (quantization stays fp32).")
@click.option("--notes", default="", help="Stored in the checkpoint's config.json.")
@click.option("--no-progress", is_flag=True)
def train(no_progress: bool, beta1: float, beta2: float, config_name: str, **kwargs) -> None:
    """Train a tokenizer on image and/or video folders; prints the final validation metrics."""
    for build in kwargs.pop("from_builds"):
        images, videos = source_folders_of_build(build)
        kwargs["image_dirs"] += tuple(images)
        kwargs["video_dirs"] += tuple(videos)
    if not kwargs["image_dirs"] and not kwargs["video_dirs"]:
        raise click.UsageError("give at least one --images or --videos folder")
    try:
        cfg = TokenizerTrainConfig(config=config_name, betas=(beta1, beta2), progress=not no_progress, **kwargs)
        result = train_tokenizer(cfg)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        raise click.ClickException(str(e)) from e
    if result.step < cfg.steps:
        click.echo(f"stopped at step {result.step} of {cfg.steps}; checkpoint in {cfg.state_dir} (--resume goes on)")
        return
    click.echo(f"tokenizer written to {result.out_dir} (step {result.step})")
    if result.final:
        click.echo(json.dumps(result.final, indent=2))


def source_folders_of_build(build_dir: str) -> tuple[list[str], list[str]]:
    """The image and video folders a build read, from its manifest's provenance (shards hold
    tokens, not pixels, so a tokenizer trains on the build's inputs)."""
    try:
        provenance = read_manifest(build_dir).provenance
    except NotABuild as e:
        raise click.UsageError(str(e)) from e
    images, videos = [], []
    for source in provenance.get("sources", []):
        if "root" not in source:
            raise click.UsageError(f"{build_dir}: its manifest does not record source folders (built by an older uvd)")
        {"images": images, "videos": videos}.get(source["spec"], []).append(source["root"])
    if not images and not videos:
        raise click.UsageError(f"{build_dir}: none of its sources is a plain image or video folder (spec `images` "
                               "or `videos`); pass dataset folders with --images / --videos")
    return images, videos
