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
``head:LAYER:HEAD``, each with ``=W`` for a weight. The engine captures the activations in its
own forward pass (``ClipModel.hooked``); a step it did not capture (views encoded in chunks,
a step built by hand) is encoded once more here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from clipxai.errors import ClipxaiError, TermError
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


def _term(fn, name: str, outputs=(), heads=()) -> Objective:
    fn.hook_outputs, fn.hook_heads = tuple(outputs), tuple(heads)
    return Objective(fn, name)


@register_term("neuron")
def neuron(layer: str, unit: int, token: int = 0) -> Objective:
    """neuron:LAYER:UNIT[:TOKEN]: one unit of a layer at one token (the class token by default), over views."""
    unit, token = int(unit), int(token)

    def term(step: Step) -> torch.Tensor:
        x = live_activations(step, [layer]).outputs[layer]
        if x.dim() == 3:
            if not -x.shape[1] <= token < x.shape[1]:
                raise TermError(f"Token {token} is out of range: {layer} has {_count(x.shape[1], 'token')}.")
            x = x[:, token]
        return _per_view(_unit(x, unit, layer), step).mean(dim=1)
    return _term(term, f"neuron({layer}:{unit}{'' if token == 0 else f':{token}'})", outputs=[layer])


@register_term("channel")
def channel(layer: str, unit: int) -> Objective:
    """channel:LAYER:UNIT: one unit of a layer averaged over all its tokens (or positions), and over views."""
    unit = int(unit)

    def term(step: Step) -> torch.Tensor:
        x = live_activations(step, [layer]).outputs[layer]
        x = _unit(x, unit, layer)
        if x.dim() == 2:
            x = x.mean(dim=1)
        return _per_view(x, step).mean(dim=1)
    return _term(term, f"channel({layer}:{unit})", outputs=[layer])


@register_term("direction")
def direction(layer: str, vector) -> Objective:
    """direction:LAYER:FILE.npy: cosine of a vector and the layer's activation averaged over tokens, over views.

    ``vector`` is a 1-d array, tensor, or the path of a ``.npy`` file holding one.
    """
    label = Path(vector).name if isinstance(vector, (str, Path)) else "vector"
    v = load_direction(vector)

    def term(step: Step) -> torch.Tensor:
        x = live_activations(step, [layer]).outputs[layer]
        pooled = x.mean(dim=1) if x.dim() == 3 else x
        if pooled.shape[-1] != v.shape[0]:
            raise TermError(f"The direction {label} has {v.shape[0]} values but {layer} has {pooled.shape[-1]} units.")
        target = v.to(pooled.device, pooled.dtype)
        cos = torch.nn.functional.cosine_similarity(pooled, target.unsqueeze(0), dim=-1)
        return _per_view(cos, step).mean(dim=1)
    return _term(term, f"direction({layer}:{label})", outputs=[layer])


@register_term("head")
def head(layer: str, index: int) -> Objective:
    """head:LAYER:HEAD: the output norm of one attention head in a block, averaged over tokens and views."""
    index = int(index)

    def term(step: Step) -> torch.Tensor:
        x = live_activations(step, heads=[layer]).heads[layer]      # (views, heads, tokens, head_dim)
        if not 0 <= index < x.shape[1]:
            raise TermError(f"Head {index} is out of range: {layer} has {_count(x.shape[1], 'head')}.")
        return _per_view(x[:, index].norm(dim=-1).mean(dim=-1), step).mean(dim=1)
    return _term(term, f"head({layer}:{index})", heads=[layer])


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


def parse_spec(spec: str) -> Objective | None:
    """``neuron:LAYER:UNIT[:TOKEN]``, ``channel:LAYER:UNIT``, ``direction:LAYER:FILE``, ``head:LAYER:HEAD``
    as a term; None when ``spec`` is not one of them."""
    kind = spec.split(":", 1)[0]
    if kind not in SPECS:
        return None
    parts = spec.split(":", 2) if kind == "direction" else spec.split(":")
    expected = (3, 4) if kind == "neuron" else (3,)
    if len(parts) not in expected or not all(p.strip() for p in parts):
        raise TermError(f"The term '{spec}' needs the form {SPECS[kind]}.")
    layer = parts[1].strip()
    if kind == "direction":
        return direction(layer, parts[2].strip())
    try:
        numbers = [int(p) for p in parts[2:]]
    except ValueError:
        raise TermError(f"The term '{spec}' needs whole numbers after the layer ({SPECS[kind]}).") from None
    if numbers[0] < 0:
        raise TermError(f"The term '{spec}' names a negative {'head' if kind == 'head' else 'unit'}.")
    return {"neuron": neuron, "channel": channel, "head": head}[kind](layer, *numbers)
