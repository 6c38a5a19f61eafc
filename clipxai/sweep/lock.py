"""One driver per sweep folder: an ``flock`` on ``sweep.lock``, held for the driver's whole life.

Two drivers on one folder would start the same runs twice and move each other's fresh
folders aside. The lock is the kernel's, not the file's: it dies with its process (even
with SIGKILL), so a sweep whose driver was killed can be started again at once. The file
only names the host and process that hold it, for the message a second driver prints.
On a filesystem shared between hosts it holds across them only where the filesystem
passes file locks between hosts (NFS usually does); elsewhere, start a sweep's driver on
one host only.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path

from clipxai.errors import ClipxaiError
from clipxai.util.files import FILE_MODE

LOCK = "sweep.lock"


class SweepLock:
    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK
        self._fd: int | None = None

    def __enter__(self) -> "SweepLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ClipxaiError(f"The sweep folder {self.path.parent} cannot be created ({err.strerror}).") from err
        for _ in range(3):
            fd = self._open_locked()
            if self._same_file(fd):  # not a file its last holder removed while we waited for it
                os.ftruncate(fd, 0)
                os.write(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid()}).encode())
                self._fd = fd
                return self
            os.close(fd)
        raise ClipxaiError(f"Another sweep took {self.path} at the same moment; run the command again.")

    def _open_locked(self) -> int:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except OSError as err:
            raise ClipxaiError(f"The sweep folder {self.path.parent} is not writable ({err.strerror}).") from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096)
            os.close(fd)
            raise ClipxaiError(self._held_by(holder)) from None
        except OSError as err:
            os.close(fd)
            raise ClipxaiError(f"The filesystem of {self.path.parent} cannot lock files ({err.strerror}); "
                               f"put the sweep on one that can.") from err
        return fd

    def _same_file(self, fd: int) -> bool:
        try:
            return os.path.samestat(os.fstat(fd), os.stat(self.path))
        except OSError:
            return False

    def _held_by(self, content: bytes) -> str:
        """Who holds the lock, as far as its file says (the holder may not have written it yet)."""
        try:
            owner = json.loads(content.decode("utf-8"))
            host, pid = str(owner["host"]), int(owner["pid"])
        except (ValueError, KeyError, TypeError):
            return f"Another sweep is running in {self.path.parent}; wait for it or stop it first."
        if host == socket.gethostname():
            return f"Another sweep (process {pid}) is running in {self.path.parent}; wait for it or stop it first."
        return (f"A sweep on host {host} (process {pid}) is running in {self.path.parent}; "
                f"wait for it or stop it first.")

    def __exit__(self, *exc) -> None:
        if self._fd is None:
            return
        if self._same_file(self._fd):  # still ours: removed while locked, so no one holds what is removed
            self.path.unlink(missing_ok=True)
        os.close(self._fd)  # closing drops the flock
        self._fd = None
