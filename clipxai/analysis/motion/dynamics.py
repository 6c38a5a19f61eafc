"""Per-step dynamics: does a logged series (similarity to the prompt, the objective) saw-tooth?

Snapshots are taken every few steps, but metrics.jsonl holds every logged step, so motion
faster than the snapshots (a similarity that drops suddenly every ~13 steps and climbs back)
is visible only here. ``dynamics`` takes one series and answers four questions:

1. Where does it start to move around a level? The slow trend is a running median; the
   initial climb (until the trend first enters the range it keeps over the second half of
   the run) is left out, so a rise from noise is not taken for a cycle.
2. Which sudden drops are there? The detrended series is cut into ramps at its sudden changes,
   each judged against the spread of the ramps around their own lines (the local noise), with a
   threshold set so that the series' sudden *rises*, which a saw-tooth never has, stay under 5%
   of the drops kept (see ``clipxai.analysis.motion.drops``).
3. Are sudden drops with slow recoveries more than the series' own noise? Two tests, either
   suffices: ``drop_asymmetry_test`` (the skewness of the step-to-step changes against
   surrogates that flip the direction of whole blocks of them; it sees many drops) and the
   sign test of ``detect_drops`` (sudden drops outnumber sudden rises of the same strength; it
   sees a few large drops in a long run, whose skewness is diluted by the steps between them).
4. Is it cycling? A test says so (p < ``alpha``), there are at least ``min_events`` drops,
   and they keep coming: the last third of the analyzed steps holds at least one.
5. Is it regular? Cycling says the drops recur, not that they keep time. ``regular`` says more
   of the gaps between drops are on time (within ``ON_TIME`` of the median gap) than the same
   number of drops at random times would give (surrogate p < ``alpha_regular``) and the gaps are
   even in themselves (robust spread, IQR / 1.349 over the median, at most
   ``MAX_REGULAR_SPREAD``), or the drops left fall on one beat (phase locking, surrogate p <
   ``PHASE_ALPHA``: drops every 5 steps of which the search keeps a third); see
   ``clipxai.analysis.motion.regularity``. Only then does the
   sentence say "every ~N steps"; otherwise it says "at irregular times, ~N steps apart on average".

Spacing is the mean gap between consecutive drops, and for drops that keep time their period
(``period_of_gaps``: a gap of two periods, where a drop was missed, counts as two; a period cut in
two by a false drop counts once; for drops on one beat, the beat's period), so neither a missed nor a
false drop moves it.
``snapshot_aliasing`` says the spacing is
under twice the snapshot interval (fewer than two snapshots per cycle: the snapshots cannot
resolve it, and the states found in them cannot show it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import chain

import numpy as np

from clipxai.analysis.motion.drops import TEST_Z, detect_drops
from clipxai.analysis.motion.regularity import MAX_REGULAR_SPREAD, ON_TIME, PHASE_ALPHA, keeps_time
from clipxai.util.words import cycling_note

MIN_POINTS = 30      # analyzed steps below which nothing is tested
MAX_EVENTS_LISTED = 1000
FLIP_BLOCK = 10      # step-to-step changes whose direction a surrogate flips together
WINSOR = 10.0        # step-to-step changes are limited to this many robust noise scales before the test


@dataclass
class DynamicsResult:
    """What one per-step series does, with the numbers behind the sentence in ``reason``."""

    signal: str | None                 # metrics key, e.g. "sim/❤️" or "objective"; None: nothing logged
    cycling: bool
    reason: str
    steps: np.ndarray = field(default_factory=lambda: np.empty(0))
    values: np.ndarray = field(default_factory=lambda: np.empty(0))
    trend: np.ndarray = field(default_factory=lambda: np.empty(0))
    analysed_from_step: int | None = None
    event_steps: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    event_sizes: np.ndarray = field(default_factory=lambda: np.empty(0))
    mean_spacing_steps: float | None = None  # mean gap; for regular drops their period (period_of_gaps)
    spacing_cv: float | None = None
    regular: bool = False              # the gaps are even, beyond drops at random times (see the module doc)
    spacing_spread: float | None = None  # IQR / 1.349 of the gaps over their median
    regularity_p: float | None = None  # surrogate p of the on-time share (decides, with the spread's bar)
    on_time: float | None = None       # share of the gaps within ON_TIME of the median gap
    spread_p: float | None = None      # surrogate p of the robust spread (reported)
    phase: float | None = None         # phase locking of the drops to one beat (decides, beside the on-time share)
    phase_p: float | None = None
    drop_search: dict | None = None    # how the drops were found: threshold z, score, estimated false share, noise
    amplitude: float | None = None     # median size of a drop, in the series' units
    asymmetry: float | None = None     # skewness of the step-to-step change (negative: sudden drops)
    p_value: float | None = None
    n_surrogates: int = 0
    snapshot_interval: float | None = None
    snapshot_aliasing: bool = False
    others: list[dict] = field(default_factory=list)  # the same, in brief, for the other logged series
    motion: dict | None = None         # the numbers of the reason's first clause (climb, then level)

    def to_dict(self) -> dict:
        n = len(self.event_steps)
        return {
            "signal": self.signal,
            "cycling": bool(self.cycling),
            "n_events": int(n),
            "events": [{"step": int(s), "size": round(float(v), 6)}
                       for s, v in zip(self.event_steps[:MAX_EVENTS_LISTED], self.event_sizes[:MAX_EVENTS_LISTED])],
            "mean_spacing_steps": _num(self.mean_spacing_steps),
            "spacing_cv": _num(self.spacing_cv),
            "regular": bool(self.regular),
            "regularity": {"statistic": "share of the gaps within on_time_within of the median gap (on_time), "
                                        "against surrogates (p_value); and the robust spread of the gaps "
                                        "(IQR / 1.349 / median) at most max_spread",
                           "on_time": _num(self.on_time), "on_time_within": ON_TIME,
                           "p_value": _num(self.regularity_p),
                           "spread": _num(self.spacing_spread), "max_spread": MAX_REGULAR_SPREAD,
                           "spread_p_value": _num(self.spread_p), "phase_locking": _num(self.phase),
                           "phase_p_value": _num(self.phase_p), "phase_alpha": PHASE_ALPHA,
                           "surrogates": "the same number of drops at random times over the same span, on the "
                                         "logged steps"},
            "drop_search": self.drop_search,
            "amplitude": _num(self.amplitude),
            "asymmetry": _num(self.asymmetry),
            "p_value": _num(self.p_value),
            "test": {"statistic": "skewness of the step-to-step change",
                     "surrogates": f"direction of blocks of {FLIP_BLOCK} changes flipped at random",
                     "n_surrogates": int(self.n_surrogates)},
            "analysed_from_step": self.analysed_from_step,
            "logged_steps": int(len(self.steps)),
            "snapshot_interval": _num(self.snapshot_interval),
            "snapshot_aliasing": bool(self.snapshot_aliasing),
            "reason": self.reason,
            "motion": self.motion,
            "other_signals": self.others,
        }

    def brief(self) -> dict:
        """The few numbers listed for a series that is not the main one."""
        return {"signal": self.signal, "cycling": bool(self.cycling), "regular": bool(self.regular),
                "n_events": int(len(self.event_steps)), "mean_spacing_steps": _num(self.mean_spacing_steps),
                "p_value": _num(self.p_value)}

    def plot(self, ax, osc=None) -> None:
        """The series over steps, its trend, the drops found, and where the snapshots fall; with
        ``osc`` (an ``OscillationResult`` of two or more states), the state as the background."""
        from clipxai.analysis.draw.text import plain  # noqa: PLC0415

        if osc is not None and osc.n_states > 1:
            from clipxai.analysis.draw.chart import shade_states  # noqa: PLC0415
            shade_states(ax, osc)
        if not len(self.steps):
            ax.text(0.5, 0.5, "no per-step series logged", ha="center", va="center")
            ax.set_axis_off()
            return
        from clipxai.analysis.draw.thin import envelope  # noqa: PLC0415
        ax.plot(*envelope(self.steps, self.values), lw=0.9, color="tab:blue", label=plain(_name(self.signal)))
        if len(self.trend):
            ax.plot(*envelope(self.steps, self.trend), lw=1, color="0.4", ls="--", label="trend (running median)")
        if self.analysed_from_step is not None:
            ax.axvline(self.analysed_from_step, color="0.6", lw=0.8, ls=":")
        if len(self.event_steps):
            low = np.interp(self.event_steps, self.steps, self.values)
            ax.plot(*envelope(self.event_steps, low), "v", color="tab:red", ms=4, label=f"{len(low)} sudden drops")
        if self.snapshot_interval:
            lo, hi = float(self.steps[0]), float(self.steps[-1])
            snaps = np.arange(lo, hi + 1, self.snapshot_interval)
            if len(snaps) <= 400:
                ax.plot(snaps, np.full(len(snaps), np.nanmin(self.values)), "|", color="0.3", ms=5,
                        label=f"snapshots (every {self.snapshot_interval:g} steps)")
        ax.set_xlabel("step")
        ax.set_ylabel(plain(_name(self.signal).removeprefix("the ")[:40]))
        verdict = "cycling" if self.cycling else "not cycling"
        spacing = "" if not self.cycling else (f", drops every ~{self.mean_spacing_steps:.0f} steps" if self.regular else
                                               f", drops at irregular times, ~{self.mean_spacing_steps:.0f} steps apart")
        p = "" if self.p_value is None else f", p={self.p_value:.3g}"
        shaded = " (background: state)" if osc is not None and osc.n_states > 1 else ""
        ax.set_title(f"every logged step: {verdict}{spacing}{p}{shaded}")
        ax.legend(loc="best")


def _num(x) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def _name(signal: str | None) -> str:
    if not signal:
        return "series"
    if signal.startswith("sim/"):
        return f"the similarity to “{signal[4:]}”"
    return f"the {signal}"


# -- the pieces ---------------------------------------------------------------------------------

def running_median(x: np.ndarray, window: int) -> np.ndarray:
    from scipy.ndimage import median_filter  # noqa: PLC0415

    return median_filter(np.asarray(x, dtype=np.float64), size=window, mode="nearest")


def trend_window(n: int) -> int:
    """An odd window of about a tenth of the run (11 to 101 steps): long against a cycle of a few
    tens of steps, short against the run."""
    return int(np.clip(2 * (n // 20) + 1, 11, 101))


def settle_index(trend: np.ndarray) -> int:
    """First index at which the trend enters the range it keeps over the second half."""
    late = trend[len(trend) // 2:]
    inside = (trend >= late.min()) & (trend <= late.max())
    return int(np.argmax(inside))


def robust_scale(d: np.ndarray) -> float:
    """Standard deviation from the median absolute deviation (drops are outliers to it)."""
    s = 1.4826 * float(np.median(np.abs(d - np.median(d))))
    return s if s > 0 else float(np.std(d))


def noise_scale(d: np.ndarray) -> float:
    """The noise of the step-to-step changes ``d``: their robust spread once the local slope (a
    running median over 5 steps) is taken out, so a steady recovery does not count as noise."""
    d = np.asarray(d, dtype=np.float64)
    return robust_scale(d - running_median(d, 5)) if len(d) >= 5 else robust_scale(d)


def find_drops(r: np.ndarray, noise: float, threshold: float = 3.0, max_steps: int = 3,
               relative: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(index of the low point, size) of every sudden drop of ``r``.

    Each maximal run of falling steps contributes its most significant stretch of w <= ``max_steps``
    steps: a candidate when its fall exceeds ``threshold`` x ``noise`` x sqrt(w) (a slow decline
    over many steps is not sudden). Candidates under ``relative`` times the median candidate
    are dropped: in a long recovery the noise alone crosses three standard deviations now and
    then, and such dips are far smaller than the drops of a saw-tooth.
    """
    d = np.diff(np.asarray(r, dtype=np.float64))
    ends, sizes = [], []
    i, n = 0, len(d)
    while i < n:
        if d[i] >= 0:
            i += 1
            continue
        j = i
        while j < n and d[j] < 0:
            j += 1
        run = d[i:j]
        best = (0.0, 0, 0.0)
        for w in range(1, min(max_steps, len(run)) + 1):
            sums = np.convolve(run, np.ones(w), mode="valid")
            k = int(sums.argmin())
            z = -sums[k] / (noise * math.sqrt(w))
            if z > best[0]:
                best = (z, i + k + w, float(-sums[k]))   # i + k + w: index into r of the low point
        if best[0] > threshold:
            ends.append(best[1])
            sizes.append(best[2])
        i = j
    ends, sizes = np.asarray(ends, dtype=np.int64), np.asarray(sizes)
    if len(sizes):
        keep = sizes >= relative * np.median(sizes)
        ends, sizes = ends[keep], sizes[keep]
    return ends, sizes


def drop_asymmetry_test(r: np.ndarray, rng: np.random.Generator, n_surrogates: int = 999,
                        block: int = FLIP_BLOCK, clip: float = WINSOR) -> tuple[float, float]:
    """(statistic, one-sided p) for "sudden drops and slow recoveries" in a detrended series ``r``.

    The statistic is the skewness of the step-to-step change (moments about zero; the changes
    of a detrended series average zero), each change first limited to ``clip`` robust noise
    scales: a saw-tooth that falls in one step and climbs back over many has strongly negative
    skew, and the limit keeps a handful of very large drops from outweighing fifty regular
    ones (unlimited, a run with 52 drops every ~10 steps scored p=0.17, limited p=0.001; noise
    controls stay at or below the nominal 1% at alpha 0.01, and a saw-tooth with only ~16 drops
    is still found, which a limit of 6 scales lost 7% of the time). Each surrogate keeps the series' own noise exactly:
    every step-to-step change with its size, in its place, with its neighbors, and flips the
    direction of whole blocks of ``block`` consecutive changes at random (longer than a drop
    and than the short correlation of the changes). Only a preference for falling over rising
    is removed, so p says whether the falls are sharper than the rises beyond what the
    series' own noise, heavy tails included, gives by chance; one large drop alone gives
    p near 1/2. Phase-randomised (IAAFT) surrogates were tried and rejected: they smear out
    isolated spikes, so heavy-tailed noise looked significant in a quarter of the draws; a
    block bootstrap of the residuals would copy the drops into every surrogate and could not
    test them. p = (1 + surrogates at least as skewed) / (1 + their number).
    """
    d = np.diff(np.asarray(r, dtype=np.float64))
    scale = noise_scale(d)
    if scale > 0:
        d = np.clip(d, -clip * scale, clip * scale)
    m2 = float(np.mean(d ** 2))
    if m2 == 0:
        return 0.0, 1.0
    norm = len(d) * m2 ** 1.5
    cubes = d ** 3
    edges = np.arange(0, len(d), block)
    per_block = np.add.reduceat(cubes, edges)
    observed = float(per_block.sum() / norm)
    if n_surrogates <= 0:
        return observed, float("nan")
    # rng.choice([-1, 1], (n_surrogates, blocks))'s draws, 64 rows at a time (1M steps: 3 s and 500 MB less)
    null = np.concatenate([(rng.integers(0, 2, size=(min(64, n_surrogates - i), len(per_block))) * 2.0 - 1.0)
                           @ per_block for i in range(0, n_surrogates, 64)]) / norm
    return observed, float((1 + np.sum(null <= observed + 1e-12 * abs(observed))) / (1 + n_surrogates))


# -- the verb -----------------------------------------------------------------------------------

def _clean(steps, values) -> tuple[np.ndarray, np.ndarray]:
    steps = np.asarray(steps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if steps.shape != values.shape:
        raise ValueError(f"{len(steps)} steps for {len(values)} values")
    ok = np.isfinite(steps) & np.isfinite(values)
    steps, values = steps[ok], values[ok]
    order = np.argsort(steps, kind="stable")
    steps, values = steps[order], values[order]
    last = np.r_[steps[1:] != steps[:-1], True] if len(steps) else np.zeros(0, dtype=bool)  # a resumed run repeats steps
    return steps[last], values[last]


def _motion(name: str, trend: np.ndarray, r: np.ndarray, steps: np.ndarray, b: int) -> tuple[str, dict]:
    """How the series moves apart from drops: its initial climb and its level afterwards, as a
    sentence and as the numbers in it (``motion`` in summary.json, for the report's words)."""
    spread = robust_scale(r[b:]) if len(r) > b + 1 else 0.0
    parts = []
    info = {"start": _num(trend[0]), "climb": None, "climb_to": None, "climb_until_step": None}
    if b > 0 and abs(trend[b] - trend[0]) > 3 * spread:
        parts.append(f"{'rises' if trend[b] > trend[0] else 'falls'} from {trend[0]:.3g} to {trend[b]:.3g} "
                     f"by step {steps[b]:.0f}")
        info.update(climb="rises" if trend[b] > trend[0] else "falls", climb_to=_num(trend[b]),
                    climb_until_step=int(steps[b]))
    start, end = trend[b], trend[-1]
    if abs(end - start) > 3 * spread:
        parts.append(f"{'keeps rising' if end > start else 'keeps falling'} to {end:.3g} by the last step")
        info.update(then="keeps rising" if end > start else "keeps falling", end=_num(end))
    else:
        parts.append(f"then stays near {np.median(trend[b:]):.3g} (spread around its trend {spread:.2g})")
        info.update(then="holds", end=_num(np.median(trend[b:])))
    return f"{name[0].upper()}{name[1:]} " + ", ".join(parts), info


def _cycling_reason(name: str, d: dict, snapshot_interval: float | None, aliasing: bool) -> str:
    """The sentence of a cycling series: "every ~N steps" only when the drops keep time."""
    ev, spacing = d["event_steps"], d["mean_spacing_steps"]
    when = (f"every ~{spacing:.0f} steps" if d["regular"] else
            f"at irregular times, ~{spacing:.0f} steps apart on average,")
    keeps = (f"{d['on_time']:.0%} of gaps on time, p={d['on_time_p']:.3g}, "
             f"robust spread {d['spacing_spread']:.2f} <= {MAX_REGULAR_SPREAD}" if d["kept"] == "on time" else
             f"drops on one beat, phase locking {d['phase']:.2f}, p={d['phase_p']:.3g}" if d["regular"]
             else _irregular_because(d))
    reason = (f"{name[0].upper()}{name[1:]} drops suddenly {when} and recovers "
              f"({len(ev)} drops from step {ev[0]} to {ev[-1]}, median drop {d['amplitude']:.3g}, "
              f"spacing CV {d['spacing_cv']:.2f}, {keeps}; drops beyond its own noise: skewness {d['skew']}, "
              f"surrogate p={d['p_value']:.3g}, {d['sign']})")
    if not snapshot_interval:
        return reason + "."
    per_cycle = spacing / snapshot_interval
    return reason + (f"; snapshots every {snapshot_interval:g} steps cannot resolve it ({per_cycle:.1f} per cycle, "
                     f"under 2)." if aliasing else
                     f"; snapshots every {snapshot_interval:g} steps resolve it ({per_cycle:.1f} per cycle).")


def _irregular_because(d: dict) -> str:
    if d["spacing_spread"] is None:
        return "too few drops to tell whether they keep time"
    if d["spacing_spread"] > MAX_REGULAR_SPREAD:
        return f"gaps uneven: robust spread {d['spacing_spread']:.2f} > {MAX_REGULAR_SPREAD}"
    return (f"gaps no more often on time than at random times: {d['on_time']:.0%} within "
            f"{ON_TIME:.0%} of the median gap, p={d['on_time_p']:.2g}")


def dynamics(steps, values, *, signal: str | None = None, snapshot_interval: float | None = None,
             drop_threshold: float = 2.0, max_drop_steps: int = 3, min_events: int = 5, alpha: float = 0.01,
             alpha_regular: float = 0.05, n_surrogates: int = 999, seed: int = 0) -> DynamicsResult:
    """Sudden drops, their spacing and whether the series cycles (see the module doc).

    ``drop_threshold`` is the lowest z a drop may have; above it the threshold is set by the
    series' own sudden rises (``clipxai.analysis.motion.drops``)."""
    steps, x = _clean(steps, values)
    name = _name(signal)
    base = dict(signal=signal, steps=steps, values=x, snapshot_interval=snapshot_interval)
    if len(x) < MIN_POINTS:
        return DynamicsResult(cycling=False, reason=f"{name[0].upper()}{name[1:]} was logged at only {len(x)} "
                              f"step(s); at least {MIN_POINTS} are needed to look for cycles.", **base)
    trend = running_median(x, trend_window(len(x)))
    b = settle_index(trend)
    r = (x - trend)[b:]
    motion, moves = _motion(name, trend, x - trend, steps, b)
    base.update(trend=trend, analysed_from_step=int(steps[b]), motion=moves)
    if len(r) < MIN_POINTS:
        return DynamicsResult(cycling=False, reason=f"{motion}; only {len(r)} steps are left after its climb, "
                              f"too few to look for cycles.", **base)
    if noise_scale(np.diff(r)) == 0:
        return DynamicsResult(cycling=False, reason=f"{motion}; it does not change from step to step.",
                              p_value=1.0, **base)
    found = detect_drops(r, max_steps=max_drop_steps, floor=drop_threshold)
    sizes = found.sizes
    event_steps = steps[b + found.low].astype(np.int64)
    asym, p = drop_asymmetry_test(r, np.random.default_rng(seed), n_surrogates)
    gaps = np.diff(event_steps).astype(np.float64)
    d = dict(event_steps=event_steps, skew=f"{asym:.2f}".replace("-0.00", "0.00"), p_value=p,
             mean_spacing_steps=float(gaps.mean()) if len(gaps) else None,
             spacing_cv=float(gaps.std() / gaps.mean()) if len(gaps) >= 2 else None,
             amplitude=float(np.median(sizes)) if len(sizes) else None)
    d["sign"] = (f"{found.falls_at_test} sudden drops against {found.rises_at_test} sudden rises, "
                 f"sign test p={found.sign_p:.2g}")
    d.update(keeps_time(event_steps, steps, min_events, alpha_regular, seed, max_drop_steps))
    if d["regular"]:       # drops that keep time: their period, which a missed or a false drop does not move
        d["mean_spacing_steps"] = d["period"]
    late_from = steps[b] + 2 * (steps[-1] - steps[b]) / 3
    recurring = bool(len(event_steps) and event_steps[-1] >= late_from)
    significant = (math.isfinite(p) and p < alpha) or found.sign_p < alpha
    n = len(event_steps)
    cycling = significant and n >= min_events and recurring
    spacing = d["mean_spacing_steps"]
    aliasing = bool(cycling and snapshot_interval and spacing is not None and spacing < 2 * snapshot_interval)
    if cycling:
        reason = _cycling_reason(name, d, snapshot_interval, aliasing)
    elif not significant:
        reason = (f"{motion}; it shows no sudden drops beyond its own noise (skewness of its step-to-step "
                  f"change {d['skew']}, surrogate p={p:.2g} >= {alpha}; {found.falls_at_test} sudden drops against "
                  f"{found.rises_at_test} sudden rises, sign test p={found.sign_p:.2g}): not cycling.")
    elif n < min_events:
        where = ", ".join(str(s) for s in event_steps[:5])
        reason = (f"{motion}; it has {n} sudden drop(s){' (at steps ' + where + ')' if n else ''}, beyond its "
                  f"own noise (p={p:.2g}) but fewer than {min_events}: isolated events, not a cycle.")
    else:
        reason = (f"{motion}; it dropped suddenly {n} times (p={p:.2g}) but not after step {event_steps[-1]}: "
                  f"none in the last third of the run, so the drops died out.")
    search = {"threshold_z": _num(found.threshold), "score": found.score, "false_share": _num(found.false_share),
              "noise": _num(found.noise), "fdr": 0.05,
              "sign_test": {"z": TEST_Z, "drops": found.falls_at_test, "rises": found.rises_at_test,
                            "p_value": _num(found.sign_p)}}
    return DynamicsResult(cycling=cycling, reason=reason, event_steps=event_steps, event_sizes=sizes,
                          mean_spacing_steps=spacing, spacing_cv=d["spacing_cv"], amplitude=d["amplitude"],
                          asymmetry=asym, p_value=p, n_surrogates=n_surrogates, snapshot_aliasing=aliasing,
                          regular=d["regular"], spacing_spread=d["spacing_spread"], regularity_p=d["on_time_p"],
                          on_time=d["on_time"], spread_p=d["spread_p"], phase=d["phase"], phase_p=d["phase_p"],
                          drop_search=search, **base)


# -- in words, from summary.json ---------------------------------------------------------------

def dynamics_word(d: dict | None) -> str:
    """A few words for tables: "cycling: drops every ~13 steps", "cycling: drops at irregular times, ~13
    steps apart on average", "not cycling" or "not measured" (the note is ``clipxai.util.words.cycling_note``)."""
    if not d:
        return "not measured"
    if d["cycling"]:
        return f"cycling: {cycling_note(d)}"
    return "not cycling"


def dynamics_sentence(d: dict | None) -> str:
    """The per-step verdict and its reason, to print beside the states' verdict (never instead of it)."""
    if not d:
        return "not measured (this summary predates the per-step dynamics; analyze the run again)."
    return f"{'cycling' if d['cycling'] else 'not cycling'}. {d['reason']}"


# -- from a run's metrics -------------------------------------------------------------------------

def logged_series(metrics: list[dict]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each prompt's similarity (``sim/<text>``, in logged order) and the ``objective``: key -> (steps, values)."""
    keys = [k for k in dict.fromkeys(chain.from_iterable(metrics)) if k.startswith("sim/")]
    if any("objective" in m for m in metrics):
        keys.append("objective")
    out = {}
    for key in keys:
        rows = [m for m in metrics if "step" in m and isinstance(m.get(key), (int, float))]
        if rows:
            out[key] = (np.array([m["step"] for m in rows], dtype=np.float64),
                        np.array([m[key] for m in rows], dtype=np.float64))
    return out


def dynamics_from_metrics(metrics: list[dict], *, snapshot_interval: float | None = None, n_surrogates: int = 999,
                          seed: int = 0, main: str | None = None) -> DynamicsResult:
    """Dynamics of the ``main`` prompt's similarity (default: the first logged; else the objective),
    with the other series in brief."""
    series = logged_series(metrics)
    if main is not None and f"sim/{main}" in series:
        series = {f"sim/{main}": series[f"sim/{main}"], **series}
    if not series:
        return DynamicsResult(signal=None, cycling=False, snapshot_interval=snapshot_interval,
                              reason="The run logged no per-step similarity or objective (no metrics.jsonl), "
                                     "so its per-step dynamics are unknown.")
    results = [dynamics(s, v, signal=key, snapshot_interval=snapshot_interval, n_surrogates=n_surrogates, seed=seed)
               for key, (s, v) in series.items()]
    main = results[0]
    main.others = [r.brief() for r in results[1:]]
    return main


def dynamics_from_run(run, *, n_surrogates: int = 999, seed: int = 0) -> DynamicsResult:
    """``dynamics_from_metrics`` on a run's metrics.jsonl, with its snapshot interval."""
    steps = np.asarray(run.steps, dtype=np.float64)
    interval = float(np.median(np.diff(steps))) if len(steps) > 1 else None
    return dynamics_from_metrics(run.metrics(), snapshot_interval=interval, n_surrogates=n_surrogates, seed=seed,
                                 main=run.main_prompt)
