"""Keeping every file a run names inside that run's folder.

A run folder may come from someone else. Its run.json, its analysis/summary.json and the
folders of the original script's layout name files by relative path, and any of those
files may be a symbolic link; followed blindly, ``../../secret.env`` or a link to
``~/.ssh`` would be read (and copied into a report) or written. ``inside`` resolves such
a path, links included, and refuses it unless it stays within the folder it belongs to.
"""

from __future__ import annotations

import os
from pathlib import Path

from clipxai.errors import ClipxaiError, RunError


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError) as err:  # a link loop, a NUL byte
        raise RunError(f"The path {path} cannot be resolved ({type(err).__name__}).") from None


def _as_given(root: Path, path) -> Path:
    """The file ``path`` means: a ``Path`` the code holds is taken as given, a name is relative to ``root``.

    Code holds paths built from the run's own (``runs/x/final.png``, often relative to the
    working directory); files in a run name things relative to it (``snapshots/steps.npy``).
    Joining ``root`` onto a path that already starts with it would point into a folder that
    does not exist, whose links nobody checks, so such a path is never joined twice.
    """
    given = Path(path)
    if given.is_absolute() or (isinstance(path, os.PathLike) and given.parts[:len(root.parts)] == root.parts):
        return given
    return root / given


def is_inside(root: str | Path, path: str | Path) -> bool:
    """Whether ``path`` (a path as given, or a name relative to ``root``), links resolved, lies within ``root``."""
    root = Path(root)
    try:
        target = _as_given(root, path).resolve()
        return target == root.resolve() or target.is_relative_to(root.resolve())
    except (OSError, RuntimeError, ValueError):
        return False


def inside(root: str | Path, relative, what: str = "file") -> Path:
    """``root / relative`` with links resolved; ``RunError`` when it leads outside ``root``.

    ``relative`` comes from a file in ``root`` (a manifest entry, a figure name), so anything
    that is not a plain relative path string is refused too. ``what`` names it in the message.
    """
    root = Path(root)
    if not isinstance(relative, (str, os.PathLike)) or not str(relative).strip():
        raise RunError(f"{root} names a {what} by {relative!r}, which is not a file path.")
    target = _resolved(_as_given(root, relative))
    base = _resolved(root)
    if target != base and not target.is_relative_to(base):
        raise RunError(f"{root} names the {what} '{relative}', which leads outside that folder "
                       f"(to {target}); it is not followed.")
    return target


def escaping_links(root: str | Path, folder: str | Path) -> list[Path]:
    """Symbolic links under ``folder`` (itself included) whose targets lie outside ``root``."""
    root, folder = Path(root), Path(folder)
    found = []
    if folder.is_symlink() and not is_inside(root, folder):
        return [folder]
    if not folder.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if p.is_symlink() and not is_inside(root, p):
                found.append(p)
    return found


def check_writable_inside(root: str | Path, folder: str | Path) -> None:
    """Refuse to write into ``folder`` when it, or anything in it, links outside ``root``.

    Writing a figure or a CSV through such a link would overwrite a file elsewhere.
    """
    links = escaping_links(root, folder)
    if links:
        raise RunError(f"{links[0]} is a link to {_resolved(links[0])}, outside {root}; remove it "
                       f"before writing there (nothing was written).")


def check_can_write(folder: str | Path, what: str) -> None:
    """Refuse, before any work, a folder that does not exist and cannot be made, or is not writable.

    Nothing is created: the nearest existing ancestor must be a writable folder. ``what``
    (e.g. "report") names the output in the message.
    """
    folder = Path(folder).expanduser()
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise ClipxaiError(f"The {what} cannot be written in {folder}: {probe} is not a folder.")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ClipxaiError(f"The {what} cannot be written in {folder}: {probe} is not writable.")
