"""Perturbations are fixed and deterministic; on a smooth image the identity-like ones change little."""

import numpy as np
import pytest
import torch

from clipxai.analysis.trust.perturb import (
    PERTURBATIONS,
    collapses,
    crop_resize,
    excess_floor,
    gaussian_blur,
    jpeg,
    perturbed,
    pixel_noise,
    ratio,
    robustness,
    robustness_min,
    shift,
)


def smooth(n=2, size=64):
    """Slow colour gradients: what a picture of a concept is made of, at the pixel level."""
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    base = torch.stack([0.2 + 0.6 * x, 0.3 + 0.4 * y, 0.5 + 0.3 * torch.sin(3 * x + 2 * y)])
    return torch.stack([base * (1 - 0.1 * k) for k in range(n)]).clamp(0, 1)


def test_the_perturbation_set_is_fixed():
    assert list(PERTURBATIONS) == ["shift", "crop", "blur", "jpeg", "noise-weak", "noise-strong"]


def test_perturbations_are_deterministic_and_batch_independent():
    rng = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 64, 64, generator=rng)
    a, b = perturbed(x), perturbed(x.clone())
    for name in PERTURBATIONS:
        assert a[name].shape == x.shape and torch.equal(a[name], b[name]), name
        assert 0 <= float(a[name].min()) and float(a[name].max()) <= 1
        # an image's result does not depend on what else is in the batch
        torch.testing.assert_close(perturbed(x[1:2])[name], a[name][1:2], atol=1e-6, rtol=0)


# (mean, max) absolute change of a smooth gradient image; a 4-px shift of a gradient of 0.6 per
# 64 px moves each pixel by ~0.04, the rest change less
@pytest.mark.parametrize(
    "fn, mean_tol, max_tol",
    [
        (shift, 0.045, 0.1),
        (crop_resize, 0.02, 0.1),
        (gaussian_blur, 0.001, 0.02),
        (jpeg, 0.01, 0.05),
        (lambda x: pixel_noise(x, 0.02), 0.02, 0.1),
    ],
)
def test_a_smooth_image_is_nearly_unchanged(fn, mean_tol, max_tol):
    x = smooth()
    d = (fn(x) - x).abs()
    assert float(d.mean()) < mean_tol and float(d.max()) < max_tol


def test_the_perturbations_do_change_fine_detail():
    checker = (torch.arange(64)[:, None] + torch.arange(64)[None]) % 2
    x = checker.float().expand(1, 3, 64, 64).clone()
    assert float((gaussian_blur(x) - 0.5).abs().max()) < 0.2  # a pixel-scale pattern is averaged away
    noise = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert float((jpeg(noise) - noise).abs().mean()) > 0.1  # pixel noise does not survive JPEG
    assert torch.equal(shift(x)[..., 4:, 4:], x[..., :-4, :-4])  # 4 px at 64: content moves, edges replicate


def test_ratio_is_taken_over_the_noise_baseline():
    assert ratio(0.5, 0.5, 0.3, 0.02) == pytest.approx(1.0)
    assert ratio(0.3, 0.5, 0.3, 0.02) == pytest.approx(0.0)  # fell to what noise gets
    assert ratio(0.2, 0.5, 0.3, 0.02) == pytest.approx(-0.5)  # below it
    # an image no better than noise divides by the floor, not by ~0
    assert excess_floor(0.02) == pytest.approx(0.04)
    assert ratio(0.31, 0.3, 0.3, 0.02) == pytest.approx(0.25)
    assert np.isfinite(ratio(0.0, 0.0, 0.0, 0.0))
    assert robustness_min({"a": 0.9, "b": 0.2}) == 0.2 and collapses({"a": 0.9, "b": 0.2}) == ["b"]


def test_robustness_on_toy():
    from clipxai.models import load_clip
    from clipxai.toy import world

    toy = load_clip("toy", "cpu")
    r = robustness(toy, torch.from_numpy(world.generate(4, 0, planted_fraction=1.0).images), "❤️")
    assert set(r) == set(PERTURBATIONS) and min(r.values()) > 0.9
