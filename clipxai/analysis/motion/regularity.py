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

The **phase locking** is the third statistic, for drops whose gaps say little because many drops were
missed: drops every 5 steps of 3-5 noise SD of which the search keeps a third have gaps of 5, 10, 15,
20 steps, neither on time nor even, yet every drop left falls on the same beat. It is the largest
power of the drops' times over the periods from ``resolution`` (or a quarter of the median gap) to
``PHASE_SPAN`` median gaps, |sum exp(2 pi i t / P)|^2 / n^2 (1 for drops all on one beat, about 1 / n
at random times), from the FFT of the drop train; drops whose spacing wanders (each gap +- 20%) lose
the beat within a few gaps, so it adds to the on-time share and does not replace it. A drop missed
keeps the beat; false drops at one place in every cycle (where an exponential recovery bends) add a
beat of their own, and the period is then the longest whole multiple of the strongest period whose
power is still beyond the surrogates (``phase_period``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ON_TIME = 0.25           # a gap within this share of the median gap is on time
PHASE_SPAN = 3.0         # the longest period the phase locking looks at, in median gaps
PHASE_BINS = 16_384      # the drop train is binned to at most this many bins (long runs: coarser bins)
PHASE_DROPS = 512        # the phase locking looks at the first this many drops (bounded cost in a long run)
PHASE_ALPHA = 0.01       # surrogate p under which the drops are locked to one beat
MAX_REGULAR_SPREAD = 0.35  # robust spread of the gaps (IQR / 1.349 / median) above which on-time drops do not keep time
PHASE_QUANTILE = 0.99    # a multiple of the strongest period counts when its power passes this quantile of the surrogates'


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


def _train_power(times: np.ndarray, scale: float, lo: float, hi: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(power at each period, the periods) of the drop trains ``times`` (rows, first drop at 0) binned
    by ``scale``, over the periods from ``lo`` to ``hi``, from FFTs of ``size`` bins."""
    bins = np.round(times / scale).astype(np.int64)
    train = np.zeros((len(times), size))
    np.add.at(train, (np.repeat(np.arange(len(times)), times.shape[1]), bins.ravel()), 1.0)
    f = np.arange(size // 2 + 1) / (size * scale)
    band = np.flatnonzero((f >= 1.0 / hi) & (f <= 1.0 / lo))
    power = np.abs(np.fft.rfft(train, axis=1)[:, band]) ** 2 / times.shape[1] ** 2
    return power, 1.0 / f[band]


def phase_locking(t: np.ndarray, null: np.ndarray, resolution: float,
                  step: float | None = None) -> tuple[float, float, float | None]:
    """(largest power, its surrogate p, the period) of the drops at ``t`` against the surrogate gaps
    ``null`` (see the module doc), the trains binned by ``step`` (the logged steps) or finer."""
    gaps = np.diff(t)
    med = float(np.median(gaps))
    lo, hi = max(resolution, med / 4, 1e-9), min(PHASE_SPAN * med, (t[-1] - t[0]) / 4)
    if hi <= lo:
        return float("nan"), float("nan"), None
    scale = max((t[-1] - t[0]) / PHASE_BINS, step or lo / 8)
    if scale > lo / 2:        # gaps far longer than the median: the bins cannot resolve the shortest period
        return float("nan"), float("nan"), None
    trains = np.concatenate([np.zeros((len(null) + 1, 1)), np.cumsum(np.vstack([gaps, null]), axis=1)], axis=1)
    size = 1 << int(np.ceil(np.log2(4 * (int(np.round(trains.max() / scale)) + 1))))   # padded four times: a fine grid
    chunks = [_train_power(trains[i:i + 50], scale, lo, hi, size) for i in range(0, len(trains), 50)]
    periods, first = chunks[0][1], chunks[0][0][0]
    best = np.concatenate([power.max(axis=1) for power, _ in chunks])
    p = (1 + np.sum(best[1:] >= best[0] - 1e-12)) / len(best)
    return float(best[0]), float(p), phase_period(first, periods, np.quantile(best[1:], PHASE_QUANTILE))


def phase_period(power: np.ndarray, periods: np.ndarray, bar: float) -> float:
    """The longest whole multiple of the strongest period whose power (at the grid point nearest it,
    or a neighbour) passes ``bar``; the strongest period itself when none does."""
    k = int(np.argmax(power))
    out = float(periods[k])
    for m in range(2, int(periods.max() / periods[k]) + 1):
        j = int(np.argmin(np.abs(periods - m * periods[k])))
        near = power[max(j - 1, 0):j + 2]
        if near.max() >= bar:
            i = max(j - 1, 0) + int(np.argmax(near))
            out = float(periods[i])
    return out


@dataclass
class Regularity:
    """The statistics of the gaps and their surrogate p (nan: under 4 drops)."""

    spread: float
    spread_p: float
    on_time: float
    on_time_p: float
    phase: float = float("nan")         # largest power of the drop train (1: every drop on one beat)
    phase_p: float = float("nan")
    period: float | None = None         # the period of that beat (a whole multiple of the strongest)


def regularity(times, rng: np.random.Generator, n_surrogates: int = 199, resolution: float = 3.0,
               step: float | None = 1.0) -> Regularity:
    """The statistics of the drops at ``times`` against the same surrogates (on the grid of ``step``,
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
    phase, phase_p, period = phase_locking(t[:PHASE_DROPS + 1], null[:, :PHASE_DROPS], resolution, step)
    return Regularity(spread, float(p_spread), share, float(p_share), phase, phase_p, period)


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


def keeps_time(event_steps: np.ndarray, steps: np.ndarray, min_events: int, alpha: float, seed: int,
               max_drop_steps: int) -> dict:
    """Whether the drops at ``event_steps`` keep time, with the numbers behind it (the keys of the
    dynamics' record). Regular: more often on time than at random times (p < ``alpha``) with a spread
    of at most ``MAX_REGULAR_SPREAD`` (``kept`` "on time", period ``period_of_gaps``), or locked to
    one beat (phase p < ``PHASE_ALPHA``; ``kept`` "beat", period ``phase_period``). The surrogates'
    drops lie on the logged ``steps``, at least ``max_drop_steps`` of them apart: a drop may take
    that many steps, so the search cannot tell two drops closer than that apart."""
    out = dict(regular=False, spacing_spread=None, spread_p=None, on_time=None, on_time_p=None,
               phase=None, phase_p=None, period=None, kept=None)
    if len(event_steps) < max(min_events, 4):
        return out
    step = float(np.median(np.diff(steps)))
    g = regularity(event_steps, np.random.default_rng([seed, 1]), resolution=max_drop_steps * step, step=step)
    on_time = bool(g.on_time_p < alpha and g.spread <= MAX_REGULAR_SPREAD)
    locked = bool(g.phase_p < PHASE_ALPHA)
    gaps = np.diff(np.asarray(event_steps, dtype=np.float64))
    out.update(regular=on_time or locked, spacing_spread=g.spread, spread_p=g.spread_p, on_time=g.on_time,
               on_time_p=g.on_time_p, phase=g.phase, phase_p=g.phase_p,
               period=period_of_gaps(gaps) if on_time else g.period if locked else None,
               kept="on time" if on_time else "beat" if locked else None)
    return out
