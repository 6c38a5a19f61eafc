"""Perturbations a picture survives and an adversarial pattern does not, and the ratio that says which.

Six fixed, deterministic changes that leave what an image shows alone: a small shift, a small
crop resized back, a Gaussian blur, a JPEG round trip and pixel noise at two strengths (one
fixed noise field per size, the same for every image, so a result does not depend on the
batch). Sizes are fractions of the image side, so a 64-pixel toy image and a 224-pixel one
are changed alike. An adversarial pattern lives in fine pixel detail; a concept does not.
"""

from __future__ import annotations

import io
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from clipxai.analysis.trust.judges import image_embeddings, noise_images, robust_location, text_embeddings
from clipxai.models.base import ClipModel

SHIFT_FRACTION = 1 / 16  # shift right and down by 1/16 of the side (4 px at 64), edges replicated
CROP_KEEP = 0.875  # keep the central 87.5% of each side, resized back (bilinear, antialiased)
BLUR_SIGMA_FRACTION = 1 / 64  # Gaussian blur with sigma = side / 64 (1 px at 64, 3.5 px at 224)
JPEG_QUALITY = 75  # PIL JPEG round trip at this quality (4:2:0 chroma, PIL's default)
NOISE_WEAK, NOISE_STRONG = 0.02, 0.06  # pixel noise SD, in [0, 1] units
NOISE_SEED = 1234  # the noise field's seed
# A robustness ratio is taken over the similarity above the noise baseline; its denominator
# is at least ROBUST_FLOOR_SD noise-baseline SDs (and at least ROBUST_FLOOR), so an image no
# more like the prompt than noise gets ratios near 0, not a division by ~0.
ROBUST_FLOOR_SD = 2.0
ROBUST_FLOOR = 0.01
# An image "collapses" under a perturbation that keeps less than this share of its excess.
ROBUST_MIN = 0.5


def shift(images: torch.Tensor, fraction: float = SHIFT_FRACTION) -> torch.Tensor:
    """Images moved right and down by ``fraction`` of their side, the uncovered edge replicated."""
    h, w = images.shape[-2:]
    dy, dx = max(1, round(fraction * h)), max(1, round(fraction * w))
    padded = F.pad(images, (dx, 0, dy, 0), mode="replicate")
    return padded[..., :h, :w]


def crop_resize(images: torch.Tensor, keep: float = CROP_KEEP) -> torch.Tensor:
    """The central ``keep`` of each side, resized back to the full size (bilinear, antialiased)."""
    h, w = images.shape[-2:]
    ch, cw = max(1, round(keep * h)), max(1, round(keep * w))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = images[..., top : top + ch, left : left + cw]
    return F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False, antialias=True)


def gaussian_blur(images: torch.Tensor, sigma_fraction: float = BLUR_SIGMA_FRACTION) -> torch.Tensor:
    """A separable Gaussian blur with sigma ``sigma_fraction`` of the side, edges reflected."""
    sigma = sigma_fraction * images.shape[-1]
    radius = max(1, int(np.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32, device=images.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).to(images.dtype)
    c = images.shape[1]
    x = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def jpeg(images: torch.Tensor, quality: int = JPEG_QUALITY) -> torch.Tensor:
    """Each image saved as JPEG at ``quality`` by PIL and read back (8-bit rounding included)."""
    out = []
    for img in images.detach().clamp(0, 1).cpu():
        pixels = (img.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
        back = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.float32) / 255.0
        out.append(torch.from_numpy(back).permute(2, 0, 1))
    return torch.stack(out).to(images.device, images.dtype) if out else images.clone()


def pixel_noise(images: torch.Tensor, sigma: float, seed: int = NOISE_SEED) -> torch.Tensor:
    """Images plus one fixed N(0, sigma^2) noise field (seeded, the same for every image), clipped."""
    g = torch.Generator().manual_seed(seed)
    field = torch.randn(images.shape[1:], generator=g).to(images.device, images.dtype)
    return (images + sigma * field).clamp(0, 1)


PERTURBATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "shift": shift,
    "crop": crop_resize,
    "blur": gaussian_blur,
    "jpeg": jpeg,
    "noise-weak": lambda x: pixel_noise(x, NOISE_WEAK),
    "noise-strong": lambda x: pixel_noise(x, NOISE_STRONG),
}


def perturbed(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every perturbation of ``images`` [B,3,H,W] in [0, 1], by name."""
    x = torch.as_tensor(images, dtype=torch.float32).clamp(0, 1)
    return {name: fn(x) for name, fn in PERTURBATIONS.items()}


def excess_floor(noise_sd: float) -> float:
    """The smallest denominator a robustness ratio divides by (see ``ROBUST_FLOOR_SD``)."""
    return max(ROBUST_FLOOR_SD * noise_sd, ROBUST_FLOOR)


def ratio(
    similarity: np.ndarray | float, original: np.ndarray | float, noise_mean: float, noise_sd: float
) -> np.ndarray:
    """(similarity - noise mean) / max(original - noise mean, floor): the share of the excess kept.

    1 means the perturbation left the image's likeness to the prompt alone; 0 that it fell to
    what noise gets; negative that it fell below. The excess over the noise baseline, not the
    raw cosine, is what ascent added, and it keeps the ratio sane near a cosine of 0.
    """
    denom = np.maximum(np.asarray(original, np.float64) - noise_mean, excess_floor(noise_sd))
    return (np.asarray(similarity, np.float64) - noise_mean) / denom


def perturbed_similarities(model: ClipModel, images: torch.Tensor, prompt_embedding: torch.Tensor) -> dict:
    """Per-image cosine to the prompt under each perturbation, by name, as (N,) arrays."""
    return {
        name: (image_embeddings(model, x) @ prompt_embedding).numpy().astype(np.float64)
        for name, x in perturbed(images).items()
    }


def noise_level(model: ClipModel, prompt_embedding: torch.Tensor) -> tuple[float, float]:
    """Robust mean and SD of the model's cosine to the prompt on the seeded noise (as the judges')."""
    c = image_embeddings(model, noise_images(size=model.input_resolution)) @ prompt_embedding
    return robust_location(c.numpy())


def robustness(model: ClipModel, images: torch.Tensor, prompt: str) -> dict[str, float]:
    """``{perturbation: ratio}`` for the images taken together (their mean cosine to the prompt)."""
    p = text_embeddings(model, [prompt])[0]
    mean, sd = noise_level(model, p)
    original = float((image_embeddings(model, images) @ p).mean())
    return {
        name: float(ratio(s.mean(), original, mean, sd))
        for name, s in perturbed_similarities(model, images, p).items()
    }


def robustness_min(ratios: dict[str, float]) -> float | None:
    """The smallest ratio: how much of the excess survives the worst perturbation."""
    return float(min(ratios.values())) if ratios else None


def collapses(ratios: dict[str, float], threshold: float = ROBUST_MIN) -> list[str]:
    """The perturbations that keep less than ``threshold`` of the excess, in order."""
    return [name for name, r in ratios.items() if r < threshold]
