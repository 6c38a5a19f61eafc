"""Which components make each state of a run, what they write, and whether removing them matters.

From the decomposition of a run's snapshots (``decompose``: parts [N, C, D]) each component's
contribution to the cosine similarity with a prompt is ``part . prompt / |embedding|``; the
contributions of a snapshot add up to its cosine. Per state (the snapshots sharing a label)
the components are ranked by their mean contribution, with a bootstrap 95% interval over the
state's snapshots, and the components that set the state apart from the others are the ones
whose mean contribution differs most. Each top component is read in words twice: the
vocabulary words whose text embeddings align best with its mean part in the state, and a
greedy few-word basis of what it writes over the whole run (TextSpan's idea: pick the word
whose direction explains most of the component's variance, project it out, repeat).

``ablation_test`` then mean-ablates a state's top components and re-encodes its images: the
drop of prompt similarity is compared with the drops of as many components drawn at random
from the others, giving an empirical p-value ``(1 + #random drops >= drop) / (1 + draws)``.
``explain`` does both for every state and returns one plain dict per state; the components its
test ablates are the ones of largest total effect (``effects``), estimated on half the state's
snapshots and tested on the other half.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from clipxai.analysis.explain.ablate import ablated, component_means
from clipxai.analysis.explain.effects import halves, rank_by_total_effect
from clipxai.errors import ClipxaiError
from clipxai.models.components import list_components

Vocabulary = tuple[Sequence[str], np.ndarray]  # (words, unit text embeddings [V, D])


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def contributions(parts, prompts, embedding=None) -> np.ndarray:
    """(N, C, P): each component's contribution to each snapshot's cosine similarity with each prompt.

    ``parts`` [N, C, D] are the decomposition's parts, ``prompts`` [P, D] (or [D]) the prompts'
    embeddings (made unit length here), ``embedding`` [N, D] the snapshots' embeddings (the sum
    of the parts when not given). Summed over components they give the cosines.
    """
    parts = np.asarray(parts, dtype=np.float64)
    prompts = _unit(np.atleast_2d(np.asarray(prompts, dtype=np.float64)))
    embedding = parts.sum(axis=1) if embedding is None else np.asarray(embedding, dtype=np.float64)
    norm = np.maximum(np.linalg.norm(embedding, axis=-1), 1e-12)
    return np.einsum("ncd,pd->ncp", parts, prompts) / norm[:, None, None]


def _weights(weights, prompts: int) -> np.ndarray:
    """The prompts' weights in the objective (every prompt 1 when not given)."""
    w = np.ones(prompts) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if len(w) != prompts:
        raise ClipxaiError(f"{len(w)} prompt weights were given for {prompts} prompts.")
    return w


def bootstrap_means(x: np.ndarray, rng: np.random.Generator, draws: int = 1000):
    """(mean, 2.5th percentile, 97.5th percentile) of the column means of ``x`` [n, C] over resampled rows."""
    n = len(x)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=draws)     # (draws, n): one resample per row
    boot = counts @ x / n
    return x.mean(axis=0), np.percentile(boot, 2.5, axis=0), np.percentile(boot, 97.5, axis=0)


def rank_components(score: np.ndarray, names: Sequence[str], rng: np.random.Generator, *, top: int = 5,
                    draws: int = 1000) -> list[dict]:
    """The ``top`` components by mean contribution over the rows of ``score`` [n, C], with bootstrap CIs."""
    mean, lo, hi = bootstrap_means(score, rng, draws)
    order = np.argsort(-mean, kind="stable")[:top]
    return [{"component": names[c], "contribution": float(mean[c]), "ci95": [float(lo[c]), float(hi[c])]}
            for c in order]


def separating(score: np.ndarray, inside: np.ndarray, names: Sequence[str], rng: np.random.Generator, *,
               top: int = 5, draws: int = 1000) -> list[dict]:
    """The components whose mean contribution is most above the other snapshots' (``inside`` marks the state).

    The interval resamples both groups; a component separates the state when its interval is above 0.
    """
    a, b = score[inside], score[~inside]
    if len(a) == 0 or len(b) == 0:
        return []
    mean_a, _, _ = bootstrap_means(a, rng, 1)
    counts_a = rng.multinomial(len(a), np.full(len(a), 1.0 / len(a)), size=draws)
    counts_b = rng.multinomial(len(b), np.full(len(b), 1.0 / len(b)), size=draws)
    boot = counts_a @ a / len(a) - counts_b @ b / len(b)
    diff = mean_a - b.mean(axis=0)
    lo, hi = np.percentile(boot, 2.5, axis=0), np.percentile(boot, 97.5, axis=0)
    order = np.argsort(-diff, kind="stable")[:top]
    return [{"component": names[c], "difference": float(diff[c]), "ci95": [float(lo[c]), float(hi[c])],
             "separates": bool(lo[c] > 0)} for c in order]


def component_words(direction: np.ndarray, vocabulary: Vocabulary, k: int = 5) -> list[str]:
    """The ``k`` words whose text embeddings are closest in direction to ``direction`` [D]."""
    words, text = vocabulary
    return _closest_words(direction, words, _unit(text), k)


def _closest_words(direction: np.ndarray, words: Sequence[str], bank: np.ndarray, k: int) -> list[str]:
    """``component_words`` with the vocabulary already made unit length (``bank`` [V, D])."""
    cos = bank @ _unit(direction).astype(bank.dtype)
    return [str(words[i]) for i in np.argsort(-cos, kind="stable")[:k]]


def text_basis(outputs: np.ndarray, vocabulary: Vocabulary, k: int = 5) -> list[dict]:
    """A greedy basis of ``k`` words for what a component writes (``outputs`` [N, D], one row per snapshot).

    Each step picks the word whose (remaining) text direction explains most of the outputs'
    remaining variance, then projects that direction out of the outputs and of every word;
    ``variance`` is the fraction of the total variance the word explained.
    """
    words, text = vocabulary
    return _text_basis(outputs, words, _unit(text), k)


def _text_basis(outputs: np.ndarray, words: Sequence[str], bank: np.ndarray, k: int) -> list[dict]:
    """``text_basis`` with the vocabulary already made unit length (``bank`` [V, D]).

    Projecting a direction out of all V words at every step costs V x D per step and word; the
    same choice is made in the outputs' own r <= min(N, D) dimensions instead. With the outputs
    X = A S B^T and the chosen directions U (orthonormal), the variance word t explains once U is
    projected out of both is |S B^T (I - U U^T) t|^2 / (1 - |U^T t|^2). With z_t = S B^T t (one
    V x D x r product up front) and w_i = S B^T u_i, the numerator is |z_t|^2 - 2 sum_i (u_i . t)
    (z_t . w_i) + sum_il (u_i . t)(u_l . t)(w_i . w_l): each step costs one product of the V x r
    matrix with w and a few length-V vectors, never a new V x r matrix.
    """
    x = np.asarray(outputs, dtype=np.float64)
    x = x - x.mean(axis=0)
    total = float((x ** 2).sum())
    if total <= 0 or len(words) == 0:
        return []
    _, s, bt = np.linalg.svd(x, full_matrices=False)
    sb = s[:, None] * bt                                   # (r, D): S B^T
    z = (bank @ sb.T.astype(bank.dtype)).astype(np.float64)  # (V, r): S B^T t for every word
    norm0 = np.einsum("vr,vr->v", z, z)                    # |z_t|^2
    along = np.zeros((len(words), 0))                      # (V, j): u_i . t for every word
    reach = np.zeros((len(words), 0))                      # (V, j): z_t . w_i
    w = np.zeros((0, sb.shape[0]))                         # (j, r): w_i
    chosen: list[int] = []
    basis: list[dict] = []
    directions: list[np.ndarray] = []
    for _ in range(min(k, len(words))):
        left = 1.0 - (along ** 2).sum(axis=1)              # |(I - U U^T) t|^2
        kept = norm0 - 2 * (along * reach).sum(axis=1) + np.einsum("vi,il,vl->v", along, w @ w.T, along)
        explained = np.where(left > 1e-9, np.maximum(kept, 0.0) / np.maximum(left, 1e-9), 0.0)
        explained[chosen] = -1.0                           # each word once
        best = int(np.argmax(explained))
        if explained[best] <= 0:
            break
        t = bank[best].astype(np.float64)
        u = t - sum((d @ t) * d for d in directions) if directions else t
        u = u / max(np.linalg.norm(u), 1e-12)
        basis.append({"word": str(words[best]), "variance": float(explained[best] / total)})
        chosen.append(best)
        directions.append(u)
        wu = sb @ u
        along = np.column_stack([along, (bank @ u.astype(bank.dtype)).astype(np.float64)])
        reach = np.column_stack([reach, z @ wu])
        w = np.vstack([w, wu])
    return basis


def explain_states(parts, prompts, labels, names: Sequence[str], *, embedding=None, weights=None,
                   vocabulary: Vocabulary | None = None, top: int = 5, n_words: int = 5, basis: int = 3,
                   draws: int = 1000, seed: int = 0) -> list[dict]:
    """Per state (label >= 0): its top components, the components that set it apart, and their words.

    Contributions are to the prompts' weighted cosine (the objective's similarity part, every
    weight 1 by default). Returns one dict per state, ordered by label.
    """
    parts = np.asarray(parts, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    if parts.ndim != 3 or len(parts) != len(labels) or parts.shape[1] != len(names):
        raise ClipxaiError(f"The parts {parts.shape}, {len(labels)} state labels and {len(names)} component "
                           f"names do not fit together (parts are [snapshots, components, dim]).")
    contrib = contributions(parts, prompts, embedding)
    score = contrib @ _weights(weights, contrib.shape[-1])           # (N, C)
    rng = np.random.default_rng(seed)
    words = None if vocabulary is None else (list(vocabulary[0]), _unit(vocabulary[1]).astype(np.float32))
    out = []
    bases: dict[int, list[dict]] = {}
    for state in sorted(int(s) for s in np.unique(labels) if s >= 0):
        inside = labels == state
        ranked = rank_components(score[inside], names, rng, top=top, draws=draws)
        for entry in ranked:
            c = list(names).index(entry["component"])
            mean_part = parts[inside, c].mean(axis=0)
            entry["words"] = [] if words is None else _closest_words(mean_part, *words, n_words)
            if words is not None and c not in bases:       # over the whole run: the same in every state
                bases[c] = _text_basis(parts[:, c], *words, basis)
            entry["basis"] = [] if words is None else [dict(b) for b in bases[c]]
        out.append({"state": state, "snapshots": int(inside.sum()),
                    "similarity": float(score[inside].sum(1).mean()), "top": ranked,
                    "separating": separating(score, inside, names, rng, top=top, draws=draws)})
    return out


def _readout(model, images: torch.Tensor, prompts: torch.Tensor, weights: torch.Tensor, labels,
             batch_size: int):
    """(mean weighted cosine with the prompts, zero-shot label index per image or None) of ``images``."""
    with torch.no_grad():
        emb = torch.cat([model.embed_images(images[s:s + batch_size].to(model.device, torch.float32)).cpu()
                         for s in range(0, len(images), batch_size)]).float()
    emb = emb / emb.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    similarity = float(((emb @ prompts.t()) @ weights).mean())
    return similarity, None if labels is None else (emb @ labels.t()).argmax(dim=-1)


def ablation_test(model, images, prompts, components: Sequence[str], *, means: dict | None = None, k: int = 3,
                  weights=None, label_embeddings=None, pool: Sequence[str] | None = None, draws: int = 200,
                  seed: int = 0, mode: str = "mean", batch_size: int = 32) -> dict:
    """Mean-ablate the first ``k`` of ``components`` on ``images`` (a state's snapshots) against random sets.

    ``drop`` is the fall of the mean weighted prompt cosine; ``random_drop`` the mean fall when
    ``k`` components drawn at random from ``pool`` (the heads and MLPs by default) without the
    tested ones are ablated instead, over ``draws`` draws (a set drawn twice is
    encoded once). With ``label_embeddings`` [L, D] it also says how often each image's
    zero-shot label among them changes.
    """
    chosen = list(components)[:k]
    pool = list_components(model, kinds=("head", "mlp")) if pool is None else list(pool)
    pool = [n for n in pool if n not in chosen]
    if len(chosen) < k or len(pool) < k or draws < 1:
        raise ClipxaiError(f"An ablation test of {k} components needs {k} ranked components and at least {k} "
                           f"others to draw from ({len(chosen)} and {len(pool)} were given), and at least "
                           f"one draw.")
    images = torch.as_tensor(np.asarray(images, dtype=np.float32) if not torch.is_tensor(images) else images)
    p = torch.as_tensor(_unit(np.atleast_2d(np.asarray(prompts, dtype=np.float64))), dtype=torch.float32)
    w = torch.as_tensor(_weights(weights, len(p)), dtype=torch.float32)
    lab = None if label_embeddings is None else torch.as_tensor(_unit(label_embeddings), dtype=torch.float32)
    base, reading = _readout(model, images, p, w, lab, batch_size)
    cache: dict[tuple, tuple[float, float]] = {}

    def effect(names: Sequence[str]) -> tuple[float, float]:
        key = tuple(sorted(names))
        if key not in cache:
            with ablated(model, key, means, mode):
                sim, after = _readout(model, images, p, w, lab, batch_size)
            changed = 0.0 if lab is None else float((after != reading).float().mean())
            cache[key] = (base - sim, changed)
        return cache[key]

    drop, changed = effect(chosen)
    rng = np.random.default_rng(seed)
    random = np.array([effect([pool[i] for i in rng.choice(len(pool), size=k, replace=False)])
                       for _ in range(draws)])
    return {"k": k, "components": chosen, "similarity": base, "drop": drop,
            "random_drop": float(random[:, 0].mean()),
            "p_value": float((1 + (random[:, 0] >= drop).sum()) / (1 + draws)),
            "draws": draws, "reading_changed": changed if lab is not None else None,
            "random_reading_changed": float(random[:, 1].mean()) if lab is not None else None}


def explain(model, images, parts, names: Sequence[str], prompts, labels, *, means: dict | None = None,
            reference_images=None, embedding=None, weights=None, vocabulary: Vocabulary | None = None,
            label_embeddings=None, k: int = 3, top: int = 5, draws: int = 200, bootstrap: int = 1000,
            seed: int = 0, states: Sequence[int] | None = None, batch_size: int = 32,
            effect_method: str = "auto") -> list[dict]:
    """``explain_states`` with each state's ``ablation_test`` of its ``k`` heads and MLPs of largest total effect.

    ``images`` [N,3,H,W] are the snapshots the ``parts`` [N, C, D] decompose; the means come
    from ``means``, else from ``reference_images``, else from all the snapshots (so a state's
    components are set to what they write over the whole run). ``states`` limits the result to
    those labels. The components the test ablates are ranked by their total effect on the
    similarity (``effects.rank_by_total_effect``, method ``effect_method``) over every other
    snapshot of the state, and tested on the rest (``effects.halves``); ``top`` keeps the
    ranking by direct contribution.
    """
    labels = np.asarray(labels).reshape(-1)
    results = explain_states(parts, prompts, labels, names, embedding=embedding, weights=weights,
                             vocabulary=vocabulary, top=top, draws=bootstrap, seed=seed)
    if states is not None:
        results = [r for r in results if r["state"] in set(int(s) for s in states)]
    # The embedding term's class-token write is the same for every image (only the norm's scale
    # varies), so its mean-ablation would test the patch tokens instead: heads and MLPs are tested.
    pool = [n for n in names if n != "embed"]
    if means is None:
        reference = images if reference_images is None else reference_images
        means = component_means(model, reference, pool, batch_size=batch_size)
    images = np.asarray(images) if not torch.is_tensor(images) else images
    unit = _unit(np.atleast_2d(np.asarray(prompts, dtype=np.float64)))
    target = _weights(weights, len(unit)) @ unit
    for r in results:
        inside = np.flatnonzero(labels == r["state"])
        estimate, tested_on, held_out = halves(inside, len(inside), len(inside))
        ranking = rank_by_total_effect(model, images[estimate], target, pool, means, k, method=effect_method,
                                       batch_size=batch_size)
        test = ablation_test(model, images[tested_on], prompts, ranking["components"], means=means, k=k,
                             weights=weights, label_embeddings=label_embeddings, pool=pool, draws=draws,
                             seed=seed + r["state"], batch_size=batch_size)
        keys = ("k", "components", "drop", "random_drop", "p_value", "similarity", "reading_changed",
                "random_reading_changed")
        r["ablation"] = {**{key: test[key] for key in keys}, "ranked_by": "total_effect",
                         "effect_method": ranking["method"], "effects": ranking["effects"],
                         "estimated_on": len(estimate), "images": len(tested_on), "held_out": held_out}
    return results
