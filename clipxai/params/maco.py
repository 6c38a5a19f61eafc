"""The ``maco`` parameterization: optimize the Fourier phase only, the spectrum's magnitude held fixed.

MACO (Fel et al. 2023, "Unlocking Feature Visualization for Deeper Networks with MAgnitude
Constrained Optimization") keeps the amplitude spectrum of the image at that of natural
images and lets the optimizer change only the phase, so the image cannot escape into the
high-frequency patterns that plain pixels or free Fourier coefficients drift to. The fixed
magnitude is the 1/f law of natural images by default, or the mean amplitude spectrum of the
images of ``reference`` (a folder). Like the ``fourier`` parameterization it works in a
decorrelated colour space and squashes by a sigmoid.

MACO also returns an importance mask with each image: the magnitude of the gradient of the
objective on the image, accumulated over every step of the ascent (its "transparency"). It is
kept as the parameterization's buffer ``importance`` (K,H,W), saved in checkpoints and recorded
as the ``importance`` array of the run.
"""

from __future__ import annotations

import hashlib
import math

import torch

from clipxai.errors import ClipxaiError
from clipxai.params.base import ParamContext, Parameterization, register_param
from clipxai.params.fourier import _COLOR_CORRELATION, _MAX_NORM
from clipxai.util.files import image_files


@register_param("maco")
def maco(ctx: ParamContext, *, reference: str | None = None, decay: float = 1.0,
         contrast: float = 1.0) -> Parameterization:
    """Phase-only Fourier optimisation with the magnitude fixed (1/f, or the mean spectrum of ``reference``).

    ``decay`` is the exponent of the 1/f law (ignored with a reference); ``contrast`` is the
    standard deviation each image has before the sigmoid (MACO standardizes the image there).
    """
    if not math.isfinite(decay) or decay < 0:
        raise ClipxaiError(f"The maco option decay must be a number that is not negative (got {decay}).")
    if not math.isfinite(contrast) or contrast <= 0:
        raise ClipxaiError(f"The maco option contrast must be a positive number (got {contrast}).")
    h, w = ctx.shape
    color = (_COLOR_CORRELATION / _MAX_NORM).to(ctx.device)
    if reference:
        magnitude, digest, count = reference_magnitude(reference, (h, w), color)
    else:
        magnitude, digest, count = power_law_magnitude((h, w), decay), None, 0
    magnitude = magnitude.to(ctx.device)
    # the phase starts uniform on [-pi, pi], drawn from each seed's own generator
    phase = torch.stack([(torch.rand((3, h, w // 2 + 1), generator=g) * 2 - 1) * math.pi
                         for g in ctx.generators]).to(ctx.device).requires_grad_(True)
    importance = torch.zeros(ctx.batch, h, w, device=ctx.device)

    def accumulate(grad: torch.Tensor) -> None:
        with torch.no_grad():
            importance.add_(grad.detach().abs().mean(dim=1).to(importance.dtype))

    def image_fn() -> torch.Tensor:
        spectrum = torch.polar(magnitude.expand_as(phase), phase)
        decorrelated = torch.fft.irfft2(spectrum, s=(h, w), norm="ortho")
        rgb = torch.einsum("kchw,dc->kdhw", decorrelated, color)
        centred = rgb - rgb.mean(dim=(1, 2, 3), keepdim=True)
        scaled = centred / (centred.std(dim=(1, 2, 3), keepdim=True) + 1e-8) * contrast
        image = torch.sigmoid(scaled)
        if image.requires_grad and torch.is_grad_enabled():
            image.register_hook(accumulate)  # every backward through the step's image adds to the mask
        return image

    info = {"kind": "maco", "reference": str(reference) if reference else None, "reference_images": count,
            "reference_sha256": digest, "decay": decay if not reference else None, "contrast": contrast}
    return Parameterization([phase], image_fn, info=info, buffers={"importance": importance})


def power_law_magnitude(shape: tuple[int, int], decay: float = 1.0) -> torch.Tensor:
    """The 1/f^decay amplitude of natural images on the rfft grid of ``shape``, (1,H,W//2+1).

    Scaled so that an image of random phase has unit-ish pixel variance (the image is
    standardized afterwards anyway; the scale only keeps the numbers moderate).
    """
    h, w = shape
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    freqs = torch.sqrt(fx * fx + fy * fy)
    amplitude = 1.0 / torch.clamp(freqs, min=1.0 / max(h, w)) ** decay
    return (amplitude / amplitude.pow(2).mean().sqrt()).unsqueeze(0)


def reference_magnitude(folder: str, shape: tuple[int, int], color: torch.Tensor) -> tuple[torch.Tensor, str, int]:
    """The mean amplitude spectrum of the images of ``folder`` in the decorrelated colour space, (3,H,W//2+1),
    with a sha256 of the images read (so a run says which spectrum it held) and their number."""
    from clipxai.prompts import load_image  # noqa: PLC0415

    files = image_files(folder, "maco reference")
    digest = hashlib.sha256()
    total = None
    inverse = torch.linalg.inv(color.cpu())
    for path in files:
        digest.update(path.read_bytes())
        image = load_image(path, shape)[0]                     # (3,H,W) in [0,1]
        logits = torch.logit(image.clamp(1e-3, 1 - 1e-3))     # undo the sigmoid the parameterization applies
        decorrelated = torch.einsum("chw,dc->dhw", logits, inverse)
        amplitude = torch.fft.rfft2(decorrelated, norm="ortho").abs()
        total = amplitude if total is None else total + amplitude
    magnitude = total / len(files)
    magnitude[:, 0, 0] = 0.0  # the mean colour is set by the standardization, not the spectrum
    if not torch.isfinite(magnitude).all() or not magnitude.any():
        raise ClipxaiError(f"The maco reference {folder} gives no usable spectrum (its images are flat).")
    return magnitude, digest.hexdigest(), len(files)
