"""The convolutional conditional VAE: q(z | x, c) and p(x | z, c).

The encoder halves the image with strided 4x4 convolutions down to 4x4, joins the flat
features with an embedding of the condition c, and gives the mean and log-variance of z.
The decoder maps [z, embedding of c] to a 4x4 map and doubles it back up to the image
size; its output are logits, and ``decode`` turns them into an image in [0, 1]. There is
no batch normalisation, so an image depends only on its own (z, c): the same decoder
serves training, sampling and the ascent parameterization.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from clipxai.errors import ClipxaiError

RECON_LOSSES = ("mse", "bce", "l1")


@dataclass(frozen=True)
class CVAEConfig:
    """Shape of one CVAE; enough to rebuild it from a state dict."""

    cond_dim: int
    size: int = 64           # images are size x size; a power of two, at least 16
    zdim: int = 32
    width: int = 32          # channels after the first convolution; doubles per halving (at most 8x)
    cond_embed: int = 128    # the condition is projected to this width before it joins

    def __post_init__(self):
        if self.size < 16 or self.size & (self.size - 1):
            raise ClipxaiError(f"The CVAE image size must be a power of two of at least 16 (got {self.size}).")
        for name in ("cond_dim", "zdim", "width", "cond_embed"):
            if getattr(self, name) < 1:
                raise ClipxaiError(f"The CVAE's {name} must be positive (got {getattr(self, name)}).")

    @property
    def stages(self) -> int:
        return int(math.log2(self.size // 4))

    def channels(self) -> list[int]:
        return [min(self.width * 2 ** i, 8 * self.width) for i in range(self.stages)]

    def to_dict(self) -> dict:
        return asdict(self)


class CVAE(nn.Module):
    def __init__(self, config: CVAEConfig):
        super().__init__()
        self.config = config
        ch = config.channels()
        act = lambda: nn.LeakyReLU(0.2)  # noqa: E731
        enc, c_in = [], 3
        for c in ch:
            enc += [nn.Conv2d(c_in, c, 4, 2, 1), act()]
            c_in = c
        self.encoder = nn.Sequential(*enc)
        flat = ch[-1] * 16
        self.enc_cond = nn.Sequential(nn.Linear(config.cond_dim, config.cond_embed), act())
        self.to_stats = nn.Linear(flat + config.cond_embed, 2 * config.zdim)
        self.dec_cond = nn.Sequential(nn.Linear(config.cond_dim, config.cond_embed), act())
        self.from_latent = nn.Sequential(nn.Linear(config.zdim + config.cond_embed, flat), act())
        dec = []
        rev = ch[::-1]
        for i, c in enumerate(rev):
            c_out = rev[i + 1] if i + 1 < len(rev) else max(ch[0] // 2, 8)
            dec += [nn.ConvTranspose2d(c, c_out, 4, 2, 1), act()]
        self.decoder = nn.Sequential(*dec, nn.Conv2d(max(ch[0] // 2, 8), 3, 3, 1, 1))
        self._top = ch[-1]

    def encode(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x, c) for images ``x`` in [0, 1]."""
        h = self.encoder(x * 2 - 1).flatten(1)
        stats = self.to_stats(torch.cat([h, self.enc_cond(c)], dim=1))
        mu, logvar = stats.chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)

    def decode_logits(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.from_latent(torch.cat([z, self.dec_cond(c)], dim=1))
        return self.decoder(h.view(-1, self._top, 4, 4))

    def decode(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Images [N, 3, size, size] in [0, 1] for latents z (N, zdim) and conditions c (N, cond_dim)."""
        return torch.sigmoid(self.decode_logits(z, c))

    def forward(self, x: torch.Tensor, c: torch.Tensor, generator: torch.Generator | None = None):
        """Logits of the reconstruction, mu and logvar; z is drawn with ``generator``."""
        mu, logvar = self.encode(x, c)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device="cpu").to(mu.device)
        z = mu + eps * torch.exp(0.5 * logvar)
        return self.decode_logits(z, c), mu, logvar


def kl_per_image(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x,c) || N(0, I)) in nats, one value per row."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def recon_per_image(logits: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """Reconstruction loss summed over pixels and channels, one value per image."""
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    if kind == "mse":
        return (torch.sigmoid(logits) - x).pow(2).flatten(1).sum(1)
    if kind == "l1":
        return (torch.sigmoid(logits) - x).abs().flatten(1).sum(1)
    raise ClipxaiError(f"The reconstruction loss '{kind}' is not one of {', '.join(RECON_LOSSES)}.")
