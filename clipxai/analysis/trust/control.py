"""A positive control for the trust checks: images made adversarial against one model on purpose.

A few signed-gradient steps (FGSM/PGD style, Madry et al. 2018) push ordinary images toward
some texts by one model alone, within a small L-infinity ball around where they started.
Such an image satisfies that model and shows nothing new, so the checks should flag it.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from clipxai.analysis.trust.judges import text_embeddings, unit
from clipxai.models.base import ClipModel

EPSILON = 32 / 255  # the L-infinity radius around the start image
STEP = 2 / 255  # the signed step
MAX_STEPS = 40


def signed_gradient_ascent(
    model: ClipModel,
    images: torch.Tensor,
    objective: Callable[[torch.Tensor], torch.Tensor],
    *,
    epsilon: float = EPSILON,
    step: float = STEP,
    max_steps: int = MAX_STEPS,
    until: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """``images`` moved by up to ``max_steps`` signed gradient steps raising ``objective(embeddings)`` (N,).

    Each image stops moving once ``until(unit_embeddings)`` (a boolean mask, on the CPU) holds
    for it; pixels stay in [0, 1] and within ``epsilon`` of the start. Deterministic (no random start).
    """
    start = torch.as_tensor(images, dtype=torch.float32).detach().to(model.device)
    x = start.clone()
    active = torch.ones(len(x), dtype=torch.bool, device=x.device)
    for _ in range(max_steps):
        x.requires_grad_(True)
        emb = unit(model.embed_images(x))
        if until is not None:
            active &= ~until(emb.detach().cpu()).to(x.device)
        if not active.any():
            break
        (grad,) = torch.autograd.grad(objective(emb)[active].sum(), x)
        with torch.no_grad():
            moved = x + step * grad.sign() * active.view(-1, 1, 1, 1)
            x = torch.min(torch.max(moved, start - epsilon), start + epsilon).clamp(0, 1)
    return x.detach().cpu()


def signed_gradient_toward(
    model: ClipModel, images: torch.Tensor, texts: Sequence[str], **options
) -> torch.Tensor:
    """``images`` pushed to raise their mean cosine to ``texts`` (see ``signed_gradient_ascent``)."""
    target = text_embeddings(model, list(texts)).to(model.device)
    return signed_gradient_ascent(model, images, lambda emb: (emb @ target.T).mean(dim=1), **options)


def adversarial_reading(
    model: ClipModel,
    images: torch.Tensor,
    prompt: str,
    target: str,
    labels: Sequence[str],
    *,
    min_cosine: float,
    **options,
) -> torch.Tensor:
    """``images`` pushed until ``model`` reads ``target`` among ``labels`` and its cosine to ``prompt``
    reaches ``min_cosine``: the objective is the target's zero-shot log-probability plus the
    cosine to the prompt (``options`` go to ``signed_gradient_ascent``)."""
    labels = list(labels)
    label_emb = text_embeddings(model, labels).to(model.device)
    prompt_emb = text_embeddings(model, [prompt])[0].to(model.device)
    j, scale = labels.index(target), model.logit_scale

    def objective(emb: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(scale * emb @ label_emb.T, dim=1)[:, j] + emb @ prompt_emb

    def reached(emb: torch.Tensor) -> torch.Tensor:
        return ((emb @ label_emb.T.cpu()).argmax(dim=1) == j) & ((emb @ prompt_emb.cpu()) >= min_cosine)

    return signed_gradient_ascent(model, images, objective, until=reached, **options)
