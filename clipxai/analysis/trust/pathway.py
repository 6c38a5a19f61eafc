"""Pathways: does an image travel through the image tower the way natural images do?

Layer by layer (the image tower's residual blocks, the model's default hook points), an
image's pooled activation (mean over tokens, the recorded layout) is compared with natural
reference images: its Euclidean distance from their mean, divided by the median distance of
each reference image from the mean of the others (leave-one-out). So a natural image sits
near 1 at every layer, and a pattern that reaches the prompt by an unnatural route stands out
at some layer even when its final embedding looks right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from clipxai.analysis.trust.judges import unit
from clipxai.models.base import ClipModel

# An image whose distance passes this many typical natural distances at some layer has an
# unusual pathway.
PATHWAY_MAX = 3.0


@torch.no_grad()
def embed_with_activations(
    model: ClipModel, images: torch.Tensor, layers: list[str] | None = None, batch_size: int = 64
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Unit image embeddings [N, D] and pooled activations {layer: [N, width]}, from one forward pass."""
    names = model.hook_points(None) if layers is None else list(layers)
    x = torch.as_tensor(images, dtype=torch.float32)
    embs, acts = [], {n: [] for n in names}
    for i in range(0, len(x), batch_size):
        chunk = x[i : i + batch_size].to(model.device)
        with model.capture(names, batch=len(chunk)) as store:
            embs.append(unit(model.embed_images(chunk)).cpu())
        for n in names:
            acts[n].append(store[n].float().cpu())
    return torch.cat(embs), {n: torch.cat(v) for n, v in acts.items()}


def pooled_activations(model: ClipModel, images: torch.Tensor, layers: list[str] | None = None) -> dict:
    """Pooled activations {layer: [N, width]} of the image tower's blocks for ``images``."""
    return embed_with_activations(model, images, layers)[1]


@dataclass
class NaturalProfile:
    """Per layer: the mean pooled activation of natural images and their typical distance from it."""

    mean: dict[str, torch.Tensor]
    scale: dict[str, float]
    count: int

    @property
    def layers(self) -> list[str]:
        return list(self.mean)


def natural_profile(activations: dict[str, torch.Tensor]) -> NaturalProfile:
    """The profile of natural images' activations; the scale is the median leave-one-out distance."""
    mean, scale, n = {}, {}, 0
    for layer, a in activations.items():
        n = len(a)
        if n < 3:
            raise ValueError(f"a natural profile needs at least 3 reference images, got {n}")
        total = a.sum(dim=0)
        loo = (total[None] - a) / (n - 1)  # the mean of the others, for each image
        d = (a - loo).norm(dim=1)
        mean[layer] = total / n
        scale[layer] = max(float(d.median()), 1e-12)
    return NaturalProfile(mean=mean, scale=scale, count=n)


def distances(profile: NaturalProfile, activations: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Per layer, each image's distance from the natural mean in units of the natural scale, (N,)."""
    return {
        layer: ((activations[layer] - profile.mean[layer]).norm(dim=1) / profile.scale[layer])
        .numpy()
        .astype(np.float64)
        for layer in profile.layers
    }


def pathway(
    model: ClipModel, images: torch.Tensor, reference: torch.Tensor, layers: list[str] | None = None
) -> dict[str, float]:
    """``{layer: distance}`` of the images (the mean over images) from the natural reference images."""
    profile = natural_profile(pooled_activations(model, reference, layers))
    return {
        k: float(v.mean()) for k, v in distances(profile, pooled_activations(model, images, layers)).items()
    }


def pathway_max(by_layer: dict[str, float]) -> float | None:
    """The largest distance over layers (None without layers)."""
    return float(max(by_layer.values())) if by_layer else None


def short_layer(name: str) -> str:
    """A layer's name without the tower's prefix when it ends in a block number (``block 7``)."""
    last = name.rsplit(".", 1)[-1]
    return f"block {last}" if last.isdigit() else name
