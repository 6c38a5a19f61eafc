"""Runs started from the viewer: ``clipxai ascend`` in a child process, stopped with SIGINT.

The child is the ordinary command line, so a run started here is the same as one started
in a terminal: same folder, same manifest, and a stop request (SIGINT, as Ctrl-C) ends it
``interrupted`` with its checkpoint, resumable with ``clipxai ascend --resume``. Each child
gets its own process group, so Ctrl-C in the viewer's terminal reaches the children only
through ``shutdown``, once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import clipxai

STDERR_KEEP = 4000


@dataclass
class Job:
    run_id: str
    process: subprocess.Popen
    started: float = field(default_factory=time.time)
    stderr: str = ""
    returncode: int | None = None
    stop_requested: bool = False

    def to_dict(self) -> dict:
        error = None
        if self.returncode not in (None, 0, 130):
            lines = [ln for ln in self.stderr.splitlines() if ln.strip()]
            error = next((ln for ln in reversed(lines) if ln.startswith("error:")), lines[-1] if lines else None)
            error = error or f"the run exited with status {self.returncode}"
        return {"state": "running" if self.returncode is None else "exited", "returncode": self.returncode,
                "error": error, "stop_requested": self.stop_requested, "pid": self.process.pid}


def ascend_argv(prompt: str, model: str, preset: str, steps: int, out: Path, name: str) -> list[str]:
    """The command line of one run; the prompt comes after ``--`` so no prompt is read as an option."""
    return [sys.executable, "-m", "clipxai.cli", "ascend", "--model", model, "--preset", preset,
            "--steps", str(steps), "--out", str(out), "--name", name, "--quiet", "--", prompt]


class Jobs:
    """The children this server started, by run id."""

    def __init__(self):
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, run_id: str, argv: list[str]) -> Job:
        env = dict(os.environ)
        # the child imports the same clipxai as this server, installed or not
        package_parent = str(Path(clipxai.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, env=env, start_new_session=True)
        job = Job(run_id, process)
        with self._lock:
            self._jobs[run_id] = job
        threading.Thread(target=self._watch, args=(job,), daemon=True).start()
        return job

    def _watch(self, job: Job) -> None:
        for raw in iter(job.process.stderr.readline, b""):
            job.stderr = (job.stderr + raw.decode("utf-8", "replace"))[-STDERR_KEEP:]
        job.returncode = job.process.wait()

    def get(self, run_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(run_id)

    def cancel(self, run_id: str) -> bool:
        """Ask a running child to stop after its current step; False when there is none."""
        job = self.get(run_id)
        if job is None or job.returncode is not None or job.process.poll() is not None:
            return False
        job.stop_requested = True
        job.process.send_signal(signal.SIGINT)
        return True

    def shutdown(self, timeout: float = 30.0) -> list[str]:
        """Stop every running child (each ends interrupted, resumable); returns their run ids."""
        with self._lock:
            running = [j for j in self._jobs.values() if j.process.poll() is None]
        for job in running:
            job.stop_requested = True
            job.process.send_signal(signal.SIGINT)
        deadline = time.time() + timeout
        for job in running:
            try:
                job.process.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                job.process.kill()
        return [j.run_id for j in running]
