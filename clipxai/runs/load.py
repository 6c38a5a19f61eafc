"""Opening run folders by path: one run, a folder of runs, or the original script's layout."""

from __future__ import annotations

from pathlib import Path

from clipxai.errors import RunError
from clipxai.runs.find import find_runs
from clipxai.runs.format import RUN_FILE, missing_field
from clipxai.runs.legacy import is_legacy_run, load_legacy_run
from clipxai.runs.reader import Run, read_manifest


def load_run(path: str | Path) -> Run | list[Run]:
    """Open a run folder (native, or the original script's legacy layout).

    A folder that holds runs rather than being one (the seeds of a ``--seeds K`` group, a
    sweep, folders of those) gives the list of them, in path order: the runs ``clipxai runs``
    lists for that folder (``clipxai.runs.find``).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise RunError(f"{path} does not exist.")
    if not path.is_dir():
        raise RunError(f"{path} is not a folder.")
    if (path / RUN_FILE).exists():
        return _native(path)
    children = find_runs(path)
    if children:
        return [_native(p) for p in children]
    if is_legacy_run(path):
        return load_legacy_run(path)
    raise RunError(f"{path} is not a clipxai run (no {RUN_FILE}) nor a folder of the original script's layout.")


def _native(path: Path) -> Run:
    """A native run folder, refused in one sentence when its manifest lacks what every run.json holds."""
    manifest = read_manifest(path)
    problem = missing_field(manifest)
    if problem:
        raise RunError(f"The manifest {path / RUN_FILE} is corrupt: {problem}.")
    return Run(path=path, manifest=manifest)


def open_run(path: str | Path) -> Run:
    """Exactly one run: ``load_run``, refusing a folder that holds several."""
    found = load_run(path)
    if isinstance(found, list):
        names = ", ".join(r.path.name for r in found[:3]) + (", ..." if len(found) > 3 else "")
        raise RunError(f"{path} holds {len(found)} runs ({names}), not one; name one of them.")
    return found


def load_runs(paths) -> list[Run]:
    """Every run named: run folders as they are, folders of runs expanded into their runs."""
    out: list[Run] = []
    for path in paths:
        found = load_run(path)
        out.extend(found if isinstance(found, list) else [found])
    return out
