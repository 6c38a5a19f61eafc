"""Mapping a name from a URL to a path inside the served folder, or to nothing.

Every file and run the viewer serves goes through ``inside``: the name is joined to the
root, resolved (symlinks followed), and kept only if the result is still inside the root.
So ``..``, its encoded forms (the server decodes them before we see them), absolute paths
and symlinks that point elsewhere all end the same way: not found.
"""

from __future__ import annotations

from pathlib import Path


def inside(root: Path, name: str) -> Path | None:
    """``root / name`` resolved, or None when it would leave ``root`` (or ``name`` is not a relative path)."""
    if not name or "\x00" in name or "\\" in name or name.startswith("/") or len(name) > 4096:
        return None
    parts = name.split("/")
    if any(p in ("..",) for p in parts):
        return None
    try:
        target = (root / name).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    return target if target == root or target.is_relative_to(root) else None


def relative_id(root: Path, folder: Path) -> str:
    """The name a folder under ``root`` has in URLs (``.`` for the root itself)."""
    rel = folder.relative_to(root).as_posix()
    return rel or "."
