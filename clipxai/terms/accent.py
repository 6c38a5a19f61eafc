"""Feature accentuation: keep the ascended image's activations close to those of the natural image it started from.

Hamblin, Fel, Saha, Konkle & Alvarez, "Feature Accentuation: Revealing 'What' Features Respond to
in Natural Images" (2024): start the ascent from a real picture and hold the result near it in
the model's own activations at chosen layers, so what changes is what the prompt (or feature)
adds to that picture, and where. ``--accentuate IMAGE`` starts the pixels from the image and
subtracts this term, times ``--accent-weight``: the squared distance between the current
image's activations and the start's at each layer of ``--accent-layers`` (every token, the
un-augmented image), relative to the start's squared norm, averaged over the layers. The
start's activations are taken once, without a gradient; the current image's once per step
(one extra forward of the K images beside the views).
"""

from __future__ import annotations

import torch

from clipxai.errors import ClipxaiError, TermError
from clipxai.models.components import vision_tower
from clipxai.terms.base import Objective, Step
from clipxai.terms.features import module_for


def parse_layers(spec: str | None) -> list[str] | None:
    """``"blocks.1,blocks.3"`` -> the layer names (None: the middle block of the tower)."""
    if spec is None:
        return None
    layers = [s.strip() for s in str(spec).split(",") if s.strip()]
    if not layers:
        raise TermError("--accent-layers names no layer; give component names such as blocks.2,blocks.3.")
    return layers


def middle_block(model) -> str:
    """The default layer: the middle residual block of the image tower (``blocks.N``)."""
    return f"blocks.{vision_tower(model).layers // 2}"


def accent(start: torch.Tensor, layers: list[str] | None = None) -> Objective:
    """accent: relative squared distance of the image's activations at ``layers`` to the start image's; subtract it.

    ``start`` is the natural image ([1,3,H,W] or [3,H,W] in [0,1]) the ascent began from.
    """
    start = start if start.dim() == 4 else start.unsqueeze(0)
    cache: dict[int, tuple[list[str], dict[str, torch.Tensor]]] = {}

    def reference(step: Step) -> tuple[list[str], dict[str, torch.Tensor]]:
        model = step.model
        if id(model) not in cache:
            names = [module_for(model, layer) for layer in (layers or [middle_block(model)])]
            with torch.no_grad():
                cache[id(model)] = (names, _activations(step, start.to(step.image.device), names))
        return cache[id(model)]

    def term(step: Step) -> torch.Tensor:
        names, before = reference(step)
        now = _activations(step, step.image, names)
        distances = [(now[n] - before[n]).pow(2).flatten(1).sum(1) / before[n].pow(2).sum().clamp_min(1e-12)
                     for n in names]
        return torch.stack(distances).mean(dim=0)
    label = ",".join(layers) if layers else "middle block"
    return Objective(term, f"accent({label})")


def _activations(step: Step, images: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
    """Every token's output of each named module for whole ``images``, graph kept (float32)."""
    model = step.model
    try:
        with model.hooked(names) as live:
            model.embed_images(images, normalize=step.state.get("normalize", True))
    except ClipxaiError as err:  # an unknown module: the hooks' sentence
        raise TermError(str(err)) from err
    return {n: live.outputs[n].float() for n in names}
