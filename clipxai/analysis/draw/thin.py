"""Drawing a long series without drawing every point: what a chart shows, at a cost that does
not grow with the run.

A chart is some 800 pixels wide; a run of 100,000 snapshots logs a million steps. ``envelope``
keeps, in each of ``max_points / 2`` equal slices of a longer line, its lowest and its highest
point (in their order), so every drop and every peak stays as deep and as high as it is, at more
slices than the chart has pixels. A series of at most ``max_points`` points is drawn as it is.
``state_spans`` shades the background by state with one collection, not one patch per visit.
"""

from __future__ import annotations

import numpy as np

MAX_POINTS = 5000   # per line; an ordinary run's series (a few thousand points) is drawn whole


def envelope(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) thinned to at most ``max_points`` points: each slice's minimum and maximum, in order."""
    x, y = np.asarray(x), np.asarray(y)
    n = len(y)
    if n <= max_points:
        return x, y
    bins = max(1, max_points // 2)
    width = -(-n // bins)
    padded = np.full(bins * width, np.nan)
    padded[:n] = y
    rows = padded.reshape(bins, width)
    missing = np.isnan(rows)
    base = np.arange(bins) * width
    lo = np.where(missing, np.inf, rows).argmin(axis=1) + base
    hi = np.where(missing, -np.inf, rows).argmax(axis=1) + base
    keep = np.unique(np.concatenate([lo, hi]))
    keep = keep[keep < n]
    return x[keep], y[keep]


def state_spans(ax, starts: np.ndarray, ends: np.ndarray, states: np.ndarray, colors, alpha: float = 0.12) -> None:
    """The background from ``starts[i]`` to ``ends[i]`` (x, data units) in ``colors[states[i]]``, full height."""
    from matplotlib.collections import PolyCollection  # noqa: PLC0415

    x0, x1 = np.asarray(starts, dtype=np.float64), np.asarray(ends, dtype=np.float64)
    if not len(x0):
        return
    zero, one = np.zeros(len(x0)), np.ones(len(x0))
    verts = np.stack([np.c_[x0, zero], np.c_[x0, one], np.c_[x1, one], np.c_[x1, zero]], axis=1)
    spans = PolyCollection(verts, facecolors=[colors[int(s)] for s in states], alpha=alpha, linewidths=0,
                           transform=ax.get_xaxis_transform())
    ax.add_collection(spans, autolim=False)
    ax.update_datalim(np.c_[[x0.min(), x1.max()], [0.0, 0.0]], updatey=False)
    ax.autoscale_view(scaley=False)
