"""Planted per-step series, written apart from ``synthetic.py``, to check the per-step dynamics.

Every series is a climb to a level, then (for the cycling families) sudden drops that recover,
plus noise whose standard deviation is ``noise`` (the marginal SD of an AR(1) process with
coefficient ``phi``: 0 is white noise, 0.9 is a smooth wander). Drop sizes are given in units of
that SD (``drop_sd``: each drop's size is drawn uniformly in the range), so "drops of at least 3
noise SD" means what it says for every drop. Drop times are ``periodic`` (a fixed gap),
``jittered`` (each gap the spacing times 1 +- up to ``jitter``), ``phase`` (drops at k x spacing
moved by up to +- ``jitter`` of a spacing) or ``poisson`` (random times: gaps of 3 steps plus an
exponential, so two drops never merge into one). Recoveries are linear or exponential. The
controls never drop: a slow climb, a flat level, heavy-tailed noise, a smooth wander, a random
walk, one large drop alone, and drops that die out early. Every generator takes an explicit
``numpy.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TIMINGS = ("periodic", "jittered", "phase", "poisson")


@dataclass
class PlantedSeries:
    """A per-step series and its truth: where the drops are, and whether they are regular."""

    steps: np.ndarray
    values: np.ndarray
    drops: np.ndarray          # step of every planted drop (empty: a control)
    timing: str                # periodic | jittered | phase | poisson | control
    kind: str
    noise: float               # marginal SD of the noise

    @property
    def cycling(self) -> bool:
        return len(self.drops) >= 5

    @property
    def regular(self) -> bool:
        return self.timing in ("periodic", "jittered", "phase")

    def mean_spacing(self) -> float:
        return float(np.mean(np.diff(self.drops))) if len(self.drops) > 1 else float("nan")


def ar1_noise(rng: np.random.Generator, n: int, sd: float, phi: float = 0.0, df: float | None = None) -> np.ndarray:
    """AR(1) noise of marginal SD ``sd`` (Student-t innovations with ``df`` degrees of freedom when given)."""
    e = rng.standard_normal(n) if df is None else rng.standard_t(df, n) / np.sqrt(df / (df - 2))
    out = np.empty(n)
    out[0] = e[0]
    c = np.sqrt(1 - phi ** 2)
    for t in range(1, n):
        out[t] = phi * out[t - 1] + c * e[t]
    return sd * out


def climb(n: int, start: float = 0.25, level: float = 0.6, tau: float = 25.0) -> np.ndarray:
    return level - (level - start) * np.exp(-np.arange(n) / tau)


def drop_times(rng: np.random.Generator, timing: str, spacing: float, first: int, n: int,
               jitter: float = 0.2) -> np.ndarray:
    """Steps of the drops from ``first`` to the end of the run."""
    if timing not in TIMINGS:
        raise ValueError(f"unknown timing {timing!r}; choose one of {', '.join(TIMINGS)}")
    count = int((n - first) / spacing) + 2
    if timing == "periodic":
        t = first + spacing * np.arange(count)
    elif timing == "phase":
        t = first + spacing * (np.arange(count) + rng.uniform(-jitter, jitter, count))
    elif timing == "jittered":
        t = first + np.cumsum(spacing * (1 + rng.uniform(-jitter, jitter, count)))
    else:
        t = first + np.cumsum(3 + rng.exponential(max(spacing - 3, 0.5), 4 * count))
    t = np.round(t).astype(np.int64)
    return t[(t >= first) & (t < n - 1)]


def sawtooth(n: int, drops: np.ndarray, sizes: np.ndarray, recovery: str = "linear") -> np.ndarray:
    """Zero before the first drop; each drop falls by its size in one step and recovers before the next."""
    out = np.zeros(n)
    edges = np.r_[drops, n]
    for (a, b), size in zip(zip(edges[:-1], edges[1:]), sizes):
        u = np.arange(b - a) / max(b - a, 1)
        out[a:b] = -size * ((1 - u) if recovery == "linear" else np.exp(-4 * u))
    return out


def drop_series(rng: np.random.Generator, *, spacing: float = 13.0, timing: str = "periodic", n: int = 1000,
                drop_sd: tuple[float, float] = (3.0, 5.0), noise: float = 0.003, phi: float = 0.0,
                jitter: float = 0.2, recovery: str = "linear", first: int = 120) -> PlantedSeries:
    """A climb, then drops of ``drop_sd`` noise SDs at ``timing`` times ~``spacing`` steps apart."""
    drops = drop_times(rng, timing, spacing, first, n, jitter)
    sizes = noise * rng.uniform(*drop_sd, size=len(drops))
    values = climb(n) + sawtooth(n, drops, sizes, recovery) + ar1_noise(rng, n, noise, phi)
    return PlantedSeries(np.arange(n), values, drops, timing, f"drops ({recovery})", noise)


def _control(values: np.ndarray, kind: str, noise: float, drops=()) -> PlantedSeries:
    return PlantedSeries(np.arange(len(values)), values, np.asarray(drops, dtype=np.int64), "control", kind, noise)


def control_series(rng: np.random.Generator, kind: str, *, n: int = 1000, noise: float = 0.003) -> PlantedSeries:
    """A series with no recurring drops (see the module doc for the kinds)."""
    base = climb(n)
    if kind == "slow climb":
        values = climb(n, tau=rng.uniform(n / 5, n)) + ar1_noise(rng, n, noise, 0.3)
    elif kind == "flat":
        values = base + ar1_noise(rng, n, noise)
    elif kind == "heavy tails":
        values = base + ar1_noise(rng, n, 2 * noise, 0.5, df=3.0)
    elif kind == "smooth wander":
        values = base + ar1_noise(rng, n, 3 * noise, 0.95) + ar1_noise(rng, n, noise / 3)
    elif kind == "random walk":
        values = base + np.cumsum(rng.standard_normal(n)) * noise / 3 + ar1_noise(rng, n, noise / 3)
    elif kind == "one drop":
        values = base + ar1_noise(rng, n, noise)
        values[n // 2:] -= 10 * noise * np.exp(-np.arange(n - n // 2) / 100)
    elif kind == "drops die out":
        drops = drop_times(rng, "periodic", 15, 120, 300)
        values = base + sawtooth(n, drops, noise * rng.uniform(5, 8, len(drops))) + ar1_noise(rng, n, noise)
        values[300:] = base[300:] + ar1_noise(rng, n - 300, noise)
        return _control(values, kind, noise)
    else:
        raise ValueError(f"unknown control {kind!r}")
    return _control(values, kind, noise)


CONTROLS = ("slow climb", "flat", "heavy tails", "smooth wander", "random walk", "one drop", "drops die out")
