"""Planted embedding trajectories, written apart from ``synthetic.py``, to check state counting and
the verdict on realistic runs.

A trajectory visits planted states (unit concept vectors with a chosen pairwise cosine) in a
chosen order and for chosen dwell times; each snapshot is its state's vector plus noise of norm
``noise`` (relative to the unit vector), re-normalised and scaled to a CLIP-like norm. The noise
can be smooth in time (AR(1) with coefficient ``phi`` in every dimension: a real ascent moves
continuously inside a state), rows can be duplicated (``duplicates``: that share of rows repeats
the row before, as a frozen image recorded twice), and a state can be brief (visits of a few
snapshots) or rare (a small share of the run). Families:

* ``home``: a home state held ~60 snapshots with brief visits (~6) to a second state, repeated;
* ``states``: K states (1-8) in random order, gamma dwells, pairwise cosine ``cos``;
* ``rare``: K states of which one holds only ``occupancy`` of the run in visits of ``brief`` snapshots;
* controls that must never be called oscillating: ``one state``, ``drift`` (a straight move to a
  new place that stops), ``random walk``, ``one switch`` (A, then B for good).

Every generator takes an explicit ``numpy.random.Generator``; ``Planted.n_states`` is the truth
(None where a count has no meaning: a drift or a walk).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FAMILIES = ("home", "states", "rare", "one state", "drift", "random walk", "one switch")
CONTROLS = ("one state", "drift", "random walk", "one switch")
SWITCHING = ("home", "states", "rare")


@dataclass
class Planted:
    """Embeddings with the truth that made them."""

    embeddings: np.ndarray     # (N, D) float32
    steps: np.ndarray          # (N,) int64
    states: np.ndarray         # (N,) true state per snapshot (-1: none)
    n_states: int | None       # states the run stays in for 3+ snapshots in a row (None: not a count)
    family: str
    oscillating: bool          # switching with returns

    @property
    def verdicts(self) -> tuple[str, ...]:
        """The verdicts that are right for this trajectory."""
        if self.oscillating:
            return ("metastable_switching", "periodic_oscillation")
        if self.family == "drift" or self.family == "one switch":
            return ("converging", "single_state")
        return ("single_state",)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def concepts(rng: np.random.Generator, k: int, dim: int, cos: float) -> np.ndarray:
    """``k`` unit vectors whose pairwise cosines are all ``cos`` (a shared part and orthogonal private parts)."""
    basis, _ = np.linalg.qr(rng.standard_normal((dim, k + 1)))
    shared, private = basis[:, 0], basis[:, 1:].T
    return np.sqrt(cos) * shared + np.sqrt(1 - cos) * private


def smooth_noise(rng: np.random.Generator, n: int, dim: int, phi: float) -> np.ndarray:
    """(n, dim) Gaussian noise of unit variance per entry, AR(1) in time with coefficient ``phi``."""
    e = rng.standard_normal((n, dim))
    if phi <= 0:
        return e
    out = np.empty_like(e)
    out[0] = e[0]
    c = np.sqrt(1 - phi ** 2)
    for t in range(1, n):
        out[t] = phi * out[t - 1] + c * e[t]
    return out


def render(rng: np.random.Generator, centres: np.ndarray, noise: float, phi: float = 0.0,
           duplicates: float = 0.0) -> np.ndarray:
    """Snapshots of the given centre rows: noise of norm ``noise`` (per snapshot), CLIP-like norms."""
    n, dim = centres.shape
    rows = (_unit(centres + noise * smooth_noise(rng, n, dim, phi) / np.sqrt(dim))
            * rng.uniform(8.0, 12.0, size=(n, 1))).astype(np.float32)
    if duplicates > 0:
        for t in np.flatnonzero(rng.random(n) < duplicates):
            if t > 0:
                rows[t] = rows[t - 1]
    return rows


def held(states: np.ndarray, min_run: int = 3) -> int:
    """States the path stays in for ``min_run`` snapshots in a row (the analysis's own definition)."""
    edges = np.r_[0, np.flatnonzero(states[1:] != states[:-1]) + 1, len(states)]
    return len({int(states[a]) for a, b in zip(edges[:-1], edges[1:]) if b - a >= min_run and states[a] >= 0})


def _path(seq: list[int], lengths: list[int], n: int) -> np.ndarray:
    return np.repeat(np.asarray(seq), np.asarray(lengths))[:n]


def home_path(rng: np.random.Generator, n: int = 400, home: float = 60.0, visit: float = 6.0) -> np.ndarray:
    """Home (state 0) for ~``home`` snapshots, then ~``visit`` in state 1, repeated."""
    seq, lengths = [], []
    while sum(lengths) < n:
        seq += [0, 1]
        lengths += [max(10, int(rng.normal(home, home / 4))), max(3, int(round(rng.normal(visit, 1.5))))]
    return _path(seq, lengths, n)


def switching_path(rng: np.random.Generator, k: int, n: int = 400, mean_dwell: float = 20.0,
                   min_dwell: int = 3) -> np.ndarray:
    """K states in random order (never the same twice in a row), gamma dwells of shape 3."""
    seq, lengths = [int(rng.integers(k))], []
    while sum(lengths) < n:
        lengths.append(max(min_dwell, int(round(rng.gamma(3.0, mean_dwell / 3.0)))))
        nxt = int(rng.integers(k - 1))
        seq.append(nxt + (nxt >= seq[-1]))
    return _path(seq[:len(lengths)], lengths, n)


def rare_path(rng: np.random.Generator, k: int, n: int = 400, occupancy: float = 0.05, brief: int = 3,
              mean_dwell: float = 25.0) -> np.ndarray:
    """K - 1 states switching as in ``switching_path`` and a last one visited ``occupancy`` of the
    time in visits of ``brief`` to ``brief + 2`` snapshots, spread over the run."""
    path = switching_path(rng, k - 1, n, mean_dwell) if k > 2 else np.zeros(n, dtype=np.int64)
    visits = max(2, int(round(occupancy * n / (brief + 1))))
    slots = np.linspace(0, n, visits + 2)[1:-1].astype(int)
    for s in slots:
        length = int(rng.integers(brief, brief + 3))
        path[s:s + length] = k - 1
    return path


def planted(rng: np.random.Generator, family: str, *, k: int = 3, dim: int = 512, cos: float = 0.5,
            noise: float = 1.0, phi: float = 0.0, duplicates: float = 0.0, n: int = 400, occupancy: float = 0.05,
            brief: int = 3, snapshot_every: int = 10) -> Planted:
    """One trajectory of ``family`` (see the module doc)."""
    steps = np.arange(n, dtype=np.int64) * snapshot_every
    if family in SWITCHING:
        path = (home_path(rng, n) if family == "home" else switching_path(rng, k, n) if family == "states"
                else rare_path(rng, k, n, occupancy, brief))
        c = concepts(rng, int(path.max()) + 1, dim, cos)
        truth = held(path)
        return Planted(render(rng, c[path], noise, phi, duplicates), steps, path, truth, family,
                       oscillating=truth >= 2)
    if family == "one state":
        c = concepts(rng, 1, dim, cos)
        return Planted(render(rng, np.repeat(c, n, axis=0), noise, phi, duplicates), steps, np.zeros(n, np.int64), 1,
                       family, False)
    if family == "one switch":
        c = concepts(rng, 2, dim, cos)
        path = (np.arange(n) >= int(rng.uniform(0.3, 0.7) * n)).astype(np.int64)
        return Planted(render(rng, c[path], noise, phi, duplicates), steps, path, 2, family, False)
    if family == "drift":
        a, b = concepts(rng, 2, dim, cos)
        w = np.clip(np.arange(n) / (rng.uniform(0.3, 0.6) * n), 0, 1)[:, None]
        return Planted(render(rng, _unit((1 - w) * a + w * b), noise, phi, duplicates), steps, np.full(n, -1), None,
                       family, False)
    if family == "random walk":
        x = _unit(rng.standard_normal(dim))
        rows = np.empty((n, dim))
        for i in range(n):
            rows[i] = x
            x = _unit(x + 0.08 * rng.standard_normal(dim) / np.sqrt(dim))
        return Planted(render(rng, rows, noise, phi, duplicates), steps, np.full(n, -1), None, family, False)
    raise ValueError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
