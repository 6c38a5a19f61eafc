"""Batched augmentation: random cutouts with jitter and additive noise, one call for all views.

Each cutout is an affine crop (scale and offset) sampled by ``grid_sample`` at the model's
input resolution, so C cutouts of K images are one tensor op and one ``encode_image``
call. Every random number comes from the seed's own ``torch.Generator``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from clipxai.ascent.config import AugmentConfig


class Augment:
    """Callable turning images [K,3,H,W] into views [K*C,3,R,R] (C = max(cutouts, 1))."""

    def __init__(self, config: AugmentConfig, resolution: int, generators: list[torch.Generator]):
        self.config = config
        self.resolution = resolution
        self.generators = generators
        self._fixed_states = [g.get_state() for g in generators] if config.fixed else None

    def _sample(self, g: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config
        scale = cfg.cut_min + (cfg.cut_max - cfg.cut_min) * torch.rand(n, generator=g)
        # Offsets keep the crop inside the image, then jitter may push it a little past.
        room = (1 - scale).unsqueeze(1)
        offset = (torch.rand(n, 2, generator=g) * 2 - 1) * room
        offset = offset + (torch.rand(n, 2, generator=g) * 2 - 1) * 2 * cfg.jitter
        return scale, offset

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        k = images.shape[0]
        cfg, r = self.config, self.resolution
        if cfg.cutouts == 0:
            if images.shape[-2:] != (r, r):
                images = F.interpolate(images, size=(r, r), mode="bilinear", align_corners=False, antialias=True)
            return images
        if self._fixed_states is not None:
            for g, state in zip(self.generators, self._fixed_states):
                g.set_state(state)
        c = cfg.cutouts
        scales, offsets, noises = [], [], []
        for g in self.generators:
            s, o = self._sample(g, c)
            scales.append(s)
            offsets.append(o)
            if cfg.noise > 0:
                noises.append(torch.randn(c, 3, r, r, generator=g))
        scale = torch.cat(scales).to(images.device, images.dtype)
        offset = torch.cat(offsets).to(images.device, images.dtype)
        theta = torch.zeros(k * c, 2, 3, device=images.device, dtype=images.dtype)
        theta[:, 0, 0] = scale
        theta[:, 1, 1] = scale
        theta[:, :, 2] = offset
        grid = F.affine_grid(theta, (k * c, 3, r, r), align_corners=False)
        source = images.repeat_interleave(c, dim=0)
        views = F.grid_sample(source, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        if noises:
            views = views + cfg.noise * torch.cat(noises).to(images.device, images.dtype)
        return views
