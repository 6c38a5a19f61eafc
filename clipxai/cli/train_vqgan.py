"""``clipxai toy train-vqgan``: retrain the bundled toy VQGAN."""

from __future__ import annotations

from pathlib import Path

import click
import torch

from clipxai.toy.train_vqgan import BUNDLE_DIR, VQTrainConfig, train


@click.command("train-vqgan")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Folder for vqgan-toy.yaml/.ckpt/.json.")
@click.option("--bundle", is_flag=True, help="Write into the package's bundled weights (the shipped 'toy').")
@click.option("--seed", type=int, default=VQTrainConfig.seed, show_default=True)
@click.option("--steps", type=int, default=VQTrainConfig.steps, show_default=True)
@click.option("--batch-size", type=int, default=VQTrainConfig.batch_size, show_default=True)
@click.option("--data", type=click.Choice(["world", "shapes"]), default=VQTrainConfig.data, show_default=True)
@click.option("--threads", type=int, default=1, show_default=True, help="torch threads (training is CPU-bound).")
def train_vqgan_command(out_dir, bundle, seed, steps, batch_size, data, threads):
    """Train the toy VQGAN on procedurally drawn images and write it in taming's release format."""
    if bool(out_dir) == bundle:
        raise click.UsageError("Give exactly one of --out DIR or --bundle.")
    torch.set_num_threads(threads)
    config = VQTrainConfig(seed=seed, steps=steps, batch_size=batch_size, data=data)
    train(config, BUNDLE_DIR if bundle else Path(out_dir), log=lambda line: click.echo(line, err=True))

