"""What is left to do: each row's folder on disk, and the units of work made of the rows.

The run folders are the truth: a folder whose run.json says ``complete`` is never run
again, whatever sweep.json says (the driver may have been killed before it wrote it), and a
folder a live process is writing (its lock is held) is never touched.
Rows that still need a fresh start are grouped by everything but their seed (their
``base`` name), and each group is split into runs of consecutive seeds, at most
``max_batch`` long: each such run is one batched ``ascend(seed=s0, seeds=K)``.
An interrupted run resumes alone (a folder holds one seed's checkpoint). Units keep the
grid's order, except that the units of one model come together.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from clipxai.errors import RunError
from clipxai.runs.format import ANALYSIS_DIR, CHECKPOINT_FILE, SUMMARY_FILE
from clipxai.runs.reader import read_manifest
from clipxai.sweep.spec import Row, canonical

CHECKPOINT = CHECKPOINT_FILE   # the name of a run's resumable state (clipxai.runs.format)

# What a row's folder holds.
ABSENT, COMPLETE, FAILED, RESUMABLE, BROKEN, BUSY = "absent", "complete", "failed", "resumable", "broken", "busy"


def folder_state(path: Path) -> str:
    """absent (nothing there), complete, failed, resumable (stopped, has a checkpoint), broken
    (start again) or busy (a live process is writing it: left alone)."""
    from clipxai.runs.writer import is_locked  # noqa: PLC0415

    try:
        if not path.exists() or (path.is_dir() and not any(path.iterdir())):
            return ABSENT
        if is_locked(path):
            return BUSY
        manifest = read_manifest(path)
    except (RunError, OSError):
        return BROKEN
    status = manifest.get("status")
    if status == "complete":
        return COMPLETE
    if status == "failed":
        return FAILED
    return RESUMABLE if (path / CHECKPOINT).is_file() else BROKEN


def has_summary(path: Path) -> bool:
    return (path / ANALYSIS_DIR / SUMMARY_FILE).is_file()


# Kinds of unit: run (start fresh, batched), resume (one interrupted folder), analyze (complete, not analyzed).
RUN, RESUME, ANALYZE = "run", "resume", "analyze"


@dataclass
class Unit:
    """Rows done together in one process: one batched ascent, one resume, or one analysis."""

    kind: str
    rows: list[Row]
    steps: int = 0                    # optimization steps of each row (for the ETA)

    @property
    def label(self) -> str:
        seeds = [r.seed for r in self.rows]
        tail = f"seed{seeds[0]}" if len(seeds) == 1 else f"seed{seeds[0]}..{seeds[-1]}"
        return f"{self.rows[0].base}-{tail}"

    @property
    def work(self) -> float:
        """Rough cost, in seed-steps (an analysis counts as a tenth of its run)."""
        return self.steps * len(self.rows) * (0.1 if self.kind == ANALYZE else 1.0)


def consecutive(rows: list[Row], limit: int) -> list[list[Row]]:
    """Rows sorted by seed, cut wherever a seed is skipped or ``limit`` is reached."""
    chunks: list[list[Row]] = []
    for row in sorted(rows, key=lambda r: r.seed):
        if chunks and row.seed == chunks[-1][-1].seed + 1 and len(chunks[-1]) < limit:
            chunks[-1].append(row)
        else:
            chunks.append([row])
    return chunks


def plan(rows: list[Row], kinds: dict[str, str], max_batch: int, steps: dict[str, int]) -> list[Unit]:
    """Units for the rows that need work (``kinds``: folder -> run/resume/analyze), in grid order."""
    fresh: dict[str, list[Row]] = defaultdict(list)
    units = []
    for row in rows:
        kind = kinds.get(row.folder)
        if kind == RUN:
            fresh[row.base].append(row)
        elif kind in (RESUME, ANALYZE):
            units.append(Unit(kind, [row], steps.get(row.folder, 0)))
    for group in fresh.values():
        for chunk in consecutive(group, max_batch):
            units.append(Unit(RUN, chunk, steps.get(chunk[0].folder, 0)))
    # Grid order, but the units of one model together: a process keeps its last models loaded.
    first_use: dict[str, int] = {}
    for unit in sorted(units, key=lambda u: u.rows[0].index):
        first_use.setdefault(_model_key(unit), unit.rows[0].index)
    units.sort(key=lambda u: (first_use[_model_key(u)], u.rows[0].index))
    return units


def _model_key(unit: Unit) -> str:
    return canonical(unit.rows[0].options.get("model"))
