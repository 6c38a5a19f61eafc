"""Judges: z-scores on each judge's own baseline, transfer rate and agreement."""

import numpy as np
import pytest
import torch

from clipxai.analysis.trust.judges import (
    Baseline,
    agreement,
    judge_images,
    noise_images,
    robust_location,
    transfer_rate,
)
from clipxai.models import load_clip
from clipxai.toy import world


def test_z_must_stand_out_against_every_baseline_group():
    b = Baseline({"noise": (0.3, 0.02), "reference": (0.0, 0.1)})
    assert b.z(0.5) == pytest.approx(5.0)  # 10 noise SDs, 5 reference SDs: the smaller
    assert b.z(0.31) == pytest.approx(0.5)
    np.testing.assert_allclose(b.z(np.array([0.5, 0.31])), [5.0, 0.5])
    assert Baseline({"noise": (0.3, 0.0)}).z(0.31) == pytest.approx(10.0)  # SD floored at 1e-3


def test_the_baseline_ignores_a_minority_of_prompt_images():
    values = np.concatenate([np.random.default_rng(0).normal(0.0, 0.1, 80), np.full(20, 0.5)])
    mean, sd = robust_location(values)
    assert abs(mean) < 0.5 * values.mean() and sd < 0.7 * values.std()  # moved far less than mean and SD
    mean, sd = robust_location(np.random.default_rng(1).normal(2.0, 0.5, 5000))
    assert mean == pytest.approx(2.0, abs=0.03) and sd == pytest.approx(0.5, abs=0.03)


def test_rates():
    assert transfer_rate({"a": 2.5, "b": 1.0, "c": 2.0}) == pytest.approx(2 / 3)
    assert transfer_rate({}) is None
    assert agreement({"a": "x", "b": "y"}, "x") == 0.5 and agreement({"a": "x"}, None) is None


def test_noise_images_are_seeded():
    assert torch.equal(noise_images(4, 32, seed=3), noise_images(4, 32, seed=3))
    assert not torch.equal(noise_images(4, 32, seed=3), noise_images(4, 32, seed=4))


def test_the_toy_judge_sees_planted_meanings_and_not_ordinary_images():
    toy, judge = load_clip("toy", "cpu"), load_clip("toy-b", "cpu")
    labels = [c.description for c in world.PLANTED.values()] + ["a blue square", "a green circle"]
    reference = world.generate(32, 100, concept="none").images
    seen = judge_images(
        toy,
        world.generate(3, 5, concept="ring").images,
        "❤️",
        judges=[judge],
        labels=labels,
        reference=reference,
    )
    assert (
        seen["transfer_rate"] == 1.0
        and seen["agreement"] == 1.0
        and seen["model"]["reading"] == "a gold ring"
    )
    unseen = judge_images(
        toy,
        world.generate(3, 6, concept="none").images,
        "❤️",
        judges=[judge],
        labels=labels,
        reference=reference,
    )
    assert unseen["transfer_rate"] == 0.0 and unseen["judges"]["toy-b"]["z"] < 2
