"""Oscillation metrics of a state sequence: switches, dwell times, transitions, trend, verdict.

Input is one state per snapshot (clusters, or an HMM's Viterbi path), the snapshot steps,
and optionally the feature rows the states came from (for the jump ratio, the convergence
check and the recurrence plot). Every figure is defined in docs/analysis.md; the switch-rate
interval is a circular block bootstrap (blocks at least one median dwell long, so the
dependence between neighboring snapshots is kept), the trend test is the Laplace test for a
Poisson process whose rate changes in time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from clipxai.analysis.motion.periodicity import PeriodicityResult, periodicity_test
from clipxai.analysis.motion.recurrence import RecurrenceResult, recurrence
from clipxai.analysis.motion.verdict import Evidence, StateOrigin, Thresholds, decide, plural, verdict_label
from clipxai.analysis.states.cluster import mean_silhouette, renumber_by_first_appearance
from clipxai.analysis.states.jumps import distinct_rows, jump_ratio
from clipxai.analysis.states.segments import (
    Segments,
    describe_dwell,
    dwell_stats,
    kaplan_meier,
    segments,
    transition_counts,
)

WINDOWS = ("early", "middle", "late")


@dataclass
class OscillationResult:
    """Everything measured about how a run moves between states, with its verdict."""

    states: np.ndarray
    steps: np.ndarray
    segments: Segments
    switches: int
    switch_rate: float                   # per 100 steps
    switch_rate_ci: tuple[float, float]  # 95% bootstrap interval
    dwell: dict[int, dict]
    dwell_all: dict
    transitions: np.ndarray
    windows: list[dict]
    trend: dict
    evidence: Evidence
    verdict: str
    verdict_reason: str
    recurrence: RecurrenceResult | None = None
    periodicity: PeriodicityResult | None = None

    @property
    def n_states(self) -> int:
        return int(self.states.max()) + 1 if len(self.states) else 0

    def to_dict(self) -> dict:
        lo, hi = self.switch_rate_ci
        probs = self.transitions / np.maximum(self.transitions.sum(axis=1, keepdims=True), 1)
        return {
            "n_snapshots": int(len(self.states)),
            "n_states": self.n_states,
            "states": self.states.tolist(),
            "switches": int(self.switches),
            "returns": int(self.evidence.returns),
            "switch_rate_per_100_steps": {"value": float(self.switch_rate), "ci95": [float(lo), float(hi)],
                                          "method": "circular block bootstrap"},
            "dwell_steps": {str(s): d for s, d in self.dwell.items()},
            "dwell_steps_all": self.dwell_all,
            "transition_counts": self.transitions.tolist(),
            "transition_probabilities": np.round(probs, 4).tolist(),
            "windows": self.windows,
            "trend": self.trend,
            "silhouette": self.evidence.silhouette,
            "jump_ratio": self.evidence.jump_ratio,
            "drift": {"total_noise_units": self.evidence.drift_total, "late_share": self.evidence.drift_late},
            "recurrence": None if self.recurrence is None else self.recurrence.to_dict(),
            "periodicity": None if self.periodicity is None else self.periodicity.to_dict(),
            "verdict": self.verdict,
            "verdict_reason": self.verdict_reason,
        }

    # -- figures ----------------------------------------------------------------------------
    def plot(self, ax, colors=None, names: dict | None = None) -> None:
        """The state sequence over steps, one band per segment (states named when ``names`` has words)."""
        from clipxai.analysis.draw.style import state_colors  # noqa: PLC0415
        from clipxai.analysis.draw.text import label  # noqa: PLC0415

        colors = colors or state_colors(self.n_states)
        seg = self.segments
        starts = np.asarray(self.steps, dtype=np.float64)[seg.start]
        for s in np.unique(seg.state).tolist():   # one bar collection a state, not one a visit
            mine = seg.state == s
            ax.broken_barh(np.c_[starts[mine], seg.dwell[mine]], (s - 0.4, 0.8), color=colors[s])
        ax.set_yticks(range(self.n_states))
        if names and self.n_states <= 12:
            ax.set_yticklabels([label(f"{s}: {names[s]}" if names.get(s) else str(s), 28)
                                for s in range(self.n_states)])
        ax.set_ylim(-0.6, self.n_states - 0.4)
        ax.invert_yaxis()
        ax.set_xlabel("step")
        ax.set_ylabel("state")
        lo, hi = self.switch_rate_ci
        ax.set_title(f"{verdict_label(self.verdict, self.n_states)}: {plural(self.switches, 'switch')}, "
                     f"{self.switch_rate:.2f} per 100 steps (95% CI {lo:.2f}-{hi:.2f})")

    def plot_survival(self, ax, colors=None) -> None:
        """Kaplan-Meier dwell survival per state (censored first/last visits included)."""
        from clipxai.analysis.draw.style import state_colors  # noqa: PLC0415

        colors = colors or state_colors(self.n_states)
        seg = self.segments
        for s in range(self.n_states):
            mine = seg.state == s
            if not mine.any():
                continue
            t, p = kaplan_meier(seg.dwell[mine], seg.censored[mine])
            ax.step(t, p, where="post", color=colors[s], label=f"state {s}")
        ax.set_xlabel("dwell (steps)")
        ax.set_ylabel("P(dwell > t)")
        ax.set_ylim(0, 1.05)
        ax.set_xlim(left=0)
        ax.set_title("how long visits last (Kaplan-Meier)")
        if self.n_states <= 12:
            ax.legend()

    def plot_transitions(self, ax) -> None:
        """Counts of jumps between states (rows: from, columns: to), each count legible on its cell."""
        import matplotlib  # noqa: PLC0415

        from clipxai.analysis.draw.style import readable_on  # noqa: PLC0415

        cmap = matplotlib.colormaps["Blues"]
        top = max(int(self.transitions.max()), 1)
        ax.imshow(self.transitions, cmap=cmap, vmin=0, vmax=top)
        k = self.n_states
        if k <= 15:
            for i in range(k):
                for j in range(k):
                    v = int(self.transitions[i, j])
                    ax.text(j, i, str(v), ha="center", va="center", color=readable_on(cmap(v / top)))
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
        ax.set_xlabel("to state")
        ax.set_ylabel("from state")
        ax.set_title("transitions between states")
        for side in ("top", "right"):
            ax.spines[side].set_visible(True)

    def plot_windows(self, ax) -> None:
        """Switch rate in the early, middle and late third of the run."""
        rates = [w["rate_per_100_steps"] for w in self.windows]
        bars = ax.bar([w["name"] for w in self.windows], rates, color="tab:gray")
        ax.bar_label(bars, labels=[plural(w["switches"], "switch") for w in self.windows], padding=2)
        ax.set_ylabel("switches per 100 steps")
        ax.margins(y=0.2)
        p = self.trend.get("p_value")
        ax.set_title(f"switch rate over the run (trend: {self.trend['direction']}"
                     + (f", p={p:.3g})" if p is not None else ")"))

    def nothing_to_show(self) -> dict[str, str]:
        """Figure name -> why it would show nothing for this run (so it is not drawn)."""
        out = {}
        if self.n_states < 2:
            why = "the run stays in one state"
            out.update(states=why, transitions=why, switch_rate_windows=why)
        elif self.switches == 0:
            out.update(transitions="there is no switch", switch_rate_windows="there is no switch")
        if not (~self.segments.censored).any():
            out["dwell_survival"] = ("the run stays in one state" if self.n_states < 2
                                     else "no visit both starts and ends inside the run")
        return out


# ---------------------------------------------------------------------------------------

def _block_bootstrap_rate(switch: np.ndarray, gaps: np.ndarray, block: int, n_boot: int,
                          rng: np.random.Generator) -> tuple[float, float]:
    """95% percentile interval of 100 * switches / steps under a circular block bootstrap."""
    m = len(switch)
    if m == 0 or n_boot <= 0:
        return (0.0, 0.0)
    block = int(min(max(block, 1), m))
    n_blocks = int(math.ceil(m / block))
    cs_s = np.concatenate([[0.0], np.cumsum(np.concatenate([switch, switch]))])
    cs_g = np.concatenate([[0.0], np.cumsum(np.concatenate([gaps, gaps]))])
    starts = rng.integers(0, m, size=(n_boot, n_blocks))
    s = (cs_s[starts + block] - cs_s[starts]).sum(axis=1)
    g = (cs_g[starts + block] - cs_g[starts]).sum(axis=1)
    rates = 100.0 * s / np.maximum(g, 1e-12)
    lo, hi = np.percentile(rates, [2.5, 97.5])
    return float(lo), float(hi)


def _laplace_trend(times: np.ndarray, t0: float, t1: float, alpha: float) -> dict:
    """Laplace test: are switches spread evenly over [t0, t1] or crowded at one end?"""
    n = len(times)
    if n < 3 or t1 <= t0:
        return {"test": "laplace", "statistic": None, "p_value": None, "direction": "untested"}
    u = (times.mean() - (t0 + t1) / 2) / ((t1 - t0) * math.sqrt(1.0 / (12 * n)))
    p = math.erfc(abs(u) / math.sqrt(2))
    direction = "constant" if p >= alpha else ("decreasing" if u < 0 else "increasing")
    return {"test": "laplace", "statistic": float(u), "p_value": float(p), "direction": direction}


def _windows(switch_steps: np.ndarray, steps: np.ndarray) -> list[dict]:
    t0, t1 = float(steps[0]), float(steps[-1])
    edges = np.linspace(t0, t1, len(WINDOWS) + 1)
    out = []
    for i, name in enumerate(WINDOWS):
        lo, hi = edges[i], edges[i + 1]
        inside = (switch_steps > lo) & (switch_steps <= hi) if i else (switch_steps >= lo) & (switch_steps <= hi)
        span = max(hi - lo, 1e-12)
        out.append({"name": name, "start_step": float(lo), "end_step": float(hi), "switches": int(inside.sum()),
                    "rate_per_100_steps": float(100.0 * inside.sum() / span)})
    return out


def _drift(x: np.ndarray) -> tuple[float | None, float | None]:
    """Start-to-end distance in noise units, and the share of it travelled in the last third."""
    n = len(x)
    if n < 12:
        return None, None
    m = max(2, n // 10)
    moves = np.linalg.norm(np.diff(x, axis=0), axis=1)
    if not (moves > 0).any():
        return 0.0, 0.0
    # A run that stood still for most of its snapshots: the noise is that of the steps it moved.
    noise = np.median(moves if np.median(moves) > 0 else moves[moves > 0]) / math.sqrt(2)
    total = float(np.linalg.norm(x[:m].mean(0) - x[-m:].mean(0)))
    late = x[2 * n // 3:]
    ml = max(2, len(late) // 4)
    late_move = float(np.linalg.norm(late[:ml].mean(0) - late[-ml:].mean(0)))
    scale = noise * math.sqrt(2.0 / m)
    return total / max(scale, 1e-12), late_move / max(total, 1e-12)


def oscillation(states: np.ndarray, steps: np.ndarray, features: np.ndarray | None = None, *,
                seed: int = 0, n_boot: int = 1000, n_surrogates: int = 199,
                thresholds: Thresholds | None = None, recurrence_eps: float | None = None,
                recurrence_points: int = 1500, origin: StateOrigin | None = None) -> OscillationResult:
    """Measure switching in ``states`` (one per snapshot at ``steps``) and give the verdict.

    ``origin`` says how the states were counted (``StateResult.origin()``), so the verdict's
    reason can name it.
    """
    t = thresholds or Thresholds()
    rng = np.random.default_rng(seed)
    states = renumber_by_first_appearance(np.asarray(states))
    steps = np.asarray(steps, dtype=np.float64)
    if len(states) != len(steps):
        raise ValueError(f"{len(states)} states for {len(steps)} steps")
    n = len(states)
    k = int(states.max()) + 1
    seg = segments(states, steps)
    switch = (states[1:] != states[:-1]).astype(np.float64)
    gaps = np.diff(steps)
    span = float(steps[-1] - steps[0]) if n > 1 else 0.0
    n_switch = int(switch.sum())
    rate = 100.0 * n_switch / span if span > 0 else 0.0
    lengths = seg.end - seg.start + 1
    block = max(int(math.ceil((n - 1) ** (1 / 3))), int(np.median(lengths)))
    ci = _block_bootstrap_rate(switch, gaps, block, n_boot, rng)

    dwell_all = describe_dwell(seg.dwell, seg.censored)
    switch_steps = steps[seg.switch_indices]
    windows = _windows(switch_steps, steps)
    trend = _laplace_trend(switch_steps, float(steps[0]), float(steps[-1]), t.alpha)

    x = None if features is None else np.asarray(features, dtype=np.float64)
    silhouette = mean_silhouette(x, states, seed) if x is not None and k >= 2 else None
    phi = origin.motion_phi if origin is not None else 0.0
    jump = jump_ratio(x, states, phi) if x is not None else None
    drift_total, drift_late = _drift(x[distinct_rows(x)]) if x is not None else (None, None)
    rec = recurrence(x, eps=recurrence_eps, max_points=recurrence_points) if x is not None and n >= 3 else None
    per = periodicity_test(states, seg, rng, n_surrogates) if n_switch >= 3 else None

    evidence = Evidence(
        n_states=k, switches=n_switch, returns=seg.returns, silhouette=silhouette, jump_ratio=jump,
        late_switches=windows[-1]["switches"], trend=trend["direction"], trend_p=trend["p_value"],
        period_p=None if per is None else per.p_value,
        period_steps=None if per is None else per.lag * (span / max(n - 1, 1)),
        cycles=None if per is None else per.cycles, drift_total=drift_total, drift_late=drift_late,
        last_state=int(states[-1]), late_steps=float(windows[-1]["end_step"] - windows[-1]["start_step"]),
        origin=origin,
    )
    verdict, reason = decide(evidence, t)
    return OscillationResult(
        states=states, steps=steps, segments=seg, switches=n_switch, switch_rate=rate, switch_rate_ci=ci,
        dwell=dwell_stats(seg, k), dwell_all=dwell_all, transitions=transition_counts(seg, k),
        windows=windows, trend=trend, evidence=evidence, verdict=verdict, verdict_reason=reason,
        recurrence=rec, periodicity=per,
    )
