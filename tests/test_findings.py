"""The one-sentence findings say what their numbers say."""

from clipxai.report.findings import finding


def summary(**over) -> dict:
    s = {"verdict": "single_state", "n_states": 3, "switches": 0, "returns": 0, "states": [0, 1, 2],
         "steps": [0, 10, 20], "drift": {"total_noise_units": 40.0, "late_share": 0.5}, "dynamics": None}
    return {**s, **over}


def test_single_state_that_keeps_returning_is_not_called_a_drift():
    back_and_forth = finding("seed 0", summary(switches=35, returns=32))
    assert "32 returns" in back_and_forth and "without coming back" not in back_and_forth
    one_way = finding("seed 0", summary(switches=2, returns=0))
    assert "without coming back to any" in one_way


def test_dynamics_sentences_are_sentences():
    rising = {"signal": "sim/❤️", "cycling": False, "p_value": 0.5, "n_events": 0,
              "motion": {"then": "keeps rising", "start": 0.2, "end": 0.5}}
    assert "its similarity rises from 0.20 to 0.50" in finding("seed 0", summary(dynamics=rising))
    falling = {**rising, "motion": {"then": "keeps falling", "start": 0.5, "end": 0.2}}
    assert "its similarity falls from 0.50 to 0.20" in finding("seed 0", summary(dynamics=falling))


def test_too_few_logged_steps_are_not_called_flat():
    short = {"signal": "sim/❤️", "cycling": False, "p_value": None, "n_events": 0, "motion": None}
    text = finding("seed 0", summary(dynamics=short))
    assert "too few steps" in text and "does not cycle" not in text
