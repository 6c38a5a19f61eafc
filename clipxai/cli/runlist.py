"""``clipxai runs [DIR]``: a table of the runs in a folder, read from their run.json only.

Fast on purpose: nothing but each run's run.json (and, when it was analyzed, its
analysis/summary.json for the verdict) is read, neither torch, numpy nor the analysis is
imported, and a row whose files have not changed since the last listing comes from
``clipxai.runs.rowcache`` (two ``stat`` calls instead of two JSON files), so listing a folder of
10,000 runs takes about a second the first time and half that after. The runs are those ``load_run``
opens for the same folder (``clipxai.runs.find``). Each name is a path that pastes into
``clipxai analyze``; a run whose run.json is damaged is listed as corrupt, with why, among
the others; the line under the table says what to do next with the newest run, and only
what works for it.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from datetime import datetime
from pathlib import Path

import click

from clipxai import __version__
from clipxai.errors import ClipxaiError
from clipxai.runs import format as format_module
from clipxai.runs import rowcache as rowcache_module
from clipxai.runs import summary as summary_module
from clipxai.runs.find import MAX_DEPTH, find_runs  # noqa: F401  (find_runs lived here once)
from clipxai.runs.format import (
    ANALYSIS_DIR,
    CHECKPOINT_FILE,
    MIN_SNAPSHOTS,
    RUN_FILE,
    SUMMARY_FILE,
    manifest_problem,
    model_label,
)
from clipxai.runs.rowcache import RowCache, code_stamp, stamp
from clipxai.runs.summary import Summary, read_summary
from clipxai.util import words as words_module
from clipxai.util.words import verdict_phrase

COLUMNS = ("name", "status", "prompt", "model", "steps", "snapshots", "verdict", "age")
CORRUPT = "corrupt"


def read_run_json(path: str | Path) -> tuple[dict | None, str | None]:
    """A run folder's manifest and None, or None and why it cannot be read (never an exception)."""
    try:
        with open(os.path.join(path, RUN_FILE), encoding="utf-8") as f:
            text = f.read()
    except OSError as err:
        return None, f"{RUN_FILE} cannot be read ({err.strerror or type(err).__name__})"
    except UnicodeDecodeError:
        return None, f"{RUN_FILE} is not UTF-8 text"
    try:
        manifest = json.loads(text)
    except RecursionError:
        return None, f"{RUN_FILE} is nested too deeply to be a manifest"
    except ValueError as err:
        return None, f"{RUN_FILE} is not JSON ({err})"
    problem = manifest_problem(manifest)
    return (None, f"{RUN_FILE}: {problem}") if problem else (manifest, None)


def pasteable(path: Path, cwd: Path | None = None) -> str:
    """``path`` as it can be typed after ``clipxai analyze``: relative to the current folder when it
    lies under it, else absolute."""
    full = os.path.abspath(path)
    here = os.path.abspath(os.getcwd() if cwd is None else cwd)
    if full == here:
        return "."
    prefix = here.rstrip(os.sep) + os.sep
    return full[len(prefix):] if full.startswith(prefix) else full


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{max(seconds, 0):.0f} s"


def _when(manifest: dict, path: str) -> float:
    for key in ("updated", "created"):
        text = manifest.get(key)
        if isinstance(text, str):
            try:
                return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
            except ValueError:
                pass
    try:
        return os.stat(os.path.join(path, RUN_FILE)).st_mtime
    except (OSError, ValueError):
        return 0.0


def _status(status: str, path: str) -> str:
    if status == "running":
        from clipxai.runs.writer import (  # noqa: PLC0415  (a run marked running that no process holds was killed)
            is_locked,
        )
        return "running" if is_locked(Path(path)) else "killed"
    return status


def _verdict(path: str) -> str:
    """The run's verdict in the words every view uses, with the cycling note (``verdict_phrase``)."""
    summary = Summary.of(read_summary(path))
    return verdict_phrase(summary.data) if summary.verdict is not None else ""


def next_step(row: dict, path: str | Path) -> tuple[str | None, str]:
    """The command worth running next on a listed run, and the sentence that offers it.

    ``report`` only for a run with enough snapshots to analyze; an interrupted or killed run
    with a checkpoint is offered ``ascend --resume``; a run that can do neither is said to be so.
    """
    shown = shlex.quote(row["path"])
    if row["status"] == CORRUPT:
        return None, f"{row['path']} is corrupt ({row['problem']}); clipxai can neither analyze nor resume it"
    n, needed = row["n"], MIN_SNAPSHOTS
    resumable = row["status"] in ("interrupted", "killed") and os.path.isfile(os.path.join(path, CHECKPOINT_FILE))
    resume = f"clipxai ascend --resume {shown}"
    if n >= needed:
        command = f"clipxai report {shown} --open"
        return command, f"look at one with: {command}" + (f" (or continue it: {resume})" if resumable else "")
    too_few = f"{row['path']} has {n} snapshot(s), too few to analyze (the analysis needs at least {needed})"
    if resumable:
        return resume, f"{too_few}; continue it with: {resume}"
    if row["status"] == "running":
        return None, f"{too_few} yet; it is still running"
    return None, too_few


def read_row(path: str, analysed: bool = True) -> dict:
    """What a row shows that comes from the run's files alone (run.json, and summary.json unless
    ``analysed`` is False): the part ``RowCache`` may keep. ``status`` is as recorded (or corrupt)."""
    manifest, problem = read_run_json(path)
    if manifest is None:
        return {"name": os.path.basename(path), "status": CORRUPT, "problem": problem, "prompt": "", "model": "",
                "steps": "", "snapshots": "", "verdict": "", "time": _when({}, path), "n": 0}
    done, total = manifest.get("steps_done"), manifest.get("steps_total")
    return {
        "name": os.path.basename(path), "status": str(manifest.get("status", "unknown")),
        "prompt": str(manifest.get("prompt") or ""), "model": model_label(manifest),
        "steps": f"{done}/{total}" if total is not None else str(done if done is not None else ""),
        "snapshots": str(manifest.get("n_snapshots", "")), "verdict": _verdict(path) if analysed else "",
        "time": _when(manifest, path), "n": manifest.get("n_snapshots", 0),
    }


def describe_run(path: str | Path, now: float | None = None, cwd: Path | None = None, row: dict | None = None) -> dict:
    """One row of the table: ``row`` (``read_row``'s part, read now when not given), with what
    changes without the files changing: the path as typed from here, the age, whether a run
    marked running is still held."""
    now = time.time() if now is None else now
    path = os.fspath(path)
    row = read_row(path) if row is None else row
    when = row["time"]
    out = {"name": row["name"], "path": pasteable(path, cwd), "status": _status(row["status"], path)}
    if row["status"] == CORRUPT:
        out["problem"] = row["problem"]
    out.update({k: row[k] for k in ("prompt", "model", "steps", "snapshots", "verdict")})
    out.update({"age": _age(now - when) if when else "", "time": when, "n": row["n"]})
    return out


def list_runs(folder: Path, now: float, cwd: Path, cache: bool = True) -> list[tuple[dict, str]]:
    """Each run at or under ``folder`` as ``(row, path)``, oldest first; rows whose files are unchanged
    since the last listing come from ``RowCache`` (``cache=False``: every file is read)."""
    code = code_stamp(__version__, [__file__, format_module.__file__, summary_module.__file__,
                                    words_module.__file__, rowcache_module.__file__])
    rows = RowCache(os.fspath(folder), code) if cache else None
    listed = []
    for path in find_runs(folder, as_str=True):
        stamps = [stamp(os.path.join(path, RUN_FILE)), stamp(os.path.join(path, ANALYSIS_DIR, SUMMARY_FILE))]
        row = rows.get(path, stamps) if rows is not None else None
        if row is None:
            row = read_row(path, analysed=stamps[1] is not None)
            if rows is not None:
                rows.put(path, stamps, row)
        listed.append((describe_run(path, now, cwd, row), path))
    if rows is not None:
        rows.save()
    return sorted(listed, key=lambda rp: (rp[0]["time"], rp[0]["name"]))


def _cut(text: str, width: int | None) -> str:
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def table(rows: list[dict]) -> str:
    """The rows as aligned text columns (long prompts and verdicts shortened; names never, so they paste)."""
    limits = {"name": None, "prompt": 30, "model": 40, "verdict": 100}   # room for the cycling note
    shown = [{**r, "name": shlex.quote(r["path"])} for r in rows]
    cells = [list(COLUMNS)] + [[_cut(r[c], limits.get(c, 30)) for c in COLUMNS] for r in shown]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


@click.command("runs", context_settings={"show_default": True})
@click.argument("folder", default="runs", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON instead of a table.")
def runs_command(folder, as_json):
    """List the runs in FOLDER (default: ./runs) and its subfolders: name (a path to paste into other
    commands), status, prompt, model, steps, snapshots, verdict if analyzed, age; oldest first, so the
    newest is nearest the prompt. A run whose run.json is damaged is listed as corrupt, with why. The rows
    of runs whose files have not changed since the last listing are kept in $CLIPXAI_CACHE/runs."""
    if not folder.exists():
        raise ClipxaiError(f"{folder} does not exist; give the folder your runs are in (clipxai ascend writes "
                           f"them to ./runs).")
    if not folder.is_dir():
        raise ClipxaiError(f"{folder} is not a folder; give the folder your runs are in.")
    now, cwd = time.time(), Path.cwd()
    listed = list_runs(folder, now, cwd)
    rows = [r for r, _ in listed]
    if as_json:
        out = [{**{k: v for k, v in r.items() if k not in ("time", "n")}, "next": next_step(r, p)[0]} for r, p in listed]
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo(f"No runs in {folder} (a run is a folder holding {RUN_FILE}).")
        return
    click.echo(table(rows))
    for r in rows:
        if r["status"] == CORRUPT:
            click.echo(f"corrupt: {r['path']}: {r['problem']}", err=True)
    n = len(rows)
    _, advice = next_step(*listed[-1])
    click.echo(f"{n} run{'s' if n != 1 else ''} in {folder}{os.sep}; {advice}", err=True)
