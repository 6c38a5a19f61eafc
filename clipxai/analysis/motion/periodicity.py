"""Is the order of visits periodic? A test against surrogates that shuffle the dwell segments.

The statistic is the strongest recurrence of the state sequence at some lag: for each lag
tau, the share of snapshots t with state(t) == state(t + tau), maximised over lags from
1.5 median dwells (shorter lags only measure dwelling) up to a third of the run. Surrogates
keep every dwell segment (its state and length) but put the segments in random order, so
they keep the occupancy and the dwell distribution and lose only the order. With three or
more states the shuffled order never puts two visits to one state side by side (a real
sequence of segments cannot), so surrogates are not made more regular-looking by merging;
with two states the order is forced to alternate, so there the shuffle is free and the test
asks whether alternation plus the observed timing is more regular than chance. The p-value
is the share of surrogates whose statistic reaches the observed one (plus one, over the
number of surrogates plus one).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

import numpy as np

from clipxai.analysis.states.segments import Segments


@dataclass
class PeriodicityResult:
    statistic: float        # best match share at some lag
    lag: int                # that lag, in snapshots (the period)
    p_value: float
    n_surrogates: int
    surrogate_mean: float
    cycles: float           # how many periods the run holds (counted in visits, see periodicity_test)

    def to_dict(self) -> dict:
        return {"statistic": float(self.statistic), "period_snapshots": int(self.lag),
                "p_value": float(self.p_value), "n_surrogates": self.n_surrogates,
                "surrogate_mean": float(self.surrogate_mean), "cycles": float(self.cycles)}


def match_by_lag(states: np.ndarray, n_states: int) -> np.ndarray:
    """share[tau] = mean over t of [state(t) == state(t + tau)], for tau = 0..N-1 (via FFT)."""
    n = len(states)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    onehot = np.zeros((n_states, n))
    onehot[states, np.arange(n)] = 1.0
    f = np.fft.rfft(onehot, size, axis=1)
    acf = np.fft.irfft(f * np.conj(f), size, axis=1)[:, :n].sum(axis=0)
    return acf / (n - np.arange(n))


def _statistic(states: np.ndarray, n_states: int, lo: int, hi: int) -> tuple[float, int]:
    share = match_by_lag(states, n_states)[lo:hi + 1]
    best = int(share.argmax())
    return float(share[best]), lo + best


def shuffled_order(states: np.ndarray, rng: np.random.Generator, no_repeats: bool) -> np.ndarray:
    """A random order of segment indices; with ``no_repeats`` no two neighbors share a state.

    Built one position at a time, choosing among the states allowed next with probability
    proportional to how many of their segments are left, and forcing the most plentiful state
    whenever it would otherwise become impossible to separate its segments. Each free choice
    takes one uniform number, as ``rng.choice(p=...)`` would (the same orders and the same ``rng``
    state after, bit for bit), drawn in one block and the unused ones given back, so a run of
    100,000 snapshots (thousands of segments, 199 surrogates) costs a second, not ten.
    """
    if not no_repeats:
        return rng.permutation(len(states))
    pools = [list(rng.permutation(np.flatnonzero(states == s))) for s in np.unique(states).tolist()]
    n = len(states)
    before = rng.bit_generator.state
    uniforms = rng.random(n).tolist()
    order, counts, last, used = [], [len(p) for p in pools], -1, 0
    for remaining in range(n, 0, -1):
        left = [i for i, c in enumerate(counts) if c]
        big = max(left, key=counts.__getitem__)
        half = (remaining + 1) // 2
        if counts[big] > half or (counts[big] == half and remaining % 2 and big != last):
            choice = big
        else:
            allowed = [i for i in left if i != last] or left
            choice = allowed[_pick([counts[i] for i in allowed], uniforms[used])]
            used += 1
        order.append(pools[choice].pop())
        counts[choice] -= 1
        last = choice
    rng.bit_generator.state = before
    if used:
        rng.random(used)
    return np.asarray(order)


def _pick(weights: list[int], u: float) -> int:
    """The index ``rng.choice(len(weights), p=weights / sum)`` picks for the uniform ``u`` (its cdf, in its order)."""
    total = float(sum(weights))
    cdf = list(accumulate([w / total for w in weights]))
    last = cdf[-1]
    for i, c in enumerate(cdf):
        if c / last > u:
            return i
    return len(cdf)


def periodicity_test(states: np.ndarray, seg: Segments, rng: np.random.Generator,
                     n_surrogates: int = 199) -> PeriodicityResult | None:
    """Test the state sequence for periodic order; None when it is too short to test."""
    states = np.asarray(states, dtype=np.int64)
    n = len(states)
    n_states = int(states.max()) + 1 if n else 0
    lengths = seg.end - seg.start + 1
    lo = max(2, int(np.ceil(1.5 * np.median(lengths)))) if len(seg) else 2
    hi = n // 3
    if len(seg) < 4 or n_states < 2 or hi <= lo:
        return None
    observed, lag = _statistic(states, n_states, lo, hi)
    seg_states = seg.state
    no_repeats = n_states >= 3
    exceed, total = 0, 0.0
    for _ in range(n_surrogates):
        order = shuffled_order(seg_states, rng, no_repeats)
        surrogate = np.repeat(seg_states[order], lengths[order])
        value, _ = _statistic(surrogate, n_states, lo, hi)
        exceed += value >= observed - 1e-12
        total += value
    # A cycle holds at least two visits: a long period seen over few visits is not a repeated cycle.
    visits_per_period = max(2.0, lag / float(np.mean(lengths)))
    cycles = min(n / lag, len(seg) / visits_per_period)
    return PeriodicityResult(observed, lag, (exceed + 1) / (n_surrogates + 1), n_surrogates,
                             total / n_surrogates, cycles)
