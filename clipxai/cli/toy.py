"""``clipxai toy ...``: train, evaluate and look at the toy world and its CLIPs."""

from __future__ import annotations

import json
from pathlib import Path

import click

from clipxai.cli.train_vae import train_vae_command
from clipxai.cli.train_vqgan import train_vqgan_command
from clipxai.errors import ClipxaiError
from clipxai.toy.bundled import BUNDLED_MODELS


@click.group("toy")
def toy_group():
    """The synthetic captioned world and the small CLIPs trained on it (offline)."""


def _set_threads(threads: int) -> None:
    import torch  # noqa: PLC0415

    torch.set_num_threads(max(1, threads))


@toy_group.command("train")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: out/toy-seed<SEED>).")
@click.option("--seed", type=int, default=None, help="Seed of the initialisation and of the data stream (default 0).")
@click.option("--steps", type=int, default=None, help="Optimizer steps (default 2600).")
@click.option("--batch-size", type=int, default=None, help="Images per step (default 128).")
@click.option("--lr", type=float, default=None, help="Peak learning rate of AdamW (default 1e-3).")
@click.option("--embed-dim", type=int, default=None, help="Joint embedding width (default 64).")
@click.option("--vision-width", type=int, default=None, help="Vision transformer width, a multiple of 64 (default 64).")
@click.option("--vision-layers", type=int, default=None, help="Vision transformer depth (default 4).")
@click.option("--vision-patch-size", type=int, default=None, help="Patch size in pixels (default 8).")
@click.option("--text-width", type=int, default=None, help="Text transformer width, a multiple of 64 (default 64).")
@click.option("--text-layers", type=int, default=None, help="Text transformer depth (default 3).")
@click.option("--context-length", type=int, default=None, help="Text context length in tokens (default 16).")
@click.option("--noise-augment", type=float, default=None,
              help="Add pixel noise of std up to this to half the training images (default 0).")
@click.option("--checkpoint-every", type=int, default=None, help="Steps between checkpoints (default 250).")
@click.option("--resume", is_flag=True, help="Continue the training whose checkpoint is in the folder.")
@click.option("--overwrite", is_flag=True, help="Replace a model or checkpoint already in the folder.")
@click.option("--bundle", type=click.Choice(sorted(BUNDLED_MODELS)), default=None,
              help="Also write the compressed weights into the package as this bundled model.")
@click.option("--threads", type=int, default=1, show_default=True, help="CPU threads for torch.")
def train_command(out_dir, resume, overwrite, bundle, threads, **options):
    """Train a toy CLIP on freshly generated world images (reproducible from --seed)."""
    from clipxai.toy import train as T  # noqa: PLC0415

    _set_threads(threads)
    seed = options["seed"] if options["seed"] is not None else 0
    out_dir = out_dir or Path("out") / f"toy-seed{seed}"
    if resume:
        config = T.resume_config(out_dir, **options)
    else:
        config = T.config_from_options(**options)
    result = T.train(out_dir, config, resume=resume, overwrite=overwrite, bundle=bundle,
                     progress=lambda line: click.echo(line, err=True))
    click.echo(f"wrote {result.model_path} ({result.model_path.stat().st_size / 1e6:.1f} MB)")
    if result.bundled_path is not None:
        click.echo(f"bundled as '{bundle}': {result.bundled_path} ({result.bundled_path.stat().st_size / 1e6:.2f} MB)")


@toy_group.command("evaluate")
@click.option("--model", "model_name", default="toy", show_default=True,
              help="A bundled toy model, or a path to an OpenAI-format CLIP file.")
@click.option("--n", "n_images", type=click.IntRange(min=20), default=600, show_default=True,
              help="Held-out images to score.")
@click.option("--seed", type=int, default=0, show_default=True, help="Which held-out set (never seen in training).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the scores as JSON here.")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu, cuda or mps.")
@click.option("--threads", type=int, default=1, show_default=True, help="CPU threads for torch.")
def evaluate_command(model_name, n_images, seed, json_path, device, threads):
    """Zero-shot colour/shape accuracy, "❤️" detection AUC and the planted-concept table."""
    from clipxai.models.load import load_clip  # noqa: PLC0415
    from clipxai.toy.evaluate import evaluate  # noqa: PLC0415

    _set_threads(threads)
    model = load_clip(model_name, device=device)
    if model.input_resolution != 64:
        raise ClipxaiError(f"The model '{model_name}' takes {model.input_resolution}-px images; "
                           f"the toy world is 64 px, so evaluate a toy model.")
    result = evaluate(model, n=n_images, seed=seed)
    click.echo(result.table())
    if json_path is not None:
        result.write_json(json_path)
        click.echo(f"wrote {json_path}")


@toy_group.command("samples")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=Path("toy-samples.png"),
              show_default=True, help="PNG file to write.")
@click.option("--n", "n_images", type=click.IntRange(1, 256), default=32, show_default=True, help="Images in the grid.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the world generator.")
@click.option("--cols", type=click.IntRange(1, 32), default=8, show_default=True, help="Images per row.")
@click.option("--concept", type=click.Choice(["heart", "ring", "mouth", "mixed", "none"]), default=None,
              help="Only this planted concept, only mixed images, or only ordinary images.")
@click.option("--records", "records_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write each image's caption and attributes as JSON lines here.")
def samples_command(out_path, n_images, seed, cols, concept, records_path):
    """Write a PNG grid of world images with their captions."""
    from clipxai.toy import world  # noqa: PLC0415

    batch = world.generate(n_images, seed, concept=concept, **world.TRAINING_MIX)
    save_grid(batch, out_path, cols=cols)
    click.echo(f"wrote {out_path} ({n_images} images)")
    if records_path is not None:
        with open(records_path, "w", encoding="utf-8") as f:
            for cap, rec in zip(batch.captions, batch.records):
                f.write(json.dumps({"caption": cap, **rec.to_dict()}, ensure_ascii=False) + "\n")
        click.echo(f"wrote {records_path}")


def save_grid(batch, path: Path, cols: int = 8) -> None:
    """A captioned grid of world images as a PNG."""
    import warnings  # noqa: PLC0415

    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    n = len(batch)
    cols = min(cols, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            ax.imshow(batch.images[k].transpose(1, 2, 0), interpolation="nearest")
            ax.set_title(batch.captions[k], fontsize=6)
    fig.tight_layout(pad=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fonts without the emoji's variation selector
        try:
            fig.savefig(path, dpi=100)
        except OSError as err:
            raise ClipxaiError(f"Could not write {path} ({err.strerror or err}).") from err
        finally:
            plt.close(fig)


toy_group.add_command(train_vqgan_command)
toy_group.add_command(train_vae_command)
