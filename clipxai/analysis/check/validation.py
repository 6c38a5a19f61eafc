"""Scoring the analysis against synthetic ground truth (used by the tests and by
``bench/validate_oscillation.py``).

``planted_scores`` draws trajectories with known states and reports how often the number of
states is recovered exactly, the F1 of the switch points (tolerance 2 snapshots) and the
relative error of the mean dwell. ``control_scores`` draws the negative controls and reports
how often each is (wrongly) called an oscillation. ``sawtooth_scores`` and
``series_control_scores`` do the same for the per-step dynamics (``dynamics.py``).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from clipxai.analysis.check import synthetic
from clipxai.analysis.motion.oscillation import oscillation
from clipxai.analysis.motion.verdict import OSCILLATING
from clipxai.analysis.states.assign import infer_states


def analyse_trajectory(traj: synthetic.SyntheticTrajectory, *, method: str = "kmeans", state_model: str = "hmm",
                       seed: int = 0, n_boot: int = 200, n_surrogates: int = 99):
    """The same pipeline ``clipxai analyze`` runs on embeddings, applied to a synthetic trajectory."""
    st = infer_states(traj.embeddings, method=method, state_model=state_model, seed=seed)
    return oscillation(st.states, traj.steps, st.reduced, seed=seed, n_boot=n_boot, n_surrogates=n_surrogates,
                       origin=st.origin())


def planted_scores(n_draws: int = 100, seed: int = 0, *, noise: float = 1.0, k_range: tuple[int, int] = (2, 6),
                   n: int = 400, method: str = "kmeans", state_model: str = "hmm", tolerance: int = 2,
                   **analysis) -> dict:
    """Recovery of K (states held for 3 snapshots in a row), switch points and mean dwell over ``n_draws``
    planted trajectories."""
    k_ok, f1, dwell_err, verdicts = 0, [], [], Counter()
    for i in range(n_draws):
        rng = np.random.default_rng([seed, i])
        k = int(rng.integers(k_range[0], k_range[1] + 1))
        traj = synthetic.planted_states(rng, n=n, k=k, noise=noise)
        res = analyse_trajectory(traj, method=method, state_model=state_model, **analysis)
        k_ok += res.n_states == traj.n_states_held()
        f1.append(synthetic.switch_f1(traj.switch_indices, res.segments.switch_indices, tolerance))
        true_dwell = traj.mean_dwell_steps()
        dwell_err.append(abs(res.dwell_all["mean"] - true_dwell) / true_dwell)
        verdicts[res.verdict] += 1
    return {
        "draws": n_draws, "noise": noise, "method": method, "state_model": state_model,
        "k_exact": k_ok / n_draws,
        "switch_f1_mean": float(np.mean(f1)), "switch_f1_min": float(np.min(f1)),
        "switch_f1_share_ge_0.9": float(np.mean(np.array(f1) >= 0.9)),
        "dwell_rel_error_mean": float(np.mean(dwell_err)), "dwell_rel_error_max": float(np.max(dwell_err)),
        "dwell_share_within_15pct": float(np.mean(np.array(dwell_err) <= 0.15)),
        "called_oscillating": sum(verdicts[v] for v in OSCILLATING) / n_draws,
        "verdicts": dict(verdicts),
    }


def control_scores(kind: str, n_draws: int = 100, seed: int = 0, *, method: str = "kmeans",
                   state_model: str = "hmm", generator_args: dict | None = None, **analysis) -> dict:
    """How often a negative control is called an oscillation (it never should be)."""
    gen = synthetic.NEGATIVE_CONTROLS[kind]
    verdicts = Counter()
    for i in range(n_draws):
        traj = gen(np.random.default_rng([seed, 10_000 + i]), **(generator_args or {}))
        verdicts[analyse_trajectory(traj, method=method, state_model=state_model, **analysis).verdict] += 1
    wrong = sum(verdicts[v] for v in OSCILLATING)
    return {"control": kind, "draws": n_draws, "called_oscillating": wrong / n_draws,
            "not_oscillating": 1 - wrong / n_draws, "verdicts": dict(verdicts)}


def sawtooth_scores(spacing: float, n_draws: int = 100, seed: int = 0, *, tolerance: float = 0.2,
                    n_surrogates: int = 999, **generator) -> dict:
    """How often a planted saw-tooth is called cycling with its mean spacing within ``tolerance``."""
    from clipxai.analysis.motion.dynamics import dynamics  # noqa: PLC0415

    cycling, within, ratios = 0, 0, []
    for i in range(n_draws):
        s = synthetic.sawtooth_series(np.random.default_rng([seed, 20_000 + i]), spacing=spacing, **generator)
        res = dynamics(s.steps, s.values, n_surrogates=n_surrogates, seed=seed)
        cycling += res.cycling
        ratio = (res.mean_spacing_steps or float("nan")) / s.mean_spacing()
        ratios.append(ratio)
        within += bool(res.cycling and abs(ratio - 1) <= tolerance)
    r = np.array(ratios)
    return {"spacing": spacing, "draws": n_draws, "cycling": cycling / n_draws, "spacing_within": within / n_draws,
            "tolerance": tolerance, "spacing_ratio_median": float(np.nanmedian(r)),
            "spacing_ratio_range": [float(np.nanmin(r)), float(np.nanmax(r))] if np.isfinite(r).any() else None}


def series_control_scores(kind: str, n_draws: int = 100, seed: int = 0, *, n_surrogates: int = 999) -> dict:
    """How often a per-step control series (rising, flat, noisy) is (wrongly) called cycling."""
    from clipxai.analysis.motion.dynamics import dynamics  # noqa: PLC0415

    gen = synthetic.SERIES_CONTROLS[kind]
    wrong = 0
    for i in range(n_draws):
        s = gen(np.random.default_rng([seed, 30_000 + i]))
        wrong += dynamics(s.steps, s.values, n_surrogates=n_surrogates, seed=seed).cycling
    return {"control": kind, "draws": n_draws, "called_cycling": wrong / n_draws, "not_cycling": 1 - wrong / n_draws}


STATE_GRID_DIMS = (64, 128, 512, 1024)
STATE_GRID_SEPARATIONS = {"far (cos 0.3-0.6)": (0.3, 0.6), "near (cos 0.6-0.8)": (0.6, 0.8)}


def k_exact_rate(n_draws: int = 20, seed: int = 0, *, dim: int = 512, cos_range: tuple[float, float] = (0.3, 0.6),
                 dwell_law: str = "gamma", k: int | None = None, noise: float = 1.0, n: int = 400,
                 method: str = "kmeans") -> dict:
    """How often the number of states is found exactly (states only: no oscillation metrics).

    ``k`` fixes the number of planted concepts; by default each draw takes 2 to 6. The truth is
    the number of planted states the run stayed in for 3 snapshots in a row
    (``n_states_held``), the analysis's own definition of a state.
    """
    hits, misses = 0, Counter()
    for i in range(n_draws):
        rng = np.random.default_rng([seed, 40_000 + i])
        kk = k or int(rng.integers(2, 7))
        traj = synthetic.planted_states(rng, n=n, k=kk, dim=dim, noise=noise, cos_range=cos_range,
                                        dwell_law=dwell_law)
        found = int(infer_states(traj.embeddings, method=method, seed=seed).states.max()) + 1
        truth = traj.n_states_held()
        hits += found == truth
        if found != truth:
            misses[f"{truth}->{found}"] += 1
    return {"dim": dim, "cos_range": list(cos_range), "dwell_law": dwell_law, "k": k, "noise": noise, "method": method,
            "draws": n_draws, "k_exact": hits / n_draws, "misses": dict(misses)}


# -- realistic trajectories (``planted.py``, written apart from ``synthetic.py``) -----------------

REALISTIC_SETTINGS: dict[str, dict] = {
    "home + brief excursions": dict(family="home"),
    "home + brief excursions, 64-D": dict(family="home", dim=64),
    "K=2": dict(family="states", k=2),
    "K=3": dict(family="states", k=3),
    "K=5": dict(family="states", k=5),
    "K=8": dict(family="states", k=8),
    "K=8, 1024-D": dict(family="states", k=8, dim=1024),
    "K=3, 64-D": dict(family="states", k=3, dim=64),
    "K=5, 64-D": dict(family="states", k=5, dim=64),
    "K=3, AR(1) 0.5": dict(family="states", k=3, phi=0.5),
    "K=3, AR(1) 0.9": dict(family="states", k=3, phi=0.9),
    "K=3, AR(1) 0.95": dict(family="states", k=3, phi=0.95),
    "K=3, close (cos 0.85)": dict(family="states", k=3, cos=0.85),
    "K=3, half the rows repeated": dict(family="states", k=3, duplicates=0.5),
    "K=3, one at 5% in visits of 3": dict(family="rare", k=3),
    "control: one state": dict(family="one state"),
    "control: one state, AR(1) 0.9": dict(family="one state", phi=0.9),
    "control: one state, AR(1) 0.95": dict(family="one state", phi=0.95),
    "control: one state, half repeated": dict(family="one state", duplicates=0.5),
    "control: drift": dict(family="drift"),
    "control: random walk": dict(family="random walk"),
    "control: one switch": dict(family="one switch"),
    "control: one switch, AR(1) 0.9": dict(family="one switch", phi=0.9),
}


def realistic_scores(setting: dict, n_draws: int = 20, seed: int = 0, **analysis) -> dict:
    """Exact K (where a count has a meaning), the right verdict and "called oscillating" over
    ``n_draws`` trajectories of one ``planted.planted`` setting, analysed as ``clipxai analyze`` does."""
    from clipxai.analysis.check.planted import planted  # noqa: PLC0415

    k_ok = v_ok = oscillating = 0
    misses = Counter()
    for i in range(n_draws):
        p = planted(np.random.default_rng([seed, 60_000 + i]), **setting)
        st = infer_states(p.embeddings, seed=seed)
        res = oscillation(st.states, p.steps, st.reduced, seed=seed, n_boot=analysis.get("n_boot", 50),
                          n_surrogates=analysis.get("n_surrogates", 99), origin=st.origin())
        k_right = p.n_states is None or res.n_states == p.n_states
        k_ok += k_right
        v_ok += res.verdict in p.verdicts
        oscillating += res.verdict in OSCILLATING
        if not k_right or res.verdict not in p.verdicts:
            misses[f"{p.n_states}->{res.n_states} {res.verdict}"] += 1
    return {"draws": n_draws, "k_exact": k_ok / n_draws, "verdict_right": v_ok / n_draws,
            "called_oscillating": oscillating / n_draws, "misses": dict(misses)}


def drop_scores(n_draws: int = 20, seed: int = 0, *, tolerance: float = 0.2, n_surrogates: int = 199,
                **series) -> dict:
    """Cycling, spacing within ``tolerance`` and ``regular`` rates over ``planted_series.drop_series``
    draws (drops of 3-5 noise SD by default), each with snapshots every 10 steps."""
    from clipxai.analysis.check.planted_series import drop_series  # noqa: PLC0415
    from clipxai.analysis.motion.dynamics import dynamics  # noqa: PLC0415

    cycling = within = regular = 0
    for i in range(n_draws):
        s = drop_series(np.random.default_rng([seed, 70_000 + i]), **series)
        res = dynamics(s.steps, s.values, snapshot_interval=10, n_surrogates=n_surrogates, seed=seed)
        ratio = (res.mean_spacing_steps or float("nan")) / s.mean_spacing()
        cycling += res.cycling
        within += bool(res.cycling and abs(ratio - 1) <= tolerance)
        regular += bool(res.regular)
    return {"draws": n_draws, "cycling": cycling / n_draws, "spacing_within": within / n_draws,
            "regular": regular / n_draws}


def drop_control_scores(kind: str, n_draws: int = 20, seed: int = 0, n_surrogates: int = 199) -> dict:
    """How often a ``planted_series.control_series`` of ``kind`` is (wrongly) called cycling."""
    from clipxai.analysis.check.planted_series import control_series  # noqa: PLC0415
    from clipxai.analysis.motion.dynamics import dynamics  # noqa: PLC0415

    wrong = sum(dynamics(s.steps, s.values, n_surrogates=n_surrogates, seed=seed).cycling
                for s in (control_series(np.random.default_rng([seed, 80_000 + i]), kind) for i in range(n_draws)))
    return {"draws": n_draws, "not_cycling": 1 - wrong / n_draws}
