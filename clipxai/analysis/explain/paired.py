"""The ablation test of a state at the cost of about one encoding per random draw.

``states.ablation_test`` re-encodes all of a state's images for every random draw, so a test of
``draws`` draws costs ``draws`` times the state's encoding: too slow for a ViT-B/32 run of
hundreds of snapshots on a CPU. Here the state's top components are ablated on each of up to
``images`` of its snapshots (spread evenly over the state), and each random draw of ``k`` other
components is ablated on one of those snapshots in turn, paired with the top components' drop
on that same snapshot: the p-value is ``(1 + #draws whose drop >= the top drop on their
snapshot) / (1 + draws)``. The cost is ``images`` encodings per tested set (and one more unablated)
plus ``draws``, batched with a different set ablated in each image of a batch (``ablated_rows``),
each started at the first block its set ablates from the unablated encoding's residual stream
(``models.prefix``): a random set of 3 of ViT-B/32's 156 heads and MLPs skips 2.5 of its 12
blocks on average.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch

from clipxai.errors import ClipxaiError
from clipxai.models.ablate import ablated_rows
from clipxai.models.components import component
from clipxai.models.prefix import Prefix


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def spread(rows: np.ndarray, count: int) -> np.ndarray:
    """``count`` of ``rows`` spread evenly over them (all of them when there are no more)."""
    rows = np.asarray(rows)
    if len(rows) <= count:
        return rows
    return rows[np.unique(np.linspace(0, len(rows) - 1, count).round().astype(int))]


class Reader:
    """Encodes images and reads the weighted prompt similarity and the zero-shot reading of each."""

    def __init__(self, model, target: torch.Tensor, labels: torch.Tensor | None):
        self.model, self.target, self.labels = model, target, labels

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.embedded(self.model.embed_images(images.to(self.model.device, torch.float32)))

    def embedded(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What ``__call__`` reads, from the images' embeddings."""
        emb = _unit(embeddings.float().cpu())
        return emb @ self.target, None if self.labels is None else (emb @ self.labels.t()).argmax(dim=-1)


def set_effects(model, read, images, sets, means, base, reading, batch_size: int, prefix: Prefix | None = None
                ) -> dict:
    """(similarity drop, whether the reading changed) of each (set of components, snapshot) in ``sets``.

    The sets are encoded ``batch_size`` at a time, each image with its own set ablated. With
    ``prefix`` (the snapshots' ``Prefix``) the sets are grouped by the first block they ablate,
    and each group's encoding starts there from the cached residual stream: the blocks before it
    would compute the same for every set.
    """
    groups: dict[int, list] = {}
    first: dict[str, int] = {}
    for entry in sets:
        for n in entry[0]:
            if n not in first:
                first[n] = component(model, n).layer or 0      # embed: from the start
        start = 0 if prefix is None else min((first[n] for n in entry[0]), default=0)
        groups.setdefault(start, []).append(entry)
    effects = {}
    for layer, members in sorted(groups.items()):
        for start in range(0, len(members), batch_size):
            chunk = members[start:start + batch_size]
            names = sorted({n for names, _ in chunk for n in names})
            mask = np.array([[n in names_ for n in names] for names_, _ in chunk]).reshape(len(chunk), len(names))
            rows = [i for _, i in chunk]
            resumed = contextlib.nullcontext() if prefix is None else prefix.starting_at(layer, rows)
            with ablated_rows(model, names, means, mask), resumed:   # hooks first: they read the tower
                sim, label = read(images[rows])
            for j, (key, i) in enumerate(chunk):
                flip = bool(label is not None and label[j] != reading[i])
                effects[(key, i)] = (float(base[i] - sim[j]), flip)
    return effects


def paired_ablation_test(model, images, target, components: Sequence[str], pool: Sequence[str], *,
                         means: dict | None, k: int = 3, draws: int = 100, label_embeddings=None,
                         seed: int = 0, batch_size: int = 32, also: Sequence[str] | None = None,
                         prefix: Prefix | None = None) -> dict:
    """Ablate the first ``k`` of ``components`` on ``images`` [M,3,H,W] against ``draws`` random ``k``-sets.

    ``target`` [D] is the weighted sum of the unit prompt embeddings (the objective's similarity
    is ``unit(embedding) . target``); ``pool`` the components random sets are drawn from (the
    tested ones left out); ``means`` the mean writes (``component_means``). With
    ``label_embeddings`` [L, D] it says how often the zero-shot reading among them changes.
    ``also`` is a second set of components ablated on the same images; under ``"also"`` its drop
    is compared with the random sets that share none of its components (``draws`` says how many;
    ``p_value`` is None when none do). ``prefix`` is the images' unablated encoding when it was
    kept already (``models.prefix.keeping_residuals``); otherwise they are encoded here.
    """
    chosen = list(components)[:k]
    pool = [n for n in pool if n not in chosen]
    if len(chosen) < k or len(pool) < k or draws < 1 or len(images) == 0:
        raise ClipxaiError(f"An ablation test of {k} components needs {k} ranked components, at least {k} others "
                           f"to draw from ({len(chosen)} and {len(pool)} were given), one draw and one image.")
    images = torch.as_tensor(np.asarray(images, dtype=np.float32) if not torch.is_tensor(images) else images)
    labels = None if label_embeddings is None else _unit(torch.as_tensor(np.asarray(label_embeddings),
                                                                         dtype=torch.float32))
    read = Reader(model, torch.as_tensor(np.asarray(target), dtype=torch.float32), labels)
    if prefix is None:                                    # the unablated encoding, every block kept
        prefix = Prefix(model, images, batch_size=batch_size)
    base, reading = read.embedded(prefix.embeddings)
    rng = np.random.default_rng(seed)
    order = rng.permutation(draws) % len(images)          # each snapshot gets its share of the draws
    sets = [(tuple(sorted(pool[c] for c in rng.choice(len(pool), size=k, replace=False))), int(order[j]))
            for j in range(draws)]
    tested = {"top": tuple(chosen)}
    if also is not None:
        tested["also"] = tuple(list(also)[:k])
    asked = [(names, i) for names in dict.fromkeys(tested.values()) for i in range(len(images))]
    effects = set_effects(model, read, images, list(dict.fromkeys(asked + sets)), means, base, reading,
                          batch_size, prefix)

    def versus(names: tuple, candidates) -> dict:
        drops = np.array([effects[(names, i)][0] for i in range(len(images))])
        flips = [effects[(names, i)][1] for i in range(len(images))]
        fair = [d for d in candidates if not set(d[0]) & set(names)]
        random = [effects[d][0] for d in fair]
        beaten = sum(drop >= drops[i] for drop, (_, i) in zip(random, fair))
        return {"k": k, "components": list(names), "drop": float(drops.mean()),
                "random_drop": float(np.mean(random)) if fair else None,
                "p_value": float((1 + beaten) / (1 + len(fair))) if fair else None, "draws": len(fair),
                "reading_changed": None if labels is None else float(np.mean(flips)),
                "random_reading_changed": None if labels is None or not fair else
                float(np.mean([effects[d][1] for d in fair]))}

    result = {**versus(tested["top"], sets), "similarity": float(base.mean()), "images": len(images)}
    if also is not None:
        result["also"] = versus(tested["also"], sets)
    return result
