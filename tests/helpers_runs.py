"""Write small synthetic run folders in the native format (with RunWriter), for the analysis tests.

The embeddings come from ``clipxai.analysis.check.synthetic`` (so the true states are known); the
images are flat colours, one colour per true state, so thumbnails and pixels show the
states too; activations are a fixed random projection of the embeddings.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np

from clipxai.analysis.check import synthetic
from clipxai.ascent.recorder import Callback
from clipxai.runs.writer import RunWriter

PALETTE = np.array([[0.9, 0.1, 0.1], [0.1, 0.7, 0.2], [0.1, 0.2, 0.9], [0.9, 0.8, 0.1],
                    [0.6, 0.1, 0.7], [0.1, 0.8, 0.8], [0.5, 0.5, 0.5], [0.9, 0.5, 0.1]])
HOOKS = ("visual.transformer.resblocks.0", "visual.transformer.resblocks.1")


class StopAt(Callback):
    """Stops an ascent after step ``step``: as a user's Ctrl-C would (``use_signal``), or by asking the engine."""

    def __init__(self, step, use_signal=False):
        self.step, self.use_signal = step, use_signal

    def on_step_end(self, engine, ctx):
        if ctx.index == self.step:
            if self.use_signal:
                os.kill(os.getpid(), signal.SIGINT)
            else:
                engine.request_stop("test")


def write_run(parent: Path, name: str = "run", *, traj: synthetic.SyntheticTrajectory | None = None,
              n: int = 120, k: int = 3, dim: int = 64, size: int = 16, snapshot_every: int = 10,
              prompt: str = "❤️", recorded: int | None = None, status: str = "complete",
              model: str = "random:tiny", full_tokens: bool = False, seed: int = 0) -> Path:
    """A native run folder; ``recorded`` < rows leaves the rest of the arrays unwritten (a live run)."""
    rng = np.random.default_rng(seed)
    if traj is None:
        traj = synthetic.planted_states(rng, n=n, k=k, dim=dim, mean_dwell=12, min_dwell=4,
                                        noise=0.5, snapshot_every=snapshot_every)
    n, dim = traj.embeddings.shape
    recorded = n if recorded is None else recorded
    manifest = {
        "prompt": prompt,
        "prompts": [{"text": prompt, "weight": 1.0, "kind": "text"}],
        "objective": f"cosine({prompt})", "terms": [f"cosine({prompt})", "tv"],
        "seed": seed,
        "config": {"prompt": prompt, "steps": int(traj.steps[-1]) + snapshot_every, "seed": seed,
                   "snapshot_every": snapshot_every, "lr": 0.05, "param": "pixels"},
        "model": {"name": model, "sha256": "test", "embed_dim": dim},
        "device": "cpu", "versions": {"clipxai": "test"},
    }
    w = RunWriter.create(parent, name, manifest)
    w.allocate("steps", n, (), "int64", "step")
    w.allocate("images", n, (3, size, size), "float16", "image")
    w.allocate("embeddings", n, (dim,), "float32", "embedding")
    w.allocate("latents", n, (3, size, size), "float32", "pixels")
    w.allocate("gradients", n, (3, size, size), "float16", "gradient")
    proj = rng.standard_normal((dim, 32)) / np.sqrt(dim)
    for hook in HOOKS:
        shape = (5, 32) if full_tokens else (32,)
        w.allocate(f"activations/{hook}", n, shape, "float16" if full_tokens else "float32", hook)
    colours = PALETTE[np.maximum(traj.states, 0) % len(PALETTE)]
    for i in range(recorded):
        img = np.clip(colours[i][:, None, None] + 0.05 * rng.standard_normal((3, size, size)), 0, 1)
        w.arrays["steps"][i] = traj.steps[i]
        w.arrays["images"][i] = img
        w.arrays["latents"][i] = img
        w.arrays["embeddings"][i] = traj.embeddings[i]
        w.arrays["gradients"][i] = 1e-3 * rng.standard_normal((3, size, size))
        for j, hook in enumerate(HOOKS):
            act = traj.embeddings[i] @ proj * (j + 1)
            w.arrays[f"activations/{hook}"][i] = np.tile(act, (5, 1)) if full_tokens else act
        sim = 0.2 + 0.05 * np.tanh(i / 10)
        w.append_metrics({"step": int(traj.steps[i]), "loss": -sim, "objective": sim,
                          f"term/cosine({prompt})": sim, "term/tv": 0.01, f"sim/{prompt}": sim,
                          "grad_norm": float(1e-3 * (1 + i % 3)), "lr": 0.05, "time": 0.01 * i})
    w.write_manifest(n_snapshots=recorded, steps_done=int(traj.steps[recorded - 1]) + 1 if recorded else 0,
                     status=status)
    w.close()
    return w.path

