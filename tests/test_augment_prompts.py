"""Cutouts are batched, seeded and bounded; prompt strings parse or fail in one sentence."""

import numpy as np
import pytest
import torch

from clipxai.ascent.augment import Augment, AugmentConfig
from clipxai.errors import PromptError
from clipxai.prompts import load_image, parse_image_prompt, parse_prompts


def gens(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_cutouts_are_one_batch_seeded_per_image():
    images = torch.rand(2, 3, 48, 48)
    a = Augment(AugmentConfig(cutouts=4), 32, gens(1, 2))(images)
    b = Augment(AugmentConfig(cutouts=4), 32, gens(1, 2))(images)
    c = Augment(AugmentConfig(cutouts=4), 32, gens(1, 3))(images)
    assert a.shape == (8, 3, 32, 32)
    assert torch.equal(a, b)
    assert torch.equal(a[:4], c[:4]) and not torch.equal(a[4:], c[4:])  # seeds are independent


def test_full_size_cutout_without_jitter_or_noise_is_the_resized_image():
    images = torch.rand(1, 3, 32, 32)
    views = Augment(AugmentConfig(cutouts=3, cut_min=1.0, cut_max=1.0, jitter=0.0, noise=0.0), 32, gens(0))(images)
    for v in views:
        torch.testing.assert_close(v, images[0], atol=1e-5, rtol=0)


def test_no_cutouts_only_resizes_and_gradients_flow():
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    views = Augment(AugmentConfig(cutouts=0), 32, gens(0, 1))(x)
    assert views.shape == (2, 3, 32, 32)
    views.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_fixed_augmentation_repeats_fresh_does_not():
    images = torch.rand(1, 3, 32, 32)
    fixed = Augment(AugmentConfig(cutouts=2, fixed=True), 32, gens(0))
    fresh = Augment(AugmentConfig(cutouts=2), 32, gens(0))
    assert torch.equal(fixed(images), fixed(images))
    assert not torch.equal(fresh(images), fresh(images))


def test_prompt_syntax():
    assert [(p.text, p.weight) for p in parse_prompts("❤️")] == [("❤️", 1.0)]
    assert [(p.text, p.weight) for p in parse_prompts("a cat:2|a dog:-0.5")] == [("a cat", 2.0), ("a dog", -0.5)]
    assert parse_prompts(r"ratio 1\:2")[0].text == "ratio 1:2"
    assert parse_prompts("x:1e-3")[0].weight == 1e-3


@pytest.mark.parametrize("spec", ["", "   ", "a:b", "a||b", ":1", "a:1:x"])
def test_malformed_prompts(spec):
    with pytest.raises(PromptError):
        parse_prompts(spec)


def test_image_prompt_file_and_loading(tmp_path):
    from PIL import Image
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, 10:30] = 255
    Image.fromarray(arr).save(tmp_path / "im.png")
    p = parse_image_prompt(f"{tmp_path / 'im.png'}:0.5")
    assert p.kind == "image" and p.weight == 0.5
    img = load_image(p.text, 16)
    assert img.shape == (1, 3, 16, 16) and img.max() == 1.0  # centre crop keeps the white band
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(PromptError, match="cannot be read"):
        load_image(tmp_path / "bad.png", 16)
    with pytest.raises(PromptError, match="does not exist"):
        parse_image_prompt("/nope.png:1")
