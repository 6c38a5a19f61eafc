"""The analysis tells the truth on synthetic trajectories with known states, and refuses the
negative controls. (bench/validate_oscillation.py runs the same scoring on 100 draws each.)"""

import numpy as np
import pytest

from clipxai.analysis.check import synthetic
from clipxai.analysis.check.validation import control_scores, planted_scores

FAST = dict(n_boot=50, n_surrogates=19)


def test_planted_centres_have_clip_like_cosines():
    c = synthetic.planted_centers(np.random.default_rng(0), 6)
    cos = c @ c.T
    off = cos[~np.eye(6, dtype=bool)]
    assert np.allclose(np.diag(cos), 1)
    assert off.min() >= 0.3 - 1e-9 and off.max() <= 0.6 + 1e-9


def test_planted_truth_is_consistent():
    traj = synthetic.planted_states(np.random.default_rng(1), n=300, k=4, mean_dwell=20)
    assert traj.embeddings.shape == (300, 512) and traj.embeddings.dtype == np.float32
    assert traj.n_states <= 4
    assert 10 < traj.mean_dwell_steps() / 10 < 40  # ~20 snapshots of 10 steps


def test_switch_f1():
    assert synthetic.switch_f1([10, 50], [11, 49]) == 1.0
    assert synthetic.switch_f1([10, 50], [14]) == 0.0
    assert synthetic.switch_f1([10, 50], [10]) == pytest.approx(2 / 3)


def test_planted_states_are_recovered():
    s = planted_scores(n_draws=20, seed=7, **FAST)
    assert s["k_exact"] >= 0.95
    assert s["switch_f1_min"] >= 0.9
    assert s["dwell_rel_error_max"] <= 0.15
    assert s["called_oscillating"] >= 0.95


@pytest.mark.parametrize("kind", sorted(synthetic.NEGATIVE_CONTROLS))
def test_negative_controls_are_not_called_oscillation(kind):
    s = control_scores(kind, n_draws=10, seed=7, **FAST)
    assert s["called_oscillating"] == 0.0, s


def test_periodic_cycle_is_called_periodic():
    traj = synthetic.planted_states(np.random.default_rng(3), k=3, cyclic=True, dwell_shape=50)
    from clipxai.analysis.check.validation import analyse_trajectory
    res = analyse_trajectory(traj, n_surrogates=199)
    assert res.verdict == "periodic_oscillation", res.verdict_reason


def test_signal_rank_counts_the_directions_above_the_noise():
    from clipxai.analysis.states.assign import l2_normalize, signal_rank

    rng = np.random.default_rng(0)
    assert signal_rank(l2_normalize(synthetic.single_state(rng, n=300, dim=64).embeddings)) == 0
    traj = synthetic.planted_states(rng, n=300, k=4, dim=64, noise=0.5, mean_dwell=15)
    assert signal_rank(l2_normalize(traj.embeddings)) == traj.n_states_held() - 1


def test_held_states_leave_out_a_state_touched_for_two_snapshots():
    traj = synthetic.planted_states(np.random.default_rng(0), n=60, k=3, dim=16)
    traj.states[:] = np.repeat([0, 1, 0, 2], [20, 20, 18, 2])
    assert traj.n_states == 3 and traj.n_states_held() == 2


@pytest.mark.parametrize("setting", [
    dict(dim=64, k=4, cos_range=(0.6, 0.8)),           # near concepts in a small embedding: 5% before
    dict(dim=64, k=4, noise=1.5),                      # noisier snapshots: 0% before
    dict(dim=64, k=4, dwell_law="geometric"),
    dict(dim=1024, k=4, dwell_law="pareto"),
    dict(dim=512, noise=2.0, method="gmm"),            # a spherical mixture split states: 10% before
])
def test_state_count_holds_across_sizes_separations_and_dwell_laws(setting):
    from clipxai.analysis.check.validation import k_exact_rate

    r = k_exact_rate(8, seed=5, **setting)
    assert r["k_exact"] >= 0.875, r
