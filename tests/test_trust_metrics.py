"""CLIPScore and CMMD, checked against their definitions on hand-made embeddings."""

import numpy as np
import pytest

from clipxai.analysis.trust.metrics import clipscore, cmmd, mmd2


def test_clipscore_is_two_and_a_half_times_the_positive_cosine():
    assert clipscore(0.3) == pytest.approx(0.75)
    assert clipscore(-0.2) == 0.0
    np.testing.assert_allclose(clipscore(np.array([0.0, 0.1, 0.4])), [0.0, 0.25, 1.0])


def _sphere(n, d, rng, shift=None):
    x = rng.normal(size=(n, d))
    if shift is not None:
        x = x + shift
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_cmmd_of_one_distribution_is_about_zero_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a = _sphere(400, 32, rng)
    same = cmmd(a[:200], a[200:])
    assert abs(same) < 0.01
    shift = np.zeros(32)
    shift[0] = 1.0
    values = [cmmd(a[:200], _sphere(200, 32, np.random.default_rng(1), s * shift)) for s in (0.3, 1.0, 3.0)]
    assert values[0] > 5 * abs(same) and values[0] < values[1] < values[2]


def test_cmmd_is_scaled_unbiased_mmd_with_sigma_ten():
    rng = np.random.default_rng(2)
    x, y = _sphere(5, 8, rng), _sphere(6, 8, rng)

    def k(a, b):
        return np.exp(-np.sum((a - b) ** 2) / (2 * 10.0**2))

    xx = np.mean([k(x[i], x[j]) for i in range(5) for j in range(5) if i != j])
    yy = np.mean([k(y[i], y[j]) for i in range(6) for j in range(6) if i != j])
    xy = np.mean([k(a, b) for a in x for b in y])
    assert cmmd(x, y) == pytest.approx(1000 * (xx + yy - 2 * xy), rel=1e-9)
    biased = np.mean([k(a, b) for a in x for b in x]) + np.mean([k(a, b) for a in y for b in y]) - 2 * xy
    assert cmmd(x, y, unbiased=False) == pytest.approx(1000 * biased, rel=1e-9)
    assert cmmd(3 * x, y) == pytest.approx(cmmd(x, y))  # embeddings are made unit length first


def test_the_unbiased_estimate_goes_below_zero_around_zero():
    rng = np.random.default_rng(3)
    values = np.array([cmmd(_sphere(20, 16, rng), _sphere(20, 16, rng)) for _ in range(200)])
    assert values.min() < 0 < values.max()
    assert abs(values.mean()) < 3 * values.std() / np.sqrt(len(values))  # centred on 0: no bias
    assert all(cmmd(_sphere(20, 16, rng), _sphere(20, 16, rng), unbiased=False) > 0 for _ in range(5))
    with pytest.raises(ValueError, match="at least 2"):
        mmd2(np.ones((1, 4)), np.ones((3, 4)), 10.0)
