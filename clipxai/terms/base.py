"""Objectives: what the ascent maximizes, as a weighted sum of named terms.

A term is a plain callable ``term(step) -> tensor`` returning one value per seed (shape
``(K,)``) or a scalar. ``Objective`` wraps terms so they compose with ``+``, ``-`` and
``*`` a number, keeps each term's name for logging, and reduces every side to per-seed
values before combining. Objectives are *maximized*; the engine negates once::

    cosine("❤️") - 0.5 * cosine("text") - 1e-5 * tv() - 0.01 * memory()
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from fnmatch import fnmatch
from importlib.metadata import entry_points
from typing import Any, Callable

import torch

from clipxai.errors import TermError
from clipxai.util.registry import Registry


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
            from clipxai.prompts import Prompt, encode_prompts  # noqa: PLC0415
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
            # a product and a sum per row rather than one matrix product: the numbers of a seed do not
            # depend on how many seeds share the batch (--batch-invariant)
            return (self.embeds.detach()[:, :, None, :] * matrix).sum(dim=-1).mean(dim=1)

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

    def hook_points(self, member: int | None = None, model=None) -> tuple[list[str], list[str]]:
        """(module outputs, attention heads) the terms read from the views (``ClipModel.hooked``).

        With ``member``, those of the terms reading that model of an ensemble (a term that does
        not say, ``hook_member``, reads the first); with ``model``, in that model's module names.
        """
        outputs, heads = [], []
        for _, _, t in self.parts:
            if member is not None and getattr(t, "hook_member", 0) != member:
                continue
            names = t.hook_names(model) if model is not None and hasattr(t, "hook_names") else (
                getattr(t, "hook_outputs", ()), getattr(t, "hook_heads", ()))
            outputs += names[0]
            heads += names[1]
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
            except (Exception, SystemExit) as err:  # noqa: BLE001  (user code: name the term and the step;
                # a term calling sys.exit must not end ascend with exit 0 and no run)
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

TERMS: Registry = Registry("term", error=TermError)   # built-ins; user terms come from clipxai.terms.load


def register_term(name: str):
    """Register a factory ``(**kwargs) -> Objective`` (or a plain term) under ``name``."""
    return TERMS.register(name)


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
    for name, fn in sorted(TERMS.items()):
        if fnmatch(name, pattern):
            out.append((name, _first_line(fn.__doc__)))
    for name, ep in sorted(_entry_point_terms().items()):
        if fnmatch(name, pattern) and name not in TERMS:
            try:
                out.append((name, _first_line(ep.load().__doc__) + f" [{ep.value}]"))
            except Exception as err:  # noqa: BLE001  (a broken plugin must not break the listing)
                out.append((name, f"(cannot be loaded: {type(err).__name__}) [{ep.value}]"))
    return out


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if doc and doc.strip() else "(no description)"


# ---------------------------------------------------------------------------------------
# Built-in terms


# ---------------------------------------------------------------------------------------
# User terms: "file.py:fn", "package.module:fn", an entry-point or built-in name


# The first names of these functions, kept for scripts written against them.
register_loss = register_term
list_losses = list_terms
