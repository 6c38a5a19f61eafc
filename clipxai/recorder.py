"""Callbacks that turn a running ascent into files: snapshots, metrics, progress.

The loop only calls ``on_start``, ``on_backward`` (gradients exist, parameters not yet
updated), ``on_step_end`` and ``on_end``; everything written to disk happens here.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .runs import RunWriter


class Callback:
    """Base class: override the events you need. ``engine`` is the running ``Engine``."""

    def on_start(self, engine) -> None: ...
    def on_backward(self, engine, ctx) -> None: ...
    def on_step_end(self, engine, ctx) -> None: ...
    def on_end(self, engine, status: str) -> None: ...


def save_png(image: np.ndarray | torch.Tensor, path: Path) -> None:
    """Write a [3,H,W] image in [0,1] (clipped, never rescaled) as an 8-bit PNG."""
    from PIL import Image  # noqa: PLC0415

    arr = image.detach().float().cpu().numpy() if torch.is_tensor(image) else np.asarray(image, dtype=np.float32)
    arr = (np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0)
    Image.fromarray(arr).save(path)


class Recorder(Callback):
    """Writes every snapshot row of every seed's run, plus metrics.jsonl lines."""

    def __init__(self, writers: list[RunWriter]):
        self.writers = writers
        self.start_time = time.perf_counter()
        self.time_offset = 0.0

    # -- snapshots ------------------------------------------------------------------------
    def snapshot_inputs(self, engine, image: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Raw CLIP features of the un-augmented images, and the hooked activations."""
        cfg, model = engine.config, engine.model
        r = model.input_resolution
        with torch.no_grad():
            img = image.detach()
            if img.shape[-2:] != (r, r):
                img = F.interpolate(img, size=(r, r), mode="bilinear", align_corners=False, antialias=True)
            if engine.hook_names:
                with model.capture(engine.hook_names, batch=img.shape[0], full=cfg.activations == "full") as acts:
                    feats = model.encode_image(img, normalize=cfg.normalize)
                return feats, dict(acts)
            return model.encode_image(img, normalize=cfg.normalize), {}

    def on_backward(self, engine, ctx) -> None:
        if not ctx.snapshot:
            return
        row = ctx.index // engine.config.snapshot_every
        feats, acts = self.snapshot_inputs(engine, ctx.image)
        image = ctx.image.detach().float().cpu().numpy()
        latent = engine.param.latent().float().cpu().numpy()
        grad = None
        if engine.config.record_gradients and ctx.image.grad is not None:
            grad = (-ctx.image.grad).float().cpu().numpy()  # d objective / d image (loss = -objective)
        feats = feats.cpu().numpy()
        acts = {k: v.cpu().numpy() for k, v in acts.items()}
        for k, w in enumerate(self.writers):
            a = w.arrays
            a["steps"][row] = ctx.index
            a["images"][row] = image[k]
            a["embeddings"][row] = feats[k]
            a["latents"][row] = latent[k]
            if grad is not None:
                a["gradients"][row] = grad[k]
            for name, value in acts.items():
                a[f"activations/{name}"][row] = value[k]
            if engine.config.frames:
                (w.path / "frames").mkdir(exist_ok=True)
                save_png(image[k], w.path / "frames" / f"step_{ctx.index}.png")

    # -- metrics ----------------------------------------------------------------------------
    def on_step_end(self, engine, ctx) -> None:
        cfg = engine.config
        last = ctx.index == cfg.steps - 1
        if ctx.index % cfg.log_every and not last and not ctx.snapshot:
            return
        elapsed = self.time_offset + time.perf_counter() - self.start_time
        values = {name: v.tolist() for name, v in ctx.values.items()}
        total = ctx.total.tolist()
        sims = ctx.prompt_similarities.tolist()       # [K][P]
        grad_norms = ctx.grad_norms.tolist()
        for k, w in enumerate(self.writers):
            record = {"step": ctx.index, "loss": -total[k], "objective": total[k]}
            record.update({f"term/{n}": v[k] for n, v in values.items()})
            record.update({f"sim/{p.text}": sims[k][j] for j, p in enumerate(engine.prompts)})
            record.update({"grad_norm": grad_norms[k], "lr": ctx.lr, "time": round(elapsed, 4)})
            w.append_metrics(record)
        if ctx.snapshot or last:
            # Rows written to the shared memory maps are in the page cache, and so in the files,
            # even if this process is killed next; only run.json has to say they are real.
            # (An msync per snapshot would cost as much as a forward pass on small models.)
            n = ctx.index // cfg.snapshot_every + 1
            for w in self.writers:
                w.flush_metrics()
                w.write_manifest(steps_done=ctx.index + 1, n_snapshots=n)


class Progress(Callback):
    """A one-line progress bar on a terminal (step, loss, similarity, it/s); silent otherwise."""

    def __init__(self, stream=None, every: float = 0.25):
        self.stream = stream or sys.stderr
        self.every = every
        self.enabled = self.stream.isatty()
        self._t0 = self._last = 0.0
        self._first = 0

    def on_start(self, engine) -> None:
        self._t0 = self._last = time.perf_counter()
        self._first = engine.start_step

    def on_step_end(self, engine, ctx) -> None:
        now = time.perf_counter()
        last = ctx.index == engine.config.steps - 1
        if not self.enabled or (now - self._last < self.every and not last):
            return
        self._last = now
        done = ctx.index + 1
        rate = (done - self._first) / max(now - self._t0, 1e-9)
        total = engine.config.steps
        bar = int(30 * done / total)
        sim = ctx.prompt_similarities[:, 0].mean().item()
        loss = -ctx.total.mean().item()
        self.stream.write(f"\r[{'#' * bar}{'.' * (30 - bar)}] {done}/{total} "
                          f"loss {loss:+.4f} sim {sim:.4f} {rate:.2f} it/s ")
        self.stream.flush()

    def on_end(self, engine, status: str) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
