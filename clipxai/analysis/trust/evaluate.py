"""Every trust check for one entry (a state's representative images, or the final image), and its verdict.

``measure`` computes the per-image numbers once for a batch (the model's embeddings and
pathway in one forward pass, each perturbation, each judge, the renders of the words);
``entry`` takes any subset of that batch together. So a run's states, or each of many
images (``evaluate_each``), cost one pass over the images per model, not one per entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from clipxai.analysis.trust.judges import (
    TRANSFER_Z,
    JudgeScores,
    agreement,
    score_images,
    text_embeddings,
    transfer_rate,
)
from clipxai.analysis.trust.metrics import clipscore, cmmd
from clipxai.analysis.trust.pathway import (
    PATHWAY_MAX,
    distances,
    embed_with_activations,
    natural_profile,
    short_layer,
)
from clipxai.analysis.trust.perturb import ROBUST_MIN, collapses, perturbed_similarities, ratio
from clipxai.analysis.trust.sparse import sparse_reading
from clipxai.analysis.trust.written import (
    WRITTEN_THRESHOLD,
    WrittenReference,
    prompt_words,
    written_reference,
)
from clipxai.models.base import ClipModel

# The flags that make an entry suspect: those the planted truth (bench/validate_trust.py) shows tell a
# picture from an adversarial pattern. "unusual pathway" and "written" are reported beside the call:
# adversarial images lie within the natural images' spread at every layer, while smooth, low-contrast
# ascents that every judge sees lie outside it at the first block (docs/analysis.md gives the figures).
CALLED = ("not seen by the model", "no transfer", "fragile")


@dataclass
class Measurements:
    """Per-image numbers of one batch, from which entries of any subset are taken."""

    prompt: str
    own: JudgeScores
    judges: list[JudgeScores]
    perturbed: dict[str, np.ndarray]  # (N,) model's cosine to the prompt under each perturbation
    pathway: dict[str, np.ndarray] | None  # (N,) distance per layer
    written: np.ndarray | None  # (N,) written score
    written_reference: WrittenReference | None
    vocab: list[str] | None
    vocab_embeddings: np.ndarray | None
    centre: np.ndarray  # the sparse reading's centre (natural images' mean embedding)

    def __len__(self) -> int:
        return len(self.own.cosine)


def _as_images(images) -> torch.Tensor:
    x = images if torch.is_tensor(images) else torch.from_numpy(np.asarray(images, dtype=np.float32))
    return x.detach().float().cpu()


def measure(
    model: ClipModel,
    images,
    prompt: str,
    *,
    judges: Sequence[ClipModel],
    reference=None,
    labels: Sequence[str] | None = None,
    vocab: Sequence[str] | None = None,
    words: Sequence[str] | None = None,
    unrelated_words: Sequence[str] | None = None,
    natural=None,
) -> Measurements:
    """Everything ``entry`` needs for ``images``, computed once.

    ``reference``: natural images that do not show the prompt, a baseline group for every
    judge's z-score. ``natural``: natural images of every kind, those of the prompt
    included (default: ``reference``), for the pathway's natural profile and the sparse
    reading's centre. ``labels``: candidate texts for the zero-shot readings. ``vocab``:
    words for the sparse reading. ``words``: what to look for written out (default: the
    prompt's words).
    """
    x = _as_images(images)
    ref = None if reference is None else _as_images(reference)
    nat = ref if natural is None else _as_images(natural)
    emb, acts = embed_with_activations(model, x)
    nat_emb = path = ref_emb = None
    if nat is not None and len(nat) >= 3:
        nat_emb, nat_acts = embed_with_activations(model, nat)
        path = distances(natural_profile(nat_acts), acts)
        ref_emb = nat_emb if natural is None else None
    own = score_images(
        model, None, prompt, labels=labels, reference=ref, embeddings=emb, reference_embeddings=ref_emb
    )
    others = [score_images(j, x, prompt, labels=labels, reference=ref) for j in judges]
    words = prompt_words(prompt) if words is None else list(words)
    wref = written_reference(model, words, unrelated_words) if words else None
    vocab = list(vocab) if vocab else None
    return Measurements(
        prompt=prompt,
        own=own,
        judges=others,
        perturbed=perturbed_similarities(model, x, text_embeddings(model, [prompt])[0]),
        pathway=path,
        written=None if wref is None else wref.score(emb),
        written_reference=wref,
        vocab=vocab,
        vocab_embeddings=None if vocab is None else text_embeddings(model, vocab).numpy(),
        centre=(nat_emb.mean(dim=0) if nat_emb is not None else own.baseline.centre).numpy(),
    )


def entry(m: Measurements, index: Sequence[int] | None = None) -> dict:
    """The per-entry contract for the images ``index`` of ``m`` taken together (all by default)."""
    idx = np.arange(len(m)) if index is None else np.asarray(list(index), dtype=int)
    per = {j.name: j.entry(idx) for j in m.judges}
    own = {"name": m.own.name, **m.own.entry(idx)}
    noise_mean, noise_sd = m.own.baseline.groups["noise"]
    robust = {
        k: float(ratio(v[idx].mean(), own["cosine"], noise_mean, noise_sd)) for k, v in m.perturbed.items()
    }
    path = {} if m.pathway is None else {k: float(v[idx].mean()) for k, v in m.pathway.items()}
    written = None if m.written is None else float(m.written[idx].mean())
    out = {
        "judges": per,
        "transfer_rate": transfer_rate({k: v["z"] for k, v in per.items()}),
        "agreement": agreement({k: v["reading"] for k, v in per.items()}, own["reading"]),
        "robustness": robust,
        "robustness_min": min(robust.values()) if robust else None,
        "pathway": path,
        "pathway_max": max(path.values()) if path else None,
        "written": written,
        "is_written": None if written is None else bool(written >= WRITTEN_THRESHOLD),
        "written_specificity": None
        if m.written_reference is None
        else float(m.written_reference.specificity),
        "sparse_reading": _sparse(m, idx),
        "clipscore": float(np.mean(clipscore(m.own.cosine[idx]))),
        "model": own,
        "cmmd": _cmmd(m, idx),
        "images": int(len(idx)),
    }
    out["flags"] = flags(out)
    out["trusted"] = not any(f in out["flags"] for f in CALLED)
    out["verdict"] = verdict(out)
    return out


def _sparse(m: Measurements, idx: np.ndarray) -> dict | None:
    if m.vocab is None:
        return None
    return sparse_reading(
        m.own.embeddings[idx].mean(dim=0).numpy(), m.vocab_embeddings, m.vocab, centre=m.centre
    )


def _cmmd(m: Measurements, idx: np.ndarray) -> dict | None:
    """Per judge, CMMD between the entry's images and the reference images (None with fewer than 2)."""
    if len(idx) < 2 or any(j.reference_embeddings is None for j in m.judges) or not m.judges:
        return None
    return {j.name: cmmd(j.embeddings[idx], j.reference_embeddings) for j in m.judges}


def flags(e: dict) -> list[str]:
    """What the numbers of an entry say is wrong with it, in a fixed order."""
    out = []
    if e["model"]["z"] < TRANSFER_Z:
        out.append("not seen by the model")
    if e["transfer_rate"] is not None and e["transfer_rate"] < 0.5:
        out.append("no transfer")
    if e["robustness_min"] is not None and e["robustness_min"] < ROBUST_MIN:
        out.append("fragile")
    if e["pathway_max"] is not None and e["pathway_max"] > PATHWAY_MAX:
        out.append("unusual pathway")
    if e["is_written"]:
        out.append("written")
    return out


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def verdict(e: dict) -> str:
    """One sentence from an entry's numbers, only the checks that ran, e.g.
    "Suspect: seen by 0 of 1 judge, collapses under blur and jpeg, natural pathway."."""
    parts = []
    if e["model"]["z"] < TRANSFER_Z:
        parts.append("not seen even by the model")
    if e["judges"]:
        seen = sum(v["z"] >= TRANSFER_Z for v in e["judges"].values())
        n = len(e["judges"])
        part = f"seen by {seen} of {n} judge{'s' if n != 1 else ''}"
        if e["agreement"] is not None and e["agreement"] < 1:
            part += f" (read as {e['model']['reading']!r} by {round(e['agreement'] * n)} of them)"
        parts.append(part)
    if e["robustness"]:
        broken = collapses(e["robustness"])
        parts.append(f"collapses under {_join(broken)}" if broken else "survives every perturbation")
    if e["pathway"]:
        worst = max(e["pathway"], key=e["pathway"].get)
        parts.append(
            f"unusual pathway ({short_layer(worst)}, {e['pathway_max']:.1f}x natural spread)"
            if e["pathway_max"] > PATHWAY_MAX
            else "natural pathway"
        )
    if e["is_written"]:
        parts.append("looks like the prompt written out")
    head = "Trusted" if e.get("trusted", not e["flags"]) else "Suspect"
    return f"{head}: {', '.join(parts)}." if parts else f"{head}."


def evaluate_images(
    model: ClipModel,
    images,
    prompt: str,
    *,
    judges: Sequence[ClipModel],
    reference=None,
    labels: Sequence[str] | None = None,
    vocab: Sequence[str] | None = None,
    words: Sequence[str] | None = None,
    unrelated_words: Sequence[str] | None = None,
    natural=None,
) -> dict:
    """The per-entry contract for ``images`` [B,3,H,W] in [0, 1] taken together as one entry (``measure``)."""
    m = measure(
        model,
        images,
        prompt,
        judges=judges,
        reference=reference,
        labels=labels,
        vocab=vocab,
        words=words,
        unrelated_words=unrelated_words,
        natural=natural,
    )
    return entry(m)


def evaluate_entries(
    model: ClipModel, images, prompt: str, groups: Sequence[Sequence[int]], **options
) -> list[dict]:
    """One entry per group of image indices (e.g. each state's representative images), measured once."""
    m = measure(model, images, prompt, **options)
    return [entry(m, g) for g in groups]


def evaluate_each(model: ClipModel, images, prompt: str, **options) -> list[dict]:
    """One entry per image, measured once for the whole batch."""
    return evaluate_entries(model, images, prompt, [[i] for i in range(len(images))], **options)
