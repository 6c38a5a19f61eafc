"""Feature-visualization terms: maximize a neuron, a channel, a direction or an attention head.

Lucent's objectives (``lucent/optvis/objectives.py``: ``neuron``, ``channel``, ``direction``)
and zer0int's CLIP-ViT-visualization and CLIP-HeadHunter ask what a unit of the image tower
responds to, instead of (or beside) what a text means. Each term here reads one hook point,
named as ``--hooks`` names them (``visual.transformer.resblocks.7`` for OpenAI and open_clip
ViTs, ``vision_model.encoder.layers.7`` for Hugging Face), in the augmented views of the
step, with their gradient:

- ``neuron(layer, unit, token=0)``: unit ``unit`` at one token (the class token by default);
- ``channel(layer, unit)``: unit ``unit`` averaged over all tokens (what ``activations/``
  records, pooled);
- ``direction(layer, vector)``: the cosine between ``vector`` and the layer's activation
  averaged over tokens (so a direction taken from a run's recorded activations, e.g. the
  difference of two states' means, is asked for in its own space);
- ``head(layer, head)``: the L2 norm of one attention head's output in the block (its
  attention-weighted values, before the output projection), averaged over tokens; the head's
  output norm, not its attention pattern.

Every value is averaged over a seed's views, one value per seed. On the command line:
``--term neuron:LAYER:UNIT[:TOKEN]``, ``channel:LAYER:UNIT``, ``direction:LAYER:FILE.npy``,
``head:LAYER:HEAD`` (or ``head:blocks.7.attn.head3``), each with ``=W`` for a weight. LAYER is a
module name of the model or a component name that is the same for every backend
(``blocks.7``, ``blocks.7.attn``, ``blocks.7.mlp``, ``embed``; ``clipxai.models.components``). In an
ensemble a term reads every model that has the layer, one term each (``neuron(...)@toy-b``), or
the one model named with ``@MODEL`` at the end of the spec. The engine captures the activations
in its own forward pass (``ClipModel.hooked``); a step it did not capture (views encoded in
chunks, a step built by hand) is encoded once more here.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from clipxai.errors import ClipxaiError, TermError
from clipxai.models.components import ComponentError, component
from clipxai.terms.base import Objective, Step, register_term

SPECS = {"neuron": "neuron:LAYER:UNIT[:TOKEN]", "channel": "channel:LAYER:UNIT",
         "direction": "direction:LAYER:FILE.npy", "head": "head:LAYER:HEAD"}


def live_activations(step: Step, names=(), heads=()):
    """The step's live activations of ``names`` (outputs) and ``heads``, graph kept.

    Those the engine captured in its forward pass when it has them; otherwise the views are
    encoded once more under hooks (once per step for every term asking the same layers).
    """
    acts = getattr(step, "activations", None)
    if acts is not None and acts.has(names, heads):
        return acts
    cache = step.__dict__.setdefault("_live_activations", {})
    key = (tuple(names), tuple(heads))
    if key not in cache:
        try:
            with step.model.hooked(names, heads) as live:
                step.model.encode_image(step.views, normalize=step.state.get("normalize", True))
        except ClipxaiError as err:
            raise TermError(str(err)) from err
        cache[key] = live
    return cache[key]


def _per_view(x: torch.Tensor, step: Step) -> torch.Tensor:
    """(views, ...) -> (seeds, views per seed, ...)."""
    return x.reshape(step.batch, x.shape[0] // step.batch, *x.shape[1:])


def _unit(x: torch.Tensor, unit: int, layer: str) -> torch.Tensor:
    width = x.shape[-1]
    if not 0 <= unit < width:
        raise TermError(f"Unit {unit} is out of range: {layer} has {_count(width, 'unit')}.")
    return x[..., unit]


def _count(n: int, what: str) -> str:
    return f"1 {what} (0)" if n == 1 else f"{n} {what}s (0 to {n - 1})"


def module_for(model, layer: str, head: bool = False) -> str:
    """The model's own module name for ``layer``: itself when the model has a module of that name,
    else a component name (``blocks.7``, ``blocks.7.mlp``, ``embed``) mapped to the model's module."""
    if layer in dict(model.module.named_modules()) or not (layer == "embed" or layer.startswith("blocks.")):
        return layer  # a module name, or one the hooks refuse with their did-you-mean
    try:
        found = component(model, layer)
    except ComponentError as err:
        raise TermError(str(err)) from err
    if found.kind == "head" and not head:
        raise TermError(f"{layer} is one attention head, which has no output of its own in the residual stream; "
                        f"head:{layer} reads its output norm.")
    return found.module


def _resolver(layer: str, head: bool = False):
    """``module_for`` of one layer, remembered per model (a term reads one or a few models)."""
    seen: dict[int, str] = {}

    def resolve(model) -> str:
        if id(model) not in seen:
            seen[id(model)] = module_for(model, layer, head)
        return seen[id(model)]
    return resolve


def _named(name: str, at: str | None) -> str:
    return f"{name}@{at}" if at else name


def _term(fn, name: str, outputs=(), heads=(), member: int = 0, at: str | None = None) -> Objective:
    """A term reading the views of model ``member`` of the ensemble, named ``name@at`` when ``at`` is given."""
    fn.hook_outputs, fn.hook_heads, fn.hook_member = tuple(outputs), tuple(heads), member
    fn.hook_names = lambda model: ([module_for(model, n) for n in outputs], [module_for(model, n, True) for n in heads])
    return Objective(fn, _named(name, at))


@register_term("neuron")
def neuron(layer: str, unit: int, token: int = 0, member: int = 0, at: str | None = None) -> Objective:
    """neuron:LAYER:UNIT[:TOKEN]: one unit of a layer at one token (the class token by default), over views."""
    unit, token = int(unit), int(token)
    resolve = _resolver(layer)

    def term(step: Step) -> torch.Tensor:
        step = step.member(member)
        x = live_activations(step, [resolve(step.model)]).outputs[resolve(step.model)]
        if x.dim() == 3:
            if not -x.shape[1] <= token < x.shape[1]:
                raise TermError(f"Token {token} is out of range: {layer} has {_count(x.shape[1], 'token')}.")
            x = x[:, token]
        return _per_view(_unit(x, unit, layer), step).mean(dim=1)
    return _term(term, f"neuron({layer}:{unit}{'' if token == 0 else f':{token}'})", outputs=[layer],
                 member=member, at=at)


@register_term("channel")
def channel(layer: str, unit: int, member: int = 0, at: str | None = None) -> Objective:
    """channel:LAYER:UNIT: one unit of a layer averaged over all its tokens (or positions), and over views."""
    unit = int(unit)
    resolve = _resolver(layer)

    def term(step: Step) -> torch.Tensor:
        step = step.member(member)
        x = live_activations(step, [resolve(step.model)]).outputs[resolve(step.model)]
        x = _unit(x, unit, layer)
        if x.dim() == 2:
            x = x.mean(dim=1)
        return _per_view(x, step).mean(dim=1)
    return _term(term, f"channel({layer}:{unit})", outputs=[layer], member=member, at=at)


@register_term("direction")
def direction(layer: str, vector, member: int = 0, at: str | None = None) -> Objective:
    """direction:LAYER:FILE.npy: cosine of a vector and the layer's activation averaged over tokens, over views.

    ``vector`` is a 1-d array, tensor, or the path of a ``.npy`` file holding one.
    """
    label = Path(vector).name if isinstance(vector, (str, Path)) else "vector"
    v = load_direction(vector)
    resolve = _resolver(layer)

    def term(step: Step) -> torch.Tensor:
        step = step.member(member)
        x = live_activations(step, [resolve(step.model)]).outputs[resolve(step.model)]
        pooled = x.mean(dim=1) if x.dim() == 3 else x
        if pooled.shape[-1] != v.shape[0]:
            raise TermError(f"The direction {label} has {v.shape[0]} values but {layer} has {pooled.shape[-1]} units.")
        target = v.to(pooled.device, pooled.dtype)
        cos = torch.nn.functional.cosine_similarity(pooled, target.unsqueeze(0), dim=-1)
        return _per_view(cos, step).mean(dim=1)
    return _term(term, f"direction({layer}:{label})", outputs=[layer], member=member, at=at)


@register_term("head")
def head(layer: str, index: int, member: int = 0, at: str | None = None) -> Objective:
    """head:LAYER:HEAD: the output norm of one attention head in a block, averaged over tokens and views."""
    index = int(index)
    resolve = _resolver(layer, head=True)

    def term(step: Step) -> torch.Tensor:
        step = step.member(member)
        name = resolve(step.model)
        x = live_activations(step, heads=[name]).heads[name]      # (views, heads, tokens, head_dim)
        if not 0 <= index < x.shape[1]:
            raise TermError(f"Head {index} is out of range: {layer} has {_count(x.shape[1], 'head')}.")
        return _per_view(x[:, index].norm(dim=-1).mean(dim=-1), step).mean(dim=1)
    return _term(term, f"head({layer}:{index})", heads=[layer], member=member, at=at)


def load_direction(vector) -> torch.Tensor:
    """A direction as a 1-d float tensor of finite values, not all zero; one sentence otherwise."""
    if isinstance(vector, (str, Path)):
        path = Path(vector).expanduser()
        if not path.is_file():
            raise TermError(f"The direction file {path} does not exist.")
        try:
            vector = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise TermError(f"The direction file {path} is not a readable .npy array ({type(err).__name__}).") from err
        where = f"The direction file {path}"
    else:
        where = "The direction"
    arr = vector.detach().cpu().numpy() if torch.is_tensor(vector) else np.asarray(vector)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TermError(f"{where} holds {arr.dtype} values; a direction is an array of numbers.")
    arr = np.squeeze(arr)
    if arr.ndim != 1:
        raise TermError(f"{where} has shape {tuple(np.shape(vector))}; a direction is one vector (shape (width,)).")
    if not np.isfinite(arr).all() or not np.any(arr):
        raise TermError(f"{where} holds NaN, infinite or only zero values; a direction needs a finite, non-zero vector.")
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def split_member(spec: str) -> tuple[str, str | None]:
    """``neuron:blocks.1:3@toy-b`` -> (``neuron:blocks.1:3``, ``toy-b``); no ``@MODEL``: (spec, None)."""
    base, at, member = spec.rpartition("@")
    if not at or not base or any(c in member for c in "/\\:="):
        return spec, None
    return base.strip(), member.strip()


def parse_spec(spec: str, member: int = 0, at: str | None = None) -> Objective | None:
    """``neuron:LAYER:UNIT[:TOKEN]``, ``channel:LAYER:UNIT``, ``direction:LAYER:FILE``, ``head:LAYER:HEAD``
    (or ``head:...headH``) as a term reading model ``member``; None when ``spec`` is not one of them.
    A trailing ``@MODEL`` is left to ``feature_terms``, which knows the models."""
    spec = split_member(spec)[0]
    kind = spec.split(":", 1)[0]
    if kind not in SPECS:
        return None
    parts = spec.split(":", 2) if kind == "direction" else spec.split(":")
    one_head = kind == "head" and len(parts) == 2 and re.search(r"\.head(\d+)\Z", parts[1].strip())
    if one_head:  # head:blocks.7.attn.head3: the head named in full
        layer = parts[1].strip()[:one_head.start()]
        return head(layer, int(one_head.group(1)), member=member, at=at)
    expected = (3, 4) if kind == "neuron" else (3,)
    if len(parts) not in expected or not all(p.strip() for p in parts):
        raise TermError(f"The term '{spec}' needs the form {SPECS[kind]}.")
    layer = parts[1].strip()
    if kind == "direction":
        return direction(layer, parts[2].strip(), member=member, at=at)
    try:
        numbers = [int(p) for p in parts[2:]]
    except ValueError:
        raise TermError(f"The term '{spec}' needs whole numbers after the layer ({SPECS[kind]}).") from None
    if numbers[0] < 0:
        raise TermError(f"The term '{spec}' names a negative {'head' if kind == 'head' else 'unit'}.")
    return {"neuron": neuron, "channel": channel, "head": head}[kind](layer, *numbers, member=member, at=at)


def feature_terms(spec: str, models: list[tuple[object, str]]) -> Objective | None:
    """A feature term for an ascent over ``models`` ((model, name) of each, the first first): one term per
    model that has the layer (all of them when none has it, so the hooks say why), or the one named
    with ``@MODEL``; None when ``spec`` is no feature term."""
    base, at = split_member(spec)
    if base.split(":", 1)[0] not in SPECS:
        return None
    names = [n for _, n in models]
    if at is not None and at not in names:
        raise TermError(f"The term '{spec}' names the model '{at}', which is not in this ascent "
                        f"(its models are {', '.join(names)}).")
    reached = [i for i, n in enumerate(names) if at is None or n == at]
    if at is None and len(models) > 1:
        layer = base.split(":")[1].strip() if base.count(":") else ""
        having = [i for i in reached if _has(models[i][0], re.sub(r"\.head\d+\Z", "", layer))]
        reached = having or reached
    terms = [parse_spec(base, i, names[i] if len(models) > 1 else None) for i in reached]
    return sum(terms[1:], terms[0])


def _has(model, layer: str) -> bool:
    try:
        return module_for(model, layer, head=True) in dict(model.module.named_modules())
    except TermError:
        return False
