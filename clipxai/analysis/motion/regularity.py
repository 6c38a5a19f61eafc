"""Do the drops keep time? Two statistics of the gaps between drops, each against surrogates holding
the same number of drops at random times, and the period of drops that do.

The **on-time share** is the share of gaps within ``ON_TIME`` of the median gap: drops that keep
time are mostly on time, drops at random times are not. It decides, against surrogates, beside a
bar on the **robust spread** of the gaps (interquartile range / 1.349 over the median gap; a drop
missed now and then does not move it). The spread alone was the test before, and it is coarse where
gaps are a few steps: gaps are whole steps, so drops every 5 steps +- 20% (gaps of 4-6) and drops at
random times 3 or more steps apart (gaps of 3-7 mostly) often give the same quartiles and the same
spread, 0.30; and the drops a search misses (short gaps, merged into longer ones) make random gaps
look even to the spread, not on time. Its surrogate p is reported.

Surrogates keep the first and last drop and place the others uniformly at random in between, no two
closer than ``resolution`` (the closest two drops can be and still be told apart by the search),
each rounded to the logged steps as the drops found are (continuous surrogates are less often on
time than whole-step gaps of the same law, which made random drops look regular).

``period_of_gaps`` reads the period of drops that keep time: each gap counts as the whole number of
median gaps nearest to it, so a missed drop (a gap of two periods) counts twice and a false one (a
period cut in two) once over both parts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ON_TIME = 0.25           # a gap within this share of the median gap is on time


def robust_spread(gaps: np.ndarray) -> np.ndarray | float:
    """Interquartile range / 1.349 over the median, along the last axis."""
    q1, med, q3 = np.percentile(gaps, [25, 50, 75], axis=-1)
    return (q3 - q1) / 1.349 / np.maximum(med, 1e-12)


def on_time_share(gaps: np.ndarray) -> np.ndarray | float:
    """Share of the gaps within ``ON_TIME`` of their median, along the last axis."""
    gaps = np.asarray(gaps, dtype=np.float64)
    med = np.median(gaps, axis=-1, keepdims=True)
    return np.mean(np.abs(gaps - med) <= ON_TIME * med, axis=-1)


def random_gaps(times: np.ndarray, rng: np.random.Generator, n_surrogates: int, resolution: float,
                step: float | None = None) -> np.ndarray:
    """(n_surrogates, len(times) - 1) gaps of drops at random times between the first and last of
    ``times``, no two closer than ``resolution``, each on the grid of ``step`` (the logged steps) when given."""
    t = np.sort(np.asarray(times, dtype=np.float64))
    n = len(t)
    free = max(t[-1] - t[0] - (n - 1) * resolution, 0.0)
    inner = np.sort(rng.uniform(0.0, free, size=(n_surrogates, n - 2)), axis=1)
    pts = np.concatenate([np.zeros((n_surrogates, 1)), inner, np.full((n_surrogates, 1), free)], axis=1)
    pts = pts + resolution * np.arange(n)
    if step:
        pts = np.round(pts / step) * step
    return np.diff(pts, axis=1)


@dataclass
class Regularity:
    """The two statistics of the gaps and their surrogate p (nan: under 4 drops)."""

    spread: float
    spread_p: float
    on_time: float
    on_time_p: float


def regularity(times, rng: np.random.Generator, n_surrogates: int = 199, resolution: float = 3.0,
               step: float | None = 1.0) -> Regularity:
    """Both statistics of the drops at ``times`` against the same surrogates (on the grid of ``step``,
    like the drops found: gaps of whole steps against gaps of whole steps); p = (1 + surrogates at
    least as regular) / (1 + their number)."""
    t = np.sort(np.asarray(times, dtype=np.float64))
    if len(t) < 4:
        nan = float("nan")
        return Regularity(nan, nan, nan, nan)
    gaps, null = np.diff(t), random_gaps(t, rng, n_surrogates, resolution, step)
    spread, share = float(robust_spread(gaps)), float(on_time_share(gaps))
    p_spread = (1 + np.sum(robust_spread(null) <= spread + 1e-12)) / (1 + n_surrogates)
    p_share = (1 + np.sum(on_time_share(null) >= share - 1e-12)) / (1 + n_surrogates)
    return Regularity(spread, float(p_spread), share, float(p_share))


def period_of_gaps(gaps: np.ndarray) -> float | None:
    """The period of drops that keep time (see the module doc). A gap counts as k > 1 periods only
    from 2 - ``ON_TIME`` median gaps up (a long gap of drops that keep time loosely is one period); a
    gap under half the median is carried into the next; what is left over at the end is left out.
    None: no gaps."""
    gaps = np.asarray(gaps, dtype=np.float64)
    if not len(gaps):
        return None
    med = float(np.median(gaps))
    periods, steps, carry = 0, 0.0, 0.0
    for g in gaps.tolist():
        carry += g
        x = carry / med
        if x >= 0.5:
            k = int(round(x)) if x >= 2 - ON_TIME else 1
            periods, steps, carry = periods + k, steps + carry, 0.0
    return steps / periods if periods else None
