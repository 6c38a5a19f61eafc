"""The knobs of the popular CLIP+VQGAN notebooks, mapped onto ``clipxai.ascend`` options.

The names are those of the widely shared "CLIP + VQGAN" course notebook (``learning_rate``,
``batch_size``, ``wd``, ``noise_factor``, ``total_iter``, ``show_step``, ``im_shape``,
``include``/``exclude``/``extras``, ``w1``/``w2``). docs/vqgan.md has the table; this module
is that table as code, so a notebook configuration can be rerun here and recorded.
"""

from __future__ import annotations

import math

# notebook knob -> the ascend option that carries it
KNOBS = {
    "learning_rate": "lr",
    "wd": "weight_decay",
    "batch_size": "seeds",
    "num_crops": "cutouts",
    "noise_factor": "aug_noise",
    "total_iter": "steps",
    "show_step": "snapshot_every",
    "im_shape": "size",
    "include": "prompt",
    "extras": "prompt",
    "exclude": "prompt",
    "w1": "prompt",
    "w2": "prompt",
}
EXCLUDE_WEIGHT = 0.5   # the notebook's beta: weight of the exclude similarity (alpha, the include weight, is 1)


def _escape(text: str) -> str:
    return text.replace(":", "\\:").replace("|", "\\|")


def weighted_prompt(include: str, exclude: str = "", extras: str = "", w1: float = 1.0, w2: float = 1.0,
                    exclude_weight: float = EXCLUDE_WEIGHT) -> str:
    """``"include:w1|extras:w2|exclude:-beta"``: include and extras pull, exclude pushes away."""
    parts = [f"{_escape(include)}:{w1:g}"]
    if extras:
        parts.append(f"{_escape(extras)}:{w2:g}")
    if exclude:
        parts.append(f"{_escape(exclude)}:{-exclude_weight:g}")
    return "|".join(parts)


def notebook_options(include: str | list[str], exclude: str = "", extras: str = "", *, w1: float = 1.0,
                     w2: float = 1.0, learning_rate: float = 0.5, batch_size: int = 1, wd: float = 0.1,
                     noise_factor: float = 0.22, total_iter: int = 100, show_step: int | None = None,
                     im_shape: tuple[int, int, int] | list[int] = (450, 450, 3), num_crops: int = 32,
                     factor: int = 16) -> list[dict]:
    """``clipxai.ascend`` keywords reproducing a notebook configuration, one dict per include prompt.

    The notebook optimizes each include prompt in a fresh run, with AdamW, a latent batch of
    ``batch_size`` images, and ``num_crops`` noisy crops per step; it decodes z without
    snapping it to the codebook and without clamping it, from a noise start. ``im_shape`` is
    (height, width, channels) and is rounded down to multiples of the VQGAN's ``factor``,
    as the notebook's decoder does. Its crop noise is scaled per crop by a uniform random
    factor; ``aug_noise`` gets the same average noise power (``noise_factor / sqrt(3)``).
    """
    height, width = int(im_shape[0]), int(im_shape[1])
    size = (max(factor, width // factor * factor), max(factor, height // factor * factor))
    includes = [include] if isinstance(include, str) else list(include)
    common = dict(
        param="vqgan", optimizer="adamw", lr=learning_rate, weight_decay=wd, seeds=batch_size,
        cutouts=num_crops, aug_noise=noise_factor / math.sqrt(3), steps=total_iter,
        snapshot_every=show_step or total_iter, size=size, similarity="cosine",
        param_options={"init": "noise", "quantize": False, "z_clamp": False},
    )
    return [{"prompt": weighted_prompt(text, exclude, extras, w1, w2), **common,
             "param_options": dict(common["param_options"])} for text in includes]
