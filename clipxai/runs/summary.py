"""A run's analysis summary (``analysis/summary.json``): the one file the report, the findings,
the comparison, the atlas, the viewer, the runs listing and the demo read of an analysis."""

from __future__ import annotations

import json

SCHEMA = "clipxai.analysis/1"
SUMMARY_FILE = "summary.json"


def read_summary(run) -> dict | None:
    """The run's summary.json, or None when it has not been analyzed (or the file is unusable)."""
    path = run.analysis_dir / SUMMARY_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == SCHEMA else None
