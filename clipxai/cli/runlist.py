"""``clipxai runs [DIR]``: a table of the runs in a folder, read from their run.json only.

Fast on purpose: nothing but each run's run.json (and, when it was analyzed, its
analysis/summary.json for the verdict) is read, and neither torch nor the analysis is
imported, so listing a folder of hundreds of runs takes a fraction of a second.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path

import click

from clipxai.errors import ClipxaiError
from clipxai.util.words import verdict_label

MAX_DEPTH = 3            # runs/<group>/<run>: deep enough for seeds grouped in a folder
COLUMNS = ("name", "status", "prompt", "model", "steps", "snapshots", "verdict", "age")


def find_runs(folder: str | Path, max_depth: int = MAX_DEPTH) -> list[Path]:
    """Run folders (holding a run.json) at or under ``folder``, in name order; a run's own
    subfolders are not searched."""
    root = Path(folder)
    if (root / "run.json").is_file():
        return [root]
    found: list[Path] = []

    def walk(path: Path, depth: int) -> None:
        try:
            children = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            return
        for child in children:
            if (child / "run.json").is_file():
                found.append(child)
            elif depth < max_depth:
                walk(child, depth + 1)

    walk(root, 1)
    return found


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{max(seconds, 0):.0f} s"


def _when(manifest: dict, path: Path) -> float:
    for key in ("updated", "created"):
        text = manifest.get(key)
        if isinstance(text, str):
            try:
                return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
            except ValueError:
                pass
    try:
        return (path / "run.json").stat().st_mtime
    except OSError:
        return 0.0


def _status(manifest: dict, path: Path) -> str:
    status = str(manifest.get("status", "unknown"))
    if status == "running":
        from clipxai.runs.writer import (  # noqa: PLC0415  (a run marked running that no process holds was killed)
            is_locked,
        )
        return "running" if is_locked(path) else "killed"
    return status


def _verdict(path: Path) -> str:
    summary = _read_json(path / "analysis" / "summary.json")
    if not summary or "verdict" not in summary:
        return ""
    words = verdict_label(summary["verdict"], summary.get("n_states"))
    dynamics = summary.get("dynamics") or {}
    if dynamics.get("cycling"):
        words += f"; cycling every ~{dynamics.get('mean_spacing_steps') or 0:.0f} steps"
    return words


def describe_run(path: Path, now: float | None = None) -> dict:
    """One row of the table, from the run's run.json (and summary.json when analyzed)."""
    now = time.time() if now is None else now
    manifest = _read_json(path / "run.json")
    if manifest is None:
        return {"name": path.name, "path": str(path), "status": "unreadable run.json", "prompt": "", "model": "",
                "steps": "", "snapshots": "", "verdict": "", "age": "", "time": 0.0}
    model = manifest.get("model")
    model = (model.get("name") if isinstance(model, dict) else model) or (manifest.get("config") or {}).get("model")
    done, total = manifest.get("steps_done"), manifest.get("steps_total")
    when = _when(manifest, path)
    return {
        "name": path.name, "path": str(path), "status": _status(manifest, path),
        "prompt": str(manifest.get("prompt") or ""), "model": str(model or ""),
        "steps": f"{done}/{total}" if total is not None else str(done if done is not None else ""),
        "snapshots": str(manifest.get("n_snapshots", "")), "verdict": _verdict(path),
        "age": _age(now - when) if when else "", "time": when,
    }


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def table(rows: list[dict]) -> str:
    """The rows as aligned text columns (long prompts and verdicts shortened)."""
    limits = {"name": 40, "prompt": 30, "model": 24, "verdict": 40}
    cells = [list(COLUMNS)] + [[_cut(r[c], limits.get(c, 30)) for c in COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


@click.command("runs", context_settings={"show_default": True})
@click.argument("folder", default="runs", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON instead of a table.")
def runs_command(folder, as_json):
    """List the runs in FOLDER (default: ./runs) and its subfolders: name, status, prompt, model, steps,
    snapshots, verdict if analyzed, age; oldest first, so the newest is nearest the prompt."""
    if not folder.exists():
        raise ClipxaiError(f"{folder} does not exist; give the folder your runs are in (clipxai ascend writes "
                           f"them to ./runs).")
    if not folder.is_dir():
        raise ClipxaiError(f"{folder} is not a folder; give the folder your runs are in.")
    now = time.time()
    rows = sorted((describe_run(p, now) for p in find_runs(folder)), key=lambda r: (r["time"], r["name"]))
    if as_json:
        click.echo(json.dumps([{k: v for k, v in r.items() if k != "time"} for r in rows], indent=2,
                              ensure_ascii=False))
        return
    if not rows:
        click.echo(f"No runs in {folder} (a run is a folder holding run.json).")
        return
    click.echo(table(rows))
    n = len(rows)
    click.echo(f"{n} run{'s' if n != 1 else ''} in {folder}{os.sep}; look at one with: clipxai report "
               f"{rows[-1]['path']} --open", err=True)
