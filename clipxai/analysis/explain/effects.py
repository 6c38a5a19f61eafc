"""Which components a state's similarity causally depends on: a ranking by total effect, for the ablation test.

A component's direct contribution (the decomposition's part) says what writes the similarity
at the end of the tower; mean-ablating it also changes every later head and MLP that reads the
residual stream, so its *total* effect can be much larger or smaller (an early head whose change
reaches everything after it). The ablation test asks about the total effect, so the components
it removes are ranked by it, estimated on other snapshots of the state than the ones it is
tested on (``halves``), so that the test does not grade the choice on the images that made it.

Two estimators, both of the mean drop of the weighted prompt similarity
``unit(embedding) . target`` over the estimation images:

- ``exact`` (models with at most ``EXACT_LIMIT`` heads and MLPs): greedy forward selection by
  real ablation. The first component is the one whose ablation alone drops the similarity
  most; each next one is the one that, ablated together with those already chosen, drops it
  most. Every candidate set is really re-encoded (``ablated_rows``, one set per image of a
  batch), so interactions between components count, as they will in the test.
- ``attribution`` (larger models): attribution patching (Nanda, 2023). One forward and one
  backward pass per batch give the gradient of the similarity with respect to every
  component's write; the drop of ablating component c is estimated to first order as
  ``grad_c . (write_c - mean_c)`` summed over tokens, and the top ``k`` are taken. It costs
  about three encodings of the estimation images whatever the number of components, where the
  exact estimate would cost ``k x components`` encodings.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from clipxai.analysis.explain.paired import Reader, set_effects, spread
from clipxai.errors import ClipxaiError
from clipxai.models.ablate import probed

EXACT_LIMIT = 40
EFFECT_METHODS = ("auto", "exact", "attribution")


def halves(rows, estimate: int, test: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """(rows to estimate the effects on, rows to test on, whether the two are disjoint).

    The state's rows alternate between the two halves (so both span the state in time), each
    then thinned to at most ``estimate`` and ``test`` rows spread over it. A state of one
    snapshot is estimated and tested on that snapshot (not held out).
    """
    rows = np.asarray(rows)
    if len(rows) < 2:
        return rows, rows, False
    return spread(rows[0::2], estimate), spread(rows[1::2], test), True


def _similarity(model, images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    emb = model.embed_images(images.to(model.device, torch.float32)).float()
    return (emb / emb.norm(dim=-1, keepdim=True).clamp_min(1e-12)) @ target.to(emb.device)


def attribution_effects(model, images, target, pool: Sequence[str], means: dict, *,
                        batch_size: int = 32) -> np.ndarray:
    """(images, components): the first-order drop of the similarity if each of ``pool`` were mean-ablated.

    ``target`` [D] is the weighted sum of the unit prompt embeddings, ``means`` the mean writes.
    """
    images = torch.as_tensor(np.asarray(images, dtype=np.float32) if not torch.is_tensor(images) else images)
    target = torch.as_tensor(np.asarray(target), dtype=torch.float32)
    rows = []
    with torch.inference_mode(False), torch.enable_grad():
        for start in range(0, len(images), batch_size):
            with probed(model, pool) as store:
                sim = _similarity(model, images[start:start + batch_size], target)
            names = list(store)
            probes = [store[n][0][1] for n in names]
            grads = torch.autograd.grad(sim.sum(), probes, allow_unused=True)
            effect = torch.zeros(len(sim), len(names))
            for j, (name, grad) in enumerate(zip(names, grads)):
                if grad is not None:
                    value = store[name][0][0]
                    mean = means[name].to(value.device, value.dtype)
                    effect[:, j] = ((value - mean) * grad).flatten(1).sum(1).cpu()
            rows.append(effect)
    return torch.cat(rows).numpy().astype(np.float64) if rows else np.zeros((0, len(pool)))


def greedy_exact(model, images, target, pool: Sequence[str], means: dict, k: int, *,
                 batch_size: int = 32) -> tuple[list[str], list[float]]:
    """(``k`` components chosen greedily by the real drop of ablating them together, the drop after each)."""
    images = torch.as_tensor(np.asarray(images, dtype=np.float32) if not torch.is_tensor(images) else images)
    read = Reader(model, torch.as_tensor(np.asarray(target), dtype=torch.float32), None)
    base, reading = read(images)
    chosen: list[str] = []
    drops: list[float] = []
    for _ in range(min(k, len(pool))):
        candidates = [c for c in pool if c not in chosen]
        sets = [(tuple(chosen + [c]), i) for c in candidates for i in range(len(images))]
        effects = set_effects(model, read, images, sets, means, base, reading, batch_size)
        mean = [np.mean([effects[(tuple(chosen + [c]), i)][0] for i in range(len(images))]) for c in candidates]
        best = int(np.argmax(mean))
        chosen.append(candidates[best])
        drops.append(float(mean[best]))
    return chosen, drops


def rank_by_total_effect(model, images, target, pool: Sequence[str], means: dict, k: int, *,
                         method: str = "auto", batch_size: int = 32) -> dict:
    """The ``k`` components of ``pool`` with the largest total effect on the similarity over ``images``.

    ``method`` is ``exact``, ``attribution`` or ``auto`` (exact up to ``EXACT_LIMIT`` components).
    Returns ``components`` (in the order chosen), ``effects`` (each one's estimated drop: for
    ``exact`` the drop its addition to the set brought, for ``attribution`` its own first-order
    drop), ``method`` and ``images``.
    """
    if method == "auto":
        method = "exact" if len(pool) <= EXACT_LIMIT else "attribution"
    if method not in EFFECT_METHODS[1:]:
        raise ClipxaiError(f"The total effects are estimated by {', '.join(EFFECT_METHODS)}, not '{method}'.")
    if method == "exact":
        chosen, drops = greedy_exact(model, images, target, pool, means, k, batch_size=batch_size)
        gains = list(np.diff([0.0] + drops))
    else:
        mean = attribution_effects(model, images, target, pool, means, batch_size=batch_size).mean(axis=0)
        order = np.argsort(-mean, kind="stable")[:k]
        chosen, gains = [pool[c] for c in order], [float(mean[c]) for c in order]
    return {"components": chosen, "effects": [float(g) for g in gains], "method": method, "images": len(images)}
