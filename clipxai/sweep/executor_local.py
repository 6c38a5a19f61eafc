"""The local executor: every unit in this process, one after another.

The loaded CLIP is kept from one unit to the next (``work._MODELS``), so a sweep costs
no more than the same ``ascend`` calls written by hand. Ctrl-C or SIGTERM during a run
stops it cleanly after the current step (``ascend`` handles them); the sweep then stops
too and the next start resumes that run from its checkpoint.
"""

from __future__ import annotations

from typing import Callable

from clipxai.sweep.plan import Unit
from clipxai.sweep.work import execute_unit


class LocalExecutor:
    name = "local"

    def run(self, units: list[Unit], payload: Callable[[Unit], dict],
            started: Callable[[Unit], None], finished: Callable[[Unit, list[dict]], None]) -> None:
        for unit in units:
            started(unit)
            results = execute_unit(payload(unit))
            finished(unit, results)
            if any(r["status"] == "interrupted" for r in results):
                raise KeyboardInterrupt
