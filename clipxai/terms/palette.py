"""The palette term: pull the image's colours toward a given palette.

``--term palette:#rrggbb,#rrggbb,...[=W]`` adds minus the sliced Wasserstein distance between
the colours of the image's pixels and the palette's colours (each colour of the palette an
equal share): along each of a fixed set of directions of RGB space, the sorted projections of
the pixels are compared with the quantiles of the palette's projections, and the mean squared
gap over directions is the squared distance (Rabin, Peyré, Delon & Bernot 2011, "Wasserstein
barycenter and its application to texture mixing"; the colour transfer of Bonneel et al. 2015).
It asks for the palette's colours in the palette's proportions, not for each pixel to be near
some palette colour, so an image cannot satisfy it by turning one colour alone.
"""

from __future__ import annotations

import re

import torch

from clipxai.errors import TermError
from clipxai.terms.base import Objective, Step, register_term

DIRECTIONS = 64   # projections of RGB space; fixed (seed 0), so a resumed run sees the same term
_HEX = re.compile(r"#?([0-9a-fA-F]{6})\Z")


def parse_colours(text: str) -> torch.Tensor:
    """``"#ff0000,#00ff00"`` -> (P,3) float RGB in [0,1]; one sentence for anything else."""
    items = [c.strip() for c in text.split(",") if c.strip()]
    if not items:
        raise TermError("The palette term needs at least one colour: palette:#rrggbb,#rrggbb,...")
    colours = []
    for item in items:
        match = _HEX.match(item)
        if not match:
            raise TermError(f"The palette colour '{item}' is not a colour written #rrggbb.")
        value = match.group(1)
        colours.append([int(value[i:i + 2], 16) / 255.0 for i in (0, 2, 4)])
    return torch.tensor(colours, dtype=torch.float32)


def directions(count: int = DIRECTIONS) -> torch.Tensor:
    """(count,3) unit directions of RGB space, the same every time (drawn from a generator seeded 0)."""
    d = torch.randn(count, 3, generator=torch.Generator().manual_seed(0))
    return d / d.norm(dim=1, keepdim=True)


def sliced_wasserstein(pixels: torch.Tensor, palette: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """Sliced 2-Wasserstein distance of each seed's pixel colours (K,N,3) to the palette (P,3): (K,)."""
    n = pixels.shape[1]
    projected = torch.sort(pixels @ dirs.T, dim=1).values                    # (K,N,D)
    targets = torch.sort(palette @ dirs.T, dim=0).values                     # (P,D)
    # the palette's quantile at each pixel's rank: every colour holds an equal share of the pixels
    ranks = ((torch.arange(n, device=pixels.device) + 0.5) * palette.shape[0] / n).long()
    quantiles = targets[ranks.clamp(max=palette.shape[0] - 1)]               # (N,D)
    return (projected - quantiles).pow(2).mean(dim=(1, 2)).sqrt()


def palette_distance(images: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """The distance of each image's colours ([K,3,H,W], clipped to [0,1]) to ``palette`` (P,3): (K,)."""
    pixels = images.clamp(0, 1).flatten(2).transpose(1, 2)
    return sliced_wasserstein(pixels, palette.to(images), directions().to(images))


@register_term("palette")
def palette(colours: str | torch.Tensor | None = None) -> Objective:
    """palette:#rrggbb,#rrggbb,...: minus the sliced Wasserstein distance of the pixels' colours to the palette."""
    if colours is None:
        raise TermError("The palette term needs its colours: palette:#rrggbb,#rrggbb,...")
    target = parse_colours(colours) if isinstance(colours, str) else torch.as_tensor(colours, dtype=torch.float32)
    if target.dim() != 2 or target.shape[1] != 3:
        raise TermError(f"A palette is a list of RGB colours, shape (P, 3); got shape {tuple(target.shape)}.")
    shown = ",".join("#" + "".join(f"{round(float(v) * 255):02x}" for v in c) for c in target)

    def term(step: Step) -> torch.Tensor:
        return -palette_distance(step.image, target)
    return Objective(term, f"palette({shown})")


def parse_palette(spec: str) -> Objective | None:
    """``palette:#rrggbb,...`` as the palette term; None when ``spec`` is not one."""
    kind, sep, rest = spec.partition(":")
    if kind.strip() != "palette" or not sep:
        return None
    return palette(rest)
