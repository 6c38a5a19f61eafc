"""A run's analysis summary (``analysis/summary.json``): the one file the report, the findings,
the comparison, the atlas, the viewer, the runs listing and the demo read of an analysis.

``read_summary`` gives the file as a dict; ``Summary`` is the same dict read through typed
fields, each of which answers with its kind of value or a plain default (None, ``{}``,
``[]``) when a summary written by another version lacks it or holds something else, so a
reader loses one number, never its page. ``clipxai.analysis.analyze.Analysis.to_dict`` writes it.
"""

from __future__ import annotations

import json
import os
from numbers import Integral, Real

from clipxai.runs.format import ANALYSIS_DIR, SUMMARY_FILE

SCHEMA = "clipxai.analysis/1"
__all__ = ["SCHEMA", "SUMMARY_FILE", "Summary", "load_summary", "read_summary"]


def read_summary(run) -> dict | None:
    """The summary.json of a run (a ``Run``, or a run folder's path), or None when it has not been
    analyzed (or the file is unusable)."""
    folder = os.path.join(run, ANALYSIS_DIR) if isinstance(run, (str, os.PathLike)) else run.analysis_dir
    try:
        with open(os.path.join(folder, SUMMARY_FILE), encoding="utf-8") as f:
            data = json.loads(f.read())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == SCHEMA else None


def load_summary(run) -> "Summary | None":
    """The run's summary.json as a ``Summary``, or None when it has not been analyzed."""
    data = read_summary(run)
    return None if data is None else Summary(data)


def _int(value) -> int | None:
    return int(value) if isinstance(value, Integral) and not isinstance(value, bool) else None


def _float(value) -> float | None:
    return float(value) if isinstance(value, Real) and not isinstance(value, bool) else None


def _str(value) -> str | None:
    return value if isinstance(value, str) else None


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _ints(value) -> list[int]:
    """A list of whole numbers, or [] when it is anything else (one bad entry spoils the list)."""
    if not isinstance(value, list) or not all(_int(v) is not None for v in value):
        return []
    return [int(v) for v in value]


class Summary:
    """One run's summary.json read through typed fields (``data`` is the dict itself)."""

    def __init__(self, data: dict | None):
        self.data = data if isinstance(data, dict) else {}

    @classmethod
    def of(cls, summary: "Summary | dict | None") -> "Summary":
        """``summary`` as a Summary (a dict is wrapped, a Summary returned as it is)."""
        return summary if isinstance(summary, Summary) else cls(summary)

    def to_dict(self) -> dict:
        return self.data

    def __repr__(self) -> str:
        return f"Summary(verdict={self.verdict!r}, n_states={self.n_states!r}, n_snapshots={self.n_snapshots!r})"

    # -- where the snapshots went ---------------------------------------------------------------
    @property
    def verdict(self) -> str | None:
        """``converging``, ``single_state``, ``metastable_switching`` or ``periodic_oscillation``."""
        return _str(self.data.get("verdict"))

    @property
    def verdict_reason(self) -> str | None:
        return _str(self.data.get("verdict_reason"))

    @property
    def n_states(self) -> int | None:
        return _int(self.data.get("n_states"))

    @property
    def n_snapshots(self) -> int | None:
        """How many snapshots the analysis used (the run may have grown since)."""
        return _int(self.data.get("n_snapshots"))

    @property
    def switches(self) -> int | None:
        return _int(self.data.get("switches"))

    @property
    def returns(self) -> int | None:
        return _int(self.data.get("returns"))

    @property
    def steps(self) -> list[int]:
        """The step of every snapshot analysed."""
        return _ints(self.data.get("steps"))

    @property
    def states(self) -> list[int]:
        """The state of every snapshot analysed, in the order of ``steps``."""
        return _ints(self.data.get("states"))

    @property
    def state_by_step(self) -> dict[int, int]:
        """step -> the state of the snapshot at that step (pairs that are not two whole numbers left out)."""
        steps, states = self.data.get("steps"), self.data.get("states")
        if not isinstance(steps, list) or not isinstance(states, list):
            return {}
        return {int(a): int(b) for a, b in zip(steps, states) if _int(a) is not None and _int(b) is not None}

    @property
    def switch_rate(self) -> dict:
        """``{"value", "ci95"}``: switches per 100 steps and its 95% interval."""
        return _dict(self.data.get("switch_rate_per_100_steps"))

    @property
    def dwell(self) -> dict:
        """``dwell_steps_all``: median, IQR (and ``lower_bound``) of every visit's length in steps."""
        return _dict(self.data.get("dwell_steps_all"))

    @property
    def dwell_by_state(self) -> dict[str, dict]:
        return {str(k): v for k, v in _dict(self.data.get("dwell_steps")).items() if isinstance(v, dict)}

    @property
    def windows(self) -> list[dict]:
        """The switch rate in the early, middle and late third."""
        value = self.data.get("windows")
        return [w for w in value if isinstance(w, dict)] if isinstance(value, list) else []

    @property
    def silhouette(self) -> float | None:
        return _float(self.data.get("silhouette"))

    @property
    def jump_ratio(self) -> float | None:
        return _float(self.data.get("jump_ratio"))

    @property
    def drift(self) -> dict:
        return _dict(self.data.get("drift"))

    @property
    def trend(self) -> dict:
        return _dict(self.data.get("trend"))

    @property
    def periodicity(self) -> dict:
        return _dict(self.data.get("periodicity"))

    @property
    def recurrence(self) -> dict:
        return _dict(self.data.get("recurrence"))

    # -- what the per-step series did ------------------------------------------------------------
    @property
    def dynamics(self) -> dict | None:
        """The per-step dynamics (cycling, events, motion ...), or None for a summary that predates them."""
        value = self.data.get("dynamics")
        return value if isinstance(value, dict) else None

    # -- words, pictures, how it was computed ----------------------------------------------------
    @property
    def labels(self) -> dict:
        return _dict(self.data.get("labels"))

    def ranked_words(self, state: int | str) -> list[dict]:
        """The words nearest a state, best first: ``{"word", "similarity"}`` each."""
        ranked = _dict(self.labels.get("states")).get(str(state))
        return [w for w in ranked if isinstance(w, dict) and "word" in w] if isinstance(ranked, list) else []

    def words(self, state: int | str, limit: int | None = None) -> list[str]:
        return [str(w["word"]) for w in self.ranked_words(state)][:limit]

    @property
    def worded_states(self) -> list[str]:
        """The states that have words, as summary.json names them."""
        return [str(k) for k, v in _dict(self.labels.get("states")).items() if isinstance(v, list)]

    def opinion(self, state: int | str) -> dict | None:
        """CLIP's opinion of a state (``analyze --opinion``): ``{"text", "similarity", ...}``."""
        value = _dict(self.labels.get("opinion")).get(str(state))
        return value if isinstance(value, dict) else None

    @property
    def concepts(self) -> dict | None:
        value = self.data.get("concepts")
        return value if isinstance(value, dict) else None

    @property
    def top_concepts(self) -> dict[str, str]:
        """state -> its closest concept probe (with ``--concept``)."""
        return {str(k): v for k, v in _dict((self.concepts or {}).get("top_concept_by_state")).items()
                if isinstance(v, str)}

    @property
    def representatives(self) -> dict[str, int]:
        """state -> the snapshot (row) most typical of it."""
        out = {}
        for state, rep in _dict(self.data.get("representatives")).items():
            snapshot = _int(rep.get("snapshot")) if isinstance(rep, dict) else None
            if snapshot is not None:
                out[str(state)] = snapshot
        return out

    @property
    def figures(self) -> dict[str, str]:
        """figure name -> its file, relative to the analysis folder."""
        return {str(k): v for k, v in _dict(self.data.get("figures")).items() if isinstance(v, str)}

    @property
    def figures_skipped(self) -> dict[str, str]:
        """figure name -> why it was not drawn."""
        return {str(k): str(v) for k, v in _dict(self.data.get("figures_skipped")).items()}

    @property
    def analysis(self) -> dict:
        """How the states were found: features, clustering, state model, options, thresholds."""
        return _dict(self.data.get("analysis"))

    @property
    def clustering(self) -> dict:
        return _dict(self.analysis.get("clustering"))

    @property
    def thresholds(self) -> dict:
        return _dict(self.analysis.get("thresholds"))

    @property
    def options(self) -> dict:
        return _dict(self.analysis.get("options"))

    @property
    def notes(self) -> list[str]:
        value = self.data.get("notes")
        return [str(n) for n in value] if isinstance(value, list) else []

    @property
    def run(self) -> dict:
        """What the analysis recorded of the run (path, status, prompt, model, partial)."""
        return _dict(self.data.get("run"))

    @property
    def created(self) -> str | None:
        return _str(self.data.get("created"))

    @property
    def clipxai_version(self) -> str | None:
        return _str(self.data.get("clipxai_version"))
