"""What a sweep says on standard error: a line per finished unit with an overall ETA, and at
the end a count of the runs and a table of the failures with their one-sentence reasons."""

from __future__ import annotations

import sys
import time

from clipxai.sweep.plan import ANALYZE, Unit


def clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


class SweepProgress:
    """Counts finished units and estimates the time left from the work done so far (in seed-steps)."""

    def __init__(self, units: list[Unit], total_rows: int, complete_rows: int, stream=None):
        self.stream = stream or sys.stderr
        self.units = len(units)
        self.work_total = sum(u.work for u in units) or 1.0
        self.work_done = 0.0
        self.done = 0
        self.total_rows = total_rows
        self.complete = complete_rows
        self.failed = 0
        self.t0 = time.perf_counter()

    def say(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def finished(self, unit: Unit, results: list[dict]) -> None:
        self.done += 1
        self.work_done += unit.work
        bad = [r for r in results if r["status"] == "failed" or r.get("analysis") == "failed"]
        self.failed += len(bad)
        if unit.kind != ANALYZE:
            self.complete += sum(r["status"] == "complete" for r in results)
        elapsed = time.perf_counter() - self.t0
        left = elapsed * (self.work_total - self.work_done) / max(self.work_done, 1e-9)
        what = "analyzed" if unit.kind == ANALYZE else unit.kind.replace("run", "ran").replace("resume", "resumed")
        outcome = "failed" if bad else results[0]["status"] if results else "?"
        seconds = max((r.get("seconds") or 0.0 for r in results), default=0.0)
        eta = f"ETA {clock(left)}" if self.done < self.units else f"took {clock(elapsed)}"
        self.say(f"[{self.done}/{self.units}] {outcome:<11} {what} {unit.label} ({seconds:.1f}s); "
                 f"{self.complete}/{self.total_rows} runs complete, {self.failed} failed; {eta}")


def failure_table(problems: list[tuple], retries: int) -> str:
    """The failed runs, one line each: folder, attempts, reason."""
    if not problems:
        return ""
    width = max(len(row.folder) for row, _ in problems)
    lines = [f"{len(problems)} run{'s' if len(problems) != 1 else ''} failed:",
             f"  {'run':<{width}}  tries  reason"]
    for row, rec in problems:
        if rec["status"] == "failed":
            reason, failures = rec.get("error") or "The run failed.", rec.get("failures", 0)
        else:
            reason = f"analysis: {rec.get('analysis_error') or 'it failed.'}"
            failures = rec.get("analysis_failures", 0)
        gave_up = " (no retries left)" if failures > retries else ""
        lines.append(f"  {row.folder:<{width}}  {rec.get('attempts', 0):>5}  {reason}{gave_up}")
    return "\n".join(lines)
