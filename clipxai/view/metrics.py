"""A run's metrics.jsonl, read once and then only as far as it has grown.

A live run appends a line per step; parsing 40,000 lines on every poll would cost half a
second of a busy CPU each time. Only complete lines are taken (a torn last line of a
killed run is left, as ``Run.metrics`` leaves it), and a file that was replaced or shrank
(a resume rewrites it) is read again from the start.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from clipxai.runs.format import METRICS_FILE
from clipxai.runs.reader import Run, metric_record
from clipxai.view.frames import MAX_SERIES_POINTS, series


def metrics_file(run: Run) -> Path:
    """Where a run keeps its per-step metrics (docs/run-format.md)."""
    return run.path / METRICS_FILE


def _parse(line: bytes) -> dict | None:
    return metric_record(line)


class MetricsTail:
    """Per-step series of runs, kept up to date by reading only what was appended.

    Lines are kept as bytes and only those the chart shows (at most ``MAX_SERIES_POINTS``,
    evenly spaced, the last one always) are parsed, once each: a run of 40,000 steps opens
    as fast as one of 4,000.
    """

    def __init__(self, allowed: Callable[[Path], bool] = lambda path: True):
        self._lock = threading.Lock()
        self._state: dict[Path, dict] = {}
        self._allowed = allowed   # a file that resolves outside the served folder is not read

    def series(self, run: Run) -> dict:
        """``frames.series`` of the run's metrics as they are on disk now (thinned evenly)."""
        file = metrics_file(run)
        try:
            st = file.stat()
        except OSError:
            return series([])
        if not self._allowed(file):
            return series([])
        with self._lock:
            state = self._state.get(file)
            if state is None or state["inode"] != st.st_ino or st.st_size < state["offset"]:
                state = {"inode": st.st_ino, "offset": 0, "lines": [], "parsed": {}, "series": None}
                self._state[file] = state
            if st.st_size > state["offset"]:
                try:
                    with open(file, "rb") as f:
                        f.seek(state["offset"])
                        chunk = f.read(st.st_size - state["offset"])
                except OSError:
                    chunk = b""
                end = chunk.rfind(b"\n") + 1
                if end:
                    state["lines"].extend(line for line in chunk[:end].split(b"\n") if line.strip())
                    state["offset"] += end
                    state["series"] = None
            if state["series"] is None:
                lines, parsed = state["lines"], state["parsed"]
                stride = max(1, -(-len(lines) // MAX_SERIES_POINTS))
                picked = list(range(0, len(lines), stride))
                if lines and picked[-1] != len(lines) - 1:
                    picked.append(len(lines) - 1)
                for i in picked:
                    if i not in parsed:
                        parsed[i] = _parse(lines[i])
                result = series([parsed[i] for i in picked if parsed[i] is not None])
                result["stride"] = stride
                state["series"] = result
            return state["series"]
