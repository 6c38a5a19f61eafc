"""Sampling a trained CVAE: sentences in, a grid of generated images out."""

from __future__ import annotations

from pathlib import Path

import torch

from clipxai.errors import ClipxaiError
from clipxai.generators.cvae.checkpoint import LoadedCVAE, load_cvae
from clipxai.generators.cvae.grid import save_grid


def sample_images(cvae: LoadedCVAE | str | Path, texts: list[str], n: int = 16, seed: int = 0,
                  clip=None) -> torch.Tensor:
    """``n`` samples per sentence, sentence-major, [len(texts) * n, 3, S, S] in [0, 1].

    z comes from a generator seeded by ``seed``: the same seed gives the same images.
    """
    if n < 1:
        raise ClipxaiError(f"-n must be at least 1 (got {n}).")
    texts = [t.strip() for t in texts]
    if not texts or any(not t for t in texts):
        raise ClipxaiError("The sentence to sample is empty; give one, e.g. \"a smiling woman wearing eyeglasses\".")
    loaded = cvae if isinstance(cvae, LoadedCVAE) else load_cvae(cvae, clip=clip)
    return loaded.sample(texts, n, torch.Generator().manual_seed(seed), clip=clip)


def sample_grid(cvae: LoadedCVAE | str | Path, texts: list[str], out: str | Path, n: int = 16,
                seed: int = 0, clip=None) -> Path:
    """Write the samples as one PNG grid: one row per sentence (a square grid for one sentence)."""
    images = sample_images(cvae, texts, n, seed, clip)
    ncol = n if len(texts) > 1 else None
    try:
        return save_grid(images, out, ncol=ncol)
    except (OSError, ValueError) as err:
        raise ClipxaiError(f"The grid cannot be written to {out} ({type(err).__name__}: {err}).") from err
