"""A cache of the rows ``clipxai runs`` shows, so listing a folder of 10,000 runs again reads 10,000
``stat`` results and one file instead of 15,000 JSON files.

A row is kept with the stamps ``(mtime_ns, size, inode, ctime_ns)`` of the files it was read from
(run.json, and summary.json or its absence) and is used only while both stamps are unchanged
(the ctime also moves when a file's permissions do, so a run.json that could not be read and now
can is read again): every writer
replaces these files by renaming a new one into place (``clipxai.util.files``), which gives a new
inode, and a file changed within ``RACY_NS`` of the listing is not kept at all, so a rewrite inside
one tick of a coarse clock cannot leave a stale row behind. The cache also records the clipxai
version and the stamps of the code that makes a row; when any differs, nothing in it is used. It
lives in ``$CLIPXAI_CACHE/runs`` (default ``~/.cache/clipxai/runs``), one file per listed folder;
it is only ever a shortcut: a cache that cannot be read or written is ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time

CACHE_FORMAT = 1
RACY_NS = 2_000_000_000     # a file changed this recently (or later) is read again next time
MAX_FILES = 64              # cached folders kept; the least recently listed go first


def cache_dir() -> str:
    """``$CLIPXAI_CACHE/runs``, or ``~/.cache/clipxai/runs``."""
    root = os.environ.get("CLIPXAI_CACHE")
    base = os.path.expanduser(root) if root else os.path.join(os.path.expanduser("~"), ".cache", "clipxai")
    return os.path.join(base, "runs")


def stamp(path: str) -> list | None:
    """``[mtime_ns, size, inode, ctime_ns]`` of a file, or None when there is none."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return [st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns]


def code_stamp(version: str, files: list[str]) -> list:
    """What the cached rows were made by: the cache's format, clipxai's version, its code files' stamps."""
    return [CACHE_FORMAT, version, *(stamp(f) for f in files)]


class RowCache:
    """The cached rows of one listed folder: ``get`` a row by its folder and stamps, ``put`` a fresh
    one, ``save`` what this listing saw (and only that)."""

    def __init__(self, folder: str, code: list, directory: str | None = None):
        real = os.path.realpath(folder)
        self.file = os.path.join(directory or cache_dir(), hashlib.sha1(real.encode("utf-8", "surrogatepass"))
                                 .hexdigest()[:20] + ".json")
        self.header = {"folder": real, "code": code}
        self.started_ns = time.time_ns()
        self.old = self._read()
        self.seen: dict[str, list] = {}
        self.changed = False

    def _read(self) -> dict:
        try:
            with open(self.file, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError, RecursionError):
            return {}
        if not isinstance(data, dict) or any(data.get(k) != v for k, v in self.header.items()):
            return {}
        rows = data.get("rows")
        return rows if isinstance(rows, dict) else {}

    def get(self, key: str, stamps: list) -> dict | None:
        """The row cached for ``key`` when it was made from files with exactly these stamps, else None."""
        entry = self.old.get(key)
        if not isinstance(entry, list) or len(entry) != 2 or entry[0] != stamps or not isinstance(entry[1], dict):
            return None
        self.seen[key] = entry
        return entry[1]

    def put(self, key: str, stamps: list, row: dict) -> None:
        """Keep ``row``, read from files with these stamps, unless one changed too recently to trust."""
        if stamps[0] is None or any(s is not None and s[0] > self.started_ns - RACY_NS for s in stamps):
            self.changed = self.changed or key in self.old
            return
        self.seen[key] = [stamps, row]
        self.changed = True

    def save(self) -> None:
        """Write the rows this listing used or read (runs no longer listed are dropped); errors are ignored."""
        if not self.changed and len(self.seen) == len(self.old):
            return
        with contextlib.suppress(OSError, ValueError, TypeError):
            directory = os.path.dirname(self.file)
            os.makedirs(directory, exist_ok=True)
            text = json.dumps({**self.header, "rows": self.seen}, separators=(",", ":"))   # ASCII: any path survives
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".rows.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                os.replace(tmp, self.file)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            _prune(directory, MAX_FILES)


def _prune(directory: str, keep: int) -> None:
    """Remove all but the ``keep`` most recently written cache files."""
    with os.scandir(directory) as listing:
        files = [(e.stat().st_mtime_ns, e.path) for e in listing if e.name.endswith(".json") and e.is_file()]
    for _, path in sorted(files, reverse=True)[keep:]:
        with contextlib.suppress(OSError):
            os.unlink(path)
