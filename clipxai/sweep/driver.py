"""``run_sweep``: from a spec file to a sweep folder where every run is complete, or says why not.

The steps: read and expand the spec, check all of it (nothing runs on a bad spec), lock
the sweep folder, read each run folder's state, plan the units left, hand them to an
executor, record each result in sweep.json as it arrives, and end with the failures.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from clipxai.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, ClipxaiError
from clipxai.sweep.lock import SweepLock
from clipxai.sweep.plan import COMPLETE, Unit, folder_state, has_summary, plan
from clipxai.sweep.progress import SweepProgress, failure_table
from clipxai.sweep.spec import SweepSpec, canonical, expand, load_spec
from clipxai.sweep.state import RUNS, SweepState, read_sweep
from clipxai.sweep.validate import validate
from clipxai.sweep.work import payload

EXECUTORS = ("local", "ray")
EXIT_BAD_SPEC = EXIT_BAD_INPUT


@dataclass
class SweepOutcome:
    folder: Path
    exit_code: int
    counts: dict = field(default_factory=dict)
    failures: int = 0


def make_executor(kind: str, address: str | None, spec: SweepSpec, folder: Path):
    if kind not in EXECUTORS:
        raise ClipxaiError(f"Unknown executor '{kind}'; choose one of {', '.join(EXECUTORS)}.")
    if kind == "local":
        if address:
            raise ClipxaiError("--address applies to --executor ray only.")
        from clipxai.sweep.executor_local import LocalExecutor  # noqa: PLC0415
        return LocalExecutor()
    import importlib.util  # noqa: PLC0415
    if importlib.util.find_spec("ray") is None:
        raise ClipxaiError("--executor ray needs Ray (pip install 'clipxai[sweep]').")
    from clipxai.sweep.executor_ray import RayExecutor  # noqa: PLC0415
    return RayExecutor(address, spec.resources, spec.retries, str(folder.resolve()))


def _finished(spec: SweepSpec, rows, folder: Path) -> bool:
    """Whether this very spec has already finished in ``folder``: sweep.json holds it, and every run's
    folder is complete (and analysed where the spec asks). Read from the files alone, so a rerun of a
    finished sweep returns at once, without the checks that load torch."""
    try:
        recorded = read_sweep(folder)
    except ClipxaiError:
        return False
    if recorded.get("spec") != spec.to_dict():
        return False
    for row in rows:
        path = folder / RUNS / row.folder
        if folder_state(path) != COMPLETE or (spec.analyze is not None and not has_summary(path)):
            return False
    return True


def run_sweep(spec_path: str | Path, out: str | Path = "runs", executor: str = "local", address: str | None = None,
              retries: int | None = None, stream=None, max_rows: int | None = None) -> SweepOutcome:
    """Run (or continue) the sweep a spec describes, in ``<out>/<name>``; see docs/sweeps.md."""
    stream = stream or sys.stderr
    spec = load_spec(spec_path)
    if retries is not None:
        if retries < 0:
            raise ClipxaiError(f"--retries must be 0 or more (got {retries}).")
        spec.retries = retries
    rows = expand(spec, max_rows)
    folder = Path(out).expanduser() / spec.name
    runner = make_executor(executor, address, spec, folder)
    if _finished(spec, rows, folder):
        print(f"sweep {spec.name}: {len(rows)} runs, {len(rows)} complete, 0 units to do; sweep.json in {folder}",
              file=stream, flush=True)
        return SweepOutcome(folder, EXIT_OK, {"complete": len(rows)}, 0)
    configs = validate(spec, rows)
    steps = {row.folder: configs[canonical(row.options)].optim.steps for row in rows}
    with SweepLock(folder):
        state = SweepState(folder, spec, rows)
        kinds = state.reconcile()
        units = plan(rows, kinds, spec.max_batch, steps)
        state.save(runner.name)
        complete = sum(rec["status"] == "complete" for rec in state.records.values())
        progress = SweepProgress(units, len(rows), complete, stream)
        progress.say(f"sweep {spec.name}: {len(rows)} runs, {complete} complete, {len(units)} unit"
                     f"{'s' if len(units) != 1 else ''} to do on {runner.name}; folder {folder}")

        def started(unit: Unit) -> None:
            state.started(unit)
            state.save(runner.name)

        def finished(unit: Unit, results: list[dict]) -> None:
            state.finished(unit, results)
            state.save(runner.name)
            progress.finished(unit, results)

        interrupted = False
        try:
            if units:  # nothing to do starts nothing (no Ray either)
                runner.run(units, lambda u: payload(u.rows, state.runs_dir, state.attempts_dir, spec.analyze),
                           started, finished)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            state.stopped()
            state.save(runner.name)
    problems = state.problems()
    counts = state.counts()
    table = failure_table(problems, spec.retries)
    if table:
        progress.say(table)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    progress.say(f"sweep {spec.name}: {summary}; sweep.json in {folder}")
    if interrupted:
        progress.say("interrupted; run the same command again to continue")
        code = EXIT_INTERRUPTED
    elif problems or counts.get("complete", 0) != len(rows):
        code = EXIT_FAILED
    else:
        code = EXIT_OK
    return SweepOutcome(folder, code, counts, len(problems))
