"""The ``pixels`` parameterization: the image itself is what the optimizer changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from clipxai.errors import ClipxaiError
from clipxai.params.base import ParamContext, Parameterization, clamp_st, register_param


@register_param("pixels")
def pixels(ctx: ParamContext, *, sigma: float = 0.01, mean: float = 0.0, clamp: bool = False,
           tint: float = 0.0, init_image: str | None = None) -> Parameterization:
    """The pixels themselves, initialised as N(mean, sigma) noise (the original: N(0, 0.01)).

    ``tint`` > 0 adds one N(0, tint) offset per colour channel and seed to the whole image, so
    that seeds start from different hues: the way to ask which of a prompt's meanings each
    starting point falls to. ``init_image`` starts every seed from one image instead of noise:
    a PNG/JPEG gives pixels in [0,1] at the run's size; a ``.npy`` file gives a raw float
    tensor ([3,H,W] or [1,3,H,W]) used exactly as it is (how two programs start from one tensor).
    """
    if sigma < 0:
        raise ClipxaiError(f"--sigma must not be negative (got {sigma}).")
    if tint < 0:
        raise ClipxaiError(f"--init-tint must not be negative (got {tint}).")
    h, w = ctx.shape
    if init_image:
        start = load_init_image(init_image, (h, w)).to(ctx.device)
        x = start.expand(ctx.batch, -1, -1, -1).clone()
    else:
        x = ctx.randn(3, h, w) * sigma + mean
        if tint > 0:
            x = x + ctx.randn(3, 1, 1) * tint
    x.requires_grad_(True)
    image_fn = (lambda: clamp_st(x)) if clamp else (lambda: x)
    info = {"kind": "pixels", "mean": mean, "sigma": sigma, "clamp": clamp, "tint": tint,
            "init_image": str(init_image) if init_image else None}
    return Parameterization([x], image_fn, info=info)


def load_init_image(path: str | Path, size: tuple[int, int]) -> torch.Tensor:
    """A starting image as [1,3,H,W] float32: an image file in [0,1], or a raw ``.npy`` tensor."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ClipxaiError(f"The init image {path} does not exist.")
    if path.suffix.lower() != ".npy":
        from clipxai.prompts import load_image  # noqa: PLC0415

        return load_image(path, size)
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise ClipxaiError(f"The init image {path} is not a readable .npy array ({type(err).__name__}).") from err
    if not np.issubdtype(arr.dtype, np.floating):
        raise ClipxaiError(f"The init image {path} holds {arr.dtype} values; a .npy start must be a float array.")
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3 or arr.shape[0] != 3:
        raise ClipxaiError(f"The init image {path} has shape {arr.shape}; a .npy start must be [3,H,W] or [1,3,H,W].")
    if tuple(arr.shape[1:]) != tuple(size):
        raise ClipxaiError(
            f"The init image {path} is {arr.shape[2]}x{arr.shape[1]} but the run's images are {size[1]}x{size[0]}; "
            f"pass --size {arr.shape[2]} {arr.shape[1]}."
        )
    if not np.isfinite(arr).all():
        raise ClipxaiError(f"The init image {path} holds NaN or infinite values.")
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).unsqueeze(0)
