"""Terms of the image itself: total variation and the range penalty."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from clipxai.terms.base import Objective, Step, register_term


@register_term("tv")
def tv(reduction: str = "mean") -> Objective:
    """Total variation (L1 of neighbour differences) of each image; subtract it to smooth."""
    if reduction not in ("mean", "sum"):
        raise ValueError("reduction must be 'mean' or 'sum'")

    def term(step: Step) -> torch.Tensor:
        img = step.image
        dx = (img[..., :, :-1] - img[..., :, 1:]).abs().flatten(1)
        dy = (img[..., :-1, :] - img[..., 1:, :]).abs().flatten(1)
        if reduction == "sum":
            return dx.sum(1) + dy.sum(1)
        return dx.mean(1) + dy.mean(1)
    return Objective(term, "tv")


@register_term("range")
def range_penalty() -> Objective:
    """Mean squared amount by which pixels leave [0, 1]; subtract it to keep images valid."""
    def term(step: Step) -> torch.Tensor:
        img = step.image
        return (F.relu(-img) ** 2 + F.relu(img - 1) ** 2).flatten(1).mean(1)
    return Objective(term, "range")
