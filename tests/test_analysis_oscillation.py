"""Oscillation metrics on hand-made state sequences whose answers can be worked out by hand."""

import numpy as np
import pytest

from clipxai.analysis.motion.oscillation import _laplace_trend, oscillation
from clipxai.analysis.motion.periodicity import match_by_lag, periodicity_test
from clipxai.analysis.motion.recurrence import recurrence
from clipxai.analysis.motion.verdict import Evidence, decide
from clipxai.analysis.states.hmm import hmm_states, viterbi
from clipxai.analysis.states.segments import dwell_stats, kaplan_meier, segments, transition_counts


def test_segments_dwell_and_returns():
    states = np.array([0, 0, 1, 1, 1, 0, 2, 2])
    steps = np.arange(8) * 10
    seg = segments(states, steps)
    assert seg.state.tolist() == [0, 1, 0, 2]
    assert seg.start.tolist() == [0, 2, 5, 6]
    # dwell runs to the next segment's first step; the last one gets one snapshot interval
    assert seg.dwell.tolist() == [20, 30, 10, 20]
    assert seg.censored.tolist() == [True, False, False, True]
    assert seg.returns == 1
    stats = dwell_stats(seg, 3)
    assert stats[1]["median"] == 30 and stats[1]["complete_visits"] == 1
    assert stats[2]["lower_bound"] is True  # only the censored last visit
    counts = transition_counts(seg, 3)
    assert counts[0, 1] == 1 and counts[1, 0] == 1 and counts[0, 2] == 1 and counts.sum() == 3


def test_kaplan_meier_matches_hand_computation():
    t, s = kaplan_meier(np.array([10, 20, 30, 40]), np.array([False, False, True, False]))
    # at 10: 3/4 survive; at 20: 2/3 of those; 30 is censored; at 40: 0 of 1
    assert t.tolist() == [0, 10, 20, 40]
    assert np.allclose(s, [1, 0.75, 0.5, 0.0])


def test_switch_rate_counts_switches_per_100_steps_with_an_interval():
    rng = np.random.default_rng(0)
    states = np.repeat(rng.permutation(np.tile([0, 1, 2], 20)), 10)  # 60 segments of 10 snapshots
    steps = np.arange(len(states)) * 5
    res = oscillation(states, steps, seed=1, n_boot=500, n_surrogates=19)
    expected = 100 * (np.diff(states) != 0).sum() / steps[-1]
    assert res.switches == (np.diff(states) != 0).sum()
    assert res.switch_rate == pytest.approx(expected)
    lo, hi = res.switch_rate_ci
    assert lo < res.switch_rate < hi
    assert hi - lo < res.switch_rate  # 50+ switches: the interval is informative
    assert res.windows[0]["switches"] + res.windows[1]["switches"] + res.windows[2]["switches"] == res.switches


def test_laplace_trend_sees_switching_that_dies_out():
    early = np.sort(np.random.default_rng(0).uniform(0, 300, 30))
    assert _laplace_trend(early, 0, 1000, 0.05)["direction"] == "decreasing"
    even = np.linspace(10, 990, 30)
    assert _laplace_trend(even, 0, 1000, 0.05)["direction"] == "constant"


def test_match_by_lag_equals_direct_count():
    s = np.random.default_rng(3).integers(0, 3, 50)
    share = match_by_lag(s, 3)
    for lag in (0, 1, 7, 20):
        assert share[lag] == pytest.approx(np.mean(s[: len(s) - lag] == s[lag:]))


def test_periodicity_test_separates_a_cycle_from_random_order():
    rng = np.random.default_rng(0)
    cycle = np.tile(np.repeat([0, 1, 2], 8), 12)
    per = periodicity_test(cycle, segments(cycle, np.arange(len(cycle))), rng, n_surrogates=99)
    assert per.p_value <= 0.02 and per.lag == 24
    order = [0]
    for _ in range(35):
        order.append(int(rng.choice([s for s in range(3) if s != order[-1]])))
    random_order = np.repeat(order, 8)
    per = periodicity_test(random_order, segments(random_order, np.arange(len(random_order))), rng, n_surrogates=99)
    assert per.p_value > 0.05


def _lines(r, min_line):
    """Brute-force recurrent points on diagonal and vertical lines (the reference)."""
    m = len(r)
    diag = vert = 0
    for k in range(-(m - 1), m):
        run = 0
        for v in list(np.diagonal(r, k)) + [False]:
            if v:
                run += 1
            else:
                diag += run if run >= min_line else 0
                run = 0
    for j in range(m):
        run = 0
        for v in list(r[:, j]) + [False]:
            if v:
                run += 1
            else:
                vert += run if run >= min_line else 0
                run = 0
    return diag, vert


def test_recurrence_quantification_matches_brute_force():
    x = np.repeat(np.array([[0.0, 0.0], [1.0, 0.0]]), 5, axis=0)
    x = np.concatenate([x, x])  # A*5 B*5 A*5 B*5
    rec = recurrence(x, eps=0.1)
    same = (np.arange(20) // 5) % 2
    expected = (same[:, None] == same[None]).sum() - 20  # main diagonal left out
    assert rec.matrix.sum() == expected
    assert rec.recurrence_rate == pytest.approx(expected / (20 * 19))
    diag, vert = _lines(rec.matrix, 2)
    assert rec.determinism == pytest.approx(diag / expected)
    assert rec.laminarity == pytest.approx(vert / expected)
    assert rec.determinism > 0.9 and rec.laminarity > 0.9  # blocks: the run lingers and retraces

    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.standard_normal((60, 3)), axis=0)
    rec = recurrence(walk)
    diag, vert = _lines(rec.matrix, 2)
    assert rec.determinism == pytest.approx(diag / rec.matrix.sum())
    assert rec.laminarity == pytest.approx(vert / rec.matrix.sum())


def test_viterbi_prefers_staying_when_evidence_is_weak():
    em = np.log(np.array([[0.9, 0.1]] * 5 + [[0.4, 0.6]] + [[0.9, 0.1]] * 5))
    sticky = np.log(np.array([[0.95, 0.05], [0.05, 0.95]]))
    assert viterbi(em, sticky, np.log([0.5, 0.5])).tolist() == [0] * 11
    loose = np.log(np.array([[0.5, 0.5], [0.5, 0.5]]))
    assert viterbi(em, loose, np.log([0.5, 0.5]))[5] == 1


def test_hmm_removes_one_snapshot_flicker():
    rng = np.random.default_rng(0)
    truth = np.repeat([0, 1, 0, 1], 30)
    x = np.where(truth[:, None] == 0, 0.0, 1.0) + 0.25 * rng.standard_normal((120, 2))
    noisy = truth.copy()
    noisy[[10, 50, 75]] = 1 - noisy[[10, 50, 75]]
    assert (hmm_states(x, noisy) == truth).all()


def _evidence(**kw):
    base = dict(n_states=3, switches=12, returns=10, silhouette=0.7, jump_ratio=20.0, late_switches=4,
                trend="constant", trend_p=0.5, period_p=0.4, period_steps=300.0, cycles=4.0,
                drift_total=2.0, drift_late=0.6, last_state=1, late_steps=1000.0)
    base.update(kw)
    return Evidence(**base)


@pytest.mark.parametrize("changes, verdict", [
    ({}, "metastable_switching"),
    ({"period_p": 0.01}, "periodic_oscillation"),
    ({"period_p": 0.01, "cycles": 2.0}, "metastable_switching"),
    ({"late_switches": 0, "trend": "decreasing", "trend_p": 0.001}, "converging"),
    ({"returns": 0}, "single_state"),
    ({"jump_ratio": 1.3}, "single_state"),
    ({"silhouette": 0.1}, "single_state"),
    ({"returns": 0, "drift_total": 40.0, "drift_late": 0.05}, "converging"),
    ({"n_states": 1, "switches": 0, "returns": 0, "silhouette": None, "jump_ratio": None}, "single_state"),
])
def test_verdict_rules(changes, verdict):
    got, reason = decide(_evidence(**changes))
    assert got == verdict
    assert reason.endswith(".") and len(reason) > 30
