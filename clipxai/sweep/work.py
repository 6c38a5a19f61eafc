"""One unit of a sweep, wherever it runs: bring each of its rows to a complete (analyzed) run.

``execute_unit`` is what the local executor calls in-process and what a Ray task runs on a
worker. It takes and returns plain data, and it looks at the folders itself before doing
anything, so running it again (a rerun, or Ray retrying a task whose worker died) picks
up where the last try stopped: complete runs are left alone, runs with a checkpoint resume,
and anything else is moved aside (never deleted) and started again. A failing run never
raises: its result carries the one-sentence reason.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from clipxai.errors import ClipxaiError
from clipxai.sweep.plan import ABSENT, BUSY, COMPLETE, RESUMABLE, consecutive, folder_state, has_summary
from clipxai.sweep.spec import Row

_MODELS: dict = {}   # (model spec, device) -> ClipModel, kept for the next units in this process
KEEP_MODELS = 2      # distinct models kept loaded (a grid over two models does not reload on every unit)


def _model(name: str, device: str):
    from clipxai.models.load import load_clip  # noqa: PLC0415

    key = (name, device)
    if key in _MODELS:
        _MODELS[key] = _MODELS.pop(key)          # most recently used last
    else:
        while len(_MODELS) >= KEEP_MODELS:
            _MODELS.pop(next(iter(_MODELS)))
        _MODELS[key] = load_clip(name, device)
    return _MODELS[key]


def models_for(model, device: str):
    """The loaded model(s) a config's ``model`` names (one, or an ensemble's list), for ``model_obj``."""
    from clipxai.ascent.config import model_specs  # noqa: PLC0415

    loaded = [_model(spec, device) for spec, _ in model_specs(model)]
    return loaded[0] if len(loaded) == 1 else loaded


def sentence(err: BaseException) -> str:
    """A failure as one line a table can show."""
    name = type(err).__name__
    text = str(err).strip()
    if isinstance(err, ClipxaiError):
        line = text
    elif name == "OutOfMemoryError" or "out of memory" in text.lower():
        line = (f"The device ran out of memory ({text.splitlines()[0][:160] if text else name}); "
                f"fewer seeds per run (max_batch) or fewer cutouts need less.")
    else:
        line = f"{name}: {text}" if text else name
    line = " ".join(line.split())
    return line if len(line) <= 400 else line[:397] + "..."


def _move_aside(path: Path, attempts_dir: Path) -> str | None:
    """Keep what a broken or failed folder holds, out of the way of a fresh start; the reason when it cannot."""
    try:
        attempts_dir.mkdir(parents=True, exist_ok=True)
        n = 1
        while (attempts_dir / f"{path.name}.{n}").exists():
            n += 1
        os.replace(path, attempts_dir / f"{path.name}.{n}")
    except OSError as err:
        return (f"{path} holds an earlier try that cannot be moved aside into {attempts_dir} "
                f"({err.strerror or type(err).__name__}); it was left as it is and the run not started.")
    return None


def _result(row: Row, status: str, seconds: float = 0.0, error: str | None = None, ran: bool = True) -> dict:
    return {"folder": row.folder, "status": status, "error": error, "seconds": round(seconds, 3), "ran": ran,
            "analysis": None, "analysis_error": None}


def _fresh(rows: list[Row], runs_dir: Path) -> list[dict]:
    """One batched ascent of consecutive seeds; every row gets the outcome of its own folder."""
    from clipxai.ascent.config import resolve_config  # noqa: PLC0415
    from clipxai.ascent.run import ascend  # noqa: PLC0415

    first = rows[0]
    name = first.base if len(rows) > 1 else first.folder
    t0 = time.perf_counter()
    try:
        cfg = resolve_config(first.prompt, first.options)
        model = models_for(cfg.model, cfg.device)
        runs = ascend(first.prompt, seed=first.seed, seeds=len(rows), name=name, out=str(runs_dir), quiet=True,
                      model_obj=model, **first.options)
    except Exception as err:  # noqa: BLE001  (any failure is this unit's, reported, never the sweep's)
        return [_result(r, "failed", time.perf_counter() - t0, sentence(err)) for r in rows]
    seconds = time.perf_counter() - t0
    by_folder = {run.path.name: run for run in runs}
    out = []
    for row in rows:
        run = by_folder.get(row.folder)
        if run is None:
            out.append(_result(row, "failed", seconds, f"The run made no folder named {row.folder}."))
        else:
            out.append(_result(row, run.status, seconds, run.manifest.get("error")))
    return out


def _resume(row: Row, path: Path) -> dict:
    from clipxai.ascent.run import ascend  # noqa: PLC0415
    from clipxai.runs.reader import read_manifest  # noqa: PLC0415

    t0 = time.perf_counter()
    try:
        config = read_manifest(path).get("config") or {}
        model = models_for(config.get("model"), config.get("device", "auto"))
        runs = ascend(resume=path, quiet=True, model_obj=model)
    except Exception as err:  # noqa: BLE001
        return _result(row, "failed", time.perf_counter() - t0, sentence(err))
    return _result(row, runs[0].status, time.perf_counter() - t0, runs[0].manifest.get("error"))


def model_for_analysis(run, opts):
    """The run's CLIP, already loaded, for its word labels (None: the analysis loads what it needs).

    Only a single-model run gets one: an ensemble's analysis chooses its own embedding model.
    """
    name = run.config.get("model")
    if opts.model is not None or not isinstance(name, str) or not name:
        return None
    try:
        return _model(name, run.config.get("device", "auto"))
    except ClipxaiError:
        return None


def _analyze(result: dict, path: Path, options: dict) -> None:
    """Analyze a complete run that has no summary yet (``[analyze]`` options); errors go into ``result``."""
    from clipxai.analysis.analyze import analyze  # noqa: PLC0415
    from clipxai.runs.load import open_run  # noqa: PLC0415
    from clipxai.runs.summary import read_summary  # noqa: PLC0415
    from clipxai.sweep.validate import analyze_options  # noqa: PLC0415

    try:
        run = open_run(path)
        if read_summary(run) is None:
            opts = analyze_options(options)
            analyze(run, opts, model=model_for_analysis(run, opts)).write()
        result["analysis"] = "complete"
    except Exception as err:  # noqa: BLE001
        result["analysis"] = "failed"
        result["analysis_error"] = sentence(err)


def execute_unit(payload: dict) -> list[dict]:
    """Run (or resume, or analyze) the rows of one unit; one result per row, in order.

    ``payload``: ``rows`` (Row fields), ``runs_dir`` and ``attempts_dir`` (absolute),
    ``analyze`` (the ``[analyze]`` table or None) and ``cwd`` (relative paths in options,
    such as term files, are read from there, as on the command line).
    """
    cwd = payload.get("cwd")
    if cwd and os.path.isdir(cwd) and os.getcwd() != cwd:
        os.chdir(cwd)
    runs_dir, attempts_dir = Path(payload["runs_dir"]), Path(payload["attempts_dir"])
    rows = [Row(**r) for r in payload["rows"]]
    results: dict[str, dict] = {}
    fresh = []
    for row in rows:
        path = runs_dir / row.folder
        state = folder_state(path)
        if state == COMPLETE:
            results[row.folder] = _result(row, "complete", ran=False)
        elif state == BUSY:
            results[row.folder] = _result(row, "failed", error=f"{path} is being written by another process; "
                                                                 f"it was left alone.", ran=False)
        elif state == RESUMABLE:
            results[row.folder] = _resume(row, path)
        elif state != ABSENT and (error := _move_aside(path, attempts_dir)):
            results[row.folder] = _result(row, "failed", error=error, ran=False)
        else:
            fresh.append(row)
    for chunk in consecutive(fresh, len(fresh) or 1):
        for result in _fresh(chunk, runs_dir):
            results[result["folder"]] = result
    if payload.get("analyze") is not None:
        for row in rows:
            result = results[row.folder]
            if result["status"] == "complete":
                path = runs_dir / row.folder
                if has_summary(path) and not result["ran"]:
                    result["analysis"] = "complete"
                else:
                    _analyze(result, path, payload["analyze"])
    return [results[row.folder] for row in rows]


def payload(rows: list[Row], runs_dir: Path, attempts_dir: Path, analyze: dict | None) -> dict:
    """What ``execute_unit`` needs, as plain data (it travels to Ray workers)."""
    fields = ("index", "values", "prompt", "seed", "options", "base")
    return {"rows": [{f: getattr(r, f) for f in fields} for r in rows], "runs_dir": str(runs_dir.resolve()),
            "attempts_dir": str(attempts_dir.resolve()), "analyze": analyze, "cwd": os.getcwd()}
