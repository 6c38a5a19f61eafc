"""What the run page shows of a run's analysis (``analysis/summary.json``).

The summary describes the snapshots that existed when ``clipxai analyze`` ran; states are
matched to the run's snapshots by step, so a run that grew since shows its newer snapshots
without a state rather than with a wrong one. Every field is read defensively: a summary
written by another version loses a panel, never the page.
"""

from __future__ import annotations

SCALARS = (int, float, str, bool)


def _words(summary: dict) -> dict[str, list[str]]:
    labels = summary.get("labels")
    states = labels.get("states") if isinstance(labels, dict) else None
    if not isinstance(states, dict):
        return {}
    out = {}
    for state, ranked in states.items():
        if isinstance(ranked, list):
            out[str(state)] = [str(w.get("word")) for w in ranked if isinstance(w, dict) and "word" in w]
    return out


def _dynamics(summary: dict) -> dict | None:
    dyn = summary.get("dynamics")
    if not isinstance(dyn, dict):
        return None
    return {k: v for k, v in dyn.items() if isinstance(v, SCALARS) or v is None}


def analysis_view(summary: dict | None, steps: list[int]) -> dict | None:
    """The parts of a summary the run page draws, with one state per snapshot of ``steps`` (None where unknown)."""
    if not isinstance(summary, dict):
        return None
    by_step = {}
    s_steps, s_states = summary.get("steps"), summary.get("states")
    if isinstance(s_steps, list) and isinstance(s_states, list):
        by_step = {a: b for a, b in zip(s_steps, s_states) if isinstance(a, int) and isinstance(b, int)}
    reps = summary.get("representatives")
    figures = summary.get("figures")
    return {
        "verdict": summary.get("verdict") if isinstance(summary.get("verdict"), str) else None,
        "verdict_reason": summary.get("verdict_reason") if isinstance(summary.get("verdict_reason"), str) else None,
        "n_states": summary.get("n_states") if isinstance(summary.get("n_states"), int) else None,
        "switches": summary.get("switches") if isinstance(summary.get("switches"), int) else None,
        "n_analysed": summary.get("n_snapshots") if isinstance(summary.get("n_snapshots"), int) else None,
        "states": [by_step.get(int(s)) for s in steps],
        "words": _words(summary),
        "representatives": {str(k): v.get("snapshot") for k, v in reps.items() if isinstance(v, dict)}
        if isinstance(reps, dict) else {},
        "dynamics": _dynamics(summary),
        "figures": {str(k): v for k, v in figures.items() if isinstance(v, str)} if isinstance(figures, dict) else {},
        "created": summary.get("created") if isinstance(summary.get("created"), str) else None,
    }
