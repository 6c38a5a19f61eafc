"""The drop search's compiled elimination (long series) finds what the Python loop finds, bit for bit."""

import numpy as np
import pytest

from clipxai.analysis.motion import drops


def _series(rng, kind, n):
    t = np.arange(n)
    if kind == 0:
        return rng.standard_normal(n)                                      # noise only
    if kind == 1:
        return 0.01 * (t % rng.integers(5, 40)) + 0.003 * rng.standard_normal(n)   # saw-tooth
    if kind == 2:
        return np.cumsum(rng.standard_t(3, n)) * 0.01                      # heavy-tailed walk
    return np.round(rng.standard_normal(n), 2) + 0.05 * (t % 13)          # ties from rounding


@pytest.mark.parametrize("kind", [0, 1, 2, 3])
def test_compiled_elimination_matches_the_python_loop(kind, monkeypatch):
    rng = np.random.default_rng(kind)
    for _ in range(5):
        x = _series(rng, kind, int(rng.integers(200, 3000)))
        monkeypatch.setattr(drops, "COMPILED_FROM", 10**9)
        a = drops.detect_drops(x)
        monkeypatch.setattr(drops, "COMPILED_FROM", 0)
        b = drops.detect_drops(x)
        assert a.low.tolist() == b.low.tolist() and a.sizes.tobytes() == b.sizes.tobytes()
        assert (a.threshold, a.score, a.false_share, a.noise) == (b.threshold, b.score, b.false_share, b.noise)
        assert (a.falls_at_test, a.rises_at_test, a.sign_p) == (b.falls_at_test, b.rises_at_test, b.sign_p)
    assert kind != 1 or len(b.low) > 5          # the saw-tooth's drops are found, so the comparison sees some


def test_history_of_removals_is_the_same(monkeypatch):
    rng = np.random.default_rng(7)
    r = _series(rng, 1, 2000)
    cand = drops._changes(r, 3)
    ramps = drops._Ramps(r, 0.0, 10.0, 0.003, 0.004, "ramps")
    h_py, h_c = [], []
    monkeypatch.setattr(drops, "COMPILED_FROM", 0)
    left_c, sizes_c = drops._eliminate(ramps, cand, len(r), np.inf, h_c)
    left_p, sizes_p = drops._eliminate_python(ramps, cand, len(r), np.inf, h_py)
    assert h_py == h_c and len(h_py) > 100
    assert left_p.tolist() == left_c.tolist() and sizes_p.tobytes() == sizes_c.tobytes()
