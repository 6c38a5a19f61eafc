"""Callbacks that turn a running ascent into files and messages.

``RunRecorder`` owns the run folders (one per seed): it creates them, allocates the arrays
at the first snapshot, writes snapshot rows, metrics lines, the manifest and final.png, and
reopens a folder to resume it. ``Checkpointer`` saves what a resumed run needs;
``FiniteGuard`` stops a run whose objective is no longer a number (``clipxai.ascent.progress`` shows
how it goes). The engine knows none of them.
"""

from __future__ import annotations

import contextlib
import platform
import time
from pathlib import Path

import numpy as np
import torch

from clipxai import __version__
from clipxai.ascent.config import AscendConfig
from clipxai.ascent.engine import Callback, Engine
from clipxai.errors import ClipxaiError, NonFiniteLossError, RunError
from clipxai.models.components import canonical_name
from clipxai.runs import format as fmt
from clipxai.runs.format import CHECKPOINT_FILE, SNAPSHOT_SEMANTICS, row_of, rows_for
from clipxai.runs.reader import default_run_name, to_uint8
from clipxai.runs.writer import RunWriter, check_disk_room, is_disk_full
from clipxai.terms.base import Step
from clipxai.util.files import atomic_path, save_torch

CHECKPOINT = CHECKPOINT_FILE   # the old name, which scripts import


def save_png(image: np.ndarray | torch.Tensor, path: Path) -> None:
    """Write a [3,H,W] image in [0,1] (clipped, never rescaled) as an 8-bit PNG."""
    from PIL import Image  # noqa: PLC0415

    arr = image.detach().float().cpu().numpy() if torch.is_tensor(image) else image
    with atomic_path(path, suffix=".png") as tmp:   # never half a picture; a link there is replaced, not followed
        Image.fromarray(to_uint8(arr)).save(tmp)


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    out = {"clipxai": __version__, "torch": torch.__version__, "numpy": np.__version__,
           "python": platform.python_version()}
    with contextlib.suppress(PackageNotFoundError):
        out["clip"] = version("clip-anytorch")
    return out


class RunRecorder(Callback):
    """Writes one run folder per seed: manifest, metrics.jsonl, snapshot arrays, final.png.

    ``RunRecorder(config, model)`` records a new run (folders are created when the run starts,
    every seed's folder checked before any is made); ``resume_from(path)`` makes it continue
    that folder instead. It is the only writer of run.json.
    """

    def __init__(self, config, model, extra_manifest: dict | None = None):
        rec = config.record
        self.config = config
        self.every = rec.snapshot_every
        self.log_every = rec.log_every
        self.full = rec.activations == "full"
        self.hooks = [] if rec.activations == "none" else model.hook_points(rec.hooks)
        if rec.activations != "none" and not self.hooks:
            raise RunError(f"--hooks '{rec.hooks}' matches no module of {model.name}.")
        self.extra = extra_manifest or {}
        self.writers: list[RunWriter] = []
        self._resume_path: Path | None = None
        self._unstarted = False          # a resume that has not written yet
        self._t0 = 0.0
        self.time_offset = 0.0

    def resume_from(self, path: Path) -> None:
        self._resume_path = Path(path)

    @property
    def paths(self) -> list[Path]:
        return [w.path for w in self.writers]

    # -- folders --------------------------------------------------------------------------------
    def folder_names(self, seeds: list[int]) -> list[str]:
        cfg = self.config
        title = cfg.prompt.strip() or " ".join(t.rsplit("=", 1)[0] for t in cfg.objective.terms)  # terms alone: theirs
        base = cfg.name or _unused_name(Path(cfg.out).expanduser(), default_run_name(title), len(seeds))
        return [base] if len(seeds) == 1 else [f"{base}-seed{s}" for s in seeds]

    def on_start(self, engine: Engine) -> None:
        self._t0 = time.perf_counter()
        if self._resume_path is not None:
            self._reopen(engine)
            return
        cfg = self.config
        names = self.folder_names(engine.seeds)
        RunWriter.check_free(cfg.out, names)
        rows = rows_for(engine.steps, self.every)
        check_disk_room(cfg.out, rows * len(engine.seeds) * self._row_bytes(engine),
                        f"{len(engine.seeds)} seed(s) of {rows:,} snapshots")
        try:
            for seed, name in zip(engine.seeds, names):
                self.writers.append(RunWriter.create(cfg.out, name, self._manifest(engine, seed, name)))
        except ClipxaiError:   # one seed's folder cannot start: the others made for this run go again too
            for w in self.writers:
                w.discard()
            self.writers = []
            raise

    def _row_bytes(self, engine: Engine) -> int:
        """At least what one seed's snapshot row takes on disk: image, gradient, latents, embeddings."""
        r = engine.model.input_resolution
        width, height = self.config.size or (r, r)
        image = 3 * width * height * 2                                    # float16
        latents = 4 * sum(p.numel() for p in engine.param.params) // max(1, len(engine.seeds))
        embeddings = sum(4 * int(getattr(m.model, "embed_dim", 0) or 0) for m in engine.parts.members)
        return image * (2 if self.config.record.gradients else 1) + latents + embeddings

    def _manifest(self, engine: Engine, seed: int, name: str) -> dict:
        """The manifest of one seed's folder; ``config`` is the whole ascent as asked for."""
        cfg = self.config
        group = ({"seeds": engine.seeds, "name": cfg.name or name.rsplit("-seed", 1)[0]}
                 if len(engine.seeds) > 1 else None)
        return {
            "prompt": cfg.prompt,
            "prompts": [p.prompt.to_dict() for p in engine.prompts],
            "objective": engine.objective.name,
            "terms": engine.objective.term_names(),
            "seed": seed,
            "group": group,
            "config": cfg.to_dict(),
            "model": engine.model.describe(),
            "model_label": engine.parts.model_label,   # the model in words: "toy + toy-b:0.5" for an ensemble
            **({"models": [{**m.model.describe(), "weight": m.weight, "label": m.name,
                            **({"array": f"{fmt.MEMBER_EMBEDDINGS_PREFIX}{_slug(m.name)}"} if i else {"array": "embeddings"})}
                           for i, m in enumerate(engine.parts.members)]}
               if len(engine.parts.members) > 1 else {}),
            "param": engine.param.info,
            "device": str(engine.model.device),
            "compute": _compute(engine),
            "versions": versions(),
            "hooks": self.hooks,
            # the recorded hook points' names that are the same for every backend (blocks.3, ...)
            "hook_components": {h: c for h in self.hooks if (c := canonical_name(engine.model, h))},
            "steps_total": cfg.optim.steps,
            "snapshot_semantics": SNAPSHOT_SEMANTICS,
            **self.extra,
        }

    def _reopen(self, engine: Engine) -> None:
        """Lock the run and check its arrays; it changes only once the resume writes (``_start_writing``)."""
        self.writers = [RunWriter.reopen(self._resume_path)]
        self._unstarted = True

    def _start_writing(self, engine: Engine) -> None:
        """The first write of a resume: grow the arrays, drop metrics past the checkpoint, mark it running.

        Deferred to the first step that reaches its backward pass, so a resume that fails
        before (a broken term, a full disk while growing) leaves the run exactly as it was.
        """
        if not self._unstarted:
            return
        [writer] = self.writers
        steps, start = engine.steps, engine.start_step
        # The ascent as first asked for (upgraded to format 2), with what a resume may change.
        asked = AscendConfig.from_dict(writer.manifest["config"])
        writer.manifest["config"] = asked.replace(steps=steps, device=self.config.device).to_dict()
        writer.manifest["format_version"] = RunWriter.format_version
        writer.keep_room()   # before the arrays grow: their status must still be writable on a disk they fill
        writer.grow(rows_for(steps, self.every))
        writer.truncate_metrics(start - 1)
        self.time_offset = writer.last_metrics_time()
        self._unstarted = False
        writer.write_manifest(status="running", steps_total=steps, steps_done=start,
                              n_snapshots=rows_for(start, self.every), resumed_at=start,
                              stop_reason=None, error=None)

    # -- snapshots ------------------------------------------------------------------------------
    def snapshot_inputs(self, engine: Engine, image: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Raw CLIP features of the un-augmented images, and the hooked activations (batch-invariant:
        one image per pass, so a seed records the same numbers alone or in a batch)."""
        if engine.parts.batch_invariant and image.shape[0] > 1:
            rows = [self._snapshot_inputs(engine, image[k:k + 1]) for k in range(image.shape[0])]
            return torch.cat([f for f, _ in rows]), {name: torch.cat([a[name] for _, a in rows]) for name in rows[0][1]}
        return self._snapshot_inputs(engine, image)

    def _snapshot_inputs(self, engine: Engine, image: torch.Tensor) -> tuple[torch.Tensor, dict]:
        model, normalize = engine.model, engine.parts.normalize
        with torch.no_grad():
            if not self.hooks:
                return model.embed_images(image.detach(), normalize=normalize), {}
            with model.capture(self.hooks, batch=image.shape[0], full=self.full) as acts:
                feats = model.embed_images(image.detach(), normalize=normalize)
            return feats, dict(acts)

    def on_forward(self, engine: Engine, step: Step) -> None:
        step.snapshot = step.index % self.every == 0
        if step.snapshot and self.config.record.gradients and step.image.requires_grad and not step.image.is_leaf:
            step.image.retain_grad()

    def on_backward(self, engine: Engine, step: Step) -> None:
        self._start_writing(engine)
        if not step.snapshot:
            return
        row = row_of(step.index, self.every)
        feats, acts = self.snapshot_inputs(engine, step.image)
        with torch.no_grad():  # every other model of an ensemble: its embedding of the image
            alone = engine.parts.batch_invariant
            others = {f"{fmt.MEMBER_EMBEDDINGS_PREFIX}{_slug(m.name)}": torch.cat([
                m.model.embed_images(x, normalize=engine.parts.normalize)
                for x in (step.image.detach().split(1) if alone else [step.image.detach()])]).cpu().numpy()
                for m in engine.parts.members[1:]}
        image = step.image.detach().float().cpu().numpy()
        latent = engine.param.latent().float().cpu().numpy()
        buffers = {k: v.detach().float().cpu().numpy() for k, v in engine.param.buffers.items()}
        grad = None
        if self.config.record.gradients and step.image.grad is not None:
            grad = (-step.image.grad).float().cpu().numpy()  # d objective / d image (loss = -objective)
        feats = feats.cpu().numpy()
        acts = {k: v.cpu().numpy() for k, v in acts.items()}
        for k, w in enumerate(self.writers):
            if not w.arrays:
                self._allocate(w, engine, image, feats, latent, grad, acts, others, buffers)
            a = w.arrays
            a["steps"][row] = step.index
            a["images"][row] = image[k]
            a["embeddings"][row] = feats[k]
            a["latents"][row] = latent[k]
            if grad is not None:
                a["gradients"][row] = grad[k]
            for name, value in acts.items():
                a[f"{fmt.ACTIVATIONS_PREFIX}{name}"][row] = value[k]
            for name, value in others.items():
                a[name][row] = value[k]
            for name, value in buffers.items():
                a[name][row] = value[k]
            if self.config.record.frames:
                (w.path / fmt.FRAMES_DIR).mkdir(exist_ok=True)
                save_png(image[k], w.path / fmt.frame_file(step.index))

    def _allocate(self, w: RunWriter, engine: Engine, image, feats, latent, grad, acts, others, buffers=None) -> None:
        """Arrays sized for the whole run, shaped by the first snapshot's values."""
        rows = rows_for(engine.steps, self.every)
        _, c, h, wd = image.shape
        w.allocate("steps", rows, (), "int64", fmt.ARRAYS["steps"])
        w.allocate("images", rows, (c, h, wd), "float16", fmt.ARRAYS["images"])
        w.allocate("embeddings", rows, feats.shape[1:], "float32",
                   fmt.ARRAYS["embeddings"])
        w.allocate("latents", rows, latent.shape[1:], "float32", fmt.latents_meaning(self.config.param.name))
        if self.config.record.gradients:
            w.allocate("gradients", rows, (c, h, wd), "float16", fmt.ARRAYS["gradients"])
        for member, (name, value) in zip(engine.parts.members[1:], others.items()):
            w.allocate(name, rows, value.shape[1:], "float32",
                       fmt.member_embeddings_meaning(member.name))
        for name, value in acts.items():
            full = value.ndim == 3
            w.allocate(f"{fmt.ACTIVATIONS_PREFIX}{name}", rows, value.shape[1:], "float16" if full else "float32",
                       fmt.activations_meaning(name, full))
        for name, value in (buffers or {}).items():  # the parameterization's own state (MACO's importance)
            w.allocate(name, rows, value.shape[1:], "float32", fmt.buffer_meaning(name, self.config.param.name))
        w.write_manifest()

    # -- metrics --------------------------------------------------------------------------------
    def on_step_end(self, engine: Engine, step: Step) -> None:
        last = step.index == engine.steps - 1
        snapshot = step.snapshot
        if step.index % self.log_every and not last and not snapshot:
            return
        elapsed = self.time_offset + time.perf_counter() - self._t0
        values = {name: v.tolist() for name, v in step.values.items()}
        total = step.total.tolist()
        sims = step.prompt_similarities.tolist()       # [K][P]
        grad_norms = step.grad_norms.tolist()
        members = engine.parts.members
        member_sims = ([(m.name, seen.prompt_similarities.tolist()) for m, seen in zip(members, [step, *step.others])]
                       if len(members) > 1 else [])
        for k, w in enumerate(self.writers):
            record = {"step": step.index, "loss": -total[k], "objective": total[k]}
            record.update({f"term/{n}": v[k] for n, v in values.items()})
            record.update({f"sim/{p.text}": sims[k][j] for j, p in enumerate(engine.prompts)})
            for name, per_model in member_sims:
                record.update({f"sim/{p.text}@{name}": per_model[k][j] for j, p in enumerate(engine.prompts)})
            record.update({"grad_norm": grad_norms[k], "lr": step.lr, "time": round(elapsed, 4)})
            w.append_metrics(record)
        if snapshot or last:
            # Rows written to the shared memory maps are in the page cache, and so in the files,
            # even if this process is killed next; only run.json has to say they are real.
            for w in self.writers:
                w.flush_metrics()
                w.write_manifest(steps_done=step.index + 1, n_snapshots=row_of(step.index, self.every) + 1)

    def on_end(self, engine: Engine, status: str) -> None:
        if self._unstarted:   # a resume that wrote nothing: the run stays as it was, whatever ended it
            for w in self.writers:
                w.close()
            return
        err = engine.error
        fields = {"steps_done": engine.steps_done, "n_snapshots": rows_for(engine.steps_done, self.every)}
        resumable = all((p / CHECKPOINT).is_file() for p in self.paths)
        if is_disk_full(err) and resumable:  # resumable once there is room: the last checkpoint is intact
            status, fields["stop_reason"] = "interrupted", "disk full"
        elif is_disk_full(err):
            fields["error"] = f"the disk is full ({err.strerror}) before the first checkpoint"
        elif err is not None:
            fields["error"] = str(err) if isinstance(err, ClipxaiError) else f"{type(err).__name__}: {err}"
        if status == "interrupted":
            fields.setdefault("stop_reason", engine.stop_reason or "interrupted")
        final = None
        if status == "complete":
            with torch.no_grad():
                final = engine.param.image_fn().detach()
        failure = None
        for k, w in enumerate(self.writers):   # every seed's folder gets its status, whatever another's write did
            try:
                w.write_manifest(status=status, compute=_compute(engine), **fields)
                if final is not None:   # after the status: a full disk here leaves a complete run without it
                    save_png(final[k], w.path / fmt.FINAL_IMAGE)
            except Exception as err:  # noqa: BLE001  (raised once every folder is closed)
                failure = failure or err
            finally:
                w.close()
        if failure is not None:
            raise failure


def _slug(name: str) -> str:
    """A model name as a file name (``ViT-B/32`` -> ``ViT-B-32``)."""
    return "".join(c if c.isalnum() or c in "-_.#" else "-" for c in name).strip("-.") or "model"


def _compute(engine: Engine) -> dict:
    """How the encoder ran (precision resolved, compile time once known), for the manifest."""
    encoder = engine.parts.encoder
    info = encoder.describe() if hasattr(encoder, "describe") else {}
    return {**info, "cutout_batch": engine.parts.cutout_batch}


def _unused_name(parent: Path, base: str, seeds: int) -> str:
    """``base``, or ``base-2``, ``base-3``... when a run started in the same second exists."""
    def taken(name: str) -> bool:
        names = [name] if seeds == 1 else [f"{name}-seed0"]
        return any((parent / n).exists() for n in names) or any(parent.glob(f"{name}-seed*"))
    candidate, i = base, 1
    while taken(candidate):
        i += 1
        candidate = f"{base}-{i}"
    return candidate


class Checkpointer(Callback):
    """Saves each seed's resumable state into its run folder at every snapshot boundary and at the end."""

    def __init__(self, recorder: RunRecorder):
        self.recorder = recorder
        self.saved_at = -1

    def save(self, engine: Engine) -> None:
        # The metrics of every step the checkpoint covers reach the file first: a kill right
        # after it must not leave a resume with steps it will never log again.
        for w in self.recorder.writers:
            w.flush_metrics()
        state = engine.state_dict()
        for k, path in enumerate(self.recorder.paths):
            save_torch(seed_state(state, k, len(engine.seeds)), path / CHECKPOINT)
        self.saved_at = engine.steps_done

    def on_start(self, engine: Engine) -> None:
        if self.recorder._resume_path is not None:   # a resume starts from the checkpoint it read
            self.saved_at = engine.steps_done

    def on_step_end(self, engine: Engine, step: Step) -> None:
        done = step.index + 1
        if done % self.recorder.every == 0 or done == engine.steps or engine.stop_reason:
            self.save(engine)

    def on_end(self, engine: Engine, status: str) -> None:
        # A stop asked for between two steps: the last step done still gets its checkpoint.
        if status == "interrupted" and engine.error is None and self.saved_at != engine.steps_done:
            self.save(engine)

    @staticmethod
    def load(path: Path) -> dict:
        """A seed's checkpoint as engine state for a batch of one."""
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
            state = {**ckpt, "augment_generators": [ckpt["augment_generator"]],
                     "ensemble_augment_generators": [[g] for g in ckpt.get("ensemble_augment_generator", [])]}
            for key in ("next_step", "params", "optimizer", "schedule", "objective_state"):
                state[key]  # noqa: B018  (every part must be there)
        except Exception as err:  # noqa: BLE001
            raise RunError(f"The checkpoint {path} cannot be read ({type(err).__name__}); the run cannot be resumed.") from err
        return state


def seed_state(state: dict, k: int, batch: int) -> dict:
    """Row ``k`` of a batched engine state: what one seed's run folder needs to resume alone."""
    def row(t):
        return t[k:k + 1].clone() if torch.is_tensor(t) and t.dim() > 0 and t.shape[0] == batch else t
    opt = state["optimizer"]
    return {
        "next_step": state["next_step"],
        "params": [row(p) for p in state["params"]],
        "optimizer": {"state": {i: {n: row(v) for n, v in s.items()} for i, s in opt["state"].items()},
                      "param_groups": opt["param_groups"]},
        "schedule": state["schedule"],
        "augment_generator": state["augment_generators"][k],
        "ensemble_augment_generator": [states[k] for states in state.get("ensemble_augment_generators", [])],
        "objective_state": {key: row(v) for key, v in state["objective_state"].items()},
        "param_buffers": {key: row(v) for key, v in state.get("param_buffers", {}).items()},
    }


class FiniteGuard(Callback):
    """Stops the run when the objective is NaN or infinite, before that step's update.

    It looks at every step that is logged, recorded or checkpointed (the values are read
    there anyway), naming the term that went non-finite.
    """

    def __init__(self, every: int, snapshot_every: int):
        self.every, self.snapshot_every = every, snapshot_every

    def on_forward(self, engine: Engine, step: Step) -> None:
        i, every = step.index, self.snapshot_every
        if i % self.every and i % every and (i + 1) % every and i != engine.steps - 1:
            return  # neither logged, nor recorded, nor checkpointed: checked at the next such step
        if bool(torch.isfinite(step.total).all()):
            return
        bad = next((v for v in step.total.tolist() if not np.isfinite(v)), float("nan"))
        term = next((name for name, v in step.values.items() if not bool(torch.isfinite(v).all())), None)
        raise NonFiniteLossError(step.index, bad, term=term, kept=rows_for(step.index, self.snapshot_every))
