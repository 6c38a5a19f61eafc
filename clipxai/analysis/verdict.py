"""The verdict: converging, single_state, metastable_switching or periodic_oscillation, and why.

Switching is claimed only when three things hold together: (1) at least two states that
are separated (mean silhouette >= 0.25 in the analysis space), (2) the run *returns* to
states it had left (at least ``min_returns`` re-entries: a drift that passes through
clusters once never returns), and (3) switches are jumps: the median displacement between
consecutive snapshots across a switch is at least ``min_jump_ratio`` times the median
displacement inside a state (continuous drift cut into clusters has ratio ~1). Switching
that is significantly periodic (surrogate p < alpha over >= 3 cycles) is a periodic
oscillation; switching that dies out (none in the last third and a significantly falling
rate) is convergence. Without switching, a run whose late third no longer moves while its
start and end are far apart converges; anything else is one state, possibly drifting.
"""

from __future__ import annotations

from dataclasses import dataclass

VERDICTS = ("converging", "single_state", "metastable_switching", "periodic_oscillation")
OSCILLATING = ("metastable_switching", "periodic_oscillation")  # the verdicts that mean "it oscillates"


@dataclass
class Evidence:
    n_states: int
    switches: int
    returns: int
    silhouette: float | None
    jump_ratio: float | None
    late_switches: int
    trend: str                 # decreasing | increasing | constant | untested
    trend_p: float | None
    period_p: float | None
    period_steps: float | None
    cycles: float | None
    drift_total: float | None  # distance between the run's first and last windows, in noise units
    drift_late: float | None   # share of that distance still travelled in the last third
    last_state: int
    late_steps: float


@dataclass
class Thresholds:
    min_returns: int = 2
    min_jump_ratio: float = 5.0
    min_silhouette: float = 0.25
    alpha: float = 0.05
    min_cycles: float = 3.0
    min_drift: float = 5.0          # start-to-end distance that counts as movement, in noise units
    max_late_drift: float = 0.2     # late movement, as a share of the whole, that counts as settled


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "n/a" if x is None else format(x, spec)


def _why_not_switching(e: Evidence, t: Thresholds) -> str:
    if e.n_states < 2:
        return "the snapshots form one cluster (no number of clusters reaches a mean silhouette of " \
               f"{t.min_silhouette})"
    reasons = []
    if e.silhouette is not None and e.silhouette < t.min_silhouette:
        reasons.append(f"its {e.n_states} clusters are not separated (silhouette {e.silhouette:.2f} < {t.min_silhouette})")
    if e.returns < t.min_returns:
        reasons.append(f"it returns to a state it left only {e.returns} time(s) (< {t.min_returns}), "
                       f"so its {e.n_states} clusters are stretches of one drift")
    if e.jump_ratio is not None and e.jump_ratio < t.min_jump_ratio:
        reasons.append(f"its state changes are not jumps (median move across a switch is {e.jump_ratio:.2f}x "
                       f"the move inside a state, < {t.min_jump_ratio})")
    return "; ".join(reasons)


def _settled(e: Evidence, t: Thresholds) -> bool:
    return (e.drift_total is not None and e.drift_late is not None
            and e.drift_total >= t.min_drift and e.drift_late <= t.max_late_drift)


def decide(e: Evidence, t: Thresholds | None = None) -> tuple[str, str]:
    """(verdict, one-paragraph reason with the numbers behind it)."""
    t = t or Thresholds()
    switching = (e.n_states >= 2 and e.returns >= t.min_returns
                 and (e.silhouette is None or e.silhouette >= t.min_silhouette)
                 and (e.jump_ratio is None or e.jump_ratio >= t.min_jump_ratio))
    facts = (f"{e.n_states} states, {e.switches} switches, {e.returns} returns to an earlier state, "
             f"silhouette {_fmt(e.silhouette)}, jump ratio {_fmt(e.jump_ratio)}")
    if switching:
        if e.late_switches == 0 and e.trend == "decreasing":
            return "converging", (
                f"It switched ({facts}) but the switching died out: the switch rate falls significantly "
                f"(Laplace trend test p={_fmt(e.trend_p, '.3g')}) and it stayed in state {e.last_state} "
                f"for the whole last third ({e.late_steps:.0f} steps).")
        if e.period_p is not None and e.period_p < t.alpha and (e.cycles or 0) >= t.min_cycles:
            return "periodic_oscillation", (
                f"It switches ({facts}) in a repeating order: period {e.period_steps:.0f} steps, "
                f"{e.cycles:.1f} cycles, surrogate test p={e.period_p:.3g} < {t.alpha}.")
        period = "not tested" if e.period_p is None else f"p={e.period_p:.3g}"
        return "metastable_switching", (
            f"It dwells in separated states and jumps between them, returning to earlier ones ({facts}); "
            f"the order of visits is not periodic ({period}).")
    why = _why_not_switching(e, t)
    if _settled(e, t):
        return "converging", (
            f"It is not switching ({why}); it moved {e.drift_total:.1f} noise units from start to end and "
            f"travelled only {100 * e.drift_late:.0f}% of that in its last third: it settled.")
    if e.n_states < 2:
        return "single_state", f"It stays in one state: {why}."
    return "single_state", f"No recurring discrete states: {why}."
