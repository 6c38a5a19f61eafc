"""Parameterizations: what the optimizer actually changes, and how it becomes an image.

Every factory returns a ``Parameterization`` holding the leaf tensors and an
``image_fn()`` giving ``[K,3,H,W]`` images (K = number of seeds batched together). The
engine never asks which kind it has: pixels, Fourier coefficients and generator latents
all look the same to it.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from fnmatch import fnmatch
from typing import Callable

import torch

from .errors import ClipxaiError


@dataclass
class Parameterization:
    """Leaf tensors to optimize, the image they make, and what to record as the latent."""

    params: list[torch.Tensor]
    image_fn: Callable[[], torch.Tensor]
    latent_fn: Callable[[], torch.Tensor] | None = None
    info: dict = field(default_factory=dict)

    def latent(self) -> torch.Tensor:
        """The parameterization's own state, batch-first (what latents.npy records)."""
        return (self.latent_fn or (lambda: self.params[0]))().detach()


# name -> factory(batch, size, device, generators, **options) -> Parameterization
_PARAMS: dict[str, Callable[..., Parameterization]] = {}
_DESCRIPTIONS: dict[str, str] = {}
# Parameterizations whose code lives elsewhere (optional extras); imported on first use.
_PLUGIN_MODULES = {"vqgan": "clipxai.vqgan", "cvae": "clipxai.cvae.param"}


def register_param(name: str):
    """Decorator registering a parameterization factory under ``name``."""
    def deco(fn):
        _PARAMS[name] = fn
        _DESCRIPTIONS[name] = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        return fn
    return deco


def list_params(pattern: str = "*") -> list[str]:
    return sorted(n for n in set(_PARAMS) | set(_PLUGIN_MODULES) if fnmatch(n, pattern))


def make_param(name: str, *, batch: int, size: tuple[int, int], device: torch.device,
               generators: list[torch.Generator], **options) -> Parameterization:
    """Build the named parameterization; ``generators`` holds one per batch row (seed)."""
    if name not in _PARAMS and name in _PLUGIN_MODULES:
        try:
            importlib.import_module(_PLUGIN_MODULES[name])
        except ImportError as err:
            raise ClipxaiError(
                f"The '{name}' parameterization needs an optional extra that is not installed ({err})."
            ) from err
    if name not in _PARAMS:
        raise ClipxaiError(f"Unknown parameterization '{name}'; choose one of {', '.join(list_params())}.")
    if len(generators) != batch:
        raise ValueError("one generator per batch row is required")
    factory = _PARAMS[name]
    if "prompt" in options and "prompt" not in inspect.signature(factory).parameters:
        options.pop("prompt")  # only generators conditioned on text (cvae) take the prompt
    return factory(batch=batch, size=size, device=device, generators=generators, **options)


def _per_seed_randn(shape, generators, device, dtype=torch.float32) -> torch.Tensor:
    """Stack one normal draw per seed, each from its own generator (seeds stay independent)."""
    return torch.stack([torch.randn(shape, generator=g, dtype=dtype, device="cpu") for g in generators]).to(device)


@register_param("pixels")
def pixels(*, batch: int, size: tuple[int, int], device: torch.device, generators: list[torch.Generator],
           sigma: float = 0.01, mean: float = 0.0, clamp: bool = False, tint: float = 0.0,
           **_) -> Parameterization:
    """The pixels themselves, initialised as N(mean, sigma) noise (the original: N(0, 0.01)).

    ``tint`` > 0 adds one N(0, tint) offset per colour channel and seed to the whole image, so
    that seeds start from different hues rather than from the same grey: the way to ask which
    of a prompt's meanings each starting point falls to.
    """
    h, w = size
    x = _per_seed_randn((3, h, w), generators, device) * sigma + mean
    if tint > 0:
        x = x + _per_seed_randn((3, 1, 1), generators, device) * tint
    x.requires_grad_(True)
    image_fn = (lambda: _clamp_st(x)) if clamp else (lambda: x)
    return Parameterization([x], image_fn, info={"kind": "pixels", "mean": mean, "sigma": sigma, "clamp": clamp,
                                                 "tint": tint})


def _clamp_st(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0,1] in the forward pass, identity gradient (pixels pushed out can come back)."""
    return x + (x.clamp(0, 1) - x).detach()


# Colour decorrelation: the square root of the colour covariance of natural images
# (ImageNet), so that independent Fourier coefficients give natural colour statistics.
_COLOR_CORRELATION = torch.tensor([[0.26, 0.09, 0.02],
                                   [0.27, 0.00, -0.05],
                                   [0.27, -0.09, 0.03]])
_MAX_NORM = float(_COLOR_CORRELATION.norm(dim=0).max())


@register_param("fourier")
def fourier(*, batch: int, size: tuple[int, int], device: torch.device, generators: list[torch.Generator],
            sigma: float = 0.01, decay: float = 1.0, **_) -> Parameterization:
    """Decorrelated-colour Fourier coefficients with 1/f scaling, squashed by a sigmoid."""
    h, w = size
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    freqs = torch.sqrt(fx * fx + fy * fy)
    scale = (1.0 / torch.clamp(freqs, min=1.0 / max(h, w)) ** decay).to(device)
    scale = scale * (h * w) ** 0.5 / scale.max()  # unit-ish pixel variance before sigmoid
    coeffs = (_per_seed_randn((3, h, w // 2 + 1, 2), generators, device) * sigma).requires_grad_(True)
    color = (_COLOR_CORRELATION / _MAX_NORM).to(device)

    def image_fn() -> torch.Tensor:
        spectrum = torch.view_as_complex(coeffs) * scale
        decorrelated = torch.fft.irfft2(spectrum, s=(h, w), norm="ortho")
        rgb = torch.einsum("kchw,dc->kdhw", decorrelated, color)
        return torch.sigmoid(rgb)

    return Parameterization([coeffs], image_fn, info={"kind": "fourier", "sigma": sigma, "decay": decay})
