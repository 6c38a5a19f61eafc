"""The drop search's elimination as one compiled loop, for long series.

``clipxai.analysis.motion.drops`` removes the weakest candidate, re-scores its two neighbours and
repeats; in Python that costs ~2.5 s per pass at 100k logged steps and the search makes up to
seven passes, so a run of 1M logged steps took minutes. This is the same loop, line for line the
same arithmetic in the same order (float64, no fast-math, no fused multiply-add), compiled by
numba: the same candidates fall in the same order with the same z, bit for bit
(tests/test_drop_compiled.py checks it on random series against the Python loop). The heap's
keys (z, version, index) are all distinct, so any binary heap pops them in the same order as
``heapq``. numba is imported only for a series of ``drops.COMPILED_FROM`` candidates or more, so
a short run never loads it; its compiled code is cached where UMAP's is.
"""

from __future__ import annotations

import math

import numpy as np

from clipxai.analysis.draw.project import _numba_env

_numba_env()          # numba's cache folder and threading layer, set before numba is first imported

import numba  # noqa: E402

jit = numba.njit(cache=True, fastmath=False, error_model="numpy")


@jit
def line(sums, a, b, at, slope0, shrink):
    n = float(b - a + 1)
    sr = sums[2, b + 1] - sums[2, a]
    s_tr = sums[4, b + 1] - sums[4, a]
    tm = 0.5 * (a + b)
    rm = sr / n
    sxx = n * (n * n - 1.0) / 12.0
    sxy = s_tr - tm * sr
    slope = (sxy + shrink * slope0) / (sxx + shrink)
    den = sxx + shrink
    var_slope = sxx / (den * den)
    u = at - tm
    return rm + slope * u, 1.0 / n + var_slope * (u * u), slope


@jit
def score_of(sums, r, left, a, b, right, sign, steps_score, slope0, shrink, sigma, step_noise, cap):
    if steps_score:
        size = r[b] - r[a] - slope0 * (b - a)
        return sign * size / (step_noise * math.sqrt(b - a)), size
    left = max(left, a - cap + 1)
    right = min(right, b + cap - 1)
    lv, lvar, ls = line(sums, left, a, float(a), slope0, shrink)
    rv, rvar, rs = line(sums, b, right, float(b), slope0, shrink)
    size = rv - lv - 0.5 * (ls + rs) * (b - a)
    return sign * size / (sigma * math.sqrt(lvar + rvar)), size


@jit
def less(z1, v1, k1, z2, v2, k2):
    if z1 != z2:
        return z1 < z2
    if v1 != v2:
        return v1 < v2
    return k1 < k2


@jit
def push(hz, hv, hk, size, z, v, k):
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if less(z, v, k, hz[parent], hv[parent], hk[parent]):
            hz[i], hv[i], hk[i] = hz[parent], hv[parent], hk[parent]
            i = parent
        else:
            break
    hz[i], hv[i], hk[i] = z, v, k
    return size + 1


@jit
def pop(hz, hv, hk, size):
    z, v, k = hz[0], hv[0], hk[0]
    size -= 1
    lz, lv, lk = hz[size], hv[size], hk[size]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and less(hz[c + 1], hv[c + 1], hk[c + 1], hz[c], hv[c], hk[c]):
            c += 1
        if less(hz[c], hv[c], hk[c], lz, lv, lk):
            hz[i], hv[i], hk[i] = hz[c], hv[c], hk[c]
            i = c
        else:
            break
    if size > 0:
        hz[i], hv[i], hk[i] = lz, lv, lk
    return z, v, k, size


@jit
def eliminate(starts, ends, signs, n, threshold, sums, r, steps_score, slope0, shrink, sigma, step_noise, cap):
    m = len(starts)
    alive = np.ones(m, dtype=np.bool_)
    prev = np.arange(-1, m - 1)
    nxt = np.arange(1, m + 1)
    version = np.zeros(m, dtype=np.int64)
    cap_heap = 3 * m + 1
    hz = np.empty(cap_heap)
    hv = np.empty(cap_heap, dtype=np.int64)
    hk = np.empty(cap_heap, dtype=np.int64)
    hist_z = np.empty(m)
    hist_k = np.empty(m, dtype=np.int64)
    n_hist = 0
    size = 0
    bad = False

    for k in range(m):
        p, q = prev[k], nxt[k]
        z, _ = score_of(sums, r, 0 if p < 0 else ends[p], starts[k], ends[k], n - 1 if q >= m else starts[q],
                        signs[k], steps_score, slope0, shrink, sigma, step_noise, cap)
        bad = bad or not math.isfinite(z)
        size = push(hz, hv, hk, size, z, 0, k)
    while size > 0:
        z, v, k, size = pop(hz, hv, hk, size)
        if not alive[k] or v != version[k]:
            continue
        if z >= threshold:
            break
        hist_z[n_hist] = z
        hist_k[n_hist] = k
        n_hist += 1
        alive[k] = False
        p, q = prev[k], nxt[k]
        if p >= 0:
            nxt[p] = q
        if q < m:
            prev[q] = p
        for j in (p, q):
            if 0 <= j < m and alive[j]:
                version[j] += 1
                pj, qj = prev[j], nxt[j]
                zj, _ = score_of(sums, r, 0 if pj < 0 else ends[pj], starts[j], ends[j],
                                 n - 1 if qj >= m else starts[qj], signs[j], steps_score, slope0, shrink,
                                 sigma, step_noise, cap)
                bad = bad or not math.isfinite(zj)
                size = push(hz, hv, hk, size, zj, version[j], j)
    left = np.flatnonzero(alive)
    sizes = np.empty(len(left))
    for i in range(len(left)):
        k = left[i]
        p, q = prev[k], nxt[k]
        _, sizes[i] = score_of(sums, r, 0 if p < 0 else ends[p], starts[k], ends[k],
                               n - 1 if q >= m else starts[q], signs[k], steps_score, slope0, shrink,
                               sigma, step_noise, cap)
    return left, sizes, hist_z[:n_hist], hist_k[:n_hist], bad


def eliminate_compiled(ramps, cand: tuple, n: int, threshold: float, cap: int):
    """(indices left, their sizes, removed z in order, removed index in order), or None where a z
    was not finite (a division by zero: the Python loop runs instead and says so as it always did)."""
    starts, ends, signs = (np.ascontiguousarray(c, dtype=np.int64) for c in cand)
    left, sizes, hz, hk, bad = eliminate(starts, ends, signs, int(n), float(threshold), ramps.sums_array,
                                      ramps.r_array, ramps.score == "steps", ramps.slope, ramps.shrink,
                                      ramps.sigma, ramps.step_noise, int(cap))
    if bad:
        return None
    return left.astype(np.int64), sizes, hz, hk
