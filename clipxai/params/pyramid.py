"""The ``pyramid`` parameterization: an image made of perturbations at every resolution.

Direct Ascent Synthesis (Fort & Whitaker 2025, "Direct Ascent Synthesis: Revealing Hidden
Generative Capabilities in Discriminative Models"; zer0int's ``clip-generate.py`` follows it)
optimizes one tensor per resolution, from 1x1 up to the full image, upsamples each to the
image size, sums them and squashes the sum into [0, 1]. A gradient step then moves every
scale at once, and the coarse tensors, fed by the gradient of the whole image, move
fastest: ascent paints shapes and colours before pixel-level detail, where plain pixel
ascent goes straight to adversarial high-frequency patterns.

The recorded latent (``latents.npy``) is every resolution's tensor, flattened and
concatenated in the order of ``info["resolutions"]`` (``info["latent_layout"]`` says
where each starts); when that would be larger than ``RMS_ABOVE`` times the image, it is
instead the root mean square of each resolution's upsampled contribution per colour
channel, ``(resolutions, 3)``: how much each scale makes of the image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from clipxai.errors import ClipxaiError
from clipxai.params.base import ParamContext, Parameterization, clamp_st, register_param

SQUASHES = ("tanh", "sigmoid", "clip")
# Concatenated latents are kept while they hold at most this many times the image's values.
RMS_ABOVE = 4


def ladder(size: int) -> list[int]:
    """1, 2, 3, 4, 6, 8, 12, 16, ... (powers of two and 1.5 times them) below ``size``, then ``size``."""
    out, r = [], 1
    while r < size:
        out.append(r)
        if r >= 2 and r * 3 // 2 < size and (r * 3) % 2 == 0:
            out.append(r * 3 // 2)
        r *= 2
    return sorted(set(out)) + [size]


def parse_resolutions(value, size: int) -> list[int]:
    """``"auto"`` (the ladder), ``"all"`` (every side from 1 to ``size``, as DAS), or sides like ``"1,4,16,64"``."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return ladder(size)
        if text == "all":
            return list(range(1, size + 1))
        try:
            value = [int(v) for v in text.replace(",", " ").split()]
        except ValueError:
            raise ClipxaiError(f"The pyramid option resolutions={value!r} is neither auto, all, nor whole numbers "
                               f"like 1,4,16,{size}.") from None
    try:
        sides = sorted({int(v) for v in value})
    except (TypeError, ValueError):
        raise ClipxaiError(f"The pyramid option resolutions={value!r} is neither auto, all, nor a list of whole "
                           f"numbers like [1, 4, 16, {size}].") from None
    if not sides or sides[0] < 1 or sides[-1] > size:
        raise ClipxaiError(f"The pyramid resolutions must lie between 1 and the image side {size} (got {list(value)}).")
    return sides


def upsampling_matrix(side: int, size: int) -> torch.Tensor:
    """(size, side): bicubic upsampling of one axis from ``side`` to ``size`` values, as a matrix.

    Upsampling is separable, so a level's image is ``M_h @ level @ M_w.T``; the same values as
    ``F.interpolate(mode="bicubic")`` (to ~1e-6) at a fraction of its cost on the CPU.
    """
    if side == size:
        return torch.eye(size)
    if side == 1:
        return torch.ones(size, 1)
    eye = torch.eye(side).view(side, 1, 1, side)
    return F.interpolate(eye, size=(1, size), mode="bicubic", align_corners=False).view(side, size).T.contiguous()


@register_param("pyramid")
def pyramid(ctx: ParamContext, *, resolutions: str = "auto", squash: str = "tanh", sigma: float = 0.0,
            mean: float = 0.5) -> Parameterization:
    """Perturbations at every resolution, upsampled and summed, squashed into [0,1] (Direct Ascent Synthesis).

    ``resolutions``: ``auto`` (1, 2, 3, 4, 6, 8, 12, ... and the full side), ``all`` (every side,
    as DAS does; slow for large images) or a list of sides. Non-square images use ``side x
    side * W/H`` per level. ``squash``: ``tanh`` ((tanh(x)+1)/2, as DAS), ``sigmoid``, or
    ``clip`` (clamped, straight-through gradient). ``mean``: the start's grey level; ``sigma``:
    the std of the start's random perturbation, shared evenly over the resolutions.
    """
    if squash not in SQUASHES:
        raise ClipxaiError(f"The pyramid option squash={squash!r} is not one of {', '.join(SQUASHES)}.")
    if sigma < 0:
        raise ClipxaiError(f"The pyramid option sigma must not be negative (got {sigma}).")
    if not 0 < mean < 1 and squash != "clip":
        raise ClipxaiError(f"The pyramid option mean must lie strictly between 0 and 1 for squash={squash} (got {mean}).")
    h, w = ctx.shape
    sides = parse_resolutions(resolutions, max(h, w))
    shapes = [(max(1, round(s * h / max(h, w))), max(1, round(s * w / max(h, w)))) for s in sides]
    per_level = sigma / math.sqrt(len(sides))
    levels = [(ctx.randn(3, *shape) * per_level).requires_grad_(True) for shape in shapes]
    if squash == "tanh":
        base, squash_fn = math.atanh(2 * mean - 1), (lambda x: (torch.tanh(x) + 1) / 2)
    elif squash == "sigmoid":
        base, squash_fn = math.log(mean / (1 - mean)), torch.sigmoid
    else:
        base, squash_fn = mean, clamp_st

    mats = [(upsampling_matrix(a, h).to(ctx.device), upsampling_matrix(b, w).to(ctx.device)) for a, b in shapes]

    def raw() -> list[torch.Tensor]:
        return [mh @ level @ mw.T for level, (mh, mw) in zip(levels, mats)]

    def image_fn() -> torch.Tensor:
        return squash_fn(base + sum(raw()))

    values = sum(3 * a * b for a, b in shapes)
    if values <= RMS_ABOVE * 3 * h * w:
        offsets = [0]
        for a, b in shapes[:-1]:
            offsets.append(offsets[-1] + 3 * a * b)
        layout = {"kind": "concatenated", "offsets": offsets, "shapes": [[3, a, b] for a, b in shapes]}

        def latent_fn() -> torch.Tensor:
            return torch.cat([level.flatten(1) for level in levels], dim=1)
    else:
        layout = {"kind": "rms", "shape": [len(sides), 3],
                  "meaning": "root mean square of each resolution's upsampled contribution, per colour channel"}

        def latent_fn() -> torch.Tensor:
            return torch.stack([part.pow(2).mean(dim=(-2, -1)).sqrt() for part in raw()], dim=1)

    info = {"kind": "pyramid", "resolutions": sides, "shapes": [list(s) for s in shapes], "squash": squash,
            "sigma": sigma, "mean": mean, "latent_layout": layout,
            "reference": "Direct Ascent Synthesis (Fort & Whitaker 2025)"}
    return Parameterization(levels, image_fn, latent_fn=latent_fn, info=info)
