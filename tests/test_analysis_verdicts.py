"""Verdicts agree with their numbers: the reason names what decided it with the number the table
and the model-selection figure show, a dropped transient cluster is said, one silhouette is
shown for the states, and numbers that differ in the verdict differ in the table too."""

import numpy as np
import pytest
from helpers_runs import write_run
from matplotlib.figure import Figure

from clipxai.analysis.analyze import AnalyzeOptions, analyze_run
from clipxai.analysis.check import synthetic
from clipxai.analysis.motion.oscillation import oscillation
from clipxai.analysis.motion.verdict import Evidence, StateOrigin, decide
from clipxai.analysis.states.assign import drop_transient, infer_states
from clipxai.analysis.states.cluster import mean_silhouette
from clipxai.report.report import _numbers
from clipxai.runs.load import load_run

FAST = dict(n_boot=50, n_surrogates=19)


def _noisy_start(traj, rng, start=1):
    """The run's first snapshot(s) are far from everything, as a start from noise is."""
    e = traj.embeddings.copy()
    e[:start] = 10 * synthetic._unit(rng.standard_normal((start, e.shape[1])))
    return e


def _analyse(embeddings, steps):
    st = infer_states(embeddings)
    return st, oscillation(st.states, steps, st.reduced, origin=st.origin(), **FAST)


def _disagreements(a: np.ndarray, b: np.ndarray) -> int:
    """Snapshots on which two labellings disagree, under the best matching of their labels."""
    from scipy.optimize import linear_sum_assignment

    table = np.zeros((a.max() + 1, b.max() + 1), dtype=int)
    np.add.at(table, (a, b), 1)
    rows, cols = linear_sum_assignment(-table)
    return int(len(a) - table[rows, cols].sum())


def _legend(ax) -> str:
    return " | ".join(t.get_text() for t in ax.get_legend().get_texts())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_dropped_transient_cluster_is_said_with_the_figures_numbers(seed):
    rng = np.random.default_rng(seed)
    traj = synthetic.single_state(rng, n=60, dim=64, noise=0.5)
    st, osc = _analyse(_noisy_start(traj, rng), traj.steps)
    c = st.clusters
    assert c.k == 2 and osc.n_states == 1 and st.transient_sizes == [1]
    reason = osc.verdict_reason
    assert "no number of clusters reaches" not in reason
    assert f"k=2 (mean silhouette {c.scores[2]:.2f})" in reason and "transient" in reason and "1 snapshot" in reason
    ax = Figure().add_subplot()
    c.plot(ax, states=osc.n_states, silhouette=osc.evidence.silhouette, transient=st.transient_sizes)
    assert f"({c.scores[2]:.2f})" in ax.get_title()
    assert "1 transient cluster (1 snapshot(s)) merged: 1 state" in _legend(ax)


def test_no_k_above_the_bar_names_the_best_candidate():
    e = Evidence(n_states=1, switches=0, returns=0, silhouette=None, jump_ratio=None, late_switches=0,
                 trend="untested", trend_p=None, period_p=None, period_steps=None, cycles=None, drift_total=2.0,
                 drift_late=0.5, last_state=0, late_steps=100.0,
                 origin=StateOrigin(clusters=1, selection="silhouette", best_k=3, best_score=0.18, min_score=0.25))
    verdict, reason = decide(e)
    assert verdict == "single_state"
    assert "no number of clusters reaches a mean silhouette of 0.25; the best is k=3 at 0.18" in reason


def test_one_state_left_by_a_transient_and_the_state_path_names_both():
    def reason(clusters):
        e = Evidence(n_states=1, switches=0, returns=0, silhouette=None, jump_ratio=None, late_switches=0,
                     trend="untested", trend_p=None, period_p=None, period_steps=None, cycles=None,
                     drift_total=2.0, drift_late=0.5, last_state=0, late_steps=100.0,
                     origin=StateOrigin(clusters=clusters, selection="silhouette", score=0.6, transient_sizes=(2,)))
        return decide(e)[1]
    assert "it leaves one state" in reason(2)
    assert "it leaves 2 states, which the state path (HMM) merged into one" in reason(3)


def test_drift_of_a_run_that_stood_still_is_measured_on_the_steps_it_moved():
    from clipxai.analysis.motion.oscillation import _drift
    x = np.zeros((40, 8))
    x[30:, 0] = 10.0 + 0.1 * np.arange(10)   # still for 30 snapshots, one jump, then a creep of 0.1 a snapshot
    total, late = _drift(x)
    assert 100 < total < 1000   # about 10.75 apart, in units of the creep's noise (0.1 / sqrt 2, averaged)
    assert late > 0.9           # and it came in the last third
    assert _drift(np.zeros((40, 8))) == (0.0, 0.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_state_path_keeps_the_clusters_and_their_silhouette(seed):
    """A noisy start then a drift to one place: the HMM must not move the switch far from where
    the clusters put it (a per-state spread let the noisy start swallow the way out of it, and the
    table's silhouette fell far below the figure's)."""
    rng = np.random.default_rng(seed)
    traj = synthetic.converging(rng, n=60, dim=64, noise=0.3, tau=10)
    st, osc = _analyse(_noisy_start(traj, rng), traj.steps)
    merged, _ = drop_transient(st.reduced, st.clusters.labels)
    assert _disagreements(merged, st.states) <= 2
    assert osc.evidence.silhouette == pytest.approx(mean_silhouette(st.reduced, merged), abs=0.03)
    ax = Figure().add_subplot()
    st.clusters.plot(ax, states=osc.n_states, silhouette=osc.evidence.silhouette, transient=st.transient_sizes)
    star = [line for line in ax.get_lines() if line.get_marker() == "*"]
    assert star and star[0].get_ydata()[0] == osc.evidence.silhouette
    assert f"states used: {osc.n_states}, silhouette {osc.evidence.silhouette:.2f}" in _legend(ax)


def _drifting(late: float, total: float = 18.4) -> Evidence:
    return Evidence(n_states=1, switches=0, returns=0, silhouette=None, jump_ratio=None, late_switches=0,
                    trend="untested", trend_p=None, period_p=None, period_steps=None, cycles=None,
                    drift_total=total, drift_late=late, last_state=0, late_steps=100.0,
                    origin=StateOrigin(clusters=2, selection="silhouette", score=0.81, transient_sizes=(1,)))


def test_runs_with_different_verdicts_show_the_number_that_differs():
    settled, reason_a = decide(_drifting(0.13))
    moving, reason_b = decide(_drifting(0.219))
    assert (settled, moving) == ("converging", "single_state")
    assert "13.0% of that in its last third (<= 20%)" in reason_a
    assert "21.9% of that in its last third (> 20%)" in reason_b
    assert decide(_drifting(0.219)) == (moving, reason_b)  # the same numbers, the same verdict and words


def test_numbers_next_to_a_threshold_never_read_as_the_threshold():
    _, reason = decide(_drifting(0.20004))
    assert "20.004% of that in its last third (> 20%)" in reason
    _, reason = decide(_drifting(0.5, total=4.96))
    assert "moved only 4.96 noise units (< 5)" in reason


def test_the_report_table_shows_what_decided_the_verdict(tmp_path):
    rng = np.random.default_rng(4)
    traj = synthetic.converging(rng, n=60, dim=64, noise=0.3, tau=10)
    traj.embeddings[:] = _noisy_start(traj, rng)
    run = load_run(write_run(tmp_path, "start-from-noise", traj=traj))
    s = analyze_run(run, AnalyzeOptions(projections=("pca",), labels=False, gif=False, n_boot=50, n_surrogates=19))
    table = dict(_numbers(s))
    drift = table["drift: start to end in noise units / share in the last third"]
    total, late = drift.split(" / ")
    assert total in s["verdict_reason"] and late in s["verdict_reason"]
    assert table["switches (returns to an earlier state)"] == f"{s['switches']} ({s['returns']})"
    assert f"returns to a state it left only {s['returns']} time(s)" in s["verdict_reason"]
    assert table["silhouette of the states / jump ratio"].startswith(f"{s['silhouette']:.2f}")
    c = s["analysis"]["clustering"]
    assert table["clusters chosen"].startswith(f"k = {c['k']} by {c['selection']}")
    assert s["analysis"]["transient_cluster_sizes"] == [1] and "transient" in table["clusters chosen"]
    assert s["dynamics"]["signal"] == "sim/❤️" and not s["dynamics"]["cycling"]
