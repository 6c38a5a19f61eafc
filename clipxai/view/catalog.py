"""The runs under the served folder: finding them, opening them, and what the pages show of them.

Runs are found by the walk ``load_run`` and ``clipxai runs`` use (``clipxai.runs.find``), opened
with ``clipxai.load_run`` and reopened whenever their run.json changes (a live run grows; its
arrays are memory-mapped again, which costs microseconds). Everything the viewer reads from a
manifest is in ``run_facts``, and of an analysis in the ``Summary`` it hands out, so a change
of the run format touches one function here.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np

from clipxai.errors import ClipxaiError
from clipxai.runs.find import find_runs
from clipxai.runs.format import ANALYSIS_DIR, RUN_FILE, SUMMARY_FILE
from clipxai.runs.load import load_run
from clipxai.runs.reader import Run
from clipxai.runs.summary import Summary, load_summary
from clipxai.util.words import verdict_phrase
from clipxai.view.paths import inside, relative_id

RACY_SECONDS = 2   # a folder changed this recently is walked again next time


def run_facts(run: Run) -> dict:
    """What the pages show about a run, from its manifest (the one place that reads it)."""
    m = run.manifest
    return {
        "status": run.status, "prompt": run.prompt, "model": run.model_label, "n": run.n,
        "steps_total": m.get("steps_total"), "steps_done": m.get("steps_done"),
        "created": m.get("created"), "updated": m.get("updated"),
        "stop_reason": m.get("stop_reason"), "error": m.get("error"),
    }


def _stamp(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class Catalog:
    """Open runs and their analysis summaries, cached until their files change."""

    def __init__(self, root: Path):
        self.root = root
        self._lock = threading.Lock()
        self._runs: dict[str, tuple[tuple, Run]] = {}
        self._summaries: dict[str, tuple[tuple, Summary | None]] = {}
        self._rows: dict[str, tuple[tuple, dict]] = {}   # folder -> (its files' stamps, its row)
        self._walk: tuple[list, list[Path]] | None = None  # ((folder, mtime) listed, runs found)
        self._files: dict[str, tuple[str, str]] = {}       # folder -> its run.json and summary.json paths
        self._order: tuple[list, list] | None = None       # (rows in walk order, the same newest first)

    def contains(self, path: Path) -> bool:
        """Whether ``path``, links resolved, is inside the served folder."""
        try:
            real = Path(path).resolve()
        except (OSError, RuntimeError):
            return False
        return real == self.root or real.is_relative_to(self.root)

    def array(self, run: Run, name: str) -> np.ndarray | None:
        """One of the run's arrays, or None when it is missing, damaged or lies outside the served folder."""
        return self.array_or_problem(run, name)[0]

    def array_or_problem(self, run: Run, name: str) -> tuple[np.ndarray | None, str | None]:
        """One of the run's arrays and None, or None and the sentence saying why a recorded array cannot be read."""
        if name not in run.array_names():
            return None, None
        try:
            arr = run.array(name)
        except ClipxaiError as err:
            return None, " ".join(str(err).split())
        filename = getattr(arr, "filename", None)
        return (arr, None) if filename is None or self.contains(Path(filename)) else (None, None)

    def folder(self, run_id: str) -> Path | None:
        """The run folder a URL names, or None (outside the root, or not a run)."""
        folder = self.root if run_id == "." else inside(self.root, run_id)
        if folder is None or not folder.is_dir() or not (folder / RUN_FILE).is_file():
            return None
        return folder if self.contains(folder / RUN_FILE) else None

    def run(self, run_id: str) -> Run | None:
        """The run named ``run_id`` as it is on disk now, or None when there is no such run."""
        folder = self.folder(run_id)
        if folder is None:
            return None
        stamp = _stamp(folder / RUN_FILE)
        with self._lock:
            cached = self._runs.get(run_id)
            if cached and cached[0] == stamp:
                return cached[1]
        try:
            run = load_run(folder)
        except (ClipxaiError, OSError, ValueError, RecursionError):   # a damaged run is no run to show
            return None
        with self._lock:
            self._runs[run_id] = (stamp, run)
        return run

    @staticmethod
    def problem(folder: Path) -> str | None:
        """Why the run in ``folder`` cannot be opened, in one sentence (None when it can)."""
        try:
            load_run(folder)
        except ClipxaiError as err:
            return str(err)
        except (OSError, ValueError, RecursionError) as err:
            return f"{folder / RUN_FILE} cannot be read ({type(err).__name__})."
        return None

    def summary(self, run: Run) -> Summary | None:
        """The run's analysis summary (summary.json), or None when it has not been analysed."""
        key = str(run.path)
        file = run.path / ANALYSIS_DIR / SUMMARY_FILE
        stamp = _stamp(file)
        if stamp is None or not self.contains(file):
            return None
        with self._lock:
            cached = self._summaries.get(key)
            if cached and cached[0] == stamp:
                return cached[1]
        summary = load_summary(run)
        with self._lock:
            self._summaries[key] = (stamp, summary)
        return summary

    def rows(self, newest_first: bool = False) -> list[dict]:
        """One row per run for the runs page, in walk order (``newest_first``: by creation, newest first).

        A row is kept until its run.json or summary.json changes (their stamps), so listing a
        folder of 10,000 runs again costs the walk and two ``stat`` calls a run, not 10,000 runs
        opened; while no row changed, the newest-first order is the last one's, not sorted again."""
        out, seen, gone = [], {}, False
        files = self._files
        for folder in self._found():
            key = str(folder)
            pair = files.get(key)
            if pair is None:
                pair = files[key] = (os.path.join(key, RUN_FILE), os.path.join(key, ANALYSIS_DIR, SUMMARY_FILE))
            stamp = (_stamp_of(pair[0]), _stamp_of(pair[1]))
            gone = gone or stamp[0] is None
            cached = self._rows.get(key)
            row = cached[1] if cached is not None and cached[0] == stamp and stamp[0] is not None else None
            if row is None:
                row = self._row(folder)
            seen[key] = (stamp, row)
            out.append(row)
        with self._lock:
            self._rows = seen          # runs gone from the folder are forgotten
            if gone:
                self._walk = None
            if len(files) > 2 * len(seen) + 1000:
                self._files = {k: files[k] for k in seen if k in files}
        return self._newest(out) if newest_first else out

    def _newest(self, rows: list[dict]) -> list[dict]:
        """``rows`` newest first, the last order reused while every row is the same object as then."""
        last = self._order
        if last is not None and len(last[0]) == len(rows) and all(a is b for a, b in zip(last[0], rows)):
            return last[1]
        newest = sorted(rows, key=lambda r: (str(r.get("created") or ""), r["id"]), reverse=True)
        self._order = (rows, newest)
        return newest

    def _found(self) -> list[Path]:
        """The runs under the root: the last walk's while none of the folders it listed has changed.

        A folder changed within ``RACY_SECONDS`` before the walk is never trusted (a change in the
        same tick of the file system's clock would leave its time as it was)."""
        cached = self._walk
        if cached is not None and all(_mtime(f) == m for f, m in cached[0]):
            return cached[1]
        started = time.time_ns()
        walked: list[str] = []
        found = find_runs(self.root, walked=walked)
        stamps = [(f, _mtime(f)) for f in walked]
        trusted = all(m is not None and m < started - RACY_SECONDS * 1e9 for _, m in stamps)
        self._walk = (stamps, found) if trusted else None
        return found

    def _row(self, folder: Path) -> dict:
        run_id = relative_id(self.root, folder)
        parent = Path(run_id).parent.as_posix()
        row = {"id": run_id, "name": folder.name, "group": "" if parent == "." else parent}
        run, problem = self.run(run_id), None
        if run is None:
            problem = self.problem(folder)
        if problem is not None or run is None:   # one damaged run.json is one row, never the whole page
            row.update(status="corrupt" if problem else "unreadable", problem=problem, prompt="", model=None, n=0)
        else:
            row.update(run_facts(run))
            summary = self.summary(run)
            row["verdict"] = summary.verdict if summary else None
            row["verdict_words"] = verdict_phrase(summary.data) if summary else ""   # what every view says
        return row


def _mtime(folder: str) -> int | None:
    try:
        return os.stat(folder).st_mtime_ns
    except OSError:
        return None


def _stamp_of(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
