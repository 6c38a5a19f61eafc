"""The configuration of one ascent, in sections, and the presets that fill it.

An ``AscendConfig`` has one section per part of the loop: ``param`` (what is optimized),
``augment`` (what CLIP sees), ``optim``, ``objective`` and ``record``. Users name options
flat — the CLI flags and ``clipxai.ascend`` keywords (``lr``, ``cutouts``, ``sigma``) — and
``resolve_config`` puts each where it belongs: ``FLAT`` maps a flat name to its section,
and ``PARAM_ALIASES`` maps the long flags of parameterizations to their own option names.
A preset is a dict of flat values plus per-parameterization defaults; what the user gives
overrides it. The resolved config is written to run.json in full (format 2).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from typing import Any

from clipxai.ascent.kinds import check_kinds
from clipxai.errors import ClipxaiError
from clipxai.util.registry import Registry

DEFAULT_MODEL = "ViT-B/32"
DEFAULT_HOOKS = "visual.transformer.resblocks.*"
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "plateau")
SIMILARITIES = ("cosine", "spherical", "logexp")
ACTIVATIONS = ("pooled", "full", "none")
TEXT_CONTEXTS = ("trimmed", "full")
ABLATE_MODES = ("mean", "zero")


@dataclass(frozen=True)
class AugmentConfig:
    """What CLIP sees: ``cutouts`` random crops per image, jittered and noised (0: the image itself)."""

    cutouts: int = 8
    cut_min: float = 0.5      # smallest cutout side, as a fraction of the image side
    cut_max: float = 1.0
    jitter: float = 0.05      # extra random shift, fraction of the image side
    noise: float = 0.02       # std of additive Gaussian noise on each view
    fixed: bool = False       # reuse the same cutouts every step (a control condition)


@dataclass
class ParamConfig:
    """The parameterization and exactly the options its factory declares."""

    name: str = "pixels"
    options: dict = field(default_factory=dict)


@dataclass
class OptimConfig:
    steps: int = 300
    lr: float = 0.05
    optimizer: str = "adam"
    weight_decay: float = 0.0
    schedule: str = "constant"               # constant | cosine | plateau
    lr_final: float = 0.1                    # cosine: final lr as a fraction of lr
    plateau_patience: int = 50               # plateau: steps without improvement before a drop
    plateau_factor: float = 0.5


@dataclass
class ObjectiveConfig:
    """Maximized: sum of w_i * similarity(prompt_i) - tv - memory - range + extra terms."""

    similarity: str = "cosine"
    temperature: float = 5.0                 # logexp: log(exp(cos / T))
    tv: float = 0.0
    tv_reduction: str = "mean"
    memory: float = 0.0
    range: float = 0.0
    terms: list[str] = field(default_factory=list)           # "spec" or "spec=weight"
    image_prompts: list[str] = field(default_factory=list)   # "file.png" or "file.png:weight"
    text_context: str = "trimmed"            # trimmed (fast) | full (pads to the whole context)
    style: str | None = None                 # "TEXT" or "TEXT:W": a style prompt, its own term style(TEXT)
    accentuate: str | None = None            # an image the pixels start from and stay close to (activations)
    accent_weight: float = 1.0               # weight of the accent term (subtracted)
    accent_layers: str | None = None         # layers it compares, comma-separated (None: the middle block)


@dataclass
class RecordConfig:
    snapshot_every: int = 10
    log_every: int = 1
    hooks: str = DEFAULT_HOOKS
    activations: str = "pooled"              # pooled | full | none
    gradients: bool = True
    frames: bool = False


@dataclass
class ComputeConfig:
    """How the steps are computed; none of it changes what is optimized (at most float rounding)."""

    cutout_batch: int = 0                    # views per encoder pass, gradients accumulated (0: all at once)
    precision: str = "auto"                  # auto (fp32 on CPU, bf16 on CUDA) | fp32 | bf16 | fp16
    force_precision: bool = False            # run bf16/fp16 on a CPU without instructions for them (emulated, slow)
    compile: bool = False                    # torch.compile the image encoder
    checkpoint_activations: bool = False     # recompute the image tower's blocks in backward
    deterministic: bool = False              # deterministic kernels, cuDNN and cuBLAS settings
    batch_invariant: bool = False            # each seed's views in its own encoder pass: per seed, as if alone


@dataclass
class AblationConfig:
    """Components of the image tower ablated for the whole run (``clipxai.ascent.ablation``), as asked for."""

    components: list[str] = field(default_factory=list)   # "head:7:3", "mlp:7", "blocks.7.mlp", ... [@MODEL]
    mode: str = "mean"                       # mean (over the reference) | zero
    reference: str | None = None             # a folder of images; None: fixed noise at the run's size


@dataclass
class AscendConfig:
    """Every choice of an ascent; ``to_dict()`` is what run.json records as ``config``."""

    prompt: str = ""
    preset: str = "default"
    model: str | list[str] = DEFAULT_MODEL   # one CLIP, or an ensemble: ["toy", "toy-b:0.5"]
    device: str = "auto"
    seed: int = 0
    seeds: int = 1                           # K seeds batched in one forward pass
    size: tuple[int, int] | None = None      # (width, height); default: the model's input
    normalize: bool = True                   # CLIP's mean/std input normalization
    out: str = "runs"
    name: str | None = None
    param: ParamConfig = field(default_factory=ParamConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    ablation: AblationConfig = field(default_factory=AblationConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AscendConfig":
        """A config from run.json: format 2 (sections) or format 1 (flat, every run before)."""
        if "optim" not in data:
            data = upgrade_v1(data)
        top = {k: v for k, v in data.items() if k in _TOP and k not in _SECTIONS}
        if top.get("size") is not None:
            top["size"] = tuple(top["size"])
        sections = {name: _make(kind, data.get(name, {})) for name, kind in _SECTIONS.items()}
        return cls(**top, **sections)

    def replace(self, **flat: Any) -> "AscendConfig":
        """A copy with flat options changed (``steps=``, ``seed=``, ``name=`` ...)."""
        data = self.to_dict()
        for key, value in flat.items():
            _set(data, key, value)
        return AscendConfig.from_dict(data)


_SECTIONS = {"param": ParamConfig, "augment": AugmentConfig, "optim": OptimConfig,
             "objective": ObjectiveConfig, "record": RecordConfig, "compute": ComputeConfig,
             "ablation": AblationConfig}
_TOP = {f.name for f in dataclasses.fields(AscendConfig)}


def _make(kind, values: dict):
    names = {f.name for f in dataclasses.fields(kind)}
    return kind(**{k: v for k, v in values.items() if k in names})


# Flat option names (CLI flags, ascend keywords) -> "section.field".
FLAT: dict[str, str] = {
    "param": "param.name", "param_options": "param.options",
    "steps": "optim.steps", "lr": "optim.lr", "optimizer": "optim.optimizer",
    "weight_decay": "optim.weight_decay", "lr_schedule": "optim.schedule", "lr_final": "optim.lr_final",
    "plateau_patience": "optim.plateau_patience", "plateau_factor": "optim.plateau_factor",
    "cutouts": "augment.cutouts", "cut_min": "augment.cut_min", "cut_max": "augment.cut_max",
    "jitter": "augment.jitter", "aug_noise": "augment.noise", "augment_fixed": "augment.fixed",
    "similarity": "objective.similarity", "temperature": "objective.temperature", "tv": "objective.tv",
    "tv_reduction": "objective.tv_reduction", "memory": "objective.memory", "range": "objective.range",
    "terms": "objective.terms", "losses": "objective.terms", "image_prompts": "objective.image_prompts",
    "text_context": "objective.text_context", "style": "objective.style", "accentuate": "objective.accentuate",
    "accent_weight": "objective.accent_weight", "accent_layers": "objective.accent_layers",
    "snapshot_every": "record.snapshot_every", "log_every": "record.log_every", "hooks": "record.hooks",
    "activations": "record.activations", "gradients": "record.gradients", "record_gradients": "record.gradients",
    "frames": "record.frames",
    "cutout_batch": "compute.cutout_batch", "precision": "compute.precision", "compile": "compute.compile",
    "checkpoint_activations": "compute.checkpoint_activations", "deterministic": "compute.deterministic",
    "batch_invariant": "compute.batch_invariant", "force_precision": "compute.force_precision",
    "ablate": "ablation.components", "ablate_mode": "ablation.mode", "ablate_reference": "ablation.reference",
}
FLAT.update({name: name for name in _TOP - set(_SECTIONS)})

# Long flags that are aliases of a parameterization's own options (``--sigma`` is ``-P sigma=``).
PARAM_ALIASES: dict[str, str] = {
    "sigma": "sigma", "init_mean": "mean", "init_tint": "tint", "clamp": "clamp", "init_image": "init_image",
    "vqgan": "vqgan", "vqgan_config": "vqgan_config", "vqgan_checkpoint": "vqgan_checkpoint",
    "noise_factor": "noise_factor", "vqgan_init": "init", "vqgan_quantize": "quantize",
    "cvae": "cvae", "cvae_text": "cvae_text", "cvae_optimize_condition": "cvae_optimize_condition",
    "reference": "reference", "vae": "vae",
}


def model_specs(model: str | list[str]) -> list[tuple[str, float]]:
    """``"toy"`` or ``["toy", "toy-b:0.5"]`` -> [(spec, weight)]; a trailing ``:number`` is a weight."""
    specs = [model] if isinstance(model, str) else list(model)
    if not specs:
        raise ClipxaiError("--model needs at least one model.")
    out = []
    for spec in specs:
        head, sep, tail = str(spec).rpartition(":")
        try:
            weight = float(tail) if sep and head else None
        except ValueError:
            weight = None
        if weight is None:
            out.append((str(spec).strip(), 1.0))
            continue
        if not math.isfinite(weight) or weight <= 0:
            raise ClipxaiError(f"The weight of --model '{spec}' must be a positive number.")
        out.append((head.strip(), weight))
    return out


def _set(data: dict, flat_name: str, value: Any) -> None:
    path = FLAT[flat_name].split(".")
    target = data
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value


def upgrade_v1(flat: dict) -> dict:
    """A format-1 (flat) config as format-2 sections, with the options the v1 engine really passed."""
    data: dict = {}
    for key, value in flat.items():
        if key in FLAT:
            _set(data, key, value)
    name = flat.get("param", "pixels")
    options = dict(flat.get("param_options") or {})
    if name == "pixels":  # v1 gave every pixel option to pixels, sigma alone to fourier
        options = {"mean": flat.get("init_mean", 0.0), "sigma": flat.get("sigma", 0.01),
                   "clamp": flat.get("clamp", False), **({"tint": flat["init_tint"]} if flat.get("init_tint") else {}),
                   **options}
    elif name == "fourier":
        options = {"sigma": flat.get("sigma", 0.01), **options}
    data["param"] = {"name": name, "options": options}
    return data


# ---------------------------------------------------------------------------------------
# Presets

@dataclass
class Preset:
    """Flat option values, and default options per parameterization."""

    values: dict
    param_defaults: dict = field(default_factory=dict)
    description: str = ""


PRESETS: Registry = Registry("preset", {
    "default": Preset(
        dict(normalize=True, cutouts=8, cut_min=0.5, cut_max=1.0, jitter=0.05, aug_noise=0.02,
             optimizer="adam", lr=0.05, similarity="cosine", steps=300, snapshot_every=10),
        {"pixels": dict(mean=0.5, sigma=0.1, clamp=True), "fourier": dict(sigma=0.1)},
        "What gives the most meaningful images: CLIP's input normalization, 8 random cutouts "
        "with jitter and noise, pixels kept in [0,1] starting from grey noise, Adam lr 0.05.",
    ),
    "zer0int": Preset(
        dict(model="ViT-L/14", normalize=False, cutouts=0, jitter=0.0, aug_noise=0.0,
             optimizer="adamw", weight_decay=0.01, lr=1.5, lr_schedule="constant",
             similarity="logexp", temperature=5.0, tv=1e-5, tv_reduction="sum", memory=0.01, range=0.0,
             text_context="full", steps=4000, snapshot_every=10),
        {"pixels": dict(mean=0.0, sigma=0.01, clamp=False)},
        "The original CLIP-text-to-image experiment (clipga-self-text-to-image.py), step for step: "
        "ViT-L/14, N(0, 0.01) pixels fed to CLIP unnormalized and unaugmented, AdamW lr 1.5, "
        "loss -log(exp(cos/5)) + 1e-5 TV(sum) + 0.01 MSE to the best image so far, 4000 steps.",
    ),
    "das": Preset(
        dict(param="pyramid", normalize=True, cutouts=32, cut_min=0.67, cut_max=0.67, jitter=0.0, aug_noise=0.1,
             optimizer="adam", lr=0.01, similarity="cosine", steps=100, snapshot_every=5),
        {"pyramid": dict(resolutions="auto", squash="tanh", sigma=0.0, mean=0.5)},
        "Direct Ascent Synthesis (Fort & Whitaker 2025): the image a sum of perturbations at every resolution, "
        "squashed by tanh, from flat grey; 32 views per step, each a crop of 2/3 of the side at a random place, "
        "with noise; Adam lr 0.01, 100 steps (docs/methods.md).",
    ),
})


def register_preset(name: str, preset: Preset) -> None:
    PRESETS[name] = preset


def list_presets() -> list[str]:
    return PRESETS.names()


def resolve_config(prompt: str, options: dict[str, Any]) -> AscendConfig:
    """Preset values, then the given flat options (``None`` means "not given"), validated."""
    from clipxai.params.base import check_param_options, declared_options, list_params

    options = {k: v for k, v in options.items() if v is not None}
    options = check_kinds(options, FLAT, sys.modules[__name__])   # steps=True, lr="x": one sentence, here
    preset_name = options.pop("preset", "default")
    preset = PRESETS.lookup(preset_name)
    unknown = sorted(set(options) - set(FLAT) - set(PARAM_ALIASES))
    if unknown:
        from difflib import get_close_matches  # noqa: PLC0415

        known = sorted(set(FLAT) | set(PARAM_ALIASES))
        hints = [f"{u} (did you mean {m[0]}?)" if (m := get_close_matches(u, known, 1)) else u for u in unknown]
        raise ClipxaiError(f"Unknown option(s) {', '.join(hints)} for ascend.")
    flat = {**preset.values, **{k: v for k, v in options.items() if k in FLAT}}
    data: dict = {"prompt": prompt, "preset": preset_name}
    for key, value in flat.items():
        if key != "param_options":
            _set(data, key, value)
    param = flat.get("param", "pixels")
    given = {PARAM_ALIASES[k]: v for k, v in options.items() if k in PARAM_ALIASES}
    for alias in (k for k in options if k in PARAM_ALIASES):
        if PARAM_ALIASES[alias] not in declared_options(param):
            takers = [p for p in list_params() if PARAM_ALIASES[alias] in _declared_or_empty(declared_options, p)]
            raise ClipxaiError(f"--{alias.replace('_', '-')} applies to --param {', '.join(takers)} only "
                               f"(got --param {param}).")
    param_options = {**preset.param_defaults.get(param, {}), **given, **(options.get("param_options") or {})}
    if flat.get("accentuate"):  # feature accentuation starts the pixels from its image
        param_options = _accentuated_start(param, param_options, flat["accentuate"])
    data["param"] = {"name": param, "options": check_param_options(param, param_options)}
    if data.get("size") is not None:
        data["size"] = tuple(int(v) for v in data["size"])
    if isinstance(data.get("model"), (list, tuple)):
        data["model"] = list(data["model"]) if len(data["model"]) > 1 else str(data["model"][0])
    model_specs(data.get("model", DEFAULT_MODEL))  # weights checked before anything loads
    objective = data.setdefault("objective", {})
    for key in ("terms", "image_prompts"):
        objective[key] = list(objective.get(key) or [])
    if "ablation" in data:
        given = data["ablation"].get("components") or []
        data["ablation"]["components"] = [given] if isinstance(given, str) else list(given)
    cfg = AscendConfig.from_dict(data)
    validate(cfg)
    return cfg


def _accentuated_start(param: str, options: dict, image: str) -> dict:
    """The pixels' options with ``init_image`` set to the image ``--accentuate`` names."""
    if param != "pixels":
        raise ClipxaiError(f"--accentuate starts the pixels from its image; it takes --param pixels (got --param {param}).")
    if options.get("init_image") not in (None, image):
        raise ClipxaiError("--accentuate starts from its own image; leave --init-image out.")
    return {**options, "init_image": image}


def _declared_or_empty(declared_options, name: str) -> dict:
    try:
        return declared_options(name)
    except ClipxaiError:  # an optional extra that is not installed
        return {}


MAX_STEPS = 100_000_000     # bounds no run can pass: refused before anything is built
MAX_SEEDS = 1024
MAX_SEED = 2 ** 62


def validate(cfg: AscendConfig) -> None:
    """Raise ``ClipxaiError`` with one sentence for the first invalid option."""
    def need(ok: bool, message: str):
        if not ok:
            raise ClipxaiError(message)

    o, a, obj, rec = cfg.optim, cfg.augment, cfg.objective, cfg.record
    need(isinstance(o.steps, int) and not isinstance(o.steps, bool) and o.steps > 0,
         f"--steps must be a positive whole number (got {o.steps}).")
    need(o.steps <= MAX_STEPS, f"--steps {o.steps} is more than clipxai runs ({MAX_STEPS:,} at most).")
    need(math.isfinite(o.lr) and o.lr > 0, f"--lr must be a positive number (got {o.lr}).")
    for flag, every in (("--snapshot-every", rec.snapshot_every), ("--log-every", rec.log_every)):
        need(isinstance(every, int) and not isinstance(every, bool) and every > 0,
             f"{flag} must be a positive whole number of steps (got {every}).")
    need(isinstance(cfg.seeds, int) and not isinstance(cfg.seeds, bool) and 1 <= cfg.seeds <= MAX_SEEDS,
         f"--seeds must be a whole number from 1 to {MAX_SEEDS} (got {cfg.seeds}).")
    need(isinstance(cfg.seed, int) and not isinstance(cfg.seed, bool) and abs(cfg.seed) <= MAX_SEED,
         f"--seed must be a whole number of at most {MAX_SEED} (2^62) in size (got {str(cfg.seed)[:40]}).")
    need(a.cutouts >= 0, f"--cutouts must be 0 (no augmentation) or more (got {a.cutouts}).")
    need(cfg.compute.precision in ("auto", "fp32", "bf16", "fp16"),
         f"--precision must be one of auto, fp32, bf16, fp16 (got {cfg.compute.precision}).")
    need(cfg.compute.cutout_batch >= 0, f"--cutout-batch must be 0 (all views at once) or more (got {cfg.compute.cutout_batch}).")
    need(0 < a.cut_min <= a.cut_max <= 1, "Cutout sizes need 0 < --cut-min <= --cut-max <= 1.")
    need(o.optimizer in OPTIMIZERS, f"Unknown optimizer '{o.optimizer}'; choose one of {', '.join(OPTIMIZERS)}.")
    need(o.schedule in SCHEDULES, f"Unknown lr schedule '{o.schedule}'; choose one of {', '.join(SCHEDULES)}.")
    need(math.isfinite(o.lr_final) and o.lr_final >= 0,
         f"--lr-final must be a number that is not negative (a fraction of --lr; got {o.lr_final}).")
    need(math.isfinite(o.plateau_factor) and 0 < o.plateau_factor <= 1,
         f"--plateau-factor must be a number above 0 and at most 1 (got {o.plateau_factor}).")
    need(o.plateau_patience >= 1, f"--plateau-patience must be a positive whole number of steps (got {o.plateau_patience}).")
    need(obj.similarity in SIMILARITIES,
         f"Unknown similarity '{obj.similarity}'; choose one of {', '.join(SIMILARITIES)}.")
    need(math.isfinite(obj.temperature) and obj.temperature > 0,
         f"--temperature must be a positive number (got {obj.temperature}).")
    need(obj.text_context in TEXT_CONTEXTS, f"--text-context must be one of {', '.join(TEXT_CONTEXTS)}.")
    need(rec.activations in ACTIVATIONS, f"--activations must be one of {', '.join(ACTIVATIONS)}.")
    need(obj.tv_reduction in ("mean", "sum"), "--tv-reduction must be mean or sum.")
    need(math.isfinite(o.weight_decay) and o.weight_decay >= 0,
         f"--weight-decay must be a number that is not negative (got {o.weight_decay}).")
    _validate_ablation(cfg.ablation)
    _validate_accent(obj)
    for flag, weight in (("--tv", obj.tv), ("--memory", obj.memory), ("--range", obj.range)):
        need(math.isfinite(weight), f"{flag} must be a finite number (got {weight}).")
    for flag, amount in (("--jitter", a.jitter), ("--aug-noise", a.noise)):
        need(math.isfinite(amount) and amount >= 0, f"{flag} must be a number that is not negative (got {amount}).")
    if cfg.size is not None:
        need(len(cfg.size) == 2 and all(s >= 8 for s in cfg.size), "--size needs a width and height of at least 8 pixels.")
    need(cfg.name is None or (cfg.name.strip() and "/" not in cfg.name and cfg.name not in (".", "..")
                              and cfg.name.isprintable()),
         f"--name must be a plain folder name without control characters (got {cfg.name!r}).")
    need(cfg.name is None or len(cfg.name.encode()) + len(f"-seed{cfg.seed + cfg.seeds}") <= 255,
         f"--name is {len(cfg.name or '')} characters; a folder name must stay under 255 bytes with its seed suffix.")


def _validate_accent(obj: ObjectiveConfig) -> None:
    """The style and accentuation options, one sentence for the first wrong one."""
    if obj.style is not None and not str(obj.style).strip():
        raise ClipxaiError("--style is empty; give the style as text, e.g. --style \"an oil painting\".")
    if not (isinstance(obj.accent_weight, (int, float)) and math.isfinite(obj.accent_weight) and obj.accent_weight >= 0):
        raise ClipxaiError(f"--accent-weight must be a number that is not negative (got {obj.accent_weight}).")
    if not obj.accentuate and (obj.accent_weight != 1.0 or obj.accent_layers is not None):
        raise ClipxaiError("--accent-weight and --accent-layers apply to --accentuate IMAGE, and none is given.")


def _validate_ablation(a: AblationConfig) -> None:
    """The ablation options, one sentence for the first wrong one (the components are checked on the model)."""
    if a.mode not in ABLATE_MODES:
        raise ClipxaiError(f"--ablate-mode must be one of {', '.join(ABLATE_MODES)} (got {a.mode}).")
    if (a.reference is not None or a.mode != "mean") and not a.components:
        raise ClipxaiError("--ablate-mode and --ablate-reference apply to the components given with --ablate, "
                           "and none is given.")
    if a.reference is not None and a.mode != "mean":
        raise ClipxaiError("--ablate-reference gives the images whose mean an ablated component writes; with "
                           "--ablate-mode zero it writes zero, so leave the reference out.")
