"""Plain words for what the analysis finds: verdict names and counts ("1 switch", "2 states"),
and the one phrase every view shows for a run (``verdict_phrase``).

This is the vocabulary: each verdict has one set of words (``VERDICT_WORDS``), and where the
per-step dynamics cycle the same note follows it everywhere ("drops every ~11 steps" only when
the drops keep time, else "drops at irregular times, ~11 steps apart on average"). Kept apart
from ``clipxai.analysis`` so that a command that only lists runs (``clipxai runs``) can say them
without importing the analysis.
"""

from __future__ import annotations

VERDICT_WORDS = {
    "converging": "settled",
    "single_state": "one state, not settled",          # with two or more states on the path: SINGLE_STATE_DRIFT
    "metastable_switching": "keeps switching between states",
    "periodic_oscillation": "oscillates periodically",
}
SINGLE_STATE_DRIFT = "drifting, no recurring states"


def verdict_label(verdict: str, n_states: int | None = None) -> str:
    """The verdict in a few plain words, for tables and titles ("settled", "keeps switching")."""
    if verdict == "single_state" and (n_states or 1) > 1:
        return SINGLE_STATE_DRIFT
    return VERDICT_WORDS.get(verdict, str(verdict).replace("_", " "))


def cycling_note(dynamics: dict | None) -> str:
    """What the per-step dynamics add beside the verdict: "" unless they cycle, then when the drops come.

    "drops every ~N steps" only when the drops are ``regular``; "drops at irregular times, ~N steps
    apart on average" when they are not; a summary written before regularity was measured says
    "drops ~N steps apart on average" (it never tested whether they keep time).
    """
    if not dynamics or not dynamics.get("cycling"):
        return ""
    spacing = dynamics.get("mean_spacing_steps")
    if not isinstance(spacing, (int, float)):
        return "sudden drops that recur"
    if "regular" not in dynamics:
        return f"drops ~{spacing:.0f} steps apart on average"
    if dynamics["regular"]:
        return f"drops every ~{spacing:.0f} steps"
    return f"drops at irregular times, ~{spacing:.0f} steps apart on average"


def verdict_phrase(summary: dict | None) -> str:
    """The words every view shows for an analyzed run: the verdict's words, then the cycling note.

    ``summary`` is summary.json as a dict (``verdict``, ``n_states``, ``dynamics``); "" when the run
    was not analyzed. E.g. "one state, not settled; cycling: drops at irregular times, ~10 steps
    apart on average".
    """
    if not summary or "verdict" not in summary:
        return ""
    words = verdict_label(summary["verdict"], summary.get("n_states"))
    note = cycling_note(summary.get("dynamics"))
    return f"{words}; cycling: {note}" if note else words


def plural(n: int, word: str, many: str | None = None) -> str:
    """"1 switch", "2 switches", "1 state", "0 states"."""
    if n == 1:
        return f"1 {word}"
    return f"{n} {many or (word + 'es' if word.endswith(('s', 'sh', 'ch', 'x')) else word + 's')}"
