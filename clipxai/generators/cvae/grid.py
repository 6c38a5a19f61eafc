"""Image grids as PNG files: training previews and ``clipxai cvae sample`` output."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch


def make_grid(images: torch.Tensor | np.ndarray, ncol: int | None = None, pad: int = 2) -> np.ndarray:
    """[N,3,H,W] in [0,1] -> one uint8 [rows*(H+pad)+pad, cols*(W+pad)+pad, 3] image, row-major."""
    x = images.detach().float().cpu().numpy() if torch.is_tensor(images) else np.asarray(images, np.float32)
    n, _, h, w = x.shape
    ncol = ncol or max(1, math.ceil(math.sqrt(n)))
    nrow = max(1, math.ceil(n / ncol))
    grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, 3), 255, np.uint8)
    tiles = (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1)
    for i in range(n):
        r, c = divmod(i, ncol)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = tiles[i]
    return grid


def save_grid(images, path: str | Path, ncol: int | None = None) -> Path:
    """Write ``make_grid(images, ncol)`` as a PNG (parent folders are created)."""
    from PIL import Image  # noqa: PLC0415

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(make_grid(images, ncol)).save(path)
    return path
