"""The analysis of a long run, made fast without changing what it finds: each faster part against
the code it replaced (kept here as the reference), and the charts that draw a thinned series."""

import numpy as np
from helpers_runs import write_run

from clipxai.analysis.motion.periodicity import shuffled_order
from clipxai.analysis.states import jumps
from clipxai.runs.load import load_run


def _shuffled_order_before(states, rng, no_repeats):
    """shuffled_order as it was: one rng.choice per free position."""
    if not no_repeats:
        return rng.permutation(len(states))
    pools = {s: list(rng.permutation(np.flatnonzero(states == s))) for s in np.unique(states).tolist()}
    order, last = [], None
    for remaining in range(len(states), 0, -1):
        counts = {s: len(p) for s, p in pools.items() if p}
        big = max(counts, key=counts.get)
        if counts[big] > (remaining + 1) // 2 or (counts[big] == (remaining + 1) // 2 and remaining % 2 and big != last):
            choice = big
        else:
            allowed = [s for s in counts if s != last] or list(counts)
            weights = np.array([counts[s] for s in allowed], dtype=float)
            choice = allowed[int(rng.choice(len(allowed), p=weights / weights.sum()))]
        order.append(pools[choice].pop())
        last = choice
    return np.asarray(order)


def test_shuffled_order_is_the_order_it_was_and_leaves_the_generator_where_it_was():
    source = np.random.default_rng(7)
    for case in range(60):
        k = int(source.integers(2, 7))
        seg_states = source.integers(0, k, size=int(source.integers(4, 300)))
        seg_states = seg_states[np.r_[True, seg_states[1:] != seg_states[:-1]]]   # segments never repeat a state
        no_repeats = len(np.unique(seg_states)) >= 3 or case % 2 == 0
        a, b = np.random.default_rng(case), np.random.default_rng(case)
        for _ in range(3):   # several surrogates in a row share one generator, as in periodicity_test
            assert shuffled_order(seg_states, a, no_repeats).tolist() == \
                _shuffled_order_before(seg_states, b, no_repeats).tolist()
        assert a.random() == b.random()


def _switch_ratios_before(x, states, max_window=jumps.MAX_WINDOW, phi=0.0):
    """switch_ratios as it was: a whole window-difference array for every switch."""
    keep = jumps.distinct_rows(x)
    x, states = np.asarray(x, dtype=np.float64)[keep], np.asarray(states)[keep]
    if phi > 0:
        x = jumps.decorrelate(x, phi)
    if len(states) < 4 or len(np.unique(states)) < 2:
        return []
    starts, ends = jumps._runs(states)
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
            cache[key] = (x @ u, {})
        p, refs = cache[key]
        across = jumps._window_diffs(p, w)[t] if w >= 1 else np.nan
        ref = _reference_before(p, states, starts, ends, key, w, refs)
        if ref is not None and np.isfinite(across):
            out.append((a, b, float(abs(across) / max(ref, 1e-12))))
    return out


def _reference_before(p, states, starts, ends, pair, w, refs):
    for ww in range(w, 0, -1):
        if ww in refs:
            return refs[ww]
        d = jumps._window_diffs(p, ww)
        inside = np.zeros(len(p), dtype=bool)
        for s, e in zip(starts, ends):
            if states[s] in pair and e - s >= 2 * ww:
                inside[s + ww - 1:e - ww] = True
        vals = np.abs(d[inside])
        if len(vals) >= jumps.MIN_REFERENCE:
            refs[ww] = float(np.median(vals))
            return refs[ww]
    return None


def test_switch_ratios_are_the_ratios_they_were():
    rng = np.random.default_rng(3)
    for case in range(40):
        k = int(rng.integers(2, 5))
        dwell = rng.integers(1, 6 if case % 4 == 0 else 40, size=int(rng.integers(3, 120)))
        states = np.repeat(rng.integers(0, k, size=len(dwell)), dwell)
        x = rng.standard_normal((len(states), 6)) + 3 * rng.standard_normal((k, 6))[states]
        phi = 0.3 if case % 3 == 0 else 0.0
        assert jumps.switch_ratios(x, states, phi=phi) == _switch_ratios_before(x, states, phi=phi)


def test_a_runs_metrics_are_read_once_and_again_when_the_file_changes(tmp_path):
    run = load_run(write_run(tmp_path, n=20))
    file = run.path / "metrics.jsonl"
    file.write_text('{"step": 0, "sim/a": 0.1}\n{"step": 1, "sim/a": 0.2}\n', encoding="utf-8")
    first = run.metrics()
    first.append({"step": 99})                  # a caller's list is its own
    assert run.metrics() == [{"step": 0, "sim/a": 0.1}, {"step": 1, "sim/a": 0.2}]
    with open(file, "a", encoding="utf-8") as f:   # a live run logs another step
        f.write('{"step": 2, "sim/a": 0.3}\n')
    assert [m["step"] for m in run.metrics()] == [0, 1, 2]


def test_a_chart_of_200k_steps_draws_a_few_thousand_points_and_keeps_the_deepest_drop():
    from matplotlib.figure import Figure

    from clipxai.analysis.draw.chart import plot_similarity
    from clipxai.analysis.draw.thin import MAX_POINTS, envelope

    rng = np.random.default_rng(0)
    steps = np.arange(200_000)
    sim = 0.3 + 0.002 * (steps % 13) + 0.0005 * rng.standard_normal(len(steps))
    sim[123_457] = 0.1        # one drop far deeper than the rest
    sim[7] = 0.5              # one peak
    x, y = envelope(steps, sim)
    assert len(x) <= MAX_POINTS and np.all(np.diff(x) > 0)
    assert 123_457 in x and y[x == 123_457][0] == 0.1 and y.max() == 0.5
    short = np.arange(3000.0)
    assert envelope(short, short)[1] is short                  # an ordinary series is drawn whole
    ax = Figure().add_subplot()
    assert plot_similarity(ax, [{"step": int(s), "sim/a": float(v)} for s, v in zip(steps, sim)])
    (line,) = ax.get_lines()
    assert len(line.get_ydata()) <= MAX_POINTS and min(line.get_ydata()) == 0.1


def test_the_state_background_of_thousands_of_visits_is_one_collection():
    from matplotlib.figure import Figure

    from clipxai.analysis.draw.chart import shade_states
    from clipxai.analysis.motion.oscillation import oscillation

    states = np.repeat(np.tile([0, 1, 2], 2000), 5)          # 6,000 visits
    osc = oscillation(states, np.arange(len(states)) * 10, np.eye(3)[states] * 5.0, n_surrogates=9, n_boot=9)
    ax = Figure().add_subplot()
    shade_states(ax, osc)
    assert len(ax.collections) == 1 and len(ax.patches) == 0
    assert ax.get_xlim()[0] <= 0 and ax.get_xlim()[1] >= 10 * len(states)
    ax = Figure().add_subplot()
    osc.plot(ax)
    assert len(ax.collections) == 3                          # one bar collection a state


def _asymmetry_before(r, rng, n_surrogates=999, block=10, clip=10.0):
    from clipxai.analysis.motion.dynamics import noise_scale

    d = np.diff(np.asarray(r, dtype=np.float64))
    scale = noise_scale(d)
    if scale > 0:
        d = np.clip(d, -clip * scale, clip * scale)
    m2 = float(np.mean(d ** 2))
    if m2 == 0:
        return 0.0, 1.0
    norm = len(d) * m2 ** 1.5
    per_block = np.add.reduceat(d ** 3, np.arange(0, len(d), block))
    observed = float(per_block.sum() / norm)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(n_surrogates, len(per_block)))
    null = signs @ per_block / norm
    return observed, float((1 + np.sum(null <= observed + 1e-12 * abs(observed))) / (1 + n_surrogates))


def test_the_drop_asymmetry_test_gives_the_p_value_it_gave():
    from clipxai.analysis.motion.dynamics import drop_asymmetry_test

    source = np.random.default_rng(11)
    for case in range(12):
        n = int(source.integers(50, 20_000))
        r = np.cumsum(source.standard_normal(n)) * 0.01 - 0.05 * (np.arange(n) % int(source.integers(5, 30)) == 0)
        surrogates = [999, 199, 64, 1][case % 4]
        a, b = np.random.default_rng(case), np.random.default_rng(case)
        assert drop_asymmetry_test(r, a, n_surrogates=surrogates) == _asymmetry_before(r, b, n_surrogates=surrogates)
        assert a.random() == b.random()


def test_a_threshold_read_from_the_full_elimination_leaves_what_the_elimination_to_it_leaves():
    import math

    from clipxai.analysis.motion import drops

    rng = np.random.default_rng(5)
    for case in range(8):
        n = int(rng.integers(300, 4000))
        t = np.arange(n)
        r = (0.01 * (t % int(rng.integers(5, 40))) if case % 2 else np.cumsum(rng.standard_t(3, n)) * 0.01) \
            + 0.003 * rng.standard_normal(n)
        cand = drops._changes(r, 3)
        for score in ("ramps", "steps"):
            ramps = drops._Ramps(r, 0.0, 10.0, 0.003, 0.004, score)
            history = []
            drops._eliminate(ramps, cand, n, math.inf, history)
            for tau in (2.0, 3.5, 5.0, 9.0, math.inf):
                left, sizes = drops._eliminate_python(ramps, cand, n, tau)
                left2, sizes2 = drops._stopped_at(ramps, cand, n, history, tau)
                assert left.tolist() == left2.tolist() and sizes.tobytes() == sizes2.tobytes()


def test_the_signal_rank_of_a_tall_run_is_the_count_the_svd_gives():
    from clipxai.analysis.states.assign import signal_rank

    def by_svd(x):
        x = np.asarray(x, dtype=np.float64) - np.mean(x, axis=0)
        beta = min(x.shape) / max(x.shape)
        sv = np.linalg.svd(x, compute_uv=False)
        return int((sv > (0.56 * beta ** 3 - 0.95 * beta ** 2 + 1.82 * beta + 1.43) * np.median(sv)).sum())

    rng = np.random.default_rng(0)
    for case in range(30):
        n, d = int(rng.integers(400, 4000)), int(rng.integers(8, 48))
        k = int(rng.integers(1, d))
        x = rng.standard_normal((n, k)) @ rng.standard_normal((k, d)) * rng.uniform(0.05, 5) \
            + rng.standard_normal((n, d)) * rng.uniform(0.01, 2)
        assert signal_rank(x.astype(np.float32) if case % 3 == 0 else x) == by_svd(x.astype(np.float32) if case % 3 == 0 else x)
    flat = np.repeat(rng.standard_normal((1, 16)), 500, axis=0)   # no spread at all: the SVD decides
    assert signal_rank(flat) == by_svd(flat)
