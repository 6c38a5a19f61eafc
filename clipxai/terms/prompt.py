"""Terms of the prompt: cosine, spherical and log-sum-exp similarity, and the memory of the best so far."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from clipxai.errors import TermError
from clipxai.terms.base import Objective, Step, register_term


def _named(base: str, at: str | None) -> str:
    return f"{base}@{at}" if at else base


@register_term("cosine")
def cosine(prompt: str | None = None, member: int = 0, at: str | None = None) -> Objective:
    """Cosine similarity of the augmented views to a prompt, averaged over views.

    ``member`` picks the model of an ensemble whose view is scored; ``at`` names it in the term.
    """
    def term(step: Step) -> torch.Tensor:
        return step.member(member).similarity(prompt)
    return Objective(term, _named(f"cosine({prompt})" if prompt else "cosine", at))


@register_term("spherical")
def spherical(prompt: str | None = None, member: int = 0, at: str | None = None) -> Objective:
    """Negative squared great-circle distance to a prompt (as VQGAN+CLIP notebooks use)."""
    def term(step: Step) -> torch.Tensor:
        seen = step.member(member)
        target = seen.prompt(prompt).embedding
        chord = (seen.embeds - target).norm(dim=-1)
        return -(2 * torch.arcsin((chord / 2).clamp(max=1)) ** 2).mean(dim=1)
    return Objective(term, _named(f"spherical({prompt})" if prompt else "spherical", at))


@register_term("logexp_cosine")
def logexp_cosine(prompt: str | None = None, temperature: float = 5.0, member: int = 0,
                  at: str | None = None) -> Objective:
    """log(exp(cos/T)) on raw features, exactly as the original CLIP-text-to-image script."""
    def term(step: Step) -> torch.Tensor:
        seen = step.member(member)
        text = seen.prompt(prompt).features.unsqueeze(0)
        cos = torch.stack([F.cosine_similarity(f, text, dim=1).mean() for f in seen.features])
        return torch.log(torch.exp(cos / temperature))
    return Objective(term, _named(f"logexp_cosine(T={temperature:g})", at))


def style(text: str, member: int = 0) -> Objective:
    """Cosine of the views to a style prompt (``--style``), named ``style(TEXT)``: kept apart from the content
    prompt, so metrics.jsonl and the report show how much of each the image holds."""
    def term(step: Step) -> torch.Tensor:
        return step.member(member).similarity(text)
    return Objective(term, f"style({text})")


def parse_style(value: str) -> tuple[str, float]:
    """``"TEXT"`` or ``"TEXT:W"`` -> (text, weight); a trailing ``:number`` is the weight (1 without one)."""
    head, sep, tail = value.rpartition(":")
    try:
        weight = float(tail) if sep and head.strip() else None
    except ValueError:
        weight = None
    text, weight = (head, weight) if weight is not None else (value, 1.0)
    if not text.strip() or not math.isfinite(weight):
        raise TermError(f"--style '{value}' needs a text and, after a colon, a finite weight.")
    return text.strip(), weight


@register_term("memory")
def memory(prompt: str | None = None) -> Objective:
    """Mean squared distance to the best image so far (by prompt similarity); subtract it."""
    def term(step: Step) -> torch.Tensor:
        # The best image is updated before the distance is taken, as in the original script:
        # on a step that improves, the image is its own memory and the term is zero.
        if step.views.shape[0] == step.batch:  # one view per image: the views are the image
            sim = step.similarity(prompt).detach()
        else:
            sim = _clean_similarity(step, prompt)
        best = step.state.get("memory_image")
        best_sim = step.state.get("memory_similarity")
        img = step.image.detach()
        if best is None:
            best, best_sim = img.clone(), sim.clone()
        else:
            better = sim > best_sim
            best = torch.where(better.view(-1, 1, 1, 1), img, best)
            best_sim = torch.where(better, sim, best_sim)
        step.state["memory_image"], step.state["memory_similarity"] = best, best_sim
        # F.mse_loss per seed, as the original: the same value as ((a-b)**2).mean(), but its
        # backward rounds like the original's, so the original recipe is reproduced bit for bit.
        return torch.stack([F.mse_loss(step.image[k], best[k]) for k in range(step.batch)])
    return Objective(term, "memory")


def _clean_similarity(step: Step, prompt: str | None) -> torch.Tensor:
    """Similarity of the un-augmented images (when views are augmented cutouts)."""
    with torch.no_grad():
        feats = step.model.embed_images(step.image.detach(), normalize=step.state.get("normalize", True))
        feats = feats / feats.norm(dim=-1, keepdim=True)
        return feats @ step.prompt(prompt).embedding
