"""The verdict: converging, single_state, metastable_switching or periodic_oscillation, and why.

Switching is claimed only when three things hold together: (1) at least two states that
are separated (mean silhouette >= 0.25 in the analysis space), (2) the run *returns* to
states it had left (at least ``min_returns`` re-entries: a drift that passes through
clusters once never returns), and (3) switches are jumps: the median displacement between
consecutive snapshots across a switch is at least ``min_jump_ratio`` times the median
displacement inside a state (continuous drift cut into clusters has ratio ~1; the windows are
those of ``clipxai.analysis.states.jumps``, clipped to the visits each switch touches). Switching
that is significantly periodic (surrogate p < alpha over >= 3 cycles) is a periodic
oscillation; switching that dies out (none in the last third and a significantly falling
rate) is convergence. Without switching, a run whose late third no longer moves while its
start and end are far apart converges; anything else is one state, possibly drifting.

Every reason names the condition that decided it with the number behind it, formatted as
the table and the figures show it: how the states were counted (``StateOrigin``: the
clustering's choice of k with its score, and any transient cluster merged away), and for a
run without switching, the drift numbers that made it converging or not.
"""

from __future__ import annotations

from dataclasses import dataclass

from clipxai.util.words import plural, verdict_label  # noqa: F401  (the verdicts' words live with them)

VERDICTS = ("converging", "single_state", "metastable_switching", "periodic_oscillation")
OSCILLATING = ("metastable_switching", "periodic_oscillation")  # the verdicts that mean "it oscillates"
MERGE_RATIO = 5.0   # clusters whose switches have a jump ratio under this are merged (``infer_states``)


@dataclass
class StateOrigin:
    """How the states were counted: what the clustering chose and what was merged afterwards."""

    clusters: int                         # k the clustering chose
    selection: str                        # silhouette | bic | hdbscan | given | noise floor
    score: float | None = None            # that k's selection score (the model-selection figure's point)
    best_k: int | None = None             # the best-scoring candidate (silhouette selection)
    best_score: float | None = None
    min_score: float | None = None        # the bar a silhouette must reach for k >= 2
    transient_sizes: tuple[int, ...] = ()  # snapshots in each cluster merged away as a transient
    min_run: int = 3
    merged_ratios: tuple[float, ...] = ()  # jump ratio of each pair of clusters merged as one motion
    motion_phi: float = 0.0               # AR(1) coefficient of the motion; jumps are judged on its innovations


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
    origin: StateOrigin | None = None


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


def _vs(x: float, bar: float, digits: int = 1) -> str:
    """``x`` rounded so that it never reads as equal to the ``bar`` it is compared with."""
    while digits < 6 and round(x, digits) == round(bar, digits) and x != bar:
        digits += 1
    return f"{x:.{digits}f}"


def _no_jumps(o: StateOrigin) -> str:
    """"the switches between N of its clusters are not jumps (jump ratio at most R < 5)"."""
    return (f"the switches between {len(o.merged_ratios) + 1} of its clusters are not jumps (jump ratio at most "
            f"{max(o.merged_ratios):.2f} < {MERGE_RATIO:g}), so they are stretches of one continuous motion")


def _one_state(o: StateOrigin | None) -> str:
    """Why the state path has a single state, in the terms of the model-selection figure."""
    if o is None:
        return "the snapshots form one state"
    if o.merged_ratios and o.clusters >= 2:
        how = f"mean silhouette {o.score:.2f}" if o.selection == "silhouette" and o.score is not None else f"by {o.selection}"
        return f"the clustering chose k={o.clusters} ({how}), but {_no_jumps(o)}; merged, they leave one state"
    if o.selection == "noise floor":
        return ("no principal component of the snapshots rises above their noise floor, so there is "
                "nothing to split into clusters")
    if o.transient_sizes and o.clusters >= 2:
        n = len(o.transient_sizes)
        sizes = ", ".join(str(v) for v in o.transient_sizes)
        how = f"mean silhouette {o.score:.2f}" if o.selection == "silhouette" and o.score is not None else f"by {o.selection}"
        left = o.clusters - n
        what = ("one state" if left <= 1 else
                f"{left} states, which the state path (HMM) merged into one")
        return (f"the clustering chose k={o.clusters} ({how}), but the run never stayed {o.min_run} snapshots in a "
                f"row in {n} of those clusters ({sizes} snapshot(s)); merged into the nearest cluster as "
                f"{'a transient' if n == 1 else 'transients'}, {'it leaves' if n == 1 else 'they leave'} {what}")
    if o.clusters >= 2:
        return f"the clustering chose k={o.clusters}, but the state path (HMM) merged them into one state"
    if o.selection == "silhouette":
        best = "" if o.best_k is None else f"; the best is k={o.best_k} at {o.best_score:.2f}"
        return f"no number of clusters reaches a mean silhouette of {o.min_score:g}{best}"
    if o.selection == "given":
        return "the number of states was fixed at 1"
    return f"the {o.selection} criterion chose one cluster"


def _merged(e: Evidence) -> str:
    """"; 1 transient cluster (2 snapshot(s)) merged away" when the run has states left besides, and
    the clusters merged because their switches were not jumps."""
    o = e.origin
    if o is None or e.n_states < 2:
        return ""
    out = ""
    if o.transient_sizes:
        out += (f"; {plural(len(o.transient_sizes), 'transient cluster')} "
                f"({', '.join(map(str, o.transient_sizes))} snapshot(s)) merged away")
    if o.merged_ratios:
        out += (f"; {plural(len(o.merged_ratios), 'pair')} of clusters merged because their switches are not jumps "
                f"(jump ratio at most {max(o.merged_ratios):.2f} < {MERGE_RATIO:g})")
    return out


def _why_not_switching(e: Evidence, t: Thresholds) -> str:
    if e.n_states < 2:
        return _one_state(e.origin)
    reasons = []
    if e.silhouette is not None and e.silhouette < t.min_silhouette:
        reasons.append(f"its {e.n_states} states are not separated "
                       f"(silhouette {_vs(e.silhouette, t.min_silhouette, 2)} < {t.min_silhouette})")
    if e.returns < t.min_returns:
        reasons.append(f"it returns to a state it left only {e.returns} time(s) (< {t.min_returns}), "
                       f"so its {e.n_states} states are stretches of one drift")
    if e.jump_ratio is not None and e.jump_ratio < t.min_jump_ratio:
        reasons.append(f"its state changes are not jumps (median move across a switch is "
                       f"{_vs(e.jump_ratio, t.min_jump_ratio, 2)}x "
                       f"the move inside a state, < {t.min_jump_ratio})")
    return "; ".join(reasons) + _merged(e)


def _not_settled(e: Evidence, t: Thresholds) -> str:
    """Why a run without switching is not called converging, with the drift numbers."""
    if e.drift_total is None or e.drift_late is None:
        return "too few snapshots to measure whether it settled"
    if e.drift_total < t.min_drift:
        return (f"from start to end it moved only {_vs(e.drift_total, t.min_drift)} noise units "
                f"(< {t.min_drift:g}), so it did not go anywhere to settle")
    return (f"it moved {e.drift_total:.1f} noise units from start to end but travelled "
            f"{_vs(100 * e.drift_late, 100 * t.max_late_drift)}% of that in its last third "
            f"(> {100 * t.max_late_drift:.0f}%), so it has not settled")


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
             f"silhouette {_fmt(e.silhouette)}, jump ratio {_fmt(e.jump_ratio)}{_merged(e)}")
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
            f"It is not switching ({why}); it moved {_vs(e.drift_total, t.min_drift)} noise units from start to "
            f"end (>= {t.min_drift:g}) and travelled only {_vs(100 * e.drift_late, 100 * t.max_late_drift)}% of "
            f"that in its last third (<= {100 * t.max_late_drift:.0f}%): it settled.")
    if e.n_states < 2:
        return "single_state", f"It stays in one state: {why}; {_not_settled(e, t)}."
    return "single_state", f"No recurring discrete states: {why}; {_not_settled(e, t)}."
