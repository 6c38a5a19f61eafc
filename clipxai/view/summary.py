"""What the run page shows of a run's analysis (``analysis/summary.json``).

The summary describes the snapshots that existed when ``clipxai analyze`` ran; states are
matched to the run's snapshots by step, so a run that grew since shows its newer snapshots
without a state rather than with a wrong one. Every field is read defensively: a summary
written by another version loses a panel, never the page.
"""

from __future__ import annotations

from clipxai.runs.summary import Summary
from clipxai.util.words import verdict_phrase

SCALARS = (int, float, str, bool)


def _words(summary: Summary) -> dict[str, list[str]]:
    return {state: summary.words(state) for state in summary.worded_states}


def _dynamics(summary: Summary) -> dict | None:
    dyn = summary.dynamics
    if dyn is None:
        return None
    return {k: v for k, v in dyn.items() if isinstance(v, SCALARS) or v is None}


def analysis_view(summary: Summary | dict | None, steps: list[int]) -> dict | None:
    """The parts of a summary the run page draws, with one state per snapshot of ``steps`` (None where unknown)."""
    if not isinstance(summary, (Summary, dict)):
        return None
    s = Summary.of(summary)
    by_step = s.state_by_step
    return {
        "verdict": s.verdict,
        "verdict_words": verdict_phrase(s.data),
        "verdict_reason": s.verdict_reason,
        "n_states": s.n_states,
        "switches": s.switches,
        "n_analysed": s.n_snapshots,
        "states": [by_step.get(int(step)) for step in steps],
        "words": _words(s),
        "representatives": s.representatives,
        "dynamics": _dynamics(s),
        "figures": s.figures,
        "created": s.created,
    }
