"""The ascent loop: parameterization -> image -> augment -> CLIP -> objective -> step.

Nothing in the loop branches on the parameterization or the loss. Writing files,
progress and stopping are callbacks (``clipxai.recorder``). K seeds run batched in one
forward pass; each seed gets its own run folder, generators and optimizer rows.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import platform
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from . import __version__
from .augment import Augment, AugmentConfig
from .config import AscendConfig, list_presets, resolve_config  # noqa: F401  (re-exported)
from .errors import ClipxaiError, NonFiniteLossError, RunError
from .models import ClipModel, load_clip
from .objectives import Objective, Step, cosine, load_loss, logexp_cosine, memory, parse_loss_option
from .objectives import range_penalty, spherical, tv
from .params import Parameterization, make_param
from .prompts import EncodedPrompt, encode_prompts, parse_image_prompt, parse_prompts
from .recorder import Callback, Progress, Recorder, save_png
from .runs import Run, RunWriter, default_run_name, load_run, read_manifest

CHECKPOINT = "checkpoint.pt"


def derive_seed(seed: int, purpose: str) -> int:
    """An independent 63-bit seed for one consumer of randomness (init, augment, ...)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{purpose}".encode()).digest()[:8], "little") >> 1


def build_objective(cfg: AscendConfig, prompts: list[EncodedPrompt]) -> Objective:
    """The maximized objective of a config: weighted prompt similarities, penalties, user terms."""
    sim = {"cosine": cosine, "spherical": spherical,
           "logexp": lambda text: logexp_cosine(text, cfg.temperature)}[cfg.similarity]
    obj = Objective()
    for p in prompts:
        obj = obj + p.weight * sim(p.text)
    if cfg.tv:
        obj = obj - cfg.tv * tv(cfg.tv_reduction)
    if cfg.memory:
        obj = obj - cfg.memory * memory()
    if cfg.range:
        obj = obj - cfg.range * range_penalty()
    for option in cfg.losses:
        spec, weight = parse_loss_option(option)
        obj = obj + weight * load_loss(spec)
    return obj


class LRSchedule:
    """constant, cosine (to ``lr_final * lr``) or plateau (drop by a factor when stuck)."""

    def __init__(self, cfg: AscendConfig):
        self.cfg = cfg
        self.factor = 1.0
        self.best = -math.inf
        self.bad = 0

    def lr(self, step: int) -> float:
        cfg = self.cfg
        if cfg.lr_schedule == "cosine":
            t = step / max(cfg.steps - 1, 1)
            return cfg.lr * (cfg.lr_final + (1 - cfg.lr_final) * 0.5 * (1 + math.cos(math.pi * t)))
        return cfg.lr * self.factor

    def observe(self, objective: float) -> None:
        if self.cfg.lr_schedule != "plateau":
            return
        if objective > self.best + 1e-4:
            self.best, self.bad = objective, 0
        else:
            self.bad += 1
            if self.bad >= self.cfg.plateau_patience:
                self.factor *= self.cfg.plateau_factor
                self.bad = 0

    def state_dict(self) -> dict:
        return {"factor": self.factor, "best": self.best, "bad": self.bad}

    def load_state_dict(self, state: dict) -> None:
        self.factor, self.best, self.bad = state["factor"], state["best"], state["bad"]


@dataclass
class StepContext:
    """What callbacks see of one step."""

    index: int
    snapshot: bool
    image: torch.Tensor
    total: torch.Tensor                 # (K,) objective per seed
    values: dict[str, torch.Tensor]     # term name -> (K,)
    prompt_similarities: torch.Tensor   # (K, P) cosine of views to each prompt
    grad_norms: torch.Tensor            # (K,)
    lr: float


class Engine:
    """One ascent of K seeds. Build with a resolved config, then ``run()``."""

    def __init__(self, config: AscendConfig, callbacks: Iterable[Callback] = (),
                 model: ClipModel | None = None, extra_manifest: dict | None = None):
        self.config = config
        self.callbacks = list(callbacks)
        self.model = model
        self.extra_manifest = extra_manifest or {}
        self.start_step = 0
        self.writers: list[RunWriter] = []
        self.steps_done = 0
        self._stop_reason: str | None = None

    # -- setup --------------------------------------------------------------------------
    def prepare(self) -> None:
        """Everything that can fail on bad input, before any folder is created."""
        cfg = self.config
        text_prompts = parse_prompts(cfg.prompt)
        image_prompts = [parse_image_prompt(s) for s in cfg.image_prompts]
        if not any(p.weight > 0 for p in text_prompts + image_prompts):
            raise ClipxaiError(f"The prompt '{cfg.prompt}' has no positive weight, so there is nothing to ascend toward.")
        if self.model is None:
            self.model = load_clip(cfg.model, cfg.device)
        self.device = self.model.device
        self.prompts = encode_prompts(self.model, text_prompts + image_prompts, normalize_images=cfg.normalize)
        self.objective = build_objective(cfg, self.prompts)
        self.prompt_matrix = torch.stack([p.embedding for p in self.prompts])  # (P, D)
        seeds = [cfg.seed + i for i in range(cfg.seeds)]
        self.seeds = seeds
        init_gens = [torch.Generator().manual_seed(derive_seed(s, "init")) for s in seeds]
        self.aug_gens = [torch.Generator().manual_seed(derive_seed(s, "augment")) for s in seeds]
        r = self.model.input_resolution
        width, height = cfg.size or (r, r)
        self.param: Parameterization = make_param(
            cfg.param, batch=len(seeds), size=(height, width), device=self.device, generators=init_gens,
            sigma=cfg.sigma, mean=cfg.init_mean, clamp=cfg.clamp, prompt=cfg.prompt,
            **({"tint": cfg.init_tint} if cfg.init_tint else {}), **cfg.param_options)
        self.augment = Augment(AugmentConfig(cfg.cutouts, cfg.cut_min, cfg.cut_max, cfg.jitter,
                                             cfg.aug_noise, cfg.augment_fixed), r, self.aug_gens)
        self.optimizer = self._make_optimizer()
        self.schedule = LRSchedule(cfg)
        self.state: dict = {"normalize": cfg.normalize}
        self.hook_names = [] if cfg.activations == "none" else self.model.hook_points(cfg.hooks)
        if cfg.activations != "none" and not self.hook_names:
            raise ClipxaiError(f"--hooks '{cfg.hooks}' matches no module of {self.model.name}.")
        self._check_objective()

    def _make_optimizer(self) -> torch.optim.Optimizer:
        cfg, params = self.config, self.param.params
        if cfg.optimizer == "adam":
            return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)

    def _check_objective(self) -> None:
        """Evaluate every term once on the initial image so a broken user term fails early.

        The augmentation generators are restored afterwards: step 0 draws what it would have.
        """
        states = [g.get_state() for g in self.aug_gens]
        try:
            with torch.no_grad():
                self.objective(self._forward(0, state={"normalize": self.config.normalize}))
        finally:
            for g, s in zip(self.aug_gens, states):
                g.set_state(s)

    def _forward(self, index: int, state: dict | None = None) -> Step:
        image = self.param.image_fn()
        views = self.augment(image)
        k = image.shape[0]
        feats = self.model.encode_image(views, normalize=self.config.normalize).view(k, -1, self.model.embed_dim)
        embeds = feats / feats.norm(dim=-1, keepdim=True)
        return Step(index=index, image=image, views=views, features=feats, embeds=embeds,
                    prompts=self.prompts, model=self.model, param=self.param,
                    state=self.state if state is None else state)

    def _create_runs(self) -> None:
        cfg = self.config
        base = cfg.name or _unused_name(Path(cfg.out), default_run_name(cfg.prompt), cfg.seeds)
        n_rows = (cfg.steps + cfg.snapshot_every - 1) // cfg.snapshot_every
        with torch.no_grad():  # one probe of every array's shape, shared by all seeds
            image = self.param.image_fn().detach()
            feats, acts = Recorder([]).snapshot_inputs(self, image)
        probe = (image, feats, acts, self.param.latent())
        for seed in self.seeds:
            name = base if cfg.seeds == 1 else f"{base}-seed{seed}"
            seed_cfg = AscendConfig.from_dict({**cfg.to_dict(), "seed": seed, "seeds": 1, "name": name})
            writer = RunWriter.create(cfg.out, name, self._manifest(seed_cfg))
            self.writers.append(writer)
            self._allocate(writer, n_rows, *probe)
            writer.write_manifest()

    def _manifest(self, cfg: AscendConfig) -> dict:
        from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

        versions = {"clipxai": __version__, "torch": torch.__version__, "numpy": np.__version__,
                    "python": platform.python_version()}
        with contextlib.suppress(PackageNotFoundError):
            versions["clip"] = version("clip-anytorch")
        return {
            "prompt": cfg.prompt,
            "prompts": [p.prompt.to_dict() for p in self.prompts],
            "objective": self.objective.name,
            "terms": self.objective.term_names(),
            "seed": cfg.seed,
            "group": {"seeds": self.seeds, "name": self.config.name or None} if self.config.seeds > 1 else None,
            "config": cfg.to_dict(),
            "model": self.model.describe(),
            "param": self.param.info,
            "device": str(self.device),
            "versions": versions,
            "hooks": self.hook_names,
            "steps_total": cfg.steps,
            "snapshot_semantics": "row i is step steps[i]: the image CLIP saw, before that step's update",
            **self.extra_manifest,
        }

    def _allocate(self, w: RunWriter, rows: int, image: torch.Tensor, feats: torch.Tensor,
                  acts: dict, latent: torch.Tensor) -> None:
        cfg = self.config
        _, c, h, wd = image.shape
        w.allocate("steps", rows, (), "int64", "optimization step of each snapshot")
        w.allocate("images", rows, (c, h, wd), "float16", "image as given to CLIP, before normalization, raw values")
        w.allocate("embeddings", rows, (feats.shape[1],), "float32", "CLIP image features of the un-augmented image (not unit length)")
        w.allocate("latents", rows, tuple(latent.shape[1:]), "float32", f"state of the {cfg.param} parameterization")
        if cfg.record_gradients:
            w.allocate("gradients", rows, (c, h, wd), "float16", "d objective / d image")
        for name, value in acts.items():
            shape = tuple(value.shape[1:])
            kind = "all tokens" if len(shape) == 2 else "mean over tokens"
            w.allocate(f"activations/{name}", rows, shape, "float16" if len(shape) == 2 else "float32",
                       f"output of {name} on the un-augmented image, {kind}")

    # -- checkpoints ----------------------------------------------------------------------
    def _checkpoint_state(self, next_step: int, k: int) -> dict:
        """Everything needed to continue seed row ``k`` bit-identically."""
        def row(t):
            return t[k:k + 1].clone() if torch.is_tensor(t) and t.dim() > 0 and t.shape[0] == len(self.seeds) else t
        opt = self.optimizer.state_dict()
        opt_state = {i: {name: row(v) for name, v in s.items()} for i, s in opt["state"].items()}
        objective_state = {key: row(v) for key, v in self.state.items()
                           if torch.is_tensor(v) and not key.startswith("_")}
        return {
            "next_step": next_step,
            "params": [row(p.detach()) for p in self.param.params],
            "optimizer": {"state": opt_state, "param_groups": opt["param_groups"]},
            "schedule": self.schedule.state_dict(),
            "augment_generator": self.aug_gens[k].get_state(),
            "objective_state": objective_state,
        }

    def save_checkpoints(self, next_step: int) -> None:
        for k, w in enumerate(self.writers):
            tmp = w.path / (CHECKPOINT + ".tmp")
            torch.save(self._checkpoint_state(next_step, k), tmp)
            tmp.replace(w.path / CHECKPOINT)

    def load_checkpoint(self, path: Path) -> None:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001
            raise RunError(f"The checkpoint {path} cannot be read ({type(err).__name__}); the run cannot be resumed.") from err
        with torch.no_grad():
            for p, saved in zip(self.param.params, ckpt["params"]):
                p.copy_(saved.to(p.device))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["schedule"])
        self.aug_gens[0].set_state(ckpt["augment_generator"])
        self.state.update({k: v.to(self.device) for k, v in ckpt["objective_state"].items()})
        self.start_step = int(ckpt["next_step"])

    # -- the loop -------------------------------------------------------------------------
    def request_stop(self, reason: str = "requested") -> None:
        """Finish the current step, then stop cleanly (status: interrupted)."""
        self._stop_reason = reason

    def _emit(self, event: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, event)(self, *args)

    def run(self) -> list[Run]:
        if not self.writers:
            self.prepare()
            self._create_runs()
        cfg = self.config
        recorder = Recorder(self.writers)
        if self.start_step:
            recorder.time_offset = self._previous_time()
        self.callbacks = [recorder] + ([] if cfg.quiet else [Progress()]) + self.callbacks
        status, error = "complete", None
        self.steps_done = self.start_step
        with _signals_stop(self):
            self._emit("on_start")
            try:
                for index in range(self.start_step, cfg.steps):
                    if self._stop_reason:
                        break
                    self._step(index)
                    self.steps_done = index + 1
                    if self.steps_done % cfg.snapshot_every == 0 or self.steps_done == cfg.steps or self._stop_reason:
                        self.save_checkpoints(self.steps_done)
                if self.steps_done < cfg.steps:
                    status = "interrupted"
            except NonFiniteLossError as err:
                status, error = "failed", err
            except BaseException as err:
                status = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
                self._finish(status, f"{type(err).__name__}: {err}")
                raise
        self._finish(status, str(error) if error else None)
        if error:
            error.run_paths = [w.path for w in self.writers]
            raise error
        return [load_run(w.path) for w in self.writers]

    def _step(self, index: int) -> None:
        cfg = self.config
        snapshot = index % cfg.snapshot_every == 0
        lr = self.schedule.lr(index)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        step = self._forward(index)
        if snapshot and step.image.requires_grad and not step.image.is_leaf:
            step.image.retain_grad()
        total, values = self.objective(step)
        loss = -total.sum()
        if not torch.isfinite(loss):
            bad = next((v for v in total.tolist() if not math.isfinite(v)), float("nan"))
            raise NonFiniteLossError(index, bad)
        loss.backward()
        with torch.no_grad():
            sims = (step.embeds.detach() @ self.prompt_matrix.T).mean(dim=1)          # (K, P)
            grad_sq = sum(p.grad.flatten(1).pow(2).sum(1) for p in self.param.params if p.grad is not None)
            grad_norms = torch.as_tensor(grad_sq).sqrt() if torch.is_tensor(grad_sq) else torch.zeros(len(self.seeds))
        ctx = StepContext(index, snapshot, step.image, total.detach(), {k: v.detach() for k, v in values.items()},
                          sims, grad_norms, lr)
        self._emit("on_backward", ctx)
        self.optimizer.step()
        if cfg.lr_schedule == "plateau":
            self.schedule.observe(float(total.detach().mean()))
        self._emit("on_step_end", ctx)

    def _previous_time(self) -> float:
        metrics = load_run(self.writers[0].path).metrics()
        return float(metrics[-1].get("time", 0.0)) if metrics else 0.0

    def _finish(self, status: str, error: str | None) -> None:
        with torch.no_grad():
            final = self.param.image_fn().detach()
        for k, w in enumerate(self.writers):
            if status == "complete":
                save_png(final[k], w.path / "final.png")
            every = self.config.snapshot_every
            fields = {"status": status, "steps_done": self.steps_done,
                      "n_snapshots": (self.steps_done + every - 1) // every}
            if error:
                fields["error"] = error
            if status == "interrupted":
                fields["stop_reason"] = self._stop_reason or "interrupted"
            w.close()
            w.write_manifest(**fields)
        self._emit("on_end", status)


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


@contextlib.contextmanager
def _signals_stop(engine: Engine):
    """Ctrl-C / SIGTERM finish the current step and stop cleanly; a second one aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def handler(signum, _frame):
        if engine._stop_reason:
            raise KeyboardInterrupt
        engine.request_stop(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)


# ---------------------------------------------------------------------------------------
# Public API

def ascend(prompt: str | None = None, *, resume: str | Path | None = None,
           callbacks: Iterable[Callback] = (), model_obj: ClipModel | None = None,
           expand: dict | None = None, **options) -> Run | list[Run]:
    """Optimize an image toward ``prompt``; returns the Run (a list of Runs when seeds > 1).

    Keywords are the fields of ``AscendConfig`` (the CLI flags with ``_`` for ``-``);
    ``preset`` fills the rest. ``resume=RUN`` continues an interrupted run (``steps=`` may
    extend it). ``model_obj`` passes an already loaded ``ClipModel`` (notebooks, tests).
    ``expand={"n": 2, "model": ..., "base_url": ...}`` replaces the prompt by LLM
    expansions (weighted equally) before anything is created.
    """
    if resume is not None:
        return _resume(Path(resume), callbacks, model_obj, options)
    prompt = prompt if prompt is not None else ""
    extra = {}
    if expand:
        prompt, extra["expansion"] = _expand(prompt, expand)
    cfg = resolve_config(prompt, options)
    runs = Engine(cfg, callbacks, model=model_obj, extra_manifest=extra).run()
    return runs[0] if cfg.seeds == 1 else runs


def _expand(prompt: str, options: dict) -> tuple[str, dict]:
    """The weighted prompt made of LLM expansions, and what run.json records about them."""
    from .expand import endpoint_info, expand_prompt  # noqa: PLC0415

    parse_prompts(prompt)  # an empty prompt fails here, before any request
    given = {k: v for k, v in options.items() if v is not None and k != "n"}
    texts = expand_prompt(prompt, n=int(options.get("n", 1)), **given)
    escaped = [t.replace(":", "\\:").replace("|", "\\|") for t in texts]
    info = {"original": prompt, "expansions": texts,
            **endpoint_info(given.get("base_url"), given.get("model"))}
    return "|".join(escaped), info


def _resume(path: Path, callbacks, model_obj, options) -> Run:
    manifest = read_manifest(path)
    if "config" not in manifest:
        raise RunError(f"The manifest of {path} has no config, so the run cannot be resumed.")
    if not (path / CHECKPOINT).is_file():
        raise RunError(f"{path} has no {CHECKPOINT} to resume from.")
    allowed = {"steps", "quiet", "device"}
    given = {k for k, v in options.items() if v is not None}
    if given - allowed:
        raise ClipxaiError(f"Only --steps, --device and --quiet can change on resume (got {', '.join(sorted(given - allowed))}).")
    cfg = AscendConfig.from_dict(manifest["config"])
    for key in given:
        setattr(cfg, key, options[key])
    from .config import validate  # noqa: PLC0415
    validate(cfg)
    if manifest.get("status") == "complete" and cfg.steps <= manifest.get("steps_done", 0):
        raise RunError(f"{path} is already complete at {manifest.get('steps_done')} steps; pass a larger --steps to continue it.")
    engine = Engine(cfg, callbacks, model=model_obj)
    engine.prepare()
    engine.load_checkpoint(path / CHECKPOINT)
    writer = RunWriter.reopen(path)
    writer.manifest["config"]["steps"] = cfg.steps
    writer.manifest["steps_total"] = cfg.steps
    writer.grow((cfg.steps + cfg.snapshot_every - 1) // cfg.snapshot_every)
    writer.truncate_metrics(engine.start_step - 1)
    writer.write_manifest(status="running", n_snapshots=(engine.start_step + cfg.snapshot_every - 1) // cfg.snapshot_every,
                          steps_done=engine.start_step, resumed_at=engine.start_step)
    engine.writers = [writer]
    return engine.run()[0]
