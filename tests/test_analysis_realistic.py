"""Verdicts on realistic planted trajectories and small drops (issue 27): a few draws per family,
with a margin; the full rates are printed by bench/validate_oscillation.py --only realistic / drops."""

import numpy as np
import pytest

from clipxai.analysis.check.planted import planted
from clipxai.analysis.check.planted_series import control_series, drop_series
from clipxai.analysis.motion.dynamics import dynamics
from clipxai.analysis.motion.oscillation import oscillation
from clipxai.analysis.motion.verdict import OSCILLATING
from clipxai.analysis.states.assign import infer_states


def _analyse(p):
    st = infer_states(p.embeddings, seed=0)
    return st, oscillation(st.states, p.steps, st.reduced, seed=0, n_boot=20, n_surrogates=49, origin=st.origin())


@pytest.mark.parametrize("setting", [
    dict(family="home"),                                  # the single_state with 14 switches
    dict(family="states", k=3, phi=0.9),                  # smooth motion inside each state
    dict(family="states", k=3, duplicates=0.5),           # frozen images recorded twice
    dict(family="states", k=5, dim=64, cos=0.5),          # many states in the toy CLIP's width
])
def test_switching_families_give_their_count_and_an_oscillating_verdict(setting):
    right = 0
    for i in range(2):
        p = planted(np.random.default_rng([11, i]), **setting)
        _, osc = _analyse(p)
        right += osc.n_states == p.n_states and osc.verdict in p.verdicts
    assert right >= 1 + (setting.get("dim", 512) > 64)   # 64-D with 5 states is the hardest: one of two may miss


@pytest.mark.parametrize("setting", [
    dict(family="one state", phi=0.95),                   # a smooth wander counted as many states before
    dict(family="one state", duplicates=0.5),             # half the rows repeated: was 8 states
    dict(family="random walk"),
])
def test_controls_are_never_oscillating(setting):
    for i in range(2):
        p = planted(np.random.default_rng([12, i]), **setting)
        st, osc = _analyse(p)
        assert osc.verdict not in OSCILLATING
        if p.n_states is not None:
            assert osc.n_states == p.n_states
    if setting.get("duplicates"):
        assert st.repeated_rows > 100 and st.to_dict()["repeated_rows"] == st.repeated_rows


def _drops(timing, spacing, draw):
    s = drop_series(np.random.default_rng([13, draw]), timing=timing, spacing=spacing)
    return s, dynamics(s.steps, s.values, snapshot_interval=10, n_surrogates=199)


def test_small_periodic_drops_give_their_spacing_and_are_regular():
    for draw in range(3):
        s, res = _drops("jittered", 13, draw)
        assert res.cycling and abs(res.mean_spacing_steps / s.mean_spacing() - 1) <= 0.2
        assert res.regular and f"every ~{res.mean_spacing_steps:.0f} steps" in res.reason
        assert res.to_dict()["regular"] is True and res.brief()["regular"] is True


def test_drops_at_random_times_are_cycling_but_not_regular():
    for draw in range(3):
        _, res = _drops("poisson", 13, draw)
        assert res.cycling and not res.regular
        assert f"at irregular times, ~{res.mean_spacing_steps:.0f} steps apart on average" in res.reason
        assert "every ~" not in res.reason


def test_aliasing_follows_the_true_spacing_of_small_drops():
    s, res = _drops("periodic", 8, 0)     # drops every 8 steps, snapshots every 10: under 2 per cycle
    assert res.cycling and abs(res.mean_spacing_steps - 8) <= 1.6
    assert res.snapshot_aliasing and "cannot resolve" in res.reason
    s, res = _drops("periodic", 30, 0)
    assert res.cycling and not res.snapshot_aliasing and "resolve it (" in res.reason


def test_a_smooth_wander_without_drops_is_not_cycling():
    for draw in range(2):
        s = control_series(np.random.default_rng([14, draw]), "smooth wander")
        assert not dynamics(s.steps, s.values, n_surrogates=199).cycling
