"""Sparse reading: an image embedding as a few vocabulary words with non-negative weights.

What an embedding holds beyond the ordinary is read after centring: the image embedding
minus a baseline mean (of natural reference images, or of noise), and each word's text
embedding minus the vocabulary's mean (the two modalities sit in different cones of the
embedding space, so uncentred they only match each other's offset; as in SpLiCE, Bhalla et
al. 2024). Non-negative orthogonal matching pursuit then picks words one at a time, refitting
all weights by non-negative least squares, until MAX_WORDS words or the reconstruction's
cosine to the target (its *fidelity*) reaches FIDELITY_TARGET.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from scipy.optimize import nnls

from clipxai.analysis.trust.judges import text_embeddings
from clipxai.models.base import ClipModel

MAX_WORDS = 10
FIDELITY_TARGET = 0.9


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else 0.0


def nn_omp(
    target: np.ndarray,
    atoms: np.ndarray,
    max_words: int = MAX_WORDS,
    fidelity_target: float = FIDELITY_TARGET,
) -> tuple[list[int], np.ndarray, float]:
    """Non-negative OMP of ``target`` (D,) over unit ``atoms`` (V, D): (indices, weights, fidelity).

    Each round adds the atom most aligned with the residual (only positive alignment counts),
    then refits every chosen weight by NNLS; an atom NNLS sets to zero is dropped and not
    tried again. Indices come in the order they were chosen. Stops at ``max_words`` atoms, at
    ``fidelity_target``, or when no atom helps.
    """
    target = np.asarray(target, np.float64)
    atoms = np.asarray(atoms, np.float64)
    chosen: list[int] = []
    tried = np.zeros(len(atoms), bool)
    weights, fidelity, residual = np.zeros(0), 0.0, target.copy()
    while len(chosen) < max_words and not tried.all():
        corr = atoms @ residual
        corr[tried] = -np.inf
        j = int(corr.argmax())
        if not corr[j] > 1e-12:
            break
        tried[j] = True
        w, _ = nnls(atoms[chosen + [j]].T, target)
        keep = w > 1e-12
        new_chosen = [c for c, k in zip(chosen + [j], keep) if k]
        new_weights = w[keep]
        recon = new_weights @ atoms[new_chosen] if new_chosen else np.zeros_like(target)
        new_fidelity = _cos(recon, target)
        if new_fidelity <= fidelity + 1e-9:
            continue
        chosen, weights, fidelity, residual = new_chosen, new_weights, new_fidelity, target - recon
        if fidelity >= fidelity_target:
            break
    return chosen, weights, fidelity


def sparse_reading(
    embedding: np.ndarray | torch.Tensor,
    word_embeddings: np.ndarray | torch.Tensor,
    words: Sequence[str],
    *,
    centre: np.ndarray | torch.Tensor | None = None,
    centre_words: bool = True,
    max_words: int = MAX_WORDS,
    fidelity_target: float = FIDELITY_TARGET,
) -> dict:
    """``{"words", "weights", "fidelity"}``: ``embedding`` (centred on ``centre``) as a few ``words``.

    ``word_embeddings`` (V, D) are the words' text embeddings, centred on their own mean when
    ``centre_words``. Words come in the order pursuit chose them, the one most aligned with
    the target first (NNLS may give a later, correlated word a larger weight to correct it);
    weights are those of the unit-length centred target and atoms, so they compare across images.
    """
    target = np.asarray(embedding, np.float64).reshape(-1)
    target = target / max(np.linalg.norm(target), 1e-12)
    if centre is not None:
        target = target - np.asarray(centre, np.float64).reshape(-1)
    atoms = np.asarray(word_embeddings, np.float64)
    if centre_words:
        atoms = atoms - atoms.mean(axis=0, keepdims=True)
    target = target / max(np.linalg.norm(target), 1e-12)
    chosen, weights, fidelity = nn_omp(target, _unit_rows(atoms), max_words, fidelity_target)
    return {
        "words": [str(words[i]) for i in chosen],
        "weights": [float(w) for w in weights],
        "fidelity": float(fidelity),
    }


def sparse_reading_of(
    model: ClipModel,
    embedding: np.ndarray | torch.Tensor,
    vocab: Sequence[str],
    *,
    centre: np.ndarray | torch.Tensor | None = None,
    **options,
) -> dict:
    """``sparse_reading`` with the vocabulary's text embeddings from ``model``."""
    return sparse_reading(
        embedding, text_embeddings(model, list(vocab)).numpy(), list(vocab), centre=centre, **options
    )
