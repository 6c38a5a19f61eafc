"""What a run did, in plain words: one sentence from its summary.json for the top of a report.

The sentence puts the two answers side by side, never one instead of the other: where the
snapshots went (the states and the verdict) and what the per-step series did (the dynamics).
Every number in it is one summary.json holds; only the words are new.
"""

from __future__ import annotations

from clipxai.analysis.motion.verdict import Thresholds, plural, verdict_label
from clipxai.runs.summary import Summary

__all__ = ["finding", "overall", "run_label", "state_name", "verdict_label"]


def run_label(run, runs) -> str:
    """"seed 0" when the runs differ only by seed, else the run folder's name."""
    seeds = [r.manifest.get("seed") for r in runs]
    same = len({r.prompt for r in runs}) == 1 and len({_param(r) for r in runs}) == 1
    if same and None not in seeds and len(set(seeds)) == len(runs):
        return f"seed {run.manifest.get('seed')}"
    return run.path.name


def _param(run) -> str:
    p = run.config.get("param")
    return str(p.get("name") if isinstance(p, dict) else p)


def state_name(s: Summary | dict, state: int | str, quoted: bool = True) -> str:
    """A state's name: its closest concept probe when there are probes, else its top words."""
    s = Summary.of(s)
    key = str(state)
    others = s.top_concepts
    concept = others.get(key)
    words = s.words(key, 3)
    shared = sum(1 for v in others.values() if v == concept) > 1
    if concept and not shared:
        name = concept
    elif words:
        name = ", ".join(words)
    else:
        return f"state {key}"
    return f"“{name}”" if quoted else name


def _names(s: Summary, limit: int = 4) -> str:
    n = s.n_states or 0
    names = [state_name(s, i) for i in range(min(n, limit))]
    more = f" and {plural(n - limit, 'other')}" if n > limit else ""
    return ", ".join(names) + more


def _last_switch_step(s: Summary) -> int | None:
    states, steps = s.states, s.steps
    for i in range(len(states) - 1, 0, -1):
        if states[i] != states[i - 1]:
            return int(steps[i])
    return None


def _states_clause(s: Summary) -> str:
    """Where the snapshots went, from the verdict and the numbers behind it."""
    v, n = s.verdict, s.n_states or 0
    total, late = s.drift.get("total_noise_units"), s.drift.get("late_share")
    t = Thresholds(**{k: v for k, v in s.thresholds.items() if k in Thresholds.__dataclass_fields__})
    last_state = s.states[-1] if s.states else 0
    if v == "converging":
        if n == 1 or not s.switches:
            where = f"one state, {state_name(s, 0)}" if n == 1 else f"{state_name(s, last_state)}"
            return f"settled on {where}" + (f" ({_pct(late)} of its movement came in its last third)"
                                            if late is not None else "")
        last = _last_switch_step(s)
        return (f"moved through {plural(n, 'state')} ({_names(s)}) and settled on "
                f"{state_name(s, last_state)}" + (f" after step {last}" if last is not None else ""))
    if v == "single_state":
        if total is not None and total < t.min_drift:
            motion = f"barely moved ({total:.1f} noise units from start to end)"
        elif late is not None:
            motion = f"had not settled by the end ({_pct(late)} of its movement came in its last third)"
        else:
            motion = "had too few snapshots to tell whether it settled"
        if n == 1:
            return f"stayed in one state, {state_name(s, 0)}, and {motion}"
        if s.returns:
            return (f"moved back and forth among {plural(n, 'state')} ({_names(s)}), "
                    f"{plural(s.returns, 'return')} to a state it had left, but not in jumps distinct enough to "
                    f"call switching, and {motion}")
        return f"drifted through {plural(n, 'state')} ({_names(s)}) without coming back to any, and {motion}"
    if v == "periodic_oscillation":
        return (f"oscillated periodically between {plural(n, 'state')} ({_names(s)}): "
                f"{plural(s.switches or 0, 'switch')}, about {s.periodicity.get('cycles', 0):.0f} cycles")
    if v == "metastable_switching":
        return (f"kept switching between {plural(n, 'state')} ({_names(s)}): {plural(s.switches or 0, 'switch')}, "
                f"{plural(s.returns or 0, 'return')} to a state it had left")
    return verdict_label(v, n)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _dynamics_clause(d: dict | None) -> str:
    """What every logged step of the similarity did."""
    if not d or not d.get("signal"):
        return "its per-step similarity was not logged"
    what = "its similarity" if str(d["signal"]).startswith("sim/") else f"its {d['signal']}"
    if d["cycling"]:
        out = (f"{what} drops suddenly every ~{d['mean_spacing_steps']:.0f} steps and recovers "
               f"({plural(d.get('n_events', 0), 'drop')})")
        if d.get("snapshot_aliasing") and d.get("snapshot_interval"):
            out += (f", faster than snapshots every {d['snapshot_interval']:g} steps can show, "
                    f"so the states cannot see it")
        return out
    m = d.get("motion") or {}
    if m.get("climb"):
        shape = (f"{what} {m['climb']} from {m['start']:.2f} to {m['climb_to']:.2f} by step "
                 f"{m['climb_until_step']}")
        shape += {"holds": " and then holds", "keeps rising": f" and keeps rising, to {m.get('end', 0):.2f}",
                  "keeps falling": f" and then falls, to {m.get('end', 0):.2f}"}.get(m.get("then"), "")
    elif m.get("then") in ("keeps rising", "keeps falling"):
        verb = "rises" if m["then"] == "keeps rising" else "falls"
        shape = f"{what} {verb} from {m['start']:.2f} to {m.get('end', 0):.2f}"
    elif m:
        shape = f"{what} stays near {m.get('end', 0):.2f}"
    elif d.get("p_value") is None:
        return f"{what} was logged at too few steps to look for cycles"
    else:
        shape = f"{what} does not cycle"
    n = d.get("n_events", 0)
    p = d.get("p_value")
    if p is None:
        return shape
    if p >= 0.01 or not n:
        return shape + ", with no sudden drops beyond its own noise"
    reason = d.get("reason", "")
    if "died out" in reason:
        return shape + f"; its sudden drops ({n}) died out before the last third"
    return shape + f", with {plural(n, 'isolated sudden drop')}"


def finding(label: str, s: Summary | dict) -> str:
    """One sentence: "seed 0 settled on one state, “a red heart”; its similarity rises ..."."""
    s = Summary.of(s)
    return f"{label} {_states_clause(s)}; {_dynamics_clause(s.dynamics)}."


def overall(summaries: list[Summary | dict]) -> str:
    """One sentence over every run: how many settled, switched, drifted; how many cycle per step."""
    summaries = [Summary.of(s) for s in summaries]
    n = len(summaries)
    counts: dict[str, int] = {}
    for s in summaries:
        key = {"converging": "settled", "metastable_switching": "kept switching",
               "periodic_oscillation": "oscillated periodically"}.get(s.verdict, "did not settle")
        counts[key] = counts.get(key, 0) + 1
    order = ["settled", "did not settle", "kept switching", "oscillated periodically"]
    parts = [f"{counts[k]} {k}" for k in order if k in counts]
    cycling = sum(1 for s in summaries if (s.dynamics or {}).get("cycling"))
    switching = counts.get("kept switching", 0) + counts.get("oscillated periodically", 0)
    runs = plural(n, "run")
    states = (f"Of {runs}, " + ", ".join(parts) + "." if n > 1 else "")
    if not switching and n > 1:
        states += " None switched back and forth between states."
    dyn = ("No run's similarity cycles from step to step." if not cycling else
           f"In {plural(cycling, 'run')} the similarity cycles from step to step (sudden drops and recoveries)"
           + (", faster than the snapshots." if any((s.dynamics or {}).get("snapshot_aliasing")
                                                   for s in summaries) else "."))
    return (states + " " + dyn).strip()
