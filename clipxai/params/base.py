"""The parameterization interface and its registry (the factories live beside this file)."""

from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from clipxai.errors import ClipxaiError
from clipxai.util.registry import Registry


@dataclass
class Parameterization:
    """Leaf tensors to optimize, the image they make, and what to record as the latent."""

    params: list[torch.Tensor]
    image_fn: Callable[[], torch.Tensor]
    latent_fn: Callable[[], torch.Tensor] | None = None
    info: dict = field(default_factory=dict)
    # State the parameterization keeps across steps that the optimizer does not change (MACO's
    # importance mask): batch-first tensors, saved in checkpoints and recorded as arrays of that name.
    buffers: dict[str, torch.Tensor] = field(default_factory=dict)

    def latent(self) -> torch.Tensor:
        """The parameterization's own state, batch-first (what latents.npy records)."""
        return (self.latent_fn or (lambda: self.params[0]))().detach()


@dataclass
class ParamContext:
    """What the engine gives every factory; the user's options come as keywords beside it."""

    batch: int
    shape: tuple[int, int]                 # (height, width), the order of an image tensor's last two axes
    device: torch.device
    generators: list[torch.Generator]      # one per seed (batch row)
    prompt: str | None = None              # the prompt string, for text-conditioned generators

    # Sizes are (width, height) everywhere a user writes one (--size W H, run.json); shapes are
    # (height, width), as torch orders them. A factory reads ``ctx.shape`` or ``ctx.height``/``ctx.width``.
    @property
    def height(self) -> int:
        return self.shape[0]

    @property
    def width(self) -> int:
        return self.shape[1]

    @property
    def size(self) -> tuple[int, int]:
        """(height, width): the first name of ``shape``, kept for factories written against it."""
        warnings.warn("ParamContext.size is (height, width); read ctx.shape (or ctx.height, ctx.width) instead.",
                      DeprecationWarning, stacklevel=2)
        return self.shape

    def randn(self, *shape: int) -> torch.Tensor:
        """One normal draw of ``shape`` per seed, each from its own generator, stacked."""
        return torch.stack([torch.randn(shape, generator=g) for g in self.generators]).to(self.device)


Factory = Callable[..., Parameterization]
# Parameterizations whose code lives elsewhere (optional extras) are plugins, imported on first use.
PARAMS: Registry = Registry("parameterization", plugins={"vqgan": "clipxai.generators.vqgan",
                                                         "cvae": "clipxai.generators.cvae.param",
                                                         "sdvae": "clipxai.generators.sdvae.param"})
_PARAMS = PARAMS   # its first name


def register_param(name: str):
    """Decorator registering a factory ``fn(ctx, *, option=default, ...)`` under ``name``."""
    return PARAMS.register(name)


def list_params(pattern: str = "*") -> list[str]:
    return PARAMS.names(pattern)


def get_factory(name: str) -> Factory:
    return PARAMS.lookup(name)


def declared_options(name: str) -> dict[str, inspect.Parameter]:
    """The keyword options a parameterization's factory declares."""
    params = list(inspect.signature(get_factory(name)).parameters.values())[1:]  # after ctx
    return {p.name: p for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def check_param_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` checked against the factory's declaration; strings (``-P k=v``) converted."""
    declared = declared_options(name)
    unknown = sorted(set(options) - set(declared))
    if unknown:
        raise ClipxaiError(
            f"The {name} parameterization does not take the option(s) {', '.join(unknown)}; "
            f"it takes {', '.join(declared) or 'none'}."
        )
    return {key: _convert(name, key, value, declared[key]) for key, value in options.items()}


def _convert(param: str, key: str, value: Any, declared: inspect.Parameter) -> Any:
    """A ``-P`` string turned into the type the factory declares (from its annotation or default);
    a number that is not finite (nan, inf) is refused."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ClipxaiError(f"The {param} option {key}={value} must be a finite number.")
    if not isinstance(value, str):
        return value
    kind = str(declared.annotation)
    try:
        if "bool" in kind:
            lowered = value.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ValueError(value)
            return lowered in ("true", "1", "yes", "on")
        if "float" in kind:
            number = float(value)
            if not math.isfinite(number):
                raise ClipxaiError(f"The {param} option {key}={value!r} must be a finite number.")
            return number
        if "int" in kind:
            return int(value)
        if "tuple" in kind or "list" in kind:
            return tuple(int(v) for v in value.replace(",", " ").split())
    except ValueError:
        raise ClipxaiError(
            f"The {param} option {key}={value!r} is not a valid {kind.split('|')[0].strip()}."
        ) from None
    return None if value.strip().lower() == "none" and "None" in kind else value


def make_param(name: str, *, batch: int, shape: tuple[int, int], device: torch.device,
               generators: list[torch.Generator], prompt: str | None = None, **options) -> Parameterization:
    """Build the named parameterization of images of ``shape`` (height, width); ``generators`` holds
    one per batch row (seed)."""
    if len(generators) != batch:
        raise ValueError("one generator per batch row is required")
    factory = get_factory(name)
    options = check_param_options(name, options)
    return factory(ParamContext(batch, tuple(shape), device, generators, prompt), **options)


def clamp_st(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0,1] in the forward pass, identity gradient (pixels pushed out can come back)."""
    return x + (x.clamp(0, 1) - x).detach()

