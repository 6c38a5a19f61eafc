"""Recurrence plot and recurrence quantification (RQA) of a trajectory.

Snapshots i and j recur when their features lie within ``eps`` of each other. By default
``eps`` is the median distance between consecutive snapshots: "as close as the run usually
is to where it was one snapshot ago", so noise within a state counts as recurrence and the
recurrence rate itself carries information (a fixed share of the largest distance would
call nothing recurrent in noisy high-dimensional runs). Determinism is the share of recurrent
points on diagonal lines of length >= 2 (the run retraces a path it took before); laminarity
the share on vertical lines of length >= 2 (the run lingers). The main diagonal is left out.
Long runs are evenly subsampled to ``max_points`` snapshots first (the matrix is quadratic).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RecurrenceResult:
    """The recurrence matrix of (a subsample of) the run, and its RQA figures."""

    matrix: np.ndarray          # (M, M) bool
    index: np.ndarray           # (M,) snapshot index of each row
    eps: float
    recurrence_rate: float
    determinism: float
    laminarity: float
    min_line: int

    def to_dict(self) -> dict:
        return {
            "eps": float(self.eps), "points": int(len(self.index)), "min_line": self.min_line,
            "recurrence_rate": float(self.recurrence_rate),
            "determinism": float(self.determinism), "laminarity": float(self.laminarity),
        }

    def plot(self, ax, steps: np.ndarray | None = None) -> None:
        t = self.index if steps is None else np.asarray(steps)[self.index]
        extent = (t[0], t[-1], t[-1], t[0]) if len(t) > 1 else None
        ax.imshow(self.matrix, cmap="Greys", interpolation="nearest", extent=extent, aspect="equal")
        ax.set_xlabel("step" if steps is not None else "snapshot")
        ax.set_ylabel("step" if steps is not None else "snapshot")
        ax.set_title(f"recurrence (eps={self.eps:.3g}): RR={self.recurrence_rate:.2f} "
                     f"DET={self.determinism:.2f} LAM={self.laminarity:.2f}")


def _run_lengths(columns: np.ndarray) -> np.ndarray:
    """Lengths of every run of True down the columns of a 2-D boolean array."""
    padded = np.zeros((columns.shape[0] + 2, columns.shape[1]), dtype=np.int8)
    padded[1:-1] = columns
    diff = np.diff(padded, axis=0).T.ravel()   # column by column
    starts = np.flatnonzero(diff == 1)
    ends = np.flatnonzero(diff == -1)
    return ends - starts


def _diagonal_lengths(r: np.ndarray) -> np.ndarray:
    """Run lengths along the diagonals above the main one (the matrix is symmetric)."""
    m = len(r)
    rows = np.arange(m)[:, None]
    offsets = np.arange(1, m)[None, :]
    cols = rows + offsets
    inside = cols < m
    skew = np.zeros((m, m - 1), dtype=bool)  # skew[i, k-1] = r[i, i+k]: diagonals become columns
    skew[inside] = r[np.broadcast_to(rows, cols.shape)[inside], cols[inside]]
    return _run_lengths(skew)


def recurrence(features: np.ndarray, eps: float | None = None, max_points: int = 1500,
               min_line: int = 2) -> RecurrenceResult:
    """Recurrence matrix and RQA of feature rows (one per snapshot)."""
    x = np.asarray(features, dtype=np.float64)
    idx = np.arange(len(x))
    if len(x) > max_points:
        idx = np.linspace(0, len(x) - 1, max_points).round().astype(int)
    x = x[idx]
    sq = (x * x).sum(axis=1)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0))
    if eps is None:
        full = np.asarray(features, dtype=np.float64)
        eps = float(np.median(np.linalg.norm(np.diff(full, axis=0), axis=1))) if len(full) > 1 else 0.0
    r = dist <= eps
    np.fill_diagonal(r, False)
    total = int(r.sum())
    m = len(x)
    rr = total / (m * (m - 1)) if m > 1 else 0.0
    if total == 0:
        return RecurrenceResult(r, idx, float(eps), rr, 0.0, 0.0, min_line)
    diag = _diagonal_lengths(r)
    det = 2 * diag[diag >= min_line].sum() / total
    vert = _run_lengths(r)
    lam = vert[vert >= min_line].sum() / total
    return RecurrenceResult(r, idx, float(eps), float(rr), float(det), float(lam), min_line)
