"""Sudden drops in a detrended per-step series, judged against the series' own noise, and whether
their spacing is regular.

``detect_drops`` cuts the series into ramps at its sudden changes. Every maximal run of falling
(or rising) steps, measured against the typical ramp slope, offers one candidate: its steepest
stretch of at most ``max_steps`` steps. A candidate's size is the gap between the line fitted to
the ramp before it (at its end) and the line fitted to the ramp after it (at its start), each
over at most ``CAP`` steps, net of the ramp's own climb across the stretch; its z is that size
over its standard error (from the spread of the ramps around their lines). Each line's slope is
shrunk toward the typical ramp slope by ``shrink`` (a ramp of a few steps cannot tell its slope
from its noise). Candidates are then removed weakest first, each removal merging two ramps and
re-scoring the neighbours, until every candidate left reaches a threshold. A second score
(``"steps"``: the fall over the stretch itself in units of the step-to-step noise) is tried too,
which wins where the noise is strongly correlated in time, and the one that finds more drops is used.

The threshold is not a fixed number of standard deviations: a saw-tooth drops suddenly and
climbs back slowly, so sudden *rises* of the same series, found by the same procedure, are
false alarms only, and their count above a threshold estimates the false drops above it. The
threshold is the lowest (at least ``floor``) at which the rises left are at most ``fdr`` times
the drops left, so small drops count in a series full of them and noise does not in a series
without any. Drops under ``relative`` times the median drop are left out (a dip far smaller than
the saw-tooth's drops is noise the procedure let through), and so are changes across which the
series itself falls by less than ``SUDDEN_SHARE`` of their size (the lines of a curved ramp
can disagree where nothing sudden happens).

A change that undoes part of the change just before it (the other way, starting at most
``REBOUND`` steps after it ends, moving the series less) is that change's rebound, not a sudden
change of its own: a drop that bounces half way back at once (the toy CLIP's drops under the
original recipe do, 33 of 43 sudden rises of a fresh 1000-step run came one step after a drop)
would otherwise fill the rises with its own recoveries and push the threshold past every drop.
Rebounds are set aside from the drops, the rises and the sign test alike; the rule reads the same
with the series turned upside down, so under noise without a preference for falling it sets
aside as many drops as rises and the rises still estimate the false drops.

The same elimination, stopped at a fixed z of ``TEST_Z``, also counts the drops and rises left
there: under noise without a preference for falling, each is a drop with probability 1/2, so
the one-sided binomial p (``sign_p``) says whether the sudden changes fall more often than they
rise. It sees a few large drops in a long run, which the skewness test of ``dynamics`` can miss.

Whether the drops keep time is ``clipxai.analysis.motion.regularity``.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

CAP = 20                 # steps of a ramp used for its line, on each side of a drop
TAU_STEP = 0.1           # resolution of the threshold search
TAU_MAX = 15.0
TEST_Z = 3.5            # the fixed threshold at which drops and rises are counted for the sign test
REBOUND = 2             # steps after a change within which a change the other way is its rebound
SUDDEN_SHARE = 0.5       # a drop's own fall must be at least this share of the gap between the ramps' lines
COMPILED_FROM = 20_000   # candidates from which the elimination runs compiled (numba; ~60k logged steps)


def robust_scale(d: np.ndarray) -> float:
    """Standard deviation from the median absolute deviation (drops are outliers to it)."""
    d = np.asarray(d, dtype=np.float64)
    s = 1.4826 * float(np.median(np.abs(d - np.median(d))))
    return s if s > 0 else float(np.std(d))


def _changes(x: np.ndarray, max_steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, end, sign) of the steepest stretch (<= ``max_steps`` steps) of every maximal monotone run of ``x``.

    The steepest stretch of a run is the window of ``w`` steps (the first of the largest, ``w``
    from 1 up, a longer one only when strictly steeper) with the largest sum over sqrt(w);
    every run's windows of one width are summed in one pass over the whole series."""
    d = np.diff(x)
    n = len(d)
    sign_of = np.sign(d).astype(np.int64)
    moving = np.flatnonzero(sign_of)
    if not len(moving):
        empty = np.empty(0, dtype=np.int64)
        return empty, empty.copy(), empty.copy()
    # A run starts at a moving step whose predecessor is still or moves the other way.
    first = np.r_[True, sign_of[moving[1:]] != sign_of[moving[1:] - 1]]
    run_start = moving[first]
    run_end = np.empty_like(run_start)                 # one past the run's last step
    nxt = np.r_[run_start[1:], n]
    still = np.r_[np.flatnonzero(sign_of == 0), n]
    # A run ends at the next still step or at the next run's start, whichever comes first.
    next_still = still[np.searchsorted(still, run_start)]
    run_end[:] = np.minimum(nxt, next_still)
    signs = sign_of[run_start]
    length = run_end - run_start
    a = np.abs(d)                                      # sign * d inside each run, exactly
    best_v = np.full(len(run_start), -1.0)
    best_s, best_e = run_start.copy(), run_start + 1
    for w in range(1, max_steps + 1):
        fits = length >= w
        if not fits.any():
            break
        sums = np.convolve(a, np.ones(w), mode="valid")        # sums[p] = a[p] + ... + a[p + w - 1]
        rs, re = run_start[fits], run_end[fits] - w + 1        # window starts p in [rs, re)
        k = _first_max(sums, rs, re)
        value = sums[k] / math.sqrt(w)
        better = value > best_v[fits]
        idx = np.flatnonzero(fits)[better]
        best_v[idx], best_s[idx], best_e[idx] = value[better], k[better], k[better] + w
    return best_s.astype(np.int64), best_e.astype(np.int64), signs.astype(np.int64)


def _first_max(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """For each segment [lo, hi) of ``values`` (disjoint, in order, non-empty), the index of its first maximum."""
    width = hi - lo
    seg = np.repeat(np.arange(len(lo)), width)
    pos = np.arange(len(seg)) + np.repeat(lo - (np.cumsum(width) - width), width)
    v = values[pos]
    # Sort by segment, then by value descending, then by position: the first of each segment wins.
    order = np.lexsort((pos, -v, seg))
    heads = np.r_[0, np.flatnonzero(np.diff(seg[order])) + 1]
    return pos[order[heads]]


class _Ramps:
    """Scores a change between two ramps, from prefix sums (O(1) per candidate; plain floats, which
    compute exactly what numpy's float64 would, many times faster one at a time)."""

    def __init__(self, r: np.ndarray, slope: float, shrink: float, sigma: float, step_noise: float, score: str):
        t = np.arange(len(r), dtype=np.float64)
        self.sums_array = np.stack([np.r_[0.0, np.cumsum(v)] for v in (np.ones(len(r)), t, r, t * t, t * r)])
        self.r_array = np.ascontiguousarray(r, dtype=np.float64)
        self.sums = [row.tolist() for row in self.sums_array]
        self.r = r.tolist()
        self.slope, self.shrink, self.sigma = float(slope), float(shrink), float(sigma)
        self.step_noise, self.score = float(step_noise), score

    def _line(self, a: int, b: int, at: float) -> tuple[float, float, float]:
        """Value at ``at`` of the line on r[a..b] (slope shrunk toward the ramp slope), its variance / sigma^2, slope.

        The steps a..b are consecutive, so their mean and spread are written out (sums of t and t^2
        over a million steps lose every digit of a short ramp's spread); only r's sums come from prefix sums."""
        _, _, cr, _, ctr = self.sums
        n = float(b - a + 1)
        sr, s_tr = cr[b + 1] - cr[a], ctr[b + 1] - ctr[a]
        tm, rm = 0.5 * (a + b), sr / n
        sxx, sxy = n * (n * n - 1.0) / 12.0, s_tr - tm * sr
        slope = (sxy + self.shrink * self.slope) / (sxx + self.shrink)
        var_slope = sxx / (sxx + self.shrink) ** 2
        return rm + slope * (at - tm), 1.0 / n + var_slope * (at - tm) ** 2, slope

    def score_of(self, left: int, a: int, b: int, right: int, sign: int) -> tuple[float, float]:
        """(z in the direction ``sign``, signed size) of the change r[a] -> r[b] between ramps left..a and b..right."""
        if self.score == "steps":
            size = self.r[b] - self.r[a] - self.slope * (b - a)
            return sign * size / (self.step_noise * math.sqrt(b - a)), size
        left, right = max(left, a - CAP + 1), min(right, b + CAP - 1)
        lv, lvar, ls = self._line(left, a, a)
        rv, rvar, rs = self._line(b, right, b)
        size = rv - lv - 0.5 * (ls + rs) * (b - a)
        return sign * size / (self.sigma * math.sqrt(lvar + rvar)), size


def _eliminate(ramps: _Ramps, cand: tuple, n: int, threshold: float = math.inf,
               history: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Remove the weakest candidate until all left reach ``threshold``: (indices left, their sizes).

    ``history`` collects (z, sign, index) of every removal, in order. From ``COMPILED_FROM``
    candidates on, the same loop runs compiled (``clipxai.analysis.motion.elimination``)."""
    if len(cand[0]) >= COMPILED_FROM:
        from clipxai.analysis.motion.elimination import eliminate_compiled  # noqa: PLC0415
        out = eliminate_compiled(ramps, cand, n, threshold, CAP)
        if out is not None:
            left, sizes, hz, hk = out
            if history is not None:
                history.extend(zip(hz.tolist(), cand[2][hk].tolist(), hk.tolist()))
            return left, sizes
    return _eliminate_python(ramps, cand, n, threshold, history)


def _eliminate_python(ramps: _Ramps, cand: tuple, n: int, threshold: float = math.inf,
                      history: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``_eliminate`` in Python (the reference the compiled loop is checked against)."""
    starts, ends, signs = (c.tolist() for c in cand)
    m = len(starts)
    alive = [True] * m
    prev, nxt = list(range(-1, m - 1)), list(range(1, m + 1))
    score_of = ramps.score_of

    def score(k):
        p, q = prev[k], nxt[k]
        return score_of(0 if p < 0 else ends[p], starts[k], ends[k], n - 1 if q >= m else starts[q], signs[k])

    version = [0] * m
    heap = [(score(k)[0], 0, k) for k in range(m)]
    heapq.heapify(heap)
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        z, v, k = pop(heap)
        if not alive[k] or v != version[k]:
            continue
        if z >= threshold:
            break
        if history is not None:
            history.append((z, signs[k], k))
        alive[k] = False
        p, q = prev[k], nxt[k]
        if p >= 0:
            nxt[p] = q
        if q < m:
            prev[q] = p
        for j in (p, q):
            if 0 <= j < m and alive[j]:
                version[j] += 1
                push(heap, (score(j)[0], version[j], j))
    left = np.flatnonzero(alive)
    return left, np.asarray([score(k)[1] for k in left.tolist()], dtype=np.float64)


def rebounds(cand: tuple, alive: np.ndarray, moves: np.ndarray, within: int | None = None) -> np.ndarray:
    """Which of the changes ``alive`` (indices into ``cand``, in series order) are the partial
    undoing of the change before them: they go the other way, start at most ``within`` steps
    after it ends, and move the series less (``moves``: how far the series itself moves across
    each change). A drop's quick partial recovery, or a rise's quick fall back. The rule is the
    same for both directions, so under noise without a preference for falling it sets aside as
    many drops as rises."""
    starts, ends, signs = cand
    within = REBOUND if within is None else within
    out = np.zeros(len(alive), dtype=bool)
    if len(alive) > 1:
        a, b = alive[:-1], alive[1:]
        out[1:] = (signs[b] != signs[a]) & (starts[b] - ends[a] <= within) & (moves[b] < moves[a])
    return out


def _left_by_threshold(history: list, cand: tuple, moves: np.ndarray,
                       taus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(drops, rises), rebounds set aside, still standing when the elimination stops at each threshold in ``taus``."""
    m = len(cand[2])
    z = np.asarray([h[0] for h in history])
    order = np.asarray([h[2] for h in history], dtype=np.int64)
    reached = np.maximum.accumulate(z) if len(z) else z
    removed = np.searchsorted(reached, taus, side="left")
    falls, rises = np.zeros(len(taus), dtype=np.int64), np.zeros(len(taus), dtype=np.int64)
    for r in np.unique(removed):
        alive = np.ones(m, dtype=bool)
        alive[order[:r]] = False
        idx = np.flatnonzero(alive)
        keep = idx[~rebounds(cand, idx, moves)]
        sel = removed == r
        falls[sel], rises[sel] = int((cand[2][keep] < 0).sum()), int((cand[2][keep] > 0).sum())
    return falls, rises


def _ramp_slope(d: np.ndarray, cand: tuple, left: np.ndarray) -> float:
    """Median step-to-step change outside the changes kept: the typical climb of a ramp."""
    mark = np.zeros(len(d) + 1, dtype=np.int64)
    np.add.at(mark, cand[0][left], 1)
    np.add.at(mark, cand[1][left], -1)
    ramp = np.cumsum(mark)[:len(d)] == 0
    return float(np.median(d[ramp])) if ramp.sum() > 10 else float(np.median(d))


def _ramp_noise(r: np.ndarray, cand: tuple, left: np.ndarray) -> float | None:
    """Robust spread of the ramps (6 steps or more) around their own least-squares lines, all ramps
    in one pass (each line from its own sums, the steps counted from the ramp's start)."""
    a = np.r_[0, cand[1][left]].astype(np.int64)
    b = np.r_[cand[0][left], len(r) - 1].astype(np.int64)
    long = b - a + 1 >= 6
    a, b = a[long], b[long]
    if not len(a):
        return None
    n = b - a + 1
    ramp = np.repeat(np.arange(len(a)), n)
    t = (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)).astype(np.float64)   # 0, 1, ... within each ramp
    y = r[np.repeat(a, n) + t.astype(np.int64)]
    nf = n.astype(np.float64)
    tm = (nf - 1.0) / 2.0
    ym = np.bincount(ramp, y) / nf
    dt = t - tm[ramp]
    slope = np.bincount(ramp, dt * (y - ym[ramp])) / (nf * (nf * nf - 1.0) / 12.0)
    return robust_scale(y - ym[ramp] - slope[ramp] * dt)


@dataclass
class DropSearch:
    """The drops found, and how the threshold was set."""

    low: np.ndarray            # index of each drop's low point
    sizes: np.ndarray          # how far it fell, in the series' units
    threshold: float | None    # z a drop had to reach (None: no threshold kept false alarms low enough)
    score: str | None          # "ramps" or "steps": which score found them
    false_share: float | None  # rises over drops at that threshold: the estimated share of false drops
    noise: float               # spread of the ramps around their lines, in the series' units
    falls_at_test: int = 0     # drops and rises standing at z >= TEST_Z (same score)
    rises_at_test: int = 0
    sign_p: float = 1.0        # one-sided binomial p of that many drops among drops and rises (symmetric noise: 1/2 each)


def _calibrated(r, cand, ramps_of, scores, fdr, taus):
    """The score and threshold that find the most drops while rises stay under ``fdr`` of them."""
    best, tests, histories = None, {}, {}
    moves = np.abs(r[cand[1]] - r[cand[0]])
    for score in scores:
        history = histories[score] = []
        _eliminate(ramps_of(score), cand, len(r), math.inf, history)
        falls, rises = _left_by_threshold(history, cand, moves, taus)
        f0, r0 = _left_by_threshold(history, cand, moves, np.array([TEST_Z]))
        tests[score] = (int(f0[0]), int(r0[0]))
        ok = (falls > 0) & (rises <= fdr * falls)
        if ok.any():
            j = int(np.argmax(ok))
            if best is None or falls[j] > best[2]:
                best = (score, float(taus[j]), int(falls[j]), float(rises[j] / falls[j]))
    if best is None:
        return None, np.empty(0, dtype=np.int64), np.empty(0), None, None, tests.get(scores[0], (0, 0))
    score, tau, _, share = best
    left, sizes = _stopped_at(ramps_of(score), cand, len(r), histories[score], tau)
    return score, left, sizes, tau, share, tests[score]


def _stopped_at(ramps: _Ramps, cand: tuple, n: int, history: list, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """What ``_eliminate(ramps, cand, n, threshold)`` returns, read from a full elimination's ``history``:
    the two remove the same candidates in the same order until the first removal at or above the
    threshold, where the shorter one stops. One pass fewer per threshold (1M logged steps: ~1 s each)."""
    m = len(cand[0])
    z = np.asarray([h[0] for h in history], dtype=np.float64)
    stop = int(np.argmax(z >= threshold)) if np.any(z >= threshold) else len(z)
    alive = np.ones(m, dtype=bool)
    alive[np.asarray([h[2] for h in history[:stop]], dtype=np.int64)] = False
    left = np.flatnonzero(alive)
    starts, ends, signs = (c.tolist() for c in cand)
    neighbors = [-1] + left.tolist() + [m]
    sizes = [ramps.score_of(0 if p < 0 else ends[p], starts[k], ends[k], n - 1 if q >= m else starts[q], signs[k])[1]
             for p, k, q in zip(neighbors, neighbors[1:-1], neighbors[2:])]
    return left, np.asarray(sizes, dtype=np.float64)


def detect_drops(r, *, max_steps: int = 3, fdr: float = 0.05, floor: float = 2.0, shrink: float = 10.0,
                 relative: float = 0.5, iterations: int = 3) -> DropSearch:
    """Sudden drops of the detrended series ``r`` (see the module doc)."""
    r = np.asarray(r, dtype=np.float64)
    n = len(r)
    d = np.diff(r)
    slope = float(np.median(d))
    step_noise = robust_scale(d - np.median(d))
    sigma = robust_scale(d[1:] - d[:-1]) / math.sqrt(6)   # white noise: a second difference has 6 sigma^2
    empty = DropSearch(np.empty(0, dtype=np.int64), np.empty(0), None, None, None, sigma)
    if n < 4 or step_noise == 0:
        return empty
    taus = np.arange(floor, TAU_MAX, TAU_STEP)
    for it in range(iterations):
        cand = _changes(r - slope * np.arange(n), max_steps)
        if not len(cand[0]):
            return empty

        def ramps_of(score, slope=slope, sigma=sigma):
            return _Ramps(r, slope, shrink, sigma, step_noise, score)

        last = it == iterations - 1
        score, left, sizes, tau, share, counted = _calibrated(r, cand, ramps_of,
                                                              ("ramps", "steps") if last else ("ramps",), fdr, taus)
        if last:
            break
        sigma = _ramp_noise(r, cand, left) or sigma       # the rough cut tells the ramps' noise and slope
        slope = _ramp_slope(d, cand, left)
    sign = dict(falls_at_test=counted[0], rises_at_test=counted[1], sign_p=_sign_p(*counted))
    if score is None:
        return DropSearch(empty.low, empty.sizes, None, None, None, sigma, **sign)
    own_move = ~rebounds(cand, left, np.abs(r[cand[1]] - r[cand[0]]))
    left, sizes = left[own_move], sizes[own_move]
    falls = cand[2][left] < 0
    low, sizes = cand[1][left][falls], -sizes[falls]
    own = r[cand[0][left][falls]] - r[low]
    sudden = own >= SUDDEN_SHARE * sizes        # the series itself falls across the stretch, not only its lines
    low, sizes = low[sudden], sizes[sudden]
    if len(sizes) and relative > 0:
        keep = sizes >= relative * np.median(sizes)
        low, sizes = low[keep], sizes[keep]
    return DropSearch(low, sizes, tau, score, share, sigma, **sign)


def _sign_p(falls: int, rises: int) -> float:
    """P(at least ``falls`` drops among falls + rises changes) when each is a drop with probability 1/2."""
    from scipy.stats import binom  # noqa: PLC0415

    n = falls + rises
    return 1.0 if n == 0 else float(binom.sf(falls - 1, n, 0.5))
