"""Are the changes of state jumps? Window means across each switch against the run's own motion.

For a switch from state a to state b after snapshot t, the statistic is the distance, along the
line joining the two centroids, between the mean of the ``w`` snapshots after the switch and
the mean of the ``w`` before it; ``w`` is at most ``MAX_WINDOW`` and never more than either visit
it touches (a brief visit of 3 snapshots is judged on 3, not on a quarter of the median visit).
Against it: the same statistic, with the same ``w``, at every place inside a visit to a or b
where both windows fit in that one visit. Their ratio is ~1 for a state path cut out of a
continuous motion (a drift, a random walk, or a state's own smooth wander, however strongly
correlated in time: the reference moves the same way), and large for a jump between separated
states, growing with sqrt(w) for noise that is independent from snapshot to snapshot. Rows that
repeat the previous row exactly (a frozen image recorded twice) are left out first: they carry
no motion and would make the motion inside a state look smaller than it is.

``merge_without_jumps`` merges, weakest first, pairs of states whose switches are not jumps
(median ratio under ``min_ratio``), so a state is somewhere the run jumps to and from, not a
stretch of one continuous motion. A pair one of whose states is visited only once, and which
switches only a few times, must clear a higher bar when the motion is smooth in time (``phi`` > 0),
``min_ratio`` x ``FEW_SWITCHES`` / switches:
a clustering cuts a slow wander where it happens to move fastest, and there a single ratio of
5-15 is what AR(1) noise with coefficient 0.9 gives (planted single-state runs, 512-D), while a
run that returns to its states has shown them to be places, not stretches.
"""

from __future__ import annotations

import numpy as np

MAX_WINDOW = 8
MIN_PHI = 0.3        # motion correlation below which the rows are judged as they are
MAX_PHI = 0.95
FEW_SWITCHES = 4     # pairs with fewer switches than this need a proportionally larger median ratio
MIN_REFERENCE = 5    # places a reference needs before it is trusted (else a shorter window is tried)


def distinct_rows(x: np.ndarray, rtol: float = 1e-6) -> np.ndarray:
    """True for every row that differs from the row before it (the first row included); a row within
    ``rtol`` of the rows' spread from the one before repeats it (float32 storage rounds a copy)."""
    x = np.asarray(x, dtype=np.float64)
    keep = np.ones(len(x), dtype=bool)
    if len(x) > 1:
        spread = float(np.sqrt(np.mean(np.sum((x - x.mean(axis=0)) ** 2, axis=1))))
        keep[1:] = np.linalg.norm(np.diff(x, axis=0), axis=1) > rtol * max(spread, 1e-300)
    return keep


def motion_correlation(x: np.ndarray, labels: np.ndarray | None = None) -> float:
    """How smooth the motion from snapshot to snapshot is: phi of an AR(1) motion, from the median
    squared move over 2 snapshots against 1 (1 + phi for AR(1) noise; 1 for independent noise;
    rare jumps between states hardly move a median). With ``labels`` only moves inside one run of
    a label count: with visits of 3-4 snapshots most 2-snapshot moves cross a switch, and states
    alternating every 4 snapshots would read as smooth motion. Clipped to 0..``MAX_PHI``."""
    if len(x) < 8:
        return 0.0
    same = np.ones(len(x) - 1, dtype=bool) if labels is None else np.asarray(labels[1:] == labels[:-1])
    one = np.sum(np.diff(x, axis=0) ** 2, axis=1)[same]
    two = np.sum((x[2:] - x[:-2]) ** 2, axis=1)[same[1:] & same[:-1]]
    if len(one) < 4 or len(two) < 4:
        return 0.0
    v1, v2 = float(np.median(one)), float(np.median(two))
    return float(np.clip(v2 / max(v1, 1e-300) - 1.0, 0.0, MAX_PHI)) if v1 > 0 else 0.0


def decorrelate(x: np.ndarray, phi: float) -> np.ndarray:
    """(x_t - phi x_(t-1)) / (1 - phi): the motion's innovations, on the scale of x, so that a state's
    mean stays where it is while motion correlated in time becomes independent from row to row."""
    out = x.copy()
    out[1:] = (x[1:] - phi * x[:-1]) / (1.0 - phi)
    return out


def _runs(states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    starts = np.r_[0, np.flatnonzero(states[1:] != states[:-1]) + 1]
    return starts, np.r_[starts[1:], len(states)]


def _window_diffs(p: np.ndarray, w: int) -> np.ndarray:
    """diff[t] = mean(p[t+1..t+w]) - mean(p[t-w+1..t]) for t in w-1..n-w-1 (NaN elsewhere)."""
    n = len(p)
    out = np.full(n, np.nan)
    if n < 2 * w:
        return out
    c = np.r_[0.0, np.cumsum(p)]
    t = np.arange(w - 1, n - w)
    out[t] = ((c[t + 1 + w] - c[t + 1]) - (c[t + 1] - c[t + 1 - w])) / w
    return out


def _window_diff_at(c: np.ndarray, t: int, w: int) -> float:
    """``_window_diffs(p, w)[t]`` from ``c = r_[0, cumsum(p)]``, the same arithmetic for one t (O(1), not O(n))."""
    n = len(c) - 1
    if n < 2 * w or not w - 1 <= t < n - w:
        return np.nan
    return float(((c[t + 1 + w] - c[t + 1]) - (c[t + 1] - c[t + 1 - w])) / w)


def switch_ratios(x: np.ndarray, states: np.ndarray, max_window: int = MAX_WINDOW,
                  phi: float = 0.0) -> list[tuple[int, int, float]]:
    """(state before, state after, jump ratio) of every switch of ``states`` (rows ``x``), repeats left
    out, on the innovations of an AR(1) motion with coefficient ``phi`` (when > 0)."""
    keep = distinct_rows(x)
    x, states = np.asarray(x, dtype=np.float64)[keep], np.asarray(states)[keep]
    if phi > 0:
        x = decorrelate(x, phi)
    if len(states) < 4 or len(np.unique(states)) < 2:
        return []
    starts, ends = _runs(states)
    lengths = ends - starts
    k = int(states.max()) + 1
    cents = np.stack([x[states == s].mean(axis=0) if (states == s).any() else np.zeros(x.shape[1]) for s in range(k)])
    out, cache = [], {}
    for j in range(1, len(starts)):
        a, b = int(states[starts[j - 1]]), int(states[starts[j]])
        t = starts[j] - 1
        w = int(min(max_window, lengths[j - 1], lengths[j]))
        key = (min(a, b), max(a, b))
        if key not in cache:
            u = cents[key[1]] - cents[key[0]]
            u /= max(np.linalg.norm(u), 1e-12)
            p = x @ u
            cache[key] = (p, np.r_[0.0, np.cumsum(p)], {})
        p, c, refs = cache[key]
        across = _window_diff_at(c, t, w) if w >= 1 else np.nan
        ref = _reference(p, states, starts, ends, key, w, refs)
        if ref is not None and np.isfinite(across):
            out.append((a, b, float(abs(across) / max(ref, 1e-12))))
    return out


def _reference(p, states, starts, ends, pair, w, refs):
    """Median |window difference| inside visits to either state of ``pair`` (a shorter window when too few).

    ``refs`` remembers each window's answer for the pair, a window with too few values too (None), so a
    run of thousands of short visits does not search the same windows again at every switch."""
    for ww in range(w, 0, -1):
        if ww not in refs:
            refs[ww] = _reference_at(p, states, starts, ends, pair, ww)
        if refs[ww] is not None:
            return refs[ww]
    return None


def _reference_at(p, states, starts, ends, pair, ww) -> float | None:
    """The median |window difference| of width ``ww`` inside the pair's visits; None with too few of them."""
    d = _window_diffs(p, ww)
    mine = np.isin(states[starts], pair) & (ends - starts >= 2 * ww)
    edges = np.zeros(len(p) + 1, dtype=np.int64)
    np.add.at(edges, starts[mine] + ww - 1, 1)
    np.add.at(edges, ends[mine] - ww, -1)
    inside = np.cumsum(edges[:-1]) > 0        # visits never overlap: one interval of t per visit
    vals = np.abs(d[inside])
    return float(np.median(vals)) if len(vals) >= MIN_REFERENCE else None


def jump_ratio(x: np.ndarray, states: np.ndarray, phi: float = 0.0) -> float | None:
    """Median jump ratio over all switches (None without a switch that can be judged)."""
    ratios = [r for _, _, r in switch_ratios(x, states, phi=phi)]
    return float(np.median(ratios)) if ratios else None


def pair_ratios(x: np.ndarray, states: np.ndarray, phi: float = 0.0) -> dict[tuple[int, int], tuple[float, int]]:
    """(median jump ratio, switches) between each pair of states that switch into each other."""
    by_pair: dict[tuple[int, int], list[float]] = {}
    for a, b, r in switch_ratios(x, states, phi=phi):
        by_pair.setdefault((min(a, b), max(a, b)), []).append(r)
    return {k: (float(np.median(v)), len(v)) for k, v in by_pair.items()}


def jump_bar(min_ratio: float, switches: int) -> float:
    """The median ratio a pair with ``switches`` switches must reach to count as two states."""
    return min_ratio * max(1.0, FEW_SWITCHES / max(switches, 1))


def merge_without_jumps(x: np.ndarray, labels: np.ndarray, min_ratio: float = 5.0,
                        relabel=None, phi: float = 0.0) -> tuple[np.ndarray, list[float]]:
    """Merge, weakest first, pairs of states whose switches are not jumps: (labels, ratio of each merge).

    ``relabel(x, labels)``, when given, re-draws the path after each merge (the HMM); jumps are
    judged on the innovations of an AR(1) motion with coefficient ``phi`` (see ``decorrelate``)."""
    from clipxai.analysis.states.cluster import renumber_by_first_appearance  # noqa: PLC0415

    labels = renumber_by_first_appearance(np.asarray(labels))
    merged: list[float] = []
    while min_ratio > 0 and int(labels.max()) >= 1:
        ratios = pair_ratios(x, labels, phi)
        if not ratios:
            break
        starts, _ = _runs(labels)
        visits = np.bincount(labels[starts], minlength=int(labels.max()) + 1)

        def bar(pair, count):
            # a stretch of a smooth motion, not a place the run returns to (independent noise needs no extra bar)
            once = phi > 0 and min(visits[pair[0]], visits[pair[1]]) <= 1
            return jump_bar(min_ratio, count) if once else min_ratio

        (a, b), (r, count) = min(ratios.items(), key=lambda kv: kv[1][0] / bar(kv[0], kv[1][1]))
        if r >= bar((a, b), count):
            break
        labels = renumber_by_first_appearance(np.where(labels == b, a, labels))
        if relabel is not None:
            labels = renumber_by_first_appearance(relabel(x, labels))
        merged.append(r)
    return labels, merged
