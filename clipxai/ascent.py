"""From a config to a finished run: build the engine's parts, attach the callbacks, run.

``ascend()`` is the public entry point (the CLI's ``ascend`` calls it too). Everything that
can fail on bad input — the prompt, the model, the parameterization and its options, every
term evaluated once — fails in ``build`` before any folder is created.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path
from typing import Iterable

import torch

from .augment import Augment
from .budget import check_step_memory
from .config import AscendConfig, resolve_config, validate
from .engine import Callback, Engine, LRSchedule, Parts
from .errors import ClipxaiError, NonFiniteLossError, RunError, TermError
from .models import ClipModel, load_clip
from .objectives import Objective, cosine, load_term, logexp_cosine, memory, parse_term_option
from .objectives import range_penalty, spherical, tv
from .params import make_param
from .prompts import EncodedPrompt, encode_prompts, parse_image_prompt, parse_prompts
from .recorder import CHECKPOINT, Checkpointer, FiniteGuard, Progress, RunRecorder
from .runs import Run, is_disk_full, is_locked, load_run, read_manifest
from .seeding import generator


def build_objective(cfg: AscendConfig, prompts: list[EncodedPrompt]) -> Objective:
    """The maximized objective of a config: weighted prompt similarities, penalties, extra terms."""
    o = cfg.objective
    sim = {"cosine": cosine, "spherical": spherical,
           "logexp": lambda text: logexp_cosine(text, o.temperature)}[o.similarity]
    obj = Objective()
    for p in prompts:
        obj = obj + p.weight * sim(p.text)
    if o.tv:
        obj = obj - o.tv * tv(o.tv_reduction)
    if o.memory:
        obj = obj - o.memory * memory()
    if o.range:
        obj = obj - o.range * range_penalty()
    for option in o.terms:
        spec, weight = parse_term_option(option)
        obj = obj + weight * load_term(spec)
    return obj


def build(cfg: AscendConfig, model: ClipModel | None = None) -> Parts:
    """Every part of the ascent a config describes, checked; nothing is written."""
    terms = cfg.objective.terms
    text_prompts = parse_prompts(cfg.prompt) if cfg.prompt.strip() or not terms else []  # terms alone need none
    image_prompts = [parse_image_prompt(s) for s in cfg.objective.image_prompts]
    if not terms and not any(p.weight > 0 for p in text_prompts + image_prompts):
        raise ClipxaiError(f"The prompt '{cfg.prompt}' has no positive weight, so there is nothing to ascend toward.")
    model = model or load_clip(cfg.model, cfg.device)
    prompts = encode_prompts(model, text_prompts + image_prompts, normalize_images=cfg.normalize,
                             full_context=cfg.objective.text_context == "full")
    seeds = [cfg.seed + i for i in range(cfg.seeds)]
    r = model.input_resolution
    width, height = cfg.size or (r, r)
    check_step_memory(model, seeds=len(seeds), size=(height, width), cutouts=cfg.augment.cutouts,
                      cutout_batch=cfg.compute.cutout_batch, normalize=cfg.normalize)
    param = make_param(cfg.param.name, batch=len(seeds), size=(height, width), device=model.device,
                       generators=[generator(s, "init") for s in seeds], prompt=cfg.prompt, **cfg.param.options)
    augment = Augment(cfg.augment, r, [generator(s, "augment") for s in seeds])
    o = cfg.optim
    kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}.get(o.optimizer)
    optimizer = (kind(param.params, lr=o.lr, weight_decay=o.weight_decay) if kind else
                 torch.optim.SGD(param.params, lr=o.lr, momentum=0.9, weight_decay=o.weight_decay))
    schedule = LRSchedule(o.schedule, o.lr, o.steps, o.lr_final, o.plateau_patience, o.plateau_factor)
    parts = Parts(model, prompts, build_objective(cfg, prompts), param, augment, optimizer, schedule,
                  seeds, o.steps, cfg.normalize, cfg.compute.cutout_batch)
    _check_objective(parts)
    return parts


def _check_objective(parts: Parts) -> None:
    """Evaluate every term once on the initial image, so a broken term fails before any folder exists.

    The augmentation generators are restored afterwards: step 0 draws what it would have.
    """
    engine = Engine(parts)
    states = [g.get_state() for g in parts.augment.generators]
    try:
        with torch.no_grad():
            parts.objective(engine.forward(0, state={"normalize": parts.normalize}))
    finally:
        for g, s in zip(parts.augment.generators, states):
            g.set_state(s)


def prepare(cfg: AscendConfig, model: ClipModel | None = None, callbacks: Iterable[Callback] = (),
            quiet: bool = True, extra_manifest: dict | None = None) -> tuple[Engine, RunRecorder]:
    """An engine for ``cfg`` with the standard callbacks, ready to ``run()`` (nothing written yet).

    The callbacks, in order: the finite guard, the run recorder, progress (unless quiet), the
    caller's, and the checkpointer last (it sees a stop any earlier callback asked for).
    """
    parts = build(cfg, model)
    recorder = RunRecorder(cfg, parts.model, extra_manifest=extra_manifest)
    guard = FiniteGuard(cfg.record.log_every, cfg.record.snapshot_every)
    chain = [guard, recorder, *([] if quiet else [Progress()]), *callbacks, Checkpointer(recorder)]
    return Engine(parts, chain), recorder


def _run(engine: Engine, recorder: RunRecorder) -> list[Run]:
    with _signals_stop(engine):
        try:
            engine.run()
        except (NonFiniteLossError, TermError) as err:
            err.run_paths = recorder.paths
            raise
        except OSError as err:
            if not is_disk_full(err) or not recorder.paths:
                raise
            where = recorder.paths[0] if len(recorder.paths) == 1 else recorder.paths[0].parent
            if all((p / CHECKPOINT).is_file() for p in recorder.paths):
                then = f"can be resumed once there is room: clipxai ascend --resume {recorder.paths[0]}"
            else:
                then = "cannot be resumed (no checkpoint was written yet); free some space and start it again"
            raise RunError(f"The disk holding {where} is full ({err.strerror}); the run stopped at step "
                           f"{engine.steps_done} and {then}.") from err
    return [load_run(p) for p in recorder.paths]


def ascend(prompt: str | None = None, *, resume: str | Path | None = None,
           callbacks: Iterable[Callback] = (), model_obj: ClipModel | None = None,
           expand: dict | None = None, quiet: bool = False, **options) -> list[Run]:
    """Optimize an image toward ``prompt``; returns the runs made, one per seed.

    Keywords are the flat option names of the CLI (``steps``, ``lr``, ``cutouts``, ``sigma``,
    ``param_options={...}`` ...); ``preset`` fills the rest. ``resume=RUN`` continues an
    interrupted run (``steps=`` may extend it). ``model_obj`` passes an already loaded
    ``ClipModel`` (notebooks, tests). ``expand={"n": 2, "model": ..., "base_url": ...}``
    replaces the prompt by LLM expansions (weighted equally) before anything is created.
    """
    if resume is not None:
        return resume_run(Path(resume), callbacks=callbacks, model_obj=model_obj, quiet=quiet, **options)
    prompt = prompt if prompt is not None else ""
    extra = {}
    if expand:
        prompt, extra["expansion"] = _expand(prompt, expand)
    if model_obj is not None and options.get("model") is None:
        options["model"] = model_obj.name  # the config says which model really ran
    cfg = resolve_config(prompt, options)
    return _run(*prepare(cfg, model_obj, callbacks, quiet, extra))


def _expand(prompt: str, options: dict) -> tuple[str, dict]:
    """The weighted prompt made of LLM expansions, and what run.json records about them."""
    from .expand import DEFAULT_LLM_MODEL, endpoint_info, expand_prompt  # noqa: PLC0415

    parse_prompts(prompt)  # an empty prompt fails here, before any request
    given = {k: v for k, v in options.items() if v is not None and k != "n"}
    texts = expand_prompt(prompt, n=int(options.get("n", 1)), **given)
    escaped = [t.replace(":", "\\:").replace("|", "\\|") for t in texts]
    info = {"original": prompt, "expansions": texts,
            **endpoint_info(given.get("base_url"), given.get("model") or DEFAULT_LLM_MODEL)}
    return "|".join(escaped), info


RESUMABLE = ("steps", "device")


def resume_run(path: Path, *, callbacks: Iterable[Callback] = (), model_obj: ClipModel | None = None,
               quiet: bool = False, **options) -> list[Run]:
    """Continue an interrupted run (or extend a complete one with a larger ``steps``)."""
    manifest = read_manifest(path)
    if is_locked(path):
        raise RunError(f"{path} is being written by another process right now; wait for it to end or stop it first.")
    if "config" not in manifest:
        raise RunError(f"The manifest of {path} has no config, so the run cannot be resumed.")
    if not (path / CHECKPOINT).is_file():
        raise RunError(f"{path} has no {CHECKPOINT} to resume from.")
    given = {k for k, v in options.items() if v is not None}
    if given - set(RESUMABLE):
        raise ClipxaiError(f"Only --steps, --device and --quiet can change on resume (got {', '.join(sorted(given - set(RESUMABLE)))}).")
    # One folder holds one seed: it resumes alone, whatever batch it was made in.
    changes = {"seed": manifest.get("seed", 0), "seeds": 1, **{k: options[k] for k in given}}
    cfg = AscendConfig.from_dict(manifest["config"]).replace(**changes)
    validate(cfg)
    done = manifest.get("steps_done", 0)
    if cfg.optim.steps <= done:
        state = "already complete at" if manifest.get("status") == "complete" else f"{manifest.get('status')} after"
        raise RunError(f"{path} is {state} {done} steps; pass a --steps larger than {done} to continue it.")
    engine, recorder = prepare(cfg, model_obj, callbacks, quiet)
    recorder.resume_from(path)
    state = Checkpointer.load(path / CHECKPOINT)
    shapes = [tuple(p.shape) for p in engine.param.params]
    if [tuple(t.shape) for t in state["params"]] != shapes:
        raise RunError(f"The checkpoint {path / CHECKPOINT} does not fit this run (its parameters have other shapes); "
                       f"it was not written by this run.")
    try:
        engine.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError, TypeError) as err:
        raise RunError(f"The checkpoint {path / CHECKPOINT} does not fit this run ({type(err).__name__}); "
                       f"it was not written by this run.") from err
    return _run(engine, recorder)


@contextlib.contextmanager
def _signals_stop(engine: Engine):
    """Ctrl-C / SIGTERM finish the current step and stop cleanly; a second one aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def handler(signum, _frame):
        if engine.stop_reason:
            raise KeyboardInterrupt
        engine.request_stop(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)
