"""Writing a run folder while a run is under way: its lock, its arrays, its manifest and metrics.

``RunWriter`` is used only by ``clipxai.ascent.recorder.RunRecorder``, so run.json has one writer.
Arrays are reserved on disk before they are mapped (a full disk is an error, never a
SIGBUS); the folder is locked while written (a second writer is refused; the lock dies with
its process, so a killed run can be resumed).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.format import open_memmap

from clipxai.errors import DiskFullError, RunError
from clipxai.runs.format import (
    FORMAT_VERSION,
    LOCK_FILE,
    METRICS_FILE,
    ROOM_FILE,
    RUN_FILE,
    SNAPSHOTS_DIR,
    array_file,
    missing_field,
    rows_for,
)
from clipxai.runs.reader import metric_lines, metric_record, read_manifest
from clipxai.util.files import DISK_FULL, FILE_MODE, atomic_write_text, dumps_json, is_disk_full, json_default
from clipxai.util.paths import check_writable_inside, inside

ROOM_BYTES = 64 * 1024   # at least this much disk is kept for the manifest while a run is written

__all__ = ["DISK_FULL", "ROOM_BYTES", "RunLock", "RunWriter", "check_arrays", "check_disk_room", "is_disk_full", "is_locked",
           "new_npy", "read_resumable"]


class RunLock:
    """An advisory lock on a run folder while a process writes it; it dies with its process.

    ``flock`` on ``<run>/.lock``: a second writer is refused, and a run whose process was
    killed (even by SIGKILL) is free again at once, so it can be resumed.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        try:
            fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except OSError as err:   # a read-only file system, a folder without write permission
            raise RunError(f"{self.path} cannot be written ({err.strerror or err}), so nothing can be recorded "
                           f"in it; nothing was changed.") from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunError(f"{self.path} is being written by process {holder}; wait for it to end or stop it "
                           f"(Ctrl-C) before writing to this run.") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def is_locked(path: str | Path) -> bool:
    """Whether a live process holds the run's lock (is writing it now)."""
    file = Path(path) / LOCK_FILE
    if not file.is_file():
        return False
    try:
        fd = os.open(file, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def new_npy(file: Path, dtype: np.dtype, shape: tuple) -> np.memmap:
    """A ``.npy`` file of ``shape`` whose blocks are reserved on disk before it is mapped.

    A sparse memory-mapped file would kill the process with SIGBUS when the disk fills up;
    reserving every block first turns a full disk into an ``OSError`` here.
    """
    arr = open_memmap(file, mode="w+", dtype=dtype, shape=shape)
    del arr
    try:
        fd = os.open(file, os.O_RDWR)
        try:
            os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        file.unlink(missing_ok=True)
        raise
    return np.load(file, mmap_mode="r+")


def check_disk_room(folder: str | Path, needed: int, what: str) -> None:
    """Refuse, before anything is made, arrays of ``needed`` bytes that the disk holding ``folder`` has no room for.

    Reserving them would fail part-way and leave a failed folder behind; this says so first,
    in numbers. ``what`` names the request ("2 seeds of 200 snapshots").
    """
    probe = Path(folder).expanduser().absolute()
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return   # cannot tell: the reservation itself will say
    if needed > free:
        raise RunError(f"The arrays of {what} need about {_size(needed)} on disk and the disk holding {probe} has "
                       f"{_size(free)} free; lower --steps, raise --snapshot-every or make room (nothing was written).")


def _size(n: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 1e3:.0f} kB"


def _npy_header(file: Path) -> tuple[tuple, np.dtype, int]:
    """The shape, dtype and data offset a .npy file's header states (``RunError`` when it has none)."""
    try:
        with open(file, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f, max_header_size=10_000)
            return tuple(shape), dtype, f.tell()
    except (OSError, ValueError, EOFError, SyntaxError, TypeError) as err:
        raise RunError(f"{file} is not a readable .npy array ({type(err).__name__}); the run cannot be resumed "
                       f"(nothing was changed).") from err


def read_resumable(path: str | Path) -> dict:
    """The manifest of a run a resume would write into, or ``RunError`` naming run.json.

    Beyond what any reader checks, it must hold every field the run writer writes, and its
    steps and snapshot rows must agree (the recorder always writes them together)."""
    path = Path(path)
    manifest = read_manifest(path)
    problem = missing_field(manifest) or _rows_problem(manifest)
    if problem:
        raise RunError(f"The manifest {path / RUN_FILE} is corrupt: {problem}; the run cannot be resumed "
                       f"(nothing was changed).")
    return manifest


def _rows_problem(manifest: dict) -> str | None:
    config = manifest.get("config")
    config = config if isinstance(config, dict) else {}
    record = config.get("record")
    every = (record if isinstance(record, dict) else config).get("snapshot_every")
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        return None   # the config's own check names it
    done, rows = manifest["steps_done"], manifest["n_snapshots"]
    if rows != rows_for(done, every):
        return (f"its steps_done ({done}) makes {rows_for(done, every)} snapshot rows with a snapshot every "
                f"{every} steps, but its n_snapshots is {rows}")
    return None


def check_arrays(path: Path, manifest: dict) -> dict[str, Path]:
    """Every array the manifest lists, checked against it (shape, dtype, file size): name -> file.

    A resume writes into these files in place, so a damaged one (cut short, too few rows,
    another dtype) must be refused before it is opened, never filled with zeros or grown.
    """
    files = {}
    rows = manifest.get("n_snapshots", 0)
    for name, info in manifest.get("arrays", {}).items():
        file = inside(path, info["file"], "array file")
        if not file.is_file():
            raise RunError(f"{path} is missing {info['file']}, which its manifest lists.")
        shape, dtype, offset = _npy_header(file)
        listed, listed_dtype = info.get("shape"), info.get("dtype")
        if not isinstance(listed, list) or list(shape) != listed:
            raise RunError(f"{path}: {info['file']} holds an array of shape {list(shape)}, but the manifest lists "
                           f"{str(listed)[:60]}; the run cannot be resumed (nothing was changed).")
        if dtype.hasobject or dtype.name != listed_dtype:
            raise RunError(f"{path}: {info['file']} holds {dtype.name} values, but the manifest lists "
                           f"{str(listed_dtype)[:40]}; the run cannot be resumed (nothing was changed).")
        expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        size = file.stat().st_size
        if size != expected:
            raise RunError(f"{path}: {info['file']} is {size} bytes, but its array takes {expected}; it is damaged "
                           f"(cut short?), so the run cannot be resumed (nothing was changed).")
        if not shape or shape[0] < rows:
            raise RunError(f"{path}: {info['file']} has {shape[0] if shape else 0} rows, but the manifest counts "
                           f"{rows} snapshots; the run cannot be resumed (nothing was changed).")
        files[name] = file
    return files


class RunWriter:
    """One run folder while a run is under way: manifest, metrics and memmapped arrays.

    Only ``clipxai.ascent.recorder.RunRecorder`` uses it, so run.json has one writer.
    """

    format_version = FORMAT_VERSION

    def __init__(self, path: Path, manifest: dict, lock: RunLock | None = None):
        self.path = Path(path)
        self.manifest = manifest
        self.arrays: dict[str, np.memmap] = {}
        self._metrics = None
        self.lock = lock

    # -- creation -------------------------------------------------------------------------
    @staticmethod
    def check_free(parent: str | Path, names: list[str]) -> None:
        """Refuse (before anything is made) when any of these run folders already holds something."""
        parent = Path(parent).expanduser()
        for name in names:
            path = parent / name
            if path.exists() and (not path.is_dir() or any(path.iterdir())):
                raise RunError(f"{path} already exists and is not empty; choose another --name.")

    @classmethod
    def create(cls, parent: str | Path, name: str, manifest: dict) -> "RunWriter":
        """Make a fresh run folder; never reuses one that already holds anything."""
        parent = Path(parent).expanduser()
        path = parent / name
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RunError(f"The output folder {parent} cannot be created ({err.strerror}).") from err
        if not os.access(parent, os.W_OK):
            raise RunError(f"The output folder {parent} is not writable.")
        cls.check_free(parent, [name])
        try:
            path.mkdir(exist_ok=True)
            lock = RunLock(path).acquire()
            (path / SNAPSHOTS_DIR).mkdir()
        except OSError as err:
            raise RunError(f"The run folder {path} cannot be created ({err.strerror}).") from err
        manifest = {
            "format_version": FORMAT_VERSION,
            "status": "running",
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **manifest,
            "steps_done": 0,
            "n_snapshots": 0,
            "arrays": {},
        }
        writer = cls(path, manifest, lock)
        try:
            writer.keep_room()
            writer.write_manifest()
        except OSError as err:   # the folder holds nothing yet: it goes again, so no empty run is left
            writer.discard()
            if is_disk_full(err):
                raise DiskFullError(f"The disk holding {parent} is full ({err.strerror}), so the run {name} cannot "
                                    f"start; nothing was left behind (free some space and start it again).") from err
            raise RunError(f"The run folder {path} cannot be written ({err.strerror or err}).") from err
        return writer

    def discard(self) -> None:
        """Remove a folder this writer created that holds no results yet (its manifest, lock and room only)."""
        if self.lock is not None:
            self.lock.release()
        for name in (RUN_FILE, ROOM_FILE, LOCK_FILE):
            (self.path / name).unlink(missing_ok=True)
        for folder in (self.path / SNAPSHOTS_DIR, self.path):
            try:
                folder.rmdir()   # only when empty: anything else in it stays
            except OSError:
                return

    @classmethod
    def reopen(cls, path: str | Path) -> "RunWriter":
        """Open an existing run to continue it (resume): locked, arrays read-write, metrics appended."""
        path = Path(path)
        if is_locked(path):
            RunLock(path).acquire()   # refused, naming the process that holds it
        # Everything is checked before anything is opened for writing: a refusal changes nothing.
        manifest = read_resumable(path)
        check_writable_inside(path, path)
        files = check_arrays(path, manifest)
        lock = RunLock(path).acquire()
        writer = cls(path, manifest, lock)
        try:
            for name, file in files.items():
                writer.arrays[name] = np.load(file, mmap_mode="r+")
        except (OSError, ValueError) as err:
            lock.release()
            raise RunError(f"{path}: an array cannot be opened for writing ({type(err).__name__}: {err}); "
                           f"nothing was changed.") from err
        return writer

    # -- arrays ---------------------------------------------------------------------------
    def allocate(self, name: str, rows: int, row_shape: tuple, dtype: str, meaning: str) -> np.memmap:
        """Preallocate ``snapshots/<name>.npy`` with ``rows`` rows (names may contain '/')."""
        file = Path(array_file(name))
        (self.path / file).parent.mkdir(parents=True, exist_ok=True)
        arr = new_npy(self.path / file, np.dtype(dtype), (rows, *row_shape))
        self.arrays[name] = arr
        self.manifest["arrays"][name] = {
            "file": file.as_posix(), "shape": [rows, *row_shape], "dtype": np.dtype(dtype).name, "meaning": meaning,
        }
        return arr

    def grow(self, rows: int) -> None:
        """Give every array ``rows`` rows, keeping what is recorded (a resumed run that goes further).

        Every grown copy is written (its blocks reserved) before any replaces its array, so a
        full disk leaves the run exactly as it was.
        """
        made = []
        try:
            for name, arr in self.arrays.items():
                if arr.shape[0] < rows:
                    file = inside(self.path, self.manifest["arrays"][name]["file"], "array file")
                    tmp = file.with_suffix(".grow.npy")
                    new = new_npy(tmp, arr.dtype, (rows, *arr.shape[1:]))
                    new[: arr.shape[0]] = arr
                    new.flush()
                    del new
                    made.append((name, file, tmp))
        except OSError as err:
            for _, _, tmp in made:
                tmp.unlink(missing_ok=True)
            if is_disk_full(err):
                raise RunError(f"The disk holding {self.path} is full: its arrays cannot grow to {rows} rows; "
                               f"free some space and resume again.") from err
            raise
        for name, file, tmp in made:
            del self.arrays[name]
            os.replace(tmp, file)
            self.arrays[name] = np.load(file, mmap_mode="r+")
            info = self.manifest["arrays"][name]
            info["shape"] = [rows, *info["shape"][1:]]

    def flush(self) -> None:
        for arr in self.arrays.values():
            arr.flush()

    # -- manifest and metrics ---------------------------------------------------------------
    def write_manifest(self, **updates: Any) -> None:
        """Update fields (a ``None`` value removes the field) and replace run.json atomically."""
        for key, value in updates.items():
            if value is None:
                self.manifest.pop(key, None)
            else:
                self.manifest[key] = value
        self.manifest["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        text = dumps_json(self.manifest)
        try:
            atomic_write_text(self.path / RUN_FILE, text)
        except OSError as err:
            room = self.path / ROOM_FILE
            # Always a whole new copy renamed over the old one, so a failure leaves the previous manifest intact.
            # A full disk (not a file-size limit) gets the room kept for this moment, so the status is still
            # recorded; with no room left the error goes up and run.json stays as it was.
            if not is_disk_full(err) or err.errno == errno.EFBIG or not room.is_file():
                raise
            room.unlink()
            atomic_write_text(self.path / RUN_FILE, text)

    def keep_room(self) -> None:
        """Reserve disk space for the manifest's last writes (``.room``), unless it is kept already.

        A run that fills the disk must still be able to say so in run.json; its status is written
        into the space this file frees. Without room for it the run goes on without one.
        """
        room = self.path / ROOM_FILE
        if room.is_file():
            return
        size = max(ROOM_BYTES, 4 * len(dumps_json(self.manifest)))
        try:
            fd = os.open(room, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except OSError:
            return
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError:
            room.unlink(missing_ok=True)
        finally:
            os.close(fd)

    def append_metrics(self, record: dict) -> None:
        if self._metrics is None:
            self._metrics = open(self.path / METRICS_FILE, "a", encoding="utf-8")
        self._metrics.write(json.dumps(record, ensure_ascii=False, default=json_default) + "\n")

    def flush_metrics(self) -> None:
        if self._metrics is not None:
            self._metrics.flush()

    def truncate_metrics(self, after_step: int) -> None:
        """Drop metric lines past ``after_step`` (a resume replays those steps)."""
        file = self.path / METRICS_FILE
        if not file.is_file():
            return
        keep = [line for line in metric_lines(file) if line.strip() and _step_of(line) <= after_step]
        atomic_write_text(file, "".join(line + "\n" for line in keep))

    def last_metrics_time(self) -> float:
        """The ``time`` of the last metrics line (a resumed run's clock continues from it)."""
        file = self.path / METRICS_FILE
        if not file.is_file():
            return 0.0
        for line in reversed(metric_lines(file)):
            try:
                return float((metric_record(line) or {})["time"])
            except (KeyError, TypeError, ValueError, OverflowError):
                continue
        return 0.0

    def close(self) -> None:
        """Flush and release the run (the manifest must be written before this)."""
        try:
            self.flush()
            if self._metrics is not None:
                self._metrics.close()
        finally:
            self._metrics = None
            (self.path / ROOM_FILE).unlink(missing_ok=True)   # the run is no longer written: its room is freed
            if self.lock is not None:
                self.lock.release()


def _step_of(line: str) -> int:
    record = metric_record(line)
    try:
        return int(record.get("step", -1)) if record is not None else 1 << 62
    except (TypeError, ValueError, OverflowError):
        return 1 << 62


