"""``clipxai toy train-vae``: retrain the bundled toy VAE (a diffusers AutoencoderKL)."""

from __future__ import annotations

from pathlib import Path

import click
import torch

from clipxai.toy.train_vae import VAETrainConfig, train


@click.command("train-vae")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="A diffusers folder to write (--vae DIR).")
@click.option("--bundle", is_flag=True, help="Write the package's shipped file instead (--vae toy).")
@click.option("--seed", type=int, default=VAETrainConfig.seed, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=VAETrainConfig.steps, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=VAETrainConfig.batch_size, show_default=True)
@click.option("--kl-weight", type=click.FloatRange(min=0), default=VAETrainConfig.kl_weight, show_default=True,
              help="Weight of the KL term per latent element, against the per-pixel MSE.")
@click.option("--data", type=click.Choice(["world", "shapes"]), default=VAETrainConfig.data, show_default=True)
@click.option("--threads", type=int, default=1, show_default=True, help="torch threads (training is CPU-bound).")
def train_vae_command(out_dir, bundle, seed, steps, batch_size, kl_weight, data, threads):
    """Train the toy VAE on procedurally drawn images, as the toy VQGAN is trained (seeded, reproducible)."""
    if bool(out_dir) == bundle:
        raise click.UsageError("Give exactly one of --out DIR or --bundle.")
    torch.set_num_threads(max(1, threads))
    config = VAETrainConfig(seed=seed, steps=steps, batch_size=batch_size, kl_weight=kl_weight, data=data)
    train(config, None if bundle else Path(out_dir), bundle=bundle, log=lambda line: click.echo(line, err=True))
