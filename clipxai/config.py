"""The resolved configuration of one ascent, and the presets that fill it.

A preset is a named dict of option values; options the user gives override it. The
resolved ``AscendConfig`` is written to run.json in full, so every run says exactly how it
was made.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import ClipxaiError
from .models import DEFAULT_HOOKS, DEFAULT_MODEL

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "plateau")
SIMILARITIES = ("cosine", "spherical", "logexp")
ACTIVATIONS = ("pooled", "full", "none")


@dataclass
class AscendConfig:
    """Every option of an ascent (CLI flags and ``clipxai.ascend`` keywords share these names)."""

    prompt: str = ""
    preset: str = "default"
    model: str = DEFAULT_MODEL
    device: str = "auto"
    # what is optimized
    param: str = "pixels"
    size: tuple[int, int] | None = None      # (width, height); default: the model's input
    init_mean: float = 0.0
    sigma: float = 0.01                      # std of the initial noise
    init_tint: float = 0.0                   # pixels: std of a per-seed colour offset of the start
    clamp: bool = False                      # pixels: clamp to [0,1] (straight-through)
    param_options: dict = field(default_factory=dict)
    # optimizer
    steps: int = 300
    lr: float = 0.05
    optimizer: str = "adam"
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    lr_final: float = 0.1                    # cosine: final lr as a fraction of lr
    plateau_patience: int = 50               # plateau: steps without improvement before a drop
    plateau_factor: float = 0.5
    seed: int = 0
    seeds: int = 1                           # K seeds batched in one forward pass
    # what CLIP sees
    normalize: bool = True                   # CLIP's mean/std normalization
    cutouts: int = 8
    cut_min: float = 0.5
    cut_max: float = 1.0
    jitter: float = 0.05
    aug_noise: float = 0.02
    augment_fixed: bool = False
    # objective (maximized): sum of w_i * similarity(prompt_i) - tv - memory - range + user terms
    similarity: str = "cosine"
    temperature: float = 5.0                 # logexp: log(exp(cos / T))
    tv: float = 0.0
    tv_reduction: str = "mean"
    memory: float = 0.0
    range: float = 0.0
    losses: list[str] = field(default_factory=list)          # "spec" or "spec=weight"
    image_prompts: list[str] = field(default_factory=list)   # "file.png" or "file.png:weight"
    # recording
    snapshot_every: int = 10
    log_every: int = 1
    hooks: str = DEFAULT_HOOKS
    activations: str = "pooled"
    record_gradients: bool = True
    frames: bool = False
    out: str = "runs"
    name: str | None = None
    quiet: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AscendConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        cfg = cls(**{k: v for k, v in data.items() if k in names})
        if cfg.size is not None:
            cfg.size = tuple(cfg.size)
        return cfg


PRESETS: dict[str, dict[str, Any]] = {
    # What gives the most meaningful images: CLIP's own input normalization, random cutouts
    # with jitter and noise (so no single adversarial pixel pattern satisfies CLIP), pixels
    # kept in [0,1], starting from grey noise.
    "default": dict(
        param="pixels", init_mean=0.5, sigma=0.1, clamp=True, normalize=True,
        cutouts=8, cut_min=0.5, cut_max=1.0, jitter=0.05, aug_noise=0.02,
        optimizer="adam", lr=0.05, similarity="cosine", steps=300, snapshot_every=10,
    ),
    # The original CLIP-text-to-image experiment (clipga-self-text-to-image.py), exactly:
    # ViT-L/14 at 224 px, N(0, 0.01) pixels fed to CLIP unnormalized and unaugmented,
    # AdamW lr 1.5, loss = -log(exp(cos/5)) + 1e-5 * TV(sum) + 0.01 * memory, 4000 steps.
    "zer0int": dict(
        model="ViT-L/14", param="pixels", size=(224, 224), init_mean=0.0, sigma=0.01, clamp=False,
        normalize=False, cutouts=0, jitter=0.0, aug_noise=0.0,
        optimizer="adamw", weight_decay=0.01, lr=1.5, lr_schedule="constant",
        similarity="logexp", temperature=5.0, tv=1e-5, tv_reduction="sum", memory=0.01, range=0.0,
        steps=4000, snapshot_every=10,
    ),
}


def list_presets() -> list[str]:
    return sorted(PRESETS)


def resolve_config(prompt: str, options: dict[str, Any]) -> AscendConfig:
    """Preset values, then the given options (``None`` means "not given"), validated."""
    options = {k: v for k, v in options.items() if v is not None}
    preset = options.pop("preset", "default")
    if preset not in PRESETS:
        raise ClipxaiError(f"Unknown preset '{preset}'; choose one of {', '.join(list_presets())}.")
    names = {f.name for f in dataclasses.fields(AscendConfig)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ClipxaiError(f"Unknown option(s) {', '.join(unknown)} for ascend.")
    values = {**PRESETS[preset], **options, "prompt": prompt, "preset": preset}
    if values.get("size") is not None:
        values["size"] = tuple(int(v) for v in values["size"])
    for key in ("losses", "image_prompts"):
        values[key] = list(values.get(key) or [])
    cfg = AscendConfig(**values)
    validate(cfg)
    return cfg


def validate(cfg: AscendConfig) -> None:
    """Raise ``ClipxaiError`` with one sentence for the first invalid option."""
    def need(ok: bool, message: str):
        if not ok:
            raise ClipxaiError(message)

    need(isinstance(cfg.steps, int) and cfg.steps > 0, f"--steps must be a positive whole number (got {cfg.steps}).")
    need(math.isfinite(cfg.lr) and cfg.lr > 0, f"--lr must be a positive number (got {cfg.lr}).")
    need(cfg.snapshot_every > 0, f"--snapshot-every must be positive (got {cfg.snapshot_every}).")
    need(cfg.log_every > 0, f"--log-every must be positive (got {cfg.log_every}).")
    need(cfg.seeds >= 1, f"--seeds must be at least 1 (got {cfg.seeds}).")
    need(cfg.cutouts >= 0, f"--cutouts must be 0 (no augmentation) or more (got {cfg.cutouts}).")
    need(0 < cfg.cut_min <= cfg.cut_max <= 1, "Cutout sizes need 0 < --cut-min <= --cut-max <= 1.")
    need(cfg.sigma >= 0, f"--sigma must not be negative (got {cfg.sigma}).")
    need(cfg.init_tint >= 0, f"--init-tint must not be negative (got {cfg.init_tint}).")
    need(cfg.init_tint == 0 or cfg.param == "pixels", f"--init-tint applies to --param pixels only (got {cfg.param}).")
    need(cfg.optimizer in OPTIMIZERS, f"Unknown optimizer '{cfg.optimizer}'; choose one of {', '.join(OPTIMIZERS)}.")
    need(cfg.lr_schedule in SCHEDULES, f"Unknown lr schedule '{cfg.lr_schedule}'; choose one of {', '.join(SCHEDULES)}.")
    need(cfg.similarity in SIMILARITIES, f"Unknown similarity '{cfg.similarity}'; choose one of {', '.join(SIMILARITIES)}.")
    need(cfg.activations in ACTIVATIONS, f"--activations must be one of {', '.join(ACTIVATIONS)}.")
    need(cfg.tv_reduction in ("mean", "sum"), "--tv-reduction must be mean or sum.")
    need(cfg.weight_decay >= 0, "--weight-decay must not be negative.")
    if cfg.size is not None:
        need(len(cfg.size) == 2 and all(s >= 8 for s in cfg.size), "--size needs a width and height of at least 8 pixels.")
    need(cfg.name is None or (cfg.name.strip() and "/" not in cfg.name and cfg.name not in (".", "..")),
         f"--name must be a plain folder name (got '{cfg.name}').")
