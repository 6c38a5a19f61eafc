"""Plain words for what the analysis finds: verdict names and counts ("1 switch", "2 states").

Kept apart from ``clipxai.analysis`` so that a command that only lists runs (``clipxai runs``)
can say them without importing the analysis.
"""

from __future__ import annotations


def verdict_label(verdict: str, n_states: int | None = None) -> str:
    """The verdict in a few plain words, for tables and titles ("settled", "keeps switching")."""
    if verdict == "single_state":
        return "drifting, no recurring states" if (n_states or 1) > 1 else "one state, not settled"
    return {"converging": "settled", "metastable_switching": "keeps switching between states",
            "periodic_oscillation": "oscillates periodically"}.get(verdict, str(verdict).replace("_", " "))


def plural(n: int, word: str, many: str | None = None) -> str:
    """"1 switch", "2 switches", "1 state", "0 states"."""
    if n == 1:
        return f"1 {word}"
    return f"{n} {many or (word + 'es' if word.endswith(('s', 'sh', 'ch', 'x')) else word + 's')}"
