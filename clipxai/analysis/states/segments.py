"""A state sequence cut into dwell segments: how long each visit lasts, and where it goes next.

A segment is a maximal run of snapshots in one state. Its dwell time is measured in
optimisation steps, from its first snapshot to the first snapshot of the next segment. The
first and last segments are censored (the visit began before the run could see a state, or
had not ended when the run stopped): they enter the Kaplan-Meier survival curve as censored
and are left out of the dwell medians whenever complete visits exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Segments:
    """Runs of one state: state, first and last snapshot index, dwell in steps, censored flag."""

    state: np.ndarray
    start: np.ndarray
    end: np.ndarray
    dwell: np.ndarray
    censored: np.ndarray

    def __len__(self) -> int:
        return len(self.state)

    @property
    def switch_indices(self) -> np.ndarray:
        """Snapshot index where each new segment begins."""
        return self.start[1:]

    @property
    def returns(self) -> int:
        """Segments that re-enter a state the run had already visited and left."""
        seen, count = set(), 0
        for s in self.state.tolist():
            count += s in seen
            seen.add(s)
        return count


def step_interval(steps: np.ndarray) -> float:
    """The typical gap between snapshots, in steps."""
    gaps = np.diff(steps)
    return float(np.median(gaps)) if len(gaps) else 1.0


def segments(states: np.ndarray, steps: np.ndarray) -> Segments:
    """Cut ``states`` (one per snapshot) into segments timed by ``steps``."""
    states = np.asarray(states)
    steps = np.asarray(steps, dtype=np.float64)
    n = len(states)
    if n == 0:
        empty = np.empty(0, dtype=np.int64)
        return Segments(empty, empty, empty, np.empty(0), np.empty(0, dtype=bool))
    starts = np.concatenate([[0], np.flatnonzero(states[1:] != states[:-1]) + 1])
    ends = np.concatenate([starts[1:] - 1, [n - 1]])
    next_start = np.append(steps[starts[1:]], steps[-1] + step_interval(steps))
    dwell = next_start - steps[starts]
    censored = np.zeros(len(starts), dtype=bool)
    censored[0] = censored[-1] = True
    return Segments(states[starts].astype(np.int64), starts, ends, dwell, censored)


def kaplan_meier(durations: np.ndarray, censored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Survival curve S(t) = P(dwell > t): times and probabilities, as a step function."""
    durations = np.asarray(durations, dtype=np.float64)
    events = ~np.asarray(censored, dtype=bool)
    times = np.unique(durations[events])
    surv, s = [], 1.0
    for t in times:
        at_risk = np.sum(durations >= t)
        died = np.sum((durations == t) & events)
        s *= 1.0 - died / at_risk
        surv.append(s)
    return np.concatenate([[0.0], times]), np.concatenate([[1.0], surv])


def describe_dwell(dwell: np.ndarray, censored: np.ndarray) -> dict:
    """Median, quartiles and mean of complete visits (of all visits, flagged, when none is complete)."""
    complete = dwell[~censored]
    use = complete if len(complete) else dwell
    q25, med, q75 = np.percentile(use, [25, 50, 75])
    return {"median": float(med), "q25": float(q25), "q75": float(q75), "iqr": float(q75 - q25),
            "mean": float(use.mean()), "visits": int(len(dwell)), "complete_visits": int(len(complete)),
            "lower_bound": bool(not len(complete))}  # only censored visits: the true dwell is longer


def dwell_stats(seg: Segments, n_states: int) -> dict[int, dict]:
    """Per state: ``describe_dwell`` of its visits, and its share of the run's steps."""
    out = {}
    for s in range(n_states):
        mine = seg.state == s
        if mine.any():
            out[s] = {**describe_dwell(seg.dwell[mine], seg.censored[mine]),
                      "occupancy": float(seg.dwell[mine].sum() / seg.dwell.sum())}
    return out


def transition_counts(seg: Segments, n_states: int) -> np.ndarray:
    """Counts of jumps from state i to state j between consecutive segments."""
    counts = np.zeros((n_states, n_states), dtype=np.int64)
    if len(seg) > 1:
        np.add.at(counts, (seg.state[:-1], seg.state[1:]), 1)
    return counts
