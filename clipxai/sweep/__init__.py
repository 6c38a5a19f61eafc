"""Sweeps: a grid of ascents run locally or on Ray, resumable, and the concept atlas across them.

    from clipxai.sweep import run_sweep, build_atlas
    outcome = run_sweep("emotions.toml", executor="ray")      # -> runs/emotions/sweep.json
    build_atlas(outcome.folder, "atlas/")                      # -> atlas.csv, atlas.html

Modules: ``spec`` (the TOML spec and its grid), ``validate`` (the whole spec checked with
ascend's own checks), ``plan`` (folder states, seed grouping), ``work`` (one unit, in any
process), ``state`` (sweep.json), ``lock``, ``progress``, ``executor_local``,
``executor_ray``, ``driver`` (``run_sweep``), ``atlas`` and ``atlas_html``. The format
and the guarantees are in docs/sweeps.md.
"""

from clipxai.sweep.driver import SweepOutcome, run_sweep
from clipxai.sweep.spec import Row, SweepSpec, expand, load_spec


def build_atlas(*args, **kwargs):
    from clipxai.sweep.atlas import build_atlas as build  # noqa: PLC0415
    return build(*args, **kwargs)


__all__ = ["SweepOutcome", "run_sweep", "Row", "SweepSpec", "expand", "load_spec", "build_atlas"]
