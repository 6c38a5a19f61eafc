"""sweep.json: the spec, the expanded grid, and each run's status, folder, attempts and error.

Only the driver writes it, atomically (``clipxai.util.files.write_json``), after every unit.
It is a record, not the truth: on every start the run folders are read again
(``reconcile``), so a driver killed between finishing a run and writing sweep.json loses
nothing. What only sweep.json knows is how often a run was tried and why it failed.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from clipxai.errors import ClipxaiError
from clipxai.runs.reader import read_manifest
from clipxai.sweep.plan import (
    ABSENT,
    ANALYZE,
    BUSY,
    COMPLETE,
    FAILED,
    RESUMABLE,
    RESUME,
    RUN,
    Unit,
    folder_state,
    has_summary,
)
from clipxai.sweep.spec import Row, SweepSpec
from clipxai.util.files import write_json

SCHEMA = "clipxai.sweep/1"
RUNS = "runs"            # run folders: <sweep>/runs/<base>-seed<S>
ATTEMPTS = "attempts"    # folders of failed or broken tries, moved aside: <sweep>/attempts/<folder>.<n>


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_sweep(folder: Path) -> dict:
    """The sweep.json of a sweep folder, or ``ClipxaiError`` saying what is wrong."""
    path = Path(folder) / "sweep.json"
    if not Path(folder).is_dir():
        raise ClipxaiError(f"{folder} is not a folder.")
    if not path.is_file():
        raise ClipxaiError(f"{folder} is not a sweep folder (it has no sweep.json).")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:   # cut, not UTF-8, nested or numbered absurdly
        raise ClipxaiError(f"{path} cannot be read ({type(err).__name__}); move it away to rebuild it "
                           f"from the run folders by running the sweep again.") from err
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or not isinstance(data.get("rows"), list):
        raise ClipxaiError(f"{path} is not a clipxai sweep record (schema {SCHEMA}).")
    return data


class SweepState:
    """The record of one sweep folder; rows are keyed by their folder name."""

    def __init__(self, folder: Path, spec: SweepSpec, rows: list[Row]):
        self.folder = Path(folder)
        self.spec = spec
        self.rows = rows
        self.created = _now()
        self.records: dict[str, dict] = {r.folder: {"status": "pending", "attempts": 0, "failures": 0, "error": None,
                                                     "analysis": None, "analysis_error": None, "analysis_failures": 0,
                                                     "seconds": None}
                                         for r in rows}
        if (self.folder / "sweep.json").exists():
            old = read_sweep(self.folder)
            self.created = old.get("created", self.created)
            for rec in old["rows"]:
                name = Path(str(rec.get("folder", ""))).name
                if name in self.records:
                    self.records[name].update({k: rec[k] for k in self.records[name] if k in rec})

    @property
    def runs_dir(self) -> Path:
        return self.folder / RUNS

    @property
    def attempts_dir(self) -> Path:
        return self.folder / ATTEMPTS

    def reconcile(self) -> dict[str, str]:
        """Each row's status from its folder; returns what each row still needs (run, resume, analyze).

        A run that failed more than ``retries`` times stays failed whatever its folder holds;
        an analysis that failed more than ``retries`` times is not tried again either.
        """
        kinds = {}
        analyze = self.spec.analyze is not None
        retries = self.spec.retries
        for row in self.rows:
            rec = self.records[row.folder]
            path = self.runs_dir / row.folder
            state = folder_state(path)
            if not analyze and rec["analysis"] == "failed":  # the spec no longer asks for an analysis
                rec.update(analysis=None, analysis_error=None, analysis_failures=0)
            if state == COMPLETE:
                rec.update(status="complete", error=None)
                if analyze and not has_summary(path):
                    if rec["analysis"] != "failed":
                        rec["analysis"] = None
                    if rec["analysis"] is None or rec["analysis_failures"] <= retries:
                        kinds[row.folder] = ANALYZE
                elif analyze:
                    rec.update(analysis="complete", analysis_error=None)
                continue
            if state == BUSY:  # another process writes it: neither run nor counted complete
                rec["status"] = "running"
                continue
            if state == FAILED:
                rec["status"] = "failed"
                if not rec["error"]:
                    try:
                        rec["error"] = read_manifest(path).get("error") or "The run failed."
                    except ClipxaiError:
                        rec["error"] = "The run failed."
            elif rec["status"] == "failed" and rec["failures"] > retries:
                pass    # no retries left, even when its folder was left broken or resumable
            elif rec["status"] != "failed" or state != ABSENT:
                rec["status"] = "interrupted" if state == RESUMABLE else "pending"
            if rec["status"] == "failed":
                if rec["failures"] <= retries:
                    kinds[row.folder] = RUN
            else:
                kinds[row.folder] = RESUME if state == RESUMABLE else RUN
        return kinds

    def started(self, unit: Unit) -> None:
        for row in unit.rows:
            if unit.kind != ANALYZE:
                self.records[row.folder]["status"] = "running"

    def finished(self, unit: Unit, results: list[dict]) -> None:
        for row, res in zip(unit.rows, results):
            rec = self.records[row.folder]
            if res.get("ran", True) and unit.kind != ANALYZE:
                rec["attempts"] += 1
            rec["status"] = res["status"]
            rec["error"] = res.get("error") if res["status"] == "failed" else None
            if res["status"] == "failed" and res.get("ran", True):
                rec["failures"] += 1
            if res.get("seconds") and res.get("ran", True):
                rec["seconds"] = res["seconds"]
            if res.get("analysis") is not None:
                rec["analysis"], rec["analysis_error"] = res["analysis"], res.get("analysis_error")
                if res["analysis"] == "failed":
                    rec["analysis_failures"] += 1

    def stopped(self) -> None:
        """The driver stops early: rows it had started are interrupted (their folders say the rest)."""
        for rec in self.records.values():
            if rec["status"] == "running":
                rec["status"] = "interrupted"

    def problems(self) -> list[tuple[Row, dict]]:
        """Rows that failed, or whose analysis failed, with their records."""
        return [(row, self.records[row.folder]) for row in self.rows
                if self.records[row.folder]["status"] == "failed" or self.records[row.folder]["analysis"] == "failed"]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for rec in self.records.values():
            out[rec["status"]] = out.get(rec["status"], 0) + 1
        return out

    def save(self, executor: str | None = None) -> Path:
        rows = []
        for row in self.rows:
            rec = self.records[row.folder]
            rows.append({"folder": f"{RUNS}/{row.folder}", "values": row.values, "prompt": row.prompt,
                         "seed": row.seed, **rec})
        data = {"schema": SCHEMA, "name": self.spec.name, "spec_file": self.spec.source, "spec": self.spec.to_dict(),
                "grid_keys": list(self.spec.grid), "created": self.created, "updated": _now(),
                **({"executor": executor} if executor else {}), "counts": self.counts(), "rows": rows}
        self.folder.mkdir(parents=True, exist_ok=True)
        return write_json(self.folder / "sweep.json", data)
