"""One driver per sweep folder: ``sweep.lock`` names the host and process that holds it.

Two drivers on one folder would start the same runs twice and move each other's fresh
folders aside. A lock left by a driver that was killed is taken over when its process is
gone (on the same host); a lock from another host is left for the user to judge.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from ..errors import ClipxaiError

LOCK = "sweep.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SweepLock:
    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK
        self.held = False

    def __enter__(self) -> "SweepLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ClipxaiError(f"The sweep folder {self.path.parent} cannot be created ({err.strerror}).") from err
        me = {"host": socket.gethostname(), "pid": os.getpid()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._check_stale(me)
                continue
            except OSError as err:
                raise ClipxaiError(f"The sweep folder {self.path.parent} is not writable ({err.strerror}).") from err
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(me, f)
            self.held = True
            return self
        raise ClipxaiError(f"Another sweep took {self.path} at the same moment; run the command again.")

    def _check_stale(self, me: dict) -> None:
        try:
            owner = json.loads(self.path.read_text(encoding="utf-8"))
            host, pid = owner["host"], int(owner["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            host, pid = me["host"], -1     # unreadable: a driver killed while writing it
        if host == me["host"]:
            if pid > 0 and pid != me["pid"] and _alive(pid):
                raise ClipxaiError(f"Another sweep (process {pid}) is running in {self.path.parent}; "
                                   f"wait for it or stop it first.")
            self.path.unlink(missing_ok=True)
            return
        raise ClipxaiError(f"A sweep on host {host} (process {pid}) holds {self.path}; if none is running "
                           f"there any more, delete that file and run again.")

    def __exit__(self, *exc) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
