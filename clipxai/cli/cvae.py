"""``clipxai cvae ...``: caption, train, sample, evaluate, train-classifier, make-fixture."""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path

import click

CHECKPOINT_HELP = "A CVAE checkpoint file, the training folder holding it, or a bundled name (toy)."


@contextlib.contextmanager
def _warnings_to_stderr():
    """Warnings (unknown attributes, skipped images) print as one 'warning:' line each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            seen = set()
            for w in caught:
                text = str(w.message)
                if text not in seen and not issubclass(w.category, (DeprecationWarning, FutureWarning)):
                    seen.add(text)
                    click.echo(f"warning: {text}", err=True)


def _threads(n: int) -> None:
    import torch  # noqa: PLC0415

    torch.set_num_threads(max(1, n))


def _say(line: str) -> None:
    click.echo(line, err=True)


@click.group("cvae")
def cvae_group():
    """A CLIP-conditioned conditional VAE trained on attribute-captioned images (CelebA and alike)."""


@cvae_group.command("caption")
@click.argument("data", type=click.Path(path_type=Path), required=False)
@click.option("--limit", type=int, default=None, help="Only the first N images.")
@click.option("--images", type=click.Path(path_type=Path), default=None, help="The image folder, if not the usual place.")
@click.option("--table", "show_table", is_flag=True, help="Print the phrase table (Markdown) instead.")
def caption_command(data, limit, images, show_table):
    """Print each image's sentence, as the CVAE will be conditioned on it ("file<TAB>sentence")."""
    from clipxai.generators.cvae.phrases import SentenceBuilder, phrase_table_markdown  # noqa: PLC0415

    if show_table:
        click.echo(phrase_table_markdown())
        return
    if data is None:
        raise click.UsageError("Give the dataset DATA (or --table for the phrase table).")
    from clipxai.generators.cvae.data import read_table  # noqa: PLC0415

    with _warnings_to_stderr():
        table = read_table(data, images).head(limit)
        builder = SentenceBuilder(table.attributes)
    for name, row in zip(table.files, table.values):
        click.echo(f"{name}\t{builder.sentence(row)}")


@cvae_group.command("train")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--epochs", type=int, default=None, help="Epochs (default 20; with --resume, the new total).")
@click.option("--batch-size", type=int, default=None, help="Images per step (default 64).")
@click.option("--lr", type=float, default=None, help="Adam learning rate (default 1e-3).")
@click.option("--weight-decay", type=float, default=None, help="Adam weight decay (default 0).")
@click.option("--size", type=int, default=None, help="Image side after cropping and resizing (default 64).")
@click.option("--crop", type=int, default=None, help="Side of the centre square cut before resizing "
              "(default: the largest; 148 is CelebA's usual face crop).")
@click.option("--zdim", type=int, default=None, help="Latent size (default 32).")
@click.option("--width", type=int, default=None, help="Channels after the first convolution (default 32).")
@click.option("--cond-embed", type=int, default=None, help="Width the condition is projected to (default 128).")
@click.option("--condition", type=click.Choice(["clip", "attributes", "both"]), default=None,
              help="Condition on the sentences' CLIP embeddings, the attribute vector, or both (default clip).")
@click.option("--clip", "clip_name", default=None, help="The conditioning CLIP: a name, file, toy or random:<arch> (default ViT-B/32).")
@click.option("--recon", type=click.Choice(["mse", "bce", "l1"]), default=None, help="Reconstruction loss (default mse).")
@click.option("--beta", type=float, default=None, help="KL weight after warm-up (default 1).")
@click.option("--kl-warmup", type=float, default=None, help="Epochs over which the KL weight rises from 0 (default 2).")
@click.option("--val-fraction", type=float, default=None, help="Held out when there is no partition file (default 0.05).")
@click.option("--limit", type=int, default=None, help="Use only the first N listed images.")
@click.option("--seed", type=int, default=None, help="Seed of the initialisation, order and noise (default 0).")
@click.option("--images", type=click.Path(path_type=Path), default=None, help="The image folder, if not the usual place.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None, help="Where decoded images and text embeddings are cached.")
@click.option("--resume", is_flag=True, help="Continue the training whose checkpoint is in --out.")
@click.option("--overwrite", is_flag=True, help="Replace a checkpoint already in --out.")
@click.option("--threads", type=int, default=1, show_default=True, help="CPU threads for torch.")
def train_command(data, out, resume, overwrite, threads, images, cache_dir, epochs, clip_name, **options):
    """Train a CVAE on DATA (CelebA layout, or a folder with a CSV); results go to --out."""
    from clipxai.generators.cvae import train as T  # noqa: PLC0415

    _threads(threads)
    given = {k: v for k, v in options.items() if v is not None}
    if clip_name is not None:
        given["clip"] = clip_name
    if resume and given:
        raise click.UsageError(f"Only --epochs can change on --resume (got {', '.join('--' + k.replace('_', '-') for k in given)}).")
    config = None if resume else T.TrainConfig(**given)
    with _warnings_to_stderr():
        result = T.train(data, out, config, resume=resume, overwrite=overwrite, epochs=epochs, images=images,
                         cache_dir=cache_dir, progress=_say)
    click.echo(str(result.checkpoint))


@cvae_group.command("sample")
@click.argument("checkpoint")
@click.argument("sentences", nargs=-1, required=True)
@click.option("-n", "n", type=int, default=16, show_default=True, help="Samples per sentence.")
@click.option("-o", "--out", "out", type=click.Path(path_type=Path), default=Path("samples.png"), show_default=True,
              help="The PNG grid to write.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the latent draws.")
def sample_command(checkpoint, sentences, n, out, seed):
    """Write a grid of samples for each SENTENCE (one row per sentence) from CHECKPOINT."""
    from clipxai.generators.cvae.sample import sample_grid  # noqa: PLC0415

    click.echo(str(sample_grid(checkpoint, list(sentences), out, n=n, seed=seed)))


@cvae_group.command("evaluate")
@click.argument("checkpoint")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("-n", "n", type=int, default=500, show_default=True, help="Held-out images to evaluate on.")
@click.option("--split", type=click.Choice(["auto", "val", "test"]), default="auto", show_default=True,
              help="auto: test when the dataset has one, else validation.")
@click.option("--classifier", type=click.Path(path_type=Path), default=None,
              help="An attribute classifier (clipxai cvae train-classifier) for attribute accuracy.")
@click.option("--judge", default=None, help="The CLIP that scores samples (default: the conditioning CLIP).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--images", type=click.Path(path_type=Path), default=None, help="The image folder, if not the usual place.")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--threads", type=int, default=1, show_default=True, help="CPU threads for torch.")
def evaluate_command(checkpoint, data, n, split, classifier, judge, seed, images, cache_dir, as_json, threads):
    """Reconstruction, KL, CLIP agreement and (with --classifier) attribute accuracy of a CVAE."""
    from clipxai.generators.cvae.evaluate import evaluate  # noqa: PLC0415

    _threads(threads)
    judge_model = None
    if judge:
        from clipxai.models.load import load_clip  # noqa: PLC0415

        judge_model = load_clip(judge, "cpu")
    with _warnings_to_stderr():
        result = evaluate(checkpoint, data, n=n, split=split, seed=seed, classifier=classifier, judge=judge_model,
                          images=images, cache_dir=cache_dir)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        for line in result.lines():
            click.echo(line)


@cvae_group.command("train-classifier")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--epochs", type=int, default=None, help="Epochs (default 5).")
@click.option("--batch-size", type=int, default=None, help="Images per step (default 64).")
@click.option("--lr", type=float, default=None, help="Adam learning rate (default 1e-3).")
@click.option("--size", type=int, default=None, help="Image side (default 64).")
@click.option("--crop", type=int, default=None, help="Centre square cut before resizing (default: the largest).")
@click.option("--width", type=int, default=None, help="Channels of the first convolution (default 16).")
@click.option("--limit", type=int, default=None, help="Use only the first N listed images.")
@click.option("--seed", type=int, default=None)
@click.option("--images", type=click.Path(path_type=Path), default=None)
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None)
@click.option("--overwrite", is_flag=True, help="Replace a classifier already in --out.")
@click.option("--threads", type=int, default=1, show_default=True, help="CPU threads for torch.")
def train_classifier_command(data, out, images, cache_dir, overwrite, threads, **options):
    """Train a small CNN that predicts DATA's attributes (the judge of samples' attributes)."""
    from clipxai.generators.cvae.classifier import ClassifierConfig, train_classifier  # noqa: PLC0415

    _threads(threads)
    config = ClassifierConfig(**{k: v for k, v in options.items() if v is not None})
    with _warnings_to_stderr():
        path = train_classifier(data, out, config, overwrite=overwrite, images=images, cache_dir=cache_dir,
                                progress=_say)
    click.echo(str(path))


@cvae_group.command("make-fixture")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--n", "n", type=int, default=2000, show_default=True, help="Images to draw.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace a dataset already in OUT.")
def make_fixture_command(out, n, seed, overwrite):
    """Write a CelebA-format dataset drawn from the toy world (offline tests and demos)."""
    from clipxai.generators.cvae.fixture import make_fixture  # noqa: PLC0415

    click.echo(str(make_fixture(out, n=n, seed=seed, overwrite=overwrite)))


@cvae_group.command("export")
@click.argument("checkpoint")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--fp32", is_flag=True, help="Keep fp32 weights (default: fp16, half the size).")
def export_command(checkpoint, out, fp32):
    """Write a small sampling-only copy of CHECKPOINT to OUT (xz-compressed when OUT ends in .xz)."""
    from clipxai.generators.cvae.checkpoint import export_checkpoint  # noqa: PLC0415

    if Path(out).exists() and Path(out).is_dir():
        raise click.UsageError(f"{out} is a folder; give a file name such as cvae.pt.xz.")
    path = export_checkpoint(checkpoint, out, half=not fp32)
    click.echo(f"{path} ({path.stat().st_size / 1e6:.2f} MB)")
