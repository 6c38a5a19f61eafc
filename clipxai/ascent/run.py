"""From a config to a finished run: build the engine's parts, attach the callbacks, run.

``ascend()`` is the public entry point (the CLI's ``ascend`` calls it too). Everything that
can fail on bad input — the prompt, the model, the parameterization and its options, every
term evaluated once — fails in ``build`` before any folder is created.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Iterable

import torch

from clipxai.ascent.ablation import build_ablation
from clipxai.ascent.augment import Augment
from clipxai.ascent.budget import check_step_memory
from clipxai.ascent.compute import Encoder, check_precision, set_deterministic
from clipxai.ascent.config import AscendConfig, model_specs, resolve_config, validate
from clipxai.ascent.engine import Callback, Engine, Member, Parts
from clipxai.ascent.kinds import check_api_keywords
from clipxai.ascent.progress import Progress
from clipxai.ascent.recorder import CHECKPOINT, Checkpointer, FiniteGuard, RunRecorder
from clipxai.ascent.schedule import LRSchedule
from clipxai.errors import ClipxaiError, DiskFullError, NonFiniteLossError, RunError, TermError
from clipxai.models.base import ClipModel
from clipxai.models.load import load_clip
from clipxai.params.base import make_param
from clipxai.params.pixels import load_init_image
from clipxai.prompts import EncodedPrompt, encode_prompts, parse_image_prompt, parse_prompts
from clipxai.runs.format import RUN_FILE
from clipxai.runs.load import load_run
from clipxai.runs.reader import Run, read_manifest
from clipxai.runs.writer import is_disk_full, is_locked, read_resumable
from clipxai.terms.accent import accent, parse_layers
from clipxai.terms.base import Objective
from clipxai.terms.features import feature_terms
from clipxai.terms.image import range_penalty, tv
from clipxai.terms.load import load_term, parse_term_option
from clipxai.terms.prompt import cosine, logexp_cosine, memory, parse_style, spherical, style
from clipxai.util.seeding import generator


def build_objective(cfg: AscendConfig, prompts: list[EncodedPrompt],
                    members: list[tuple[str, float]] | None = None, models: list[ClipModel] | None = None) -> Objective:
    """The maximized objective of a config: weighted prompt similarities, penalties, extra terms.

    ``members`` (name, weight) of an ensemble: each model scores every prompt, times its weight,
    and its terms are named ``<term>@<model>``. With the ``models`` themselves, a feature term
    (neuron, channel, direction, head) reads every model that has its layer, or the one named
    with ``@MODEL``.
    """
    o = cfg.objective
    sim = {"cosine": cosine, "spherical": spherical,
           "logexp": lambda text, **kw: logexp_cosine(text, o.temperature, **kw)}[o.similarity]
    obj = Objective()
    members = members or [("", 1.0)]
    for i, (name, weight) in enumerate(members):
        at = name if len(members) > 1 else None
        for p in prompts:
            obj = obj + (weight * p.weight if at else p.weight) * sim(p.text, member=i, at=at)
    if o.tv:
        obj = obj - o.tv * tv(o.tv_reduction)
    if o.memory:
        obj = obj - o.memory * memory()
    if o.range:
        obj = obj - o.range * range_penalty()
    for option in o.terms:
        spec, weight = parse_term_option(option)
        feature = feature_terms(spec, list(zip(models, [n for n, _ in members]))) if models else None
        obj = obj + weight * (feature if feature is not None else load_term(spec))
    if o.style:  # a style prompt, scored apart from the content prompt
        text, weight = parse_style(o.style)
        obj = obj + weight * style(text)
    if o.accentuate:  # feature accentuation: stay close to the start image in the model's activations
        start = load_init_image(o.accentuate, _shape(cfg, models))
        obj = obj - o.accent_weight * accent(start, parse_layers(o.accent_layers))
    return obj


def _shape(cfg: AscendConfig, models: list[ClipModel] | None) -> tuple[int, int]:
    """The run's image shape (height, width): ``--size`` or the first model's input."""
    if cfg.size:
        return int(cfg.size[1]), int(cfg.size[0])
    r = models[0].input_resolution if models else load_clip(model_specs(cfg.model)[0][0], cfg.device).input_resolution
    return r, r


def _members(cfg: AscendConfig, models: ClipModel | list[ClipModel] | None) -> list[tuple[ClipModel, float, str]]:
    """The ensemble's models (loaded, or the ones given), their weights and names."""
    specs = model_specs(cfg.model)
    given = [models] if isinstance(models, ClipModel) else list(models or [])
    if given and len(given) != len(specs):
        raise ClipxaiError(f"{len(given)} model object(s) were given for {len(specs)} --model value(s).")
    loaded = given or [load_clip(spec, cfg.device) for spec, _ in specs]
    names = [m.name for m in loaded]
    names = [n if names.count(n) == 1 else f"{n}#{i + 1}" for i, n in enumerate(names)]
    if len({m.device for m in loaded}) > 1:
        raise ClipxaiError("The models of an ensemble must be on one device.")
    return [(m, w, n) for m, (_, w), n in zip(loaded, specs, names)]


def build(cfg: AscendConfig, model: ClipModel | list[ClipModel] | None = None) -> Parts:
    """Every part of the ascent a config describes, checked; nothing is written."""
    terms = cfg.objective.terms
    text_prompts = parse_prompts(cfg.prompt) if cfg.prompt.strip() or not terms else []  # terms alone need none
    image_prompts = [parse_image_prompt(s) for s in cfg.objective.image_prompts]
    if not terms and not any(p.weight > 0 for p in text_prompts + image_prompts):
        raise ClipxaiError(f"The prompt '{cfg.prompt}' has no positive weight, so there is nothing to ascend toward.")
    c = cfg.compute
    set_deterministic(c.deterministic)  # before any model reaches a GPU (cuBLAS reads its setting then)
    chosen = _members(cfg, model)
    model = chosen[0][0]
    check_precision(c.precision, model.device, c.force_precision)
    seeds = [cfg.seed + i for i in range(cfg.seeds)]
    r = model.input_resolution
    width, height = cfg.size or (r, r)
    check_step_memory([m for m, _, _ in chosen], seeds=len(seeds), shape=(height, width),
                      cutouts=cfg.augment.cutouts, cutout_batch=c.cutout_batch, normalize=cfg.normalize,
                      precision=c.precision, checkpoint_activations=c.checkpoint_activations)
    members = []
    for i, (m, weight, name) in enumerate(chosen):
        prompts = encode_prompts(m, text_prompts + image_prompts, normalize_images=cfg.normalize,
                                 full_context=cfg.objective.text_context == "full")
        purpose = "augment" if i == 0 else f"augment:{i}"   # the first model's draws are a single run's
        augment = Augment(cfg.augment, m.input_resolution, [generator(s, purpose) for s in seeds])
        encoder = Encoder(m, cfg.normalize, c.precision, c.compile, c.checkpoint_activations)
        members.append(Member(m, prompts, augment, encoder, weight, name))
    ablation = build_ablation(cfg, [(m.model, m.name) for m in members], (height, width))
    param = make_param(cfg.param.name, batch=len(seeds), shape=(height, width), device=model.device,
                       generators=[generator(s, "init") for s in seeds], prompt=cfg.prompt, **cfg.param.options)
    o = cfg.optim
    kind = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}.get(o.optimizer)
    optimizer = (kind(param.params, lr=o.lr, weight_decay=o.weight_decay) if kind else
                 torch.optim.SGD(param.params, lr=o.lr, momentum=0.9, weight_decay=o.weight_decay))
    schedule = LRSchedule(o.schedule, o.lr, o.steps, o.lr_final, o.plateau_patience, o.plateau_factor)
    objective = build_objective(cfg, members[0].prompts, [(m.name, m.weight) for m in members],
                                [m.model for m in members])
    parts = Parts(members, objective, param, optimizer, schedule, seeds, o.steps, cfg.normalize, c.cutout_batch,
                  ablation, batch_invariant=c.batch_invariant)
    _check_objective(parts)
    return parts


def _check_objective(parts: Parts) -> None:
    """Evaluate every term once on the initial image, so a broken term fails before any folder exists.

    The augmentation generators are restored afterwards: step 0 draws what it would have.
    """
    engine = Engine(parts)
    generators = [g for m in parts.members for g in m.augment.generators]
    states = [g.get_state() for g in generators]
    ablation = parts.ablation.applied() if parts.ablation is not None else contextlib.nullcontext()
    try:
        with torch.no_grad(), ablation:  # a few views per image are enough to try every term
            parts.objective(engine.forward(0, state={"normalize": parts.normalize}, max_views=4))
    finally:
        for g, s in zip(generators, states):
            g.set_state(s)


def prepare(cfg: AscendConfig, model: ClipModel | None = None, callbacks: Iterable[Callback] = (),
            quiet: bool = True, extra_manifest: dict | None = None) -> tuple[Engine, RunRecorder]:
    """An engine for ``cfg`` with the standard callbacks, ready to ``run()`` (nothing written yet).

    The callbacks, in order: the finite guard, the run recorder, progress (unless quiet), the
    caller's, and the checkpointer last (it sees a stop any earlier callback asked for).
    """
    parts = build(cfg, model)
    if parts.ablation is not None:  # the components as resolved on each model, and the reference's means
        extra_manifest = {**(extra_manifest or {}), "ablation": parts.ablation.describe()}
    recorder = RunRecorder(cfg, parts.model, extra_manifest=extra_manifest)
    guard = FiniteGuard(cfg.record.log_every, cfg.record.snapshot_every)
    title = cfg.prompt or " ".join(cfg.objective.terms)  # a run of terms alone is named by them
    shown = [] if quiet else [Progress(label=f"{_short(title)} on {parts.model_label}",
                                       next_command=_NextCommand(recorder))]
    chain = [guard, recorder, *shown, *callbacks, Checkpointer(recorder)]
    return Engine(parts, chain), recorder


def _short(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


class _NextCommand:
    """What to run once the run is done (known when its folders are)."""

    def __init__(self, recorder: RunRecorder):
        self.recorder = recorder

    def __str__(self) -> str:
        paths = self.recorder.paths
        if len(paths) == 1:
            return f"clipxai analyze {paths[0]}"
        return "clipxai report " + " ".join(str(p) for p in paths)


def _run(engine: Engine, recorder: RunRecorder) -> list[Run]:
    with _signals_stop(engine):
        try:
            engine.run()
        except (NonFiniteLossError, TermError, KeyboardInterrupt) as err:
            err.run_paths = recorder.paths  # the runs it leaves (the CLI prints them)
            raise
        except OSError as err:
            if not is_disk_full(err) or not recorder.paths:
                raise
            where = recorder.paths[0] if len(recorder.paths) == 1 else recorder.paths[0].parent
            if engine.steps_done >= engine.steps:
                then = "every step is recorded, but not every file of the run could be written"
            elif all((p / CHECKPOINT).is_file() for p in recorder.paths):
                then = f"can be resumed once there is room: clipxai ascend --resume {recorder.paths[0]}"
            else:
                then = "cannot be resumed (no checkpoint was written yet); free some space and start it again"
            stale = [p for p in recorder.paths if _recorded_status(p) == "running"]
            note = (f" ({RUN_FILE} could not be updated and still says running)" if stale else "")
            raise DiskFullError(f"The disk holding {where} is full ({err.strerror}); the run stopped at step "
                                f"{engine.steps_done} and {then}{note}.") from err
    return [load_run(p) for p in recorder.paths]


def _recorded_status(path: Path) -> str | None:
    try:
        return read_manifest(path).get("status")
    except ClipxaiError:
        return None


def ascend(prompt: str | None = None, *, preset: str | None = None, model: str | list[str] | None = None,
           steps: int | None = None, lr: float | None = None, seed: int | None = None, seeds: int | None = None,
           cutouts: int | None = None, param: str | None = None, size: tuple[int, int] | None = None,
           snapshot_every: int | None = None, terms: list[str] | None = None, out: str | Path | None = None,
           name: str | None = None, precision: str | None = None, quiet: bool = False,
           display_every: int | None = None, resume: str | Path | None = None,
           callbacks: Iterable[Callback] = (), model_obj: ClipModel | list[ClipModel] | None = None,
           expand: dict | None = None, **options) -> list[Run]:
    """Optimize an image toward ``prompt``; returns the runs made, one per seed.

    The keywords are the command line's options with ``_`` for ``-``; ``None`` means the
    preset's value. The common ones are named here; every other flat option works too
    (``tv``, ``memory``, ``cut_min``, ``optimizer``, ``sigma``, ``init_tint``, ``cutout_batch``,
    ``param_options={...}``, ... — see ``clipxai.ascent.config.FLAT``), and a misspelt one is refused
    with a suggestion. ``resume=RUN`` continues an interrupted run (``steps=`` may extend it).
    ``model_obj`` passes already loaded ``ClipModel`` object(s) (notebooks, tests).
    ``display_every=N`` shows the image and similarity in place every N steps in a notebook
    (elsewhere the text progress line shows the run).
    ``expand={"n": 2, "model": ..., "base_url": ...}`` replaces the prompt by LLM expansions
    (weighted equally) before anything is created.
    """
    callbacks = check_api_keywords(quiet=quiet, display_every=display_every, resume=resume, callbacks=callbacks,
                                   model_obj=model_obj, expand=expand, out=out)
    named = dict(preset=preset, model=model, steps=steps, lr=lr, seed=seed, seeds=seeds, cutouts=cutouts,
                 param=param, size=size, snapshot_every=snapshot_every, terms=terms, out=out, name=name,
                 precision=precision)
    options = {**{k: v for k, v in named.items() if v is not None}, **options}
    if "out" in options:
        options["out"] = str(options["out"])
    if display_every is not None:
        from clipxai.ascent.notebook import notebook_display  # noqa: PLC0415
        display = notebook_display(display_every)  # None outside a notebook: the progress line shows the run
        callbacks = [*callbacks, display] if display is not None else callbacks
    if resume is not None:
        if prompt or expand:
            raise ClipxaiError("Give either a prompt (and expand=) or resume=RUN, not both: a resumed run keeps its "
                               "prompt.")
        return resume_run(Path(resume), callbacks=callbacks, model_obj=model_obj, quiet=quiet, **options)
    prompt = prompt if prompt is not None else ""
    extra = {}
    if expand:
        prompt, extra["expansion"] = _expand(prompt, expand)
    if model_obj is not None and options.get("model") is None:  # the config says which model really ran
        objs = model_obj if isinstance(model_obj, (list, tuple)) else [model_obj]
        options["model"] = objs[0].name if len(objs) == 1 else [m.name for m in objs]
    cfg = resolve_config(prompt, options)
    rows = -(-cfg.optim.steps // cfg.record.snapshot_every)
    if rows < 3:
        fix = "lower snapshot_every" if cfg.record.snapshot_every > 1 else "run at least 3 steps"
        warnings.warn(f"{cfg.optim.steps} steps with a snapshot every {cfg.record.snapshot_every} record {rows} "
                      f"snapshot(s); the analysis needs at least 3 ({fix}).", stacklevel=2)
    if not quiet:
        print(f"loading {cfg.model if isinstance(cfg.model, str) else ', '.join(cfg.model)} ...",
              file=sys.stderr, flush=True)
    return _run(*prepare(cfg, model_obj, callbacks, quiet, extra))


def _expand(prompt: str, options: dict) -> tuple[str, dict]:
    """The weighted prompt made of LLM expansions, and what run.json records about them."""
    from clipxai.ascent.expand import DEFAULT_LLM_MODEL, endpoint_info, expand_prompt  # noqa: PLC0415

    parse_prompts(prompt)  # an empty prompt fails here, before any request
    given = {k: v for k, v in options.items() if v is not None and k != "n"}
    texts = expand_prompt(prompt, n=int(options.get("n", 1)), **given)
    escaped = [t.replace(":", "\\:").replace("|", "\\|") for t in texts]
    info = {"original": prompt, "expansions": texts,
            **endpoint_info(given.get("base_url"), given.get("model") or DEFAULT_LLM_MODEL)}
    return "|".join(escaped), info


RESUMABLE = ("steps", "device", "force_precision")


def resume_run(path: Path, *, callbacks: Iterable[Callback] = (), model_obj: ClipModel | None = None,
               quiet: bool = False, **options) -> list[Run]:
    """Continue an interrupted run (or extend a complete one with a larger ``steps``)."""
    given = {k for k, v in options.items() if v is not None}
    if given - set(RESUMABLE):
        raise ClipxaiError(f"Only --steps, --device and --quiet can change on resume, with --force-precision "
                           f"where needed (got {', '.join(sorted(given - set(RESUMABLE)))}).")
    manifest = read_resumable(path)
    if is_locked(path):
        raise RunError(f"{path} is being written by another process right now; wait for it to end or stop it first.")
    if "config" not in manifest:
        raise RunError(f"The manifest of {path} has no config, so the run cannot be resumed.")
    # One folder holds one seed: it resumes alone, whatever batch it was made in.
    changes = {"seed": manifest.get("seed", 0), "seeds": 1, **{k: options[k] for k in given}}
    cfg = AscendConfig.from_dict(manifest["config"]).replace(**changes)
    validate(cfg)
    done = manifest.get("steps_done", 0)
    if cfg.optim.steps <= done:
        state = "already complete at" if manifest.get("status") == "complete" else f"{manifest.get('status')} after"
        raise RunError(f"{path} is {state} {done} steps; pass a --steps larger than {done} to continue it.")
    if not (path / CHECKPOINT).is_file():
        raise RunError(f"{path} has no {CHECKPOINT} to resume from.")
    engine, recorder = prepare(cfg, model_obj, callbacks, quiet)
    _check_same_reference(path, manifest, engine.parts.ablation)
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


def _check_same_reference(path: Path, manifest: dict, ablation) -> None:
    """A resumed run ablates with the means it started with: its reference folder holds the same images."""
    before = ((manifest.get("ablation") or {}).get("reference") or {}).get("sha256")
    now = ablation.reference.get("sha256") if ablation is not None else None
    if before != now:
        raise RunError(f"The images of the ablation reference of {path} changed since the run started, so its "
                       f"means would too; restore them to resume the run.")


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
