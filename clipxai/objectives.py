"""Objectives: what the ascent maximizes, as a weighted sum of named terms.

A term is a plain callable ``term(step) -> tensor`` returning one value per seed (shape
``(K,)``) or a scalar. ``Objective`` wraps terms so they compose with ``+``, ``-`` and
``*`` a number, keeps each term's name for logging, and reduces every side to per-seed
values before combining. Objectives are *maximized*; the engine negates once::

    cosine("❤️") - 0.5 * cosine("text") - 1e-5 * tv() - 0.01 * memory()
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import math
import sys
from dataclasses import dataclass, field
from fnmatch import fnmatch
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from .errors import TermError


@dataclass
class Step:
    """One optimization step, as terms and callbacks see it.

    The engine fills the first fields before the objective is evaluated, then ``total``,
    ``values`` and ``lr``. ``prompt_similarities`` and ``grad_norms`` are computed only when
    a callback asks (each asks the device for numbers, so nothing syncs unless needed).
    """

    index: int
    image: torch.Tensor           # [K,3,H,W] as made by the parameterization
    views: torch.Tensor           # [K*C,3,R,R] augmented views given to CLIP
    features: torch.Tensor        # [K,C,D] raw CLIP image features of the views
    embeds: torch.Tensor          # [K,C,D] unit-length features
    prompts: list                 # EncodedPrompt, in the order given
    model: Any                    # ClipModel
    param: Any                    # Parameterization
    state: dict = field(default_factory=dict)  # persists across steps (and into checkpoints)
    others: list = field(default_factory=list)  # the same step seen by the other models of an ensemble
    snapshot: bool = False                     # set by the recorder on the steps it records
    total: torch.Tensor | None = None          # (K,) objective per seed, detached
    values: dict[str, torch.Tensor] = field(default_factory=dict)  # term name -> (K,), detached
    lr: float = 0.0
    activations: Any = None       # LiveActivations of the views, when a term asked for hook points

    @property
    def batch(self) -> int:
        return self.image.shape[0]

    def member(self, index: int = 0) -> "Step":
        """The step as model ``index`` of an ensemble sees it (0: the first model, this step)."""
        if index == 0:
            return self
        if index > len(self.others):
            raise IndexError(f"the ensemble has {len(self.others) + 1} models, not {index + 1}")
        return self.others[index - 1]

    def prompt(self, text: str | None):
        """The encoded prompt with this text (None: the first positive prompt)."""
        if text is None:
            return next(p for p in self.prompts if p.weight > 0)
        for p in self.prompts:
            if p.text == text:
                return p
        cache = self.state.setdefault(f"_extra_prompts@{self.model.name}", {})
        if text not in cache:
            from .prompts import Prompt, encode_prompts  # noqa: PLC0415
            cache[text] = encode_prompts(self.model, [Prompt(text)])[0]
        return cache[text]

    def similarity(self, text: str | None = None) -> torch.Tensor:
        """Cosine of each view to a prompt, averaged over views: shape (K,)."""
        return (self.embeds @ self.prompt(text).embedding).mean(dim=1)

    @functools.cached_property
    def prompt_similarities(self) -> torch.Tensor:
        """(K, P) cosine of the views to every prompt, averaged over views."""
        with torch.no_grad():
            if not self.prompts:  # a run of terms alone
                return self.embeds.new_zeros(self.batch, 0)
            matrix = torch.stack([p.embedding for p in self.prompts])
            return (self.embeds.detach() @ matrix.T).mean(dim=1)

    @functools.cached_property
    def grad_norms(self) -> torch.Tensor:
        """(K,) norm of the gradient on each seed's parameters (after backward)."""
        with torch.no_grad():
            grads = [p.grad.flatten(1) for p in self.param.params if p.grad is not None]
            if not grads:
                return torch.zeros(self.batch)
            return sum(g.pow(2).sum(1) for g in grads).sqrt()


Term = Callable[[Step], torch.Tensor]


class Objective:
    """A linear combination of named terms; ``obj(step)`` gives the total and each term."""

    def __init__(self, term: Term | None = None, name: str | None = None):
        self.parts: list[tuple[float, str, Term]] = []
        if term is not None:
            self.parts.append((1.0, name or getattr(term, "__name__", "term"), term))

    @classmethod
    def _from_parts(cls, parts) -> "Objective":
        obj = cls()
        obj.parts = list(parts)
        return obj

    # -- algebra ------------------------------------------------------------------------
    def __add__(self, other: "Objective") -> "Objective":
        if not isinstance(other, Objective):
            return NotImplemented
        return Objective._from_parts(self.parts + other.parts)

    def __sub__(self, other: "Objective") -> "Objective":
        if not isinstance(other, Objective):
            return NotImplemented
        return self + (-1.0) * other

    def __mul__(self, k: float) -> "Objective":
        if not isinstance(k, (int, float)):
            return NotImplemented
        return Objective._from_parts([(c * k, n, t) for c, n, t in self.parts])

    __rmul__ = __mul__

    def __neg__(self) -> "Objective":
        return self * -1.0

    @property
    def name(self) -> str:
        out = ""
        for c, n, _ in self.parts:
            sign = "-" if c < 0 else "+"
            mag = "" if abs(c) == 1 else f"{abs(c):g}*"
            out += f" {sign} {mag}{n}" if out else f"{'-' if c < 0 else ''}{mag}{n}"
        return out or "0"

    def __repr__(self) -> str:
        return f"Objective({self.name})"

    def term_names(self) -> list[str]:
        return _unique_names([n for _, n, _ in self.parts])

    def hook_points(self) -> tuple[list[str], list[str]]:
        """(module outputs, attention heads) the terms read from the views (``ClipModel.hooked``)."""
        outputs = [n for _, _, t in self.parts for n in getattr(t, "hook_outputs", ())]
        heads = [n for _, _, t in self.parts for n in getattr(t, "hook_heads", ())]
        return list(dict.fromkeys(outputs)), list(dict.fromkeys(heads))

    # -- evaluation ---------------------------------------------------------------------
    def __call__(self, step: Step) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(total per seed (K,), {term name: its value per seed (K,)}), before weighting."""
        k = step.batch
        values: dict[str, torch.Tensor] = {}
        total = None
        for (coef, _, term), name in zip(self.parts, self.term_names()):
            try:
                value = term(step)
            except TermError:
                raise
            except Exception as err:  # noqa: BLE001  (user code: name the term and the step)
                first = (str(err).strip().splitlines() or [""])[0][:200]
                raise TermError(f"The term '{name}' raised {type(err).__name__} at step {step.index}"
                                f"{': ' + first if first else ''}.") from err
            v = _per_seed(value, k, name)
            values[name] = v
            total = coef * v if total is None else total + coef * v
        if total is None:
            total = torch.zeros(k, device=step.image.device)
        return total, values


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
    return out


def _per_seed(value, k: int, name: str) -> torch.Tensor:
    if not torch.is_tensor(value):
        raise TermError(f"The term '{name}' returned a {type(value).__name__}, not a tensor.")
    if value.numel() == 1:
        return value.reshape(()).expand(k) if k > 1 else value.reshape(1)
    if value.dim() == 1 and value.shape[0] == k:
        return value
    raise TermError(
        f"The term '{name}' returned a tensor of shape {tuple(value.shape)}; "
        f"a term must return a scalar (or one value per seed, shape ({k},))."
    )


# ---------------------------------------------------------------------------------------
# Registry

_TERMS: dict[str, Callable[..., Objective]] = {}


def register_term(name: str):
    """Register a factory ``(**kwargs) -> Objective`` (or a plain term) under ``name``."""
    def deco(fn):
        _TERMS[name] = fn
        return fn
    return deco


def _entry_point_terms() -> dict[str, Any]:
    try:
        found = {}
        for group in ("clipxai.losses", "clipxai.terms"):  # "losses": the group's first name
            found.update({ep.name: ep for ep in entry_points(group=group)})
        return found
    except TypeError:  # very old importlib.metadata
        return {}


def list_terms(pattern: str = "*") -> list[tuple[str, str]]:
    """(name, one-line description) of every built-in and plugged-in term."""
    out = []
    for name, fn in sorted(_TERMS.items()):
        if fnmatch(name, pattern):
            out.append((name, _first_line(fn.__doc__)))
    for name, ep in sorted(_entry_point_terms().items()):
        if fnmatch(name, pattern) and name not in _TERMS:
            try:
                out.append((name, _first_line(ep.load().__doc__) + f" [{ep.value}]"))
            except Exception as err:  # noqa: BLE001  (a broken plugin must not break the listing)
                out.append((name, f"(cannot be loaded: {type(err).__name__}) [{ep.value}]"))
    return out


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if doc and doc.strip() else "(no description)"


# ---------------------------------------------------------------------------------------
# Built-in terms

def _named(base: str, at: str | None) -> str:
    return f"{base}@{at}" if at else base


@register_term("cosine")
def cosine(prompt: str | None = None, member: int = 0, at: str | None = None) -> Objective:
    """Cosine similarity of the augmented views to a prompt, averaged over views.

    ``member`` picks the model of an ensemble whose view is scored; ``at`` names it in the term.
    """
    def term(step: Step) -> torch.Tensor:
        return step.member(member).similarity(prompt)
    return Objective(term, _named(f"cosine({prompt})" if prompt else "cosine", at))


@register_term("spherical")
def spherical(prompt: str | None = None, member: int = 0, at: str | None = None) -> Objective:
    """Negative squared great-circle distance to a prompt (as VQGAN+CLIP notebooks use)."""
    def term(step: Step) -> torch.Tensor:
        seen = step.member(member)
        target = seen.prompt(prompt).embedding
        chord = (seen.embeds - target).norm(dim=-1)
        return -(2 * torch.arcsin((chord / 2).clamp(max=1)) ** 2).mean(dim=1)
    return Objective(term, _named(f"spherical({prompt})" if prompt else "spherical", at))


@register_term("logexp_cosine")
def logexp_cosine(prompt: str | None = None, temperature: float = 5.0, member: int = 0,
                  at: str | None = None) -> Objective:
    """log(exp(cos/T)) on raw features, exactly as the original CLIP-text-to-image script."""
    def term(step: Step) -> torch.Tensor:
        seen = step.member(member)
        text = seen.prompt(prompt).features.unsqueeze(0)
        cos = torch.stack([F.cosine_similarity(f, text, dim=1).mean() for f in seen.features])
        return torch.log(torch.exp(cos / temperature))
    return Objective(term, _named(f"logexp_cosine(T={temperature:g})", at))


@register_term("tv")
def tv(reduction: str = "mean") -> Objective:
    """Total variation (L1 of neighbour differences) of each image; subtract it to smooth."""
    if reduction not in ("mean", "sum"):
        raise ValueError("reduction must be 'mean' or 'sum'")

    def term(step: Step) -> torch.Tensor:
        img = step.image
        dx = (img[..., :, :-1] - img[..., :, 1:]).abs().flatten(1)
        dy = (img[..., :-1, :] - img[..., 1:, :]).abs().flatten(1)
        if reduction == "sum":
            return dx.sum(1) + dy.sum(1)
        return dx.mean(1) + dy.mean(1)
    return Objective(term, "tv")


@register_term("memory")
def memory(prompt: str | None = None) -> Objective:
    """Mean squared distance to the best image so far (by prompt similarity); subtract it."""
    def term(step: Step) -> torch.Tensor:
        # The best image is updated before the distance is taken, as in the original script:
        # on a step that improves, the image is its own memory and the term is zero.
        if step.views.shape[0] == step.batch:  # one view per image: the views are the image
            sim = step.similarity(prompt).detach()
        else:
            sim = _clean_similarity(step, prompt)
        best = step.state.get("memory_image")
        best_sim = step.state.get("memory_similarity")
        img = step.image.detach()
        if best is None:
            best, best_sim = img.clone(), sim.clone()
        else:
            better = sim > best_sim
            best = torch.where(better.view(-1, 1, 1, 1), img, best)
            best_sim = torch.where(better, sim, best_sim)
        step.state["memory_image"], step.state["memory_similarity"] = best, best_sim
        # F.mse_loss per seed, as the original: the same value as ((a-b)**2).mean(), but its
        # backward rounds like the original's, so the original recipe is reproduced bit for bit.
        return torch.stack([F.mse_loss(step.image[k], best[k]) for k in range(step.batch)])
    return Objective(term, "memory")


def _clean_similarity(step: Step, prompt: str | None) -> torch.Tensor:
    """Similarity of the un-augmented images (when views are augmented cutouts)."""
    with torch.no_grad():
        feats = step.model.embed_images(step.image.detach(), normalize=step.state.get("normalize", True))
        feats = feats / feats.norm(dim=-1, keepdim=True)
        return feats @ step.prompt(prompt).embedding


@register_term("range")
def range_penalty() -> Objective:
    """Mean squared amount by which pixels leave [0, 1]; subtract it to keep images valid."""
    def term(step: Step) -> torch.Tensor:
        img = step.image
        return (F.relu(-img) ** 2 + F.relu(img - 1) ** 2).flatten(1).mean(1)
    return Objective(term, "range")


# ---------------------------------------------------------------------------------------
# User terms: "file.py:fn", "package.module:fn", an entry-point or built-in name

def load_term(spec: str) -> Objective:
    """Resolve ``spec`` to an Objective; ``TermError`` (one sentence) if it cannot be found."""
    spec = spec.strip()
    if not spec:
        raise TermError("A --term value is empty.")
    feature = feature_terms.parse_spec(spec)  # neuron:LAYER:UNIT, channel:..., direction:..., head:...
    if feature is not None:
        return feature
    if spec in _TERMS:
        return _as_objective(_TERMS[spec](), spec)
    eps = _entry_point_terms()
    if spec in eps:
        try:
            fn = eps[spec].load()
        except Exception as err:  # noqa: BLE001
            raise TermError(f"The term plugin '{spec}' ({eps[spec].value}) cannot be loaded: {err}.") from err
        return _as_objective(fn, spec)
    if ":" not in spec:
        raise TermError(
            f"'{spec}' is not a known term; use a built-in name ({', '.join(sorted(_TERMS))}), "
            f"file.py:function or package.module:function."
        )
    where, fn_name = spec.rsplit(":", 1)
    module = _import_term_module(where)
    fn = getattr(module, fn_name, None)
    if fn is None or not callable(fn):
        raise TermError(f"{where} has no function named '{fn_name}'.")
    return _as_objective(fn, fn_name)


def _import_term_module(where: str):
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = Path(where).expanduser()
        if not path.is_file():
            raise TermError(f"The term file {path} does not exist.")
        name = f"clipxai_user_term_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as err:  # noqa: BLE001  (any error in user code)
            raise TermError(f"The term file {path} failed to import ({type(err).__name__}: {err}).") from err
        sys.modules[name] = module
        return module
    try:
        return importlib.import_module(where)
    except Exception as err:  # noqa: BLE001
        raise TermError(f"The term module '{where}' cannot be imported ({type(err).__name__}: {err}).") from err


def _as_objective(obj, name: str) -> Objective:
    if isinstance(obj, Objective):
        return obj
    if callable(obj):
        return Objective(obj, name)
    raise TermError(f"The term '{name}' is a {type(obj).__name__}, not a callable term.")


def parse_term_option(value: str) -> tuple[str, float]:
    """``"spec"`` or ``"spec=weight"`` (weight multiplies the term; it is maximized)."""
    if "=" in value:
        spec, raw = value.rsplit("=", 1)
        try:
            weight = float(raw)
        except ValueError as err:
            raise TermError(f"The weight '{raw}' in --term '{value}' is not a number.") from err
        if not math.isfinite(weight):
            raise TermError(f"The weight in --term '{value}' must be finite.")
        return spec, weight
    return value, 1.0


from . import feature_terms  # noqa: E402  (registers neuron, channel, direction, head)

# The first names of these functions, kept for scripts written against them.
register_loss = register_term
list_losses = list_terms
load_loss = load_term
