"""Atomic file writes: a reader (or a killed process) never sees half a file.

Every file clipxai writes whole — run.json, summary.json, checkpoints, caches, reports —
goes through ``atomic_write``: a temporary file in the same folder, flushed, then renamed
over the target. Files get the permissions the process umask gives any new file, so
colleagues and web servers can read them like the arrays beside them.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import numpy as np

from clipxai.errors import ClipxaiError, DiskFullError, RunError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)   # EFBIG: a file reached the size limit


def is_disk_full(err: BaseException | None) -> bool:
    """Whether ``err`` itself is a full disk, a full quota or a file past the size limit."""
    return isinstance(err, OSError) and err.errno in DISK_FULL


def disk_full_cause(err: BaseException | None) -> OSError | None:
    """The full-disk ``OSError`` behind ``err`` (itself, or what it was raised from), if any.

    Libraries report a full disk in their own words (matplotlib, PIL, a ``RunError`` raised
    from the ``OSError``); the chain of causes still holds the errno.
    """
    seen = set()
    while err is not None and id(err) not in seen:
        if is_disk_full(err):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary sibling of ``path`` to write by any means (a memmap, ``np.save``...); renamed
    over ``path`` when the block ends without error, removed otherwise."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _made_by_mkdir(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, outermost first."""
    missing = []
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    return missing[::-1]


@contextlib.contextmanager
def staged_files(folder: str | Path, what: str, last: tuple[str, ...] = ()) -> Iterator[Path]:
    """A hidden folder inside ``folder`` to write a set of results into by any means (figures, json).

    When the block ends without error every file in it is moved to the same relative path in
    ``folder`` (those named in ``last`` after the others: a summary appears only with its
    figures); otherwise the hidden folder is removed whole, and the folders this made with it,
    so ``folder`` is exactly as it was: an earlier result is never half replaced. A full disk,
    quota or file-size limit anywhere in the block is a ``DiskFullError`` naming ``what``.
    """
    folder = Path(folder)
    made = _made_by_mkdir(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(dir=folder, prefix=".writing-"))
    except OSError as err:
        _remove_empty(made)
        if is_disk_full(err):
            raise DiskFullError(f"The disk holding {folder} is full ({err.strerror}); {what} was not written "
                                f"and nothing there changed; free some space and run it again.") from err
        raise RunError(f"{folder} cannot be written ({err.strerror or err}), so {what} cannot be; "
                       f"nothing was changed.") from err
    try:
        yield stage
        files = [p for p in stage.rglob("*") if p.is_file() or p.is_symlink()]
        files.sort(key=lambda p: (p.relative_to(stage).as_posix() in last, p.relative_to(stage).as_posix()))
        for file in files:
            target = folder / file.relative_to(stage)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(file, target)
    except BaseException as err:
        shutil.rmtree(stage, ignore_errors=True)
        _remove_empty(made)
        cause = disk_full_cause(err)
        if cause is not None and not isinstance(err, DiskFullError):
            raise DiskFullError(f"The disk holding {folder} is full ({cause.strerror or cause}); {what} was not "
                                f"written and nothing there changed; free some space and run it again.") from err
        raise
    shutil.rmtree(stage, ignore_errors=True)


def _remove_empty(folders: list[Path]) -> None:
    for made in reversed(folders):
        with contextlib.suppress(OSError):
            made.rmdir()


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None], sync: bool = False) -> Path:
    """Write ``path`` through ``write(file)`` on a temporary sibling, then rename it into place.

    ``sync`` also fsyncs the data before the rename (a full disk then fails here, not later).
    On any error the temporary file is removed and the previous ``path`` is left as it was.
    """
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            if sync:
                os.fsync(f.fileno())
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes, sync: bool = False) -> Path:
    return atomic_write(path, lambda f: f.write(data), sync=sync)


def atomic_write_text(path: str | Path, text: str, sync: bool = False) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), sync=sync)


def json_default(obj: Any):
    """JSON for the numpy scalars, arrays, paths and tuples that results carry."""
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return repr(obj)


def dumps_json(data: Any, indent: int | None = 2) -> str:
    return json.dumps(data, indent=indent, ensure_ascii=False, default=json_default)


def write_json(path: str | Path, data: Any, sync: bool = False) -> Path:
    return atomic_write_text(path, dumps_json(data), sync=sync)


def save_torch(obj: Any, path: str | Path, sync: bool = False) -> Path:
    import torch  # noqa: PLC0415  (only writers of checkpoints need torch)

    # Serialized in memory first: torch.save reports a full disk as a RuntimeError without its errno,
    # while a plain write raises the OSError (ENOSPC, EFBIG) every caller recognises.
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getbuffer(), sync=sync)


def save_npy(array: np.ndarray, path: str | Path) -> Path:
    return atomic_write(path, lambda f: np.save(f, array))


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def image_files(folder: str | Path, what: str = "reference") -> list[Path]:
    """The images directly in ``folder`` (by suffix, sorted by name), or one sentence saying why it is
    not a folder of images; ``what`` names it in that sentence ("reference", "ablation reference")."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ClipxaiError(f"The {what} {folder} is not a folder of images.")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ClipxaiError(f"The {what} {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    return files
