"""The ``fourier`` parameterization: decorrelated colour, 1/f-scaled Fourier coefficients."""

from __future__ import annotations

import torch

from clipxai.params.base import ParamContext, Parameterization, register_param

# Colour decorrelation: the square root of the colour covariance of natural images
# (ImageNet), so that independent Fourier coefficients give natural colour statistics.
_COLOR_CORRELATION = torch.tensor([[0.26, 0.09, 0.02],
                                   [0.27, 0.00, -0.05],
                                   [0.27, -0.09, 0.03]])
_MAX_NORM = float(_COLOR_CORRELATION.norm(dim=0).max())


@register_param("fourier")
def fourier(ctx: ParamContext, *, sigma: float = 0.01, decay: float = 1.0) -> Parameterization:
    """Decorrelated-colour Fourier coefficients with 1/f scaling, squashed by a sigmoid."""
    h, w = ctx.shape
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    freqs = torch.sqrt(fx * fx + fy * fy)
    scale = (1.0 / torch.clamp(freqs, min=1.0 / max(h, w)) ** decay).to(ctx.device)
    scale = scale * (h * w) ** 0.5 / scale.max()  # unit-ish pixel variance before sigmoid
    coeffs = (ctx.randn(3, h, w // 2 + 1, 2) * sigma).requires_grad_(True)
    color = (_COLOR_CORRELATION / _MAX_NORM).to(ctx.device)

    def image_fn() -> torch.Tensor:
        spectrum = torch.view_as_complex(coeffs) * scale
        decorrelated = torch.fft.irfft2(spectrum, s=(h, w), norm="ortho")
        rgb = torch.einsum("kchw,dc->kdhw", decorrelated, color)
        return torch.sigmoid(rgb)

    return Parameterization([coeffs], image_fn, info={"kind": "fourier", "sigma": sigma, "decay": decay})
