"""Synthetic trajectories with known ground truth, to check that the analysis tells the truth.

``planted_states`` makes a CLIP-like embedding trajectory that switches among K planted
concepts (unit vectors in 512-D with pairwise cosines 0.3-0.6, like CLIP image embeddings of
different concepts) following a semi-Markov sequence with a known dwell distribution, noise
and short blended transitions. The negative controls (``converging``, ``random_walk``,
``single_state``) must never be called an oscillation. Every generator takes an explicit
``numpy.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SyntheticTrajectory:
    """Embeddings (un-normalised, like CLIP's) with the truth that produced them."""

    embeddings: np.ndarray      # (N, D) float32
    steps: np.ndarray           # (N,) int64
    states: np.ndarray          # (N,) int: true state per snapshot (-1 where there is none)
    centers: np.ndarray         # (K, D) unit vectors of the planted concepts
    kind: str
    oscillating: bool

    @property
    def n_states(self) -> int:
        """Number of planted states actually visited."""
        return int(len(np.unique(self.states[self.states >= 0])))

    def n_states_held(self, min_run: int = 3) -> int:
        """Planted states the run stayed in for at least ``min_run`` snapshots in a row.

        This is what the analysis can call a state (a cluster the run never stays in is merged
        as a transient); a state touched for a snapshot or two, e.g. where the run ends, is not.
        """
        s = self.states
        edges = np.r_[0, np.flatnonzero(s[1:] != s[:-1]) + 1, len(s)]
        return len({int(s[a]) for a, b in zip(edges[:-1], edges[1:]) if b - a >= min_run and s[a] >= 0})

    @property
    def switch_indices(self) -> np.ndarray:
        """Snapshot index of the first snapshot of every new true state."""
        s = self.states
        return np.flatnonzero(s[1:] != s[:-1]) + 1

    def mean_dwell_steps(self) -> float:
        """Mean length in steps of the complete true segments (the first and last are cut off)."""
        idx = np.concatenate([[0], self.switch_indices, [len(self.states)]])
        complete = idx[1:-1]
        if len(complete) < 2:
            return float("nan")
        bounds = self.steps[complete]
        return float(np.mean(np.diff(bounds)))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def planted_centers(rng: np.random.Generator, k: int, dim: int = 512,
                    cos_range: tuple[float, float] = (0.3, 0.6)) -> np.ndarray:
    """K unit vectors whose pairwise cosines lie in ``cos_range``.

    Each centre is a shared direction plus a private one: with share c_i the cosine of
    centres i and j is sqrt(c_i c_j), so drawing every c_i in the range keeps all pairs in it.
    """
    common = _unit(rng.standard_normal(dim))
    private = rng.standard_normal((k, dim))
    private -= np.outer(private @ common, common)
    private, _ = np.linalg.qr(private.T)  # orthonormal private directions
    private = private.T[:k]
    share = rng.uniform(*cos_range, size=k)
    return np.sqrt(share)[:, None] * common + np.sqrt(1 - share)[:, None] * private


def _scale_like_clip(rng: np.random.Generator, unit_rows: np.ndarray) -> np.ndarray:
    """CLIP's image embeddings are not unit length; give them norms around 10."""
    norms = rng.uniform(8.0, 12.0, size=(len(unit_rows), 1))
    return (unit_rows * norms).astype(np.float32)


def _noisy(rng: np.random.Generator, rows: np.ndarray, noise: float) -> np.ndarray:
    """Add isotropic noise whose expected norm is ``noise`` (rows are unit vectors)."""
    dim = rows.shape[1]
    return _unit(rows + noise * rng.standard_normal(rows.shape) / np.sqrt(dim))


DWELL_LAWS = ("gamma", "geometric", "pareto")


def _dwell(rng: np.random.Generator, law: str, mean: float, shape: float, minimum: int) -> int:
    if law == "gamma":
        return max(minimum, int(round(rng.gamma(shape, mean / shape))))
    if law == "geometric":  # memoryless: minimum plus a geometric excess, so the mean stays ``mean``
        excess = max(mean - minimum, 1e-9)
        return minimum + int(rng.geometric(1.0 / (1.0 + excess))) - 1
    if law == "pareto":  # heavy tail with index 1.5 (infinite variance), scaled so the mean is ``mean``
        alpha = 1.5
        return max(minimum, int(round(mean * (alpha - 1) / alpha * (1 + rng.pareto(alpha)))))
    raise ValueError(f"unknown dwell law {law!r}; choose one of {', '.join(DWELL_LAWS)}")


def _dwell_lengths(rng: np.random.Generator, total: int, mean: float, shape: float, minimum: int,
                   law: str = "gamma") -> list[int]:
    """Dwell lengths (in snapshots) drawn from ``law`` until ``total`` is covered."""
    out, covered = [], 0
    while covered < total:
        d = _dwell(rng, law, mean, shape, minimum)
        out.append(d)
        covered += d
    return out


def planted_states(rng: np.random.Generator, *, n: int = 400, k: int = 4, dim: int = 512,
                   mean_dwell: float = 20.0, dwell_shape: float = 4.0, min_dwell: int = 4,
                   noise: float = 0.5, blend: int = 2, cyclic: bool = False,
                   snapshot_every: int = 10, cos_range: tuple[float, float] = (0.3, 0.6),
                   centers: np.ndarray | None = None, dwell_law: str = "gamma") -> SyntheticTrajectory:
    """Switching among ``k`` planted concepts (``centers``, unit rows, when given; else drawn).

    Dwell lengths (snapshots) are gamma(shape, mean/shape) (``dwell_law="gamma"``), ``min_dwell``
    plus a geometric excess (``"geometric"``: memoryless, as a Markov chain gives) or Pareto with
    tail index 1.5 (``"pareto"``: heavy-tailed), each with mean ``mean_dwell`` and at least
    ``min_dwell``; the next
    state is drawn uniformly among the others (``cyclic``: always the next one, which with a
    large ``dwell_shape`` is a periodic oscillation). The first ``blend`` snapshots of every
    new segment morph linearly from the old concept to the new one.
    """
    if centers is None:
        centers = planted_centers(rng, k, dim, cos_range)
    else:
        centers = _unit(np.asarray(centers, dtype=np.float64))
        k, dim = centers.shape
    lengths = _dwell_lengths(rng, n, mean_dwell, dwell_shape, min_dwell, dwell_law)
    seq = [int(rng.integers(k))]
    for _ in lengths[1:]:
        if cyclic:
            seq.append((seq[-1] + 1) % k)
        else:
            nxt = int(rng.integers(k - 1))
            seq.append(nxt + (nxt >= seq[-1]))
    rows = np.empty((n, dim))
    states = np.empty(n, dtype=np.int64)
    pos = 0
    for i, (state, length) in enumerate(zip(seq, lengths)):
        for j in range(length):
            if pos >= n:
                break
            if i > 0 and j < blend:
                w = (j + 1) / (blend + 1)
                rows[pos] = _unit((1 - w) * centers[seq[i - 1]] + w * centers[state])
                states[pos] = state if w >= 0.5 else seq[i - 1]
            else:
                rows[pos] = centers[state]
                states[pos] = state
            pos += 1
    rows = _noisy(rng, rows, noise)
    steps = np.arange(n, dtype=np.int64) * snapshot_every
    return SyntheticTrajectory(_scale_like_clip(rng, rows), steps, states, centers,
                               "cyclic" if cyclic else "semi_markov", True)


def converging(rng: np.random.Generator, *, n: int = 400, dim: int = 512, noise: float = 0.5,
               tau: float | None = None, snapshot_every: int = 10) -> SyntheticTrajectory:
    """From a random start straight to one concept, slowing down exponentially, then staying."""
    tau = tau if tau is not None else n / 8
    start, target = planted_centers(rng, 2, dim)
    w = 1 - np.exp(-np.arange(n) / tau)
    rows = _unit((1 - w)[:, None] * start + w[:, None] * target)
    rows = _noisy(rng, rows, noise)
    steps = np.arange(n, dtype=np.int64) * snapshot_every
    return SyntheticTrajectory(_scale_like_clip(rng, rows), steps, np.full(n, -1), target[None],
                               "converging", False)


def random_walk(rng: np.random.Generator, *, n: int = 400, dim: int = 512, step: float = 0.08,
                noise: float = 0.2, snapshot_every: int = 10) -> SyntheticTrajectory:
    """A random walk on the unit sphere (steps of norm ``step``): drift with no states."""
    x = _unit(rng.standard_normal(dim))
    rows = np.empty((n, dim))
    for i in range(n):
        rows[i] = x
        x = _unit(x + step * rng.standard_normal(dim) / np.sqrt(dim))
    rows = _noisy(rng, rows, noise)
    steps = np.arange(n, dtype=np.int64) * snapshot_every
    return SyntheticTrajectory(_scale_like_clip(rng, rows), steps, np.full(n, -1), rows[:1],
                               "random_walk", False)


def single_state(rng: np.random.Generator, *, n: int = 400, dim: int = 512, noise: float = 0.5,
                 snapshot_every: int = 10) -> SyntheticTrajectory:
    """One concept plus noise for the whole run."""
    center = planted_centers(rng, 1, dim)
    rows = _noisy(rng, np.repeat(center, n, axis=0), noise)
    steps = np.arange(n, dtype=np.int64) * snapshot_every
    return SyntheticTrajectory(_scale_like_clip(rng, rows), steps, np.zeros(n, dtype=np.int64), center,
                               "single_state", False)


NEGATIVE_CONTROLS = {"converging": converging, "random_walk": random_walk, "single_state": single_state}


def switch_f1(true_switches: np.ndarray, found_switches: np.ndarray, tolerance: int = 2) -> float:
    """F1 of found switch positions against true ones, each true switch matched at most once."""
    true_switches = list(np.asarray(true_switches))
    found = sorted(np.asarray(found_switches).tolist())
    if not true_switches and not found:
        return 1.0
    used = set()
    hits = 0
    for f in found:
        best = None
        for i, t in enumerate(true_switches):
            if i in used or abs(t - f) > tolerance:
                continue
            if best is None or abs(t - f) < abs(true_switches[best] - f):
                best = i
        if best is not None:
            used.add(best)
            hits += 1
    precision = hits / len(found) if found else 0.0
    recall = hits / len(true_switches) if true_switches else 0.0
    return 0.0 if hits == 0 else 2 * precision * recall / (precision + recall)


# -- per-step series (the similarity or objective logged at every step) ---------------------------

@dataclass
class SyntheticSeries:
    """A per-step series with the truth that produced it (``drop_steps`` empty for controls)."""

    steps: np.ndarray
    values: np.ndarray
    drop_steps: np.ndarray
    kind: str

    @property
    def cycling(self) -> bool:
        return len(self.drop_steps) > 0

    def mean_spacing(self) -> float:
        return float(np.mean(np.diff(self.drop_steps))) if len(self.drop_steps) > 1 else float("nan")


def _ar1(rng: np.random.Generator, n: int, sigma: float, phi: float = 0.3, df: float | None = None) -> np.ndarray:
    """AR(1) noise with marginal standard deviation ``sigma`` (Student-t innovations when ``df``)."""
    e = rng.standard_t(df, n) / np.sqrt(df / (df - 2)) if df else rng.standard_normal(n)
    out = np.empty(n)
    out[0] = e[0]
    for t in range(1, n):
        out[t] = phi * out[t - 1] + np.sqrt(1 - phi ** 2) * e[t]
    return sigma * out


def _climb(n: int, start: float, level: float, tau: float) -> np.ndarray:
    return level - (level - start) * np.exp(-np.arange(n) / tau)


def sawtooth_series(rng: np.random.Generator, *, spacing: float = 13.0, n: int = 1000, amplitude: float = 0.04,
                    noise: float = 0.003, jitter: float = 0.25, start: float = 0.3, level: float = 0.6,
                    climb_steps: float = 80.0) -> SyntheticSeries:
    """A climb from ``start`` to ``level``, then sudden drops every ~``spacing`` steps, each recovered
    linearly before the next: what ``--preset zer0int`` does to the similarity on the toy CLIP.

    Gaps between drops are gamma with mean ``spacing`` and coefficient of variation ``jitter``
    (at least 2 steps); each drop's size is ``amplitude`` times a factor in 0.6-1.4; the noise is
    AR(1) with standard deviation ``noise``.
    """
    gaps = []
    t = climb_steps
    while t < n:
        g = max(2, int(round(rng.gamma(1 / jitter ** 2, spacing * jitter ** 2))))
        gaps.append(g)
        t += g
    drops = (climb_steps + np.cumsum(gaps)[:-1]).astype(np.int64)
    drops = drops[drops < n]
    saw = np.zeros(n)
    edges = np.r_[drops, n]
    for a, b in zip(edges[:-1], edges[1:]):
        size = amplitude * rng.uniform(0.6, 1.4)
        saw[a:b] = -size * (1 - np.arange(b - a) / (b - a))
    values = _climb(n, start, level, climb_steps / 3) + saw + _ar1(rng, n, noise)
    return SyntheticSeries(np.arange(n), values, drops, "sawtooth")


def rising_series(rng: np.random.Generator, *, n: int = 1000, noise: float = 0.003) -> SyntheticSeries:
    """A climb that slows down but never stops within the run, plus noise (no drops)."""
    tau = rng.uniform(n / 10, n)
    values = _climb(n, 0.2, 0.6, tau) + _ar1(rng, n, noise)
    return SyntheticSeries(np.arange(n), values, np.empty(0, dtype=np.int64), "rising")


def flat_series(rng: np.random.Generator, *, n: int = 1000, noise: float = 0.003) -> SyntheticSeries:
    """A quick climb, then a constant level with white noise."""
    values = _climb(n, 0.2, 0.55, 10.0) + noise * rng.standard_normal(n)
    return SyntheticSeries(np.arange(n), values, np.empty(0, dtype=np.int64), "flat")


def noisy_series(rng: np.random.Generator, *, n: int = 1000, noise: float = 0.01) -> SyntheticSeries:
    """A climb, then heavy-tailed correlated noise (AR(1), Student-t with 3 degrees of freedom)."""
    values = _climb(n, 0.2, 0.55, 20.0) + _ar1(rng, n, noise, phi=0.5, df=3.0)
    return SyntheticSeries(np.arange(n), values, np.empty(0, dtype=np.int64), "noisy")


SERIES_CONTROLS = {"rising": rising_series, "flat": flat_series, "noisy": noisy_series}
