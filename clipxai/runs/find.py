"""Finding the runs at or under a folder: the one walk that ``load_run``, ``clipxai runs`` and the
viewer share, so the three always list the same runs.

A run is a folder holding run.json. The walk goes at most ``max_depth`` folders down (the
seeds of a group, a sweep's rows, a sweep of sweeps), never into a run's own subfolders,
never into hidden folders, and follows a link only while it leads to a folder inside the
root; a run reached both by a link and directly is listed once, by its direct path.
"""

from __future__ import annotations

import os
from pathlib import Path

from clipxai.runs.format import RUN_FILE

MAX_DEPTH = 4            # DIR/sweep/group/run, and one more: deep enough for sweeps of sweeps
MAX_RUNS = 100_000       # a walk stops once it has found this many (a 1,000-run sweep is 1% of it)
SKIP_DIRS = {"__pycache__", "node_modules"}   # folders of code, never of runs


def is_run(path: Path) -> bool:
    """Whether ``path`` is a run folder (it holds a run.json file)."""
    try:
        return (Path(path) / RUN_FILE).is_file()
    except OSError:
        return False


def find_runs(root: str | Path, max_depth: int = MAX_DEPTH, limit: int = MAX_RUNS,
              walked: list | None = None, as_str: bool = False) -> list[Path] | list[str]:
    """The run folders at or under ``root``, in path order: ``[root]`` when it is a run itself
    (as strings with ``as_str``: 10,000 ``Path`` objects cost a listing more than its walk).

    Paths are ``root`` joined with the names walked (links are not resolved in them), so they
    read as the folder the user gave. ``walked`` collects the folders listed (those that are not
    runs): while none of them changes, nor any run's run.json goes, the walk finds the same runs.
    """
    root = Path(root)
    if is_run(root):
        return [str(root)] if as_str else [root]
    try:
        top = str(root.resolve())
    except (OSError, RuntimeError):
        return []
    found: list[tuple[str, str, bool]] = []   # (path, real path, reached through a link)

    # Paths are strings until the end: a walk of 10,000 runs makes 10,000 of them, and a Path each
    # would cost more than the walk's system calls.
    def walk(folder: str, real: str, depth: int, linked: bool, above: frozenset) -> None:
        if len(found) >= limit:
            return
        if walked is not None:
            walked.append(folder)
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith(".") or entry.name in SKIP_DIRS:
                continue
            child = _child(entry, real, top)
            if child is None or child in above:   # a link back to a folder being walked: a loop
                continue
            link = linked or entry.is_symlink()
            if os.path.isfile(os.path.join(entry.path, RUN_FILE)):
                found.append((entry.path, child, link))
                if len(found) >= limit:
                    return
            elif depth < max_depth:
                walk(entry.path, child, depth + 1, link, above | {child})

    walk(str(root), top, 1, False, frozenset({top}))
    once = _once(found)
    return once if as_str else [Path(p) for p in once]


def _child(entry: os.DirEntry, parent_real: str, top: str) -> str | None:
    """The real path of a folder entry worth walking into, or None (a file, a link that leaves the root)."""
    try:
        if not entry.is_symlink():
            return os.path.join(parent_real, entry.name) if entry.is_dir(follow_symlinks=False) else None
        real = os.path.realpath(entry.path)
    except (OSError, ValueError):
        return None
    if not os.path.isdir(real) or not (real == top or real.startswith(top.rstrip(os.sep) + os.sep)):
        return None
    return real


def _once(found: list[tuple[str, str, bool]]) -> list[str]:
    """Each run once, in walk order: by its direct path when it has one, else by the first link to it."""
    chosen: dict[str, tuple[str, bool]] = {}
    for path, real, linked in found:
        if real not in chosen or (chosen[real][1] and not linked):
            chosen[real] = (path, linked)
    keep = {path for path, _ in chosen.values()}
    return [path for path, _, _ in found if path in keep]
