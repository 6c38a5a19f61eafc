"""The Ray executor: one Ray task per unit, each with the spec's CPU and GPU request.

Without an address (``--address``, else ``RAY_ADDRESS``) it starts a Ray on this machine
with all its CPUs (or uses the one already started in this process); with one it joins that
cluster, whose workers must see the sweep folder at the same path (a shared filesystem:
NFS, Lustre, a mounted bucket).
Tasks write their run folders themselves and return small result dicts; only this driver
writes sweep.json. A task whose worker dies is retried by Ray (``max_retries``), and
``execute_unit`` resumes from the run's checkpoint. Ray is imported only here.
"""

from __future__ import annotations

import os
from typing import Callable

from clipxai.errors import ClipxaiError
from clipxai.sweep.plan import Unit
from clipxai.sweep.work import sentence

CANCEL_WAIT_S = 60.0   # after Ctrl-C: how long running tasks get to stop at a step and save


def ray_task(payload: dict, threads: int) -> list[dict]:
    """The body of a task: torch gets exactly the CPUs the task asked for, then the unit runs."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch  # noqa: PLC0415

    torch.set_num_threads(threads)
    from clipxai.sweep.work import execute_unit  # noqa: PLC0415

    return execute_unit(payload)


def _probe(folder: str) -> bool:
    return os.path.isdir(folder)


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None, resources: dict, retries: int, folder: str):
        # RAY_ADDRESS is Ray's own way of naming a cluster; "local" asks for a Ray on this machine
        env = os.environ.get("RAY_ADDRESS", "").strip()
        self.address = address or (env if env and env != "local" else None)
        self.num_cpus = float(resources.get("num_cpus", 1))
        self.num_gpus = float(resources.get("num_gpus", 0))
        self.retries = retries
        self.folder = folder

    def _init(self, ray) -> bool:
        """Start or join Ray; True when this call started it (and so must shut it down)."""
        if ray.is_initialized():
            return False
        kwargs = {"include_dashboard": False, "logging_level": "WARNING"}
        try:
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                ray.init(num_cpus=os.cpu_count(), **kwargs)
        except Exception as err:  # noqa: BLE001  (ConnectionError, timeouts, bad addresses)
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
            raise ClipxaiError(f"Could not start or reach {where} ({sentence(err)}).") from err
        return True

    def _check(self, ray) -> None:
        """A local Ray must hold one task's request; a cluster must show workers the sweep folder.

        (A cluster's resources are not checked: an autoscaler adds GPU nodes when tasks ask.)
        """
        cluster = ray.cluster_resources()
        cpus, gpus = cluster.get("CPU", 0), cluster.get("GPU", 0)
        if not self.address and (self.num_cpus > cpus or self.num_gpus > gpus):
            raise ClipxaiError(f"Each run asks for {self.num_cpus:g} CPU and {self.num_gpus:g} GPU, but the "
                               f"Ray on this machine has {cpus:g} CPU and {gpus:g} GPU; lower [resources] in the spec.")
        if self.address:
            seen = ray.get(ray.remote(num_cpus=0)(_probe).remote(self.folder))
            if not seen:
                raise ClipxaiError(f"The Ray workers cannot see {self.folder}; a sweep on a cluster needs the "
                                   f"output folder on a filesystem every node mounts at the same path.")

    def run(self, units: list[Unit], payload: Callable[[Unit], dict],
            started: Callable[[Unit], None], finished: Callable[[Unit, list[dict]], None]) -> None:
        try:
            import ray  # noqa: PLC0415
        except ImportError as err:
            raise ClipxaiError("--executor ray needs Ray (pip install 'clipxai[sweep]').") from err
        own = self._init(ray)
        try:
            self._check(ray)
            threads = max(1, int(self.num_cpus))
            task = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=self.retries)(ray_task)
            pending = {}
            for unit in units:  # queued, not started: sweep.json says running only for the local executor
                pending[task.remote(payload(unit), threads)] = unit
            try:
                while pending:
                    done, _ = ray.wait(list(pending), num_returns=1)
                    for ref in done:
                        unit = pending.pop(ref)
                        finished(unit, self._get(ray, ref, unit))
            except KeyboardInterrupt:
                self._cancel(ray, pending, finished)
                raise
        finally:
            if own:
                ray.shutdown()

    @staticmethod
    def _get(ray, ref, unit: Unit) -> list[dict]:
        try:
            return ray.get(ref)
        except Exception as err:  # noqa: BLE001  (the worker died past its retries, or Ray failed)
            cause = getattr(err, "cause", None) or err
            return [{"folder": r.folder, "status": "failed", "error": sentence(cause), "seconds": 0.0, "ran": True,
                     "analysis": None, "analysis_error": None} for r in unit.rows]

    @staticmethod
    def _cancel(ray, pending: dict, finished) -> None:
        """Ask running tasks to stop after their current step (they checkpoint), then record what returns."""
        for ref in pending:
            ray.cancel(ref)
        try:
            done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=CANCEL_WAIT_S)
        except KeyboardInterrupt:
            return
        for ref in done:
            try:
                finished(pending[ref], ray.get(ref))
            except Exception:  # noqa: BLE001,S112  (cancelled before it started: nothing to record)
                continue
