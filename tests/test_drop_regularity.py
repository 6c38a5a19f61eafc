"""Do drops keep time (issue 27)? The on-time share tells jittered from random drops where the robust
spread cannot, and the period of regular drops is not moved by a missed or a false drop."""

import numpy as np

from clipxai.analysis.check.planted_series import drop_series
from clipxai.analysis.motion.dynamics import dynamics
from clipxai.analysis.motion.regularity import on_time_share, period_of_gaps, regularity


def test_period_counts_a_missed_drop_twice_and_a_false_one_not_at_all():
    gaps = np.array([5, 5, 10, 5, 2, 3, 5, 5, 15, 5])   # a drop missed (10), a period cut in two (2 + 3), two missed (15)
    assert gaps.mean() >= 6
    assert period_of_gaps(gaps) == 5.0
    assert period_of_gaps(np.array([13.0])) == 13.0 and period_of_gaps(np.array([])) is None


def test_on_time_share_and_its_surrogates():
    assert on_time_share(np.array([4, 5, 6, 5, 10, 5])) == 5 / 6      # within 25% of the median gap 5
    assert on_time_share(np.array([[5, 5, 5], [1, 5, 20]])).tolist() == [1.0, 1 / 3]
    rng = np.random.default_rng(3)
    jittered = np.round(np.cumsum(5 * (1 + rng.uniform(-0.2, 0.2, 150))))
    random = np.round(np.cumsum(3 + rng.exponential(2.0, 150)))
    rj = regularity(jittered, np.random.default_rng(0), resolution=3.0)
    rr = regularity(random, np.random.default_rng(0), resolution=3.0)
    assert rj.on_time_p < 0.01 and rr.on_time_p > 0.05
    # surrogates off the step grid are less often on time than whole-step gaps of the same law
    assert regularity(random, np.random.default_rng(0), resolution=3.0, step=None).on_time_p < rr.on_time_p
    assert np.isnan(regularity([1, 2, 3], np.random.default_rng(0)).spread)


def test_random_drops_whose_gaps_look_even_are_not_on_time():
    """Drops at random times 3 or more steps apart (5 on average), of 3-5 noise SD: the search misses
    many drops 3-4 steps after the one before, and the gaps left look even (robust spread 0.30, under
    the bar; against continuous surrogates the spread's test said regular), but no more of them are
    near the typical gap than at random times."""
    s = drop_series(np.random.default_rng([13, 2]), timing="poisson", spacing=5)
    res = dynamics(s.steps, s.values, snapshot_interval=10, n_surrogates=199)
    assert res.cycling
    assert res.spacing_spread <= 0.35
    assert res.regularity_p >= 0.05 and not res.regular
    assert "no more often on time than at random times" in res.reason and "every ~" not in res.reason


def test_regular_drops_report_their_period_not_the_mean_gap():
    """Drops every 5 steps of 3-5 noise SD: about one in ten is missed, which lengthens the mean gap;
    the period does not move."""
    s = drop_series(np.random.default_rng([13, 0]), timing="periodic", spacing=5)
    res = dynamics(s.steps, s.values, snapshot_interval=10, n_surrogates=199)
    assert res.cycling and res.regular
    assert np.diff(res.event_steps).mean() > 5.25                     # the raw mean gap is off
    assert abs(res.mean_spacing_steps - 5.0) <= 0.1
    reg = res.to_dict()["regularity"]
    assert reg["on_time"] > 0.7 and reg["p_value"] < 0.05
    assert f"{reg['on_time']:.0%} of gaps on time" in res.reason


def test_periodic_drops_mostly_missed_keep_their_beat():
    """Drops every 5 steps of 3-5 noise SD of which the search keeps 67 of 176: the gaps (5, 10, 15, ...)
    are neither on time nor even, and the mean gap was taken as the spacing (12.7, and 0.5 snapshots
    per cycle said "resolve it" wrongly before); every drop left is on the beat of 5."""
    s = drop_series(np.random.default_rng([23, 70_003]), timing="periodic", spacing=5)
    res = dynamics(s.steps, s.values, snapshot_interval=10, n_surrogates=199)
    assert res.cycling and len(res.event_steps) < 0.5 * len(s.drops)
    assert np.diff(res.event_steps).mean() > 10 and res.regularity_p >= 0.05    # the gaps alone say irregular
    assert res.regular and res.phase > 0.8 and res.phase_p < 0.01
    assert abs(res.mean_spacing_steps - 5.0) <= 0.1
    assert "every ~5 steps" in res.reason and "cannot resolve it" in res.reason


def test_false_drops_at_one_place_in_the_cycle_do_not_cut_the_period():
    """Exponential recovery every 13 steps: the search adds false drops where the recovery bends
    (81 drops for 68), so the strongest beat is a third of the period; the period is its longest
    multiple still beyond the surrogates."""
    s = drop_series(np.random.default_rng([23, 70_019]), spacing=13, recovery="exp")
    res = dynamics(s.steps, s.values, snapshot_interval=10, n_surrogates=199)
    assert len(res.event_steps) > len(s.drops) and res.regular
    assert abs(res.mean_spacing_steps - 13.0) <= 0.5


def test_drops_at_random_times_have_no_beat():
    rng = np.random.default_rng(5)
    times = np.round(np.cumsum(3 + rng.exponential(10.0, 80)))
    g = regularity(times, np.random.default_rng(0), resolution=3.0)
    assert g.phase_p > 0.05 and g.phase < 0.3
    beat = np.arange(0, 800, 8.0)[rng.random(100) < 0.4]               # a beat of 8 steps, 60% of it missed
    g = regularity(beat, np.random.default_rng(0), resolution=3.0)
    assert g.phase_p < 0.01 and abs(g.period - 8.0) < 0.05
