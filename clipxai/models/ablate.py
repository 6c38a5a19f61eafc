"""Component ablation as a context: within ``with ablated(model, names, means):`` each named
component's write to the residual stream is replaced by its mean over a reference set (or by
zero); after it the model is as it was.

Forward hooks on the backend's own modules do the replacing, so the ablation holds for every
forward pass inside the block, gradient ascent included: gradients flow through the parts
left alone. A head is replaced before the output projection (its slice of the attention's
output, recomputed from the attention's input and swapped for the mean through the head's
own columns of the projection); ``embed``, an attention, an MLP and a whole block are
replaced at their module's output. The means are plain tensors keyed by canonical name, one
row per token, so a run can keep them beside its results.

``probed`` puts the same hooks to another use: each named component's write gets a zero tensor
added that requires a gradient, so one backward pass gives the gradient of anything computed
from the embedding with respect to every component's write at once (what attribution patching
needs to estimate every ablation's effect without re-encoding).

It lives with the models (``clipxai.analysis.explain.ablate`` re-exports it) so that the ascent
can run with components ablated (``clipxai ascend --ablate``) as the analysis re-encodes with them.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from clipxai.models.components import (
    Component,
    ComponentError,
    VisionTower,
    attention_input,
    attention_params,
    component,
    head_output,
    head_outputs,
    vision_tower,
)
from clipxai.models.projection import projection_inputs

MODES = ("mean", "zero")


def _tokens_first(x: torch.Tensor, sequence_first: bool) -> torch.Tensor:
    """A (tokens, batch, width) or (batch, tokens, width) tensor as batch-first."""
    return x.transpose(0, 1) if sequence_first else x


def _layout(kind: str, tower: VisionTower, module: nn.Module) -> bool:
    """Whether the module computing a component of ``kind`` outputs sequence-first."""
    if kind == "embed":
        return False
    if kind in ("attn", "head") and isinstance(module, nn.MultiheadAttention):
        return not module.batch_first
    return tower.sequence_first if kind in ("block", "mlp") else False


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def _with_first(out, value: torch.Tensor):
    return (value, *out[1:]) if isinstance(out, tuple) else value


def _block_input(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs.get("hidden_states", kwargs.get("q_x"))


def _hook(comp: list[Component], tower: VisionTower, module: nn.Module,
          act: Callable[[str, torch.Tensor], torch.Tensor | None], rows=None):
    """A forward hook (with kwargs) handing ``act`` each component's value, batch-first; a tensor ``act``
    returns replaces that value (heads: all named heads of one attention module share the hook).

    ``rows(name, batch)`` may say which images of a batch a head is needed for (a tensor of
    indices, or None for all): the head is then computed, and handed to ``act``, for those only.
    """
    kind = comp[0].kind
    seq = _layout(kind, tower, module)
    params = attention_params(module) if kind == "head" else None
    out_by_head = params.out_by_head() if params is not None else None

    def hook(_m, args, kwargs, out):
        if kind == "head":
            x = attention_input(module, args, kwargs).float()  # the weights are fp32
            indices = [None if rows is None else rows(c.name, x.shape[0]) for c in comp]
            shared = indices[0]
            every = None
            if len(comp) > 1 and all(i is shared for i in indices) and (shared is None or len(shared)):
                every = head_outputs(params, x if shared is None else x[shared])   # all heads at once
            delta = 0
            for c, index in zip(comp, indices):
                if index is not None and len(index) == 0:
                    continue
                z = (every[:, :, c.head] if every is not None      # (batch, tokens, head_dim)
                     else head_output(params, x if index is None else x[index], c.head))
                new = act(c.name, z)
                if new is None:
                    continue
                change = (new - z) @ out_by_head[c.head]
                if index is None:
                    delta = delta + change
                else:
                    delta = (x.new_zeros(x.shape) if isinstance(delta, int) else delta).index_add(0, index, change)
            if isinstance(delta, int):
                return None
            first = _first(out)
            return _with_first(out, first + _tokens_first(delta, seq).to(first.dtype))
        value = _tokens_first(_first(out), seq)
        if kind == "block":
            start = _tokens_first(_block_input(args, kwargs), seq)
            new = act(comp[0].name, value - start)
            return None if new is None else _with_first(out, _tokens_first(start + new, seq))
        new = act(comp[0].name, value)
        return None if new is None else _with_first(out, _tokens_first(new, seq))
    return hook


def _grouped(model, components) -> tuple[VisionTower, dict[str, list[Component]]]:
    """The components by the module whose hook handles them (all heads of one attention together)."""
    tower = vision_tower(model)
    groups: dict[str, list[Component]] = {}
    for name in dict.fromkeys(components):
        c = component(model, name)
        groups.setdefault(c.module + ("#heads" if c.kind == "head" else ""), []).append(c)
    return tower, groups


@contextlib.contextmanager
def _hooks(model, components, act, rows=None) -> Iterator[None]:
    tower, groups = _grouped(model, components)
    handles = []
    try:
        for key, comps in groups.items():
            module = model.module.get_submodule(key.split("#")[0])
            handles.append(module.register_forward_hook(_hook(comps, tower, module, act, rows), with_kwargs=True))
        yield
    finally:
        for h in handles:
            h.remove()


class WriteSums:
    """Running sums of components' writes over the images of the forward passes ``summing_writes`` hooks.

    ``select`` says which images of the next batch count (indices into it; None: all of them),
    so the sums can be taken inside another pass over more images (the decomposition's).
    """

    def __init__(self, names: list[str]):
        self.names = names
        self.select: torch.Tensor | None = None
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = dict.fromkeys(names, 0)

    def add(self, name: str, value: torch.Tensor, selected: bool) -> None:
        """Add ``value`` (batch-first); ``selected``: it holds the selected images only (a head's)."""
        if not selected and self.select is not None:
            value = value[self.select.to(value.device)]
        self.sums[name] = self.sums.get(name, 0) + value.float().sum(dim=0)
        self.counts[name] += value.shape[0]

    def means(self) -> dict[str, torch.Tensor]:
        """Each component's mean write, one row per token, keyed by canonical name."""
        empty = [n for n in self.names if not self.counts[n]]
        if empty:
            raise ComponentError("Component means need at least one reference image.")
        return {n: (self.sums[n] / self.counts[n]).cpu() for n in self.names}


@contextlib.contextmanager
def summing_writes(model, components) -> Iterator[WriteSums]:
    """Within the block, each forward pass adds its (selected) images' component writes to the sums."""
    comps = [component(model, n) for n in components]
    names = [c.name for c in comps]
    sums = WriteSums(names)
    heads = {c.name for c in comps if c.kind == "head"}

    def rows(_name, _batch):       # a head is computed for the selected images only
        return sums.select

    def record(name, value):
        sums.add(name, value, selected=name in heads)

    with _hooks(model, names, record, rows):
        yield sums


@torch.no_grad()
def component_means(model, reference_images, components, *, batch_size: int = 32,
                    normalize: bool = True) -> dict[str, torch.Tensor]:
    """Each component's mean write over ``reference_images`` ([B,3,H,W] in [0,1]), one row per token.

    Keys are canonical names; a head's mean is (tokens, head_dim) before the output projection,
    every other component's (tokens, width) in the residual stream. ``normalize`` as the images
    are given to CLIP (an ascent without CLIP's input normalization takes its means so too).
    """
    images = torch.as_tensor(np.asarray(reference_images) if not torch.is_tensor(reference_images)
                             else reference_images)
    if len(images) == 0:
        raise ComponentError("Component means need at least one reference image.")
    with summing_writes(model, components) as sums:
        for start in range(0, len(images), batch_size):
            model.embed_images(images[start:start + batch_size].to(model.device, torch.float32), normalize=normalize)
    return sums.means()


def _means_of(model, names: list[str], means: dict | None) -> dict[str, torch.Tensor]:
    """``means`` keyed by canonical names (they may come keyed by the backend's), each of ``names`` there."""
    means = dict(means or {})
    if any(n not in means for n in names):  # keyed by backend names: read them as canonical
        means = {component(model, k).name: v for k, v in means.items()}
    missing = [n for n in names if n not in means]
    if missing:
        raise ComponentError(f"Mean ablation needs the mean of {missing[0]}; compute it with "
                             f"component_means(model, reference_images, components).")
    return means


@contextlib.contextmanager
def ablated(model, components, means: dict[str, torch.Tensor] | None = None,
            mode: str = "mean") -> Iterator[None]:
    """Within the block, each component writes its mean (``mode="mean"``, from ``component_means``) or zero.

    ``components`` are canonical or backend names; outside the block the model is untouched.
    """
    if mode not in MODES:
        raise ComponentError(f"Ablation mode '{mode}' is not one of {', '.join(MODES)}.")
    comps = [component(model, n) for n in components]
    whole = {c.layer for c in comps if c.kind == "attn"}
    # heads of an attention that is replaced whole go with it
    names = [c.name for c in comps if not (c.kind == "head" and c.layer in whole)]
    means = {} if mode == "zero" else _means_of(model, names, means)

    def replace(name, value):
        if mode == "zero":
            return torch.zeros_like(value)
        mean = means[name].to(value.device, value.dtype)
        if mean.shape != value.shape[1:]:
            raise ComponentError(f"The mean of {name} has shape {tuple(mean.shape)} but the model's {name} "
                                 f"writes {tuple(value.shape[1:])} per image (a different model or input "
                                 f"size).")
        return mean.expand_as(value)

    with _hooks(model, names, replace):
        yield


@contextlib.contextmanager
def ablated_rows(model, components, means: dict[str, torch.Tensor] | None, mask) -> Iterator[None]:
    """Within the block, image ``b`` of a batch has component ``components[c]`` mean-ablated where ``mask[b, c]``.

    One batch then carries a different ablation per image (the random draws of an ablation test
    encode together instead of one image at a time). Every forward pass inside must be a batch
    of exactly ``len(mask)`` images; ``components`` are heads, MLPs or ``embed``.
    """
    comps = [component(model, n) for n in components]
    if any(c.kind in ("attn", "block") for c in comps):
        raise ComponentError("Per-image ablation takes heads, MLPs and embed, not whole attentions or blocks.")
    names = [c.name for c in comps]
    means = _means_of(model, names, means)
    mask = torch.as_tensor(np.asarray(mask, dtype=bool))
    if mask.shape != (mask.shape[0], len(names)):
        raise ComponentError(f"The ablation mask has shape {tuple(mask.shape)}; it needs one column per component "
                             f"({len(names)}).")
    column = {n: i for i, n in enumerate(names)}
    heads = {c.name for c in comps if c.kind == "head"}
    index = {n: torch.nonzero(mask[:, column[n]]).flatten() for n in heads}

    def check(batch: int) -> None:
        if batch != mask.shape[0]:
            raise ComponentError(f"A batch of {batch} images met an ablation mask of {mask.shape[0]} rows.")

    def rows(name, batch):        # a head is computed only for the images that ablate it
        check(batch)
        return index[name].to(model.device)

    def replace(name, value):
        if name in heads:         # ``value`` holds the rows of ``rows(name)`` only
            return means[name].to(value.device, value.dtype).expand_as(value)
        check(value.shape[0])
        ablate = mask[:, column[name]].to(value.device)
        mean = means[name].to(value.device, value.dtype).expand_as(value)
        return torch.where(ablate.view(-1, *([1] * (value.dim() - 1))), mean, value)

    used = [n for n in names if bool(mask[:, column[n]].any())]
    with _hooks(model, used, replace, rows):
        yield


@contextlib.contextmanager
def probed(model, components) -> Iterator[dict[str, list[tuple[torch.Tensor, torch.Tensor]]]]:
    """Within the block, every forward pass adds a zero probe (requiring a gradient) to each component's write.

    The dict maps each canonical name to one ``(write, probe)`` per forward pass, both batch-first
    like ``component_means``' rows (a head's before the output projection); the write is
    detached. The gradient of a result with respect to a probe is its gradient with respect to
    that write, through every later part of the model; the probes change no value. The forward
    pass must run with gradients enabled; ``components`` are heads, MLPs or ``embed``. A head's
    probe is added where its attention hands its output to the projection (``models.projection``,
    nothing recomputed); an attention of another form has its heads recomputed by a hook.
    """
    comps = [component(model, n) for n in components]
    if any(c.kind in ("attn", "block") for c in comps):
        raise ComponentError("Probes take heads, MLPs and embed, not whole attentions or blocks.")
    store: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {c.name: [] for c in comps}
    tower = vision_tower(model)
    head_dim = tower.width // tower.heads
    heads: dict[int, list[Component]] = {}
    for c in comps:
        if c.kind == "head":
            heads.setdefault(c.layer, []).append(c)
    passes, seen_in = [0], {}

    def probe(name, value):
        zero = torch.zeros_like(value, requires_grad=True)
        store[name].append((value.detach(), zero))
        return value + zero

    def edit(layer, z):
        if layer not in heads:
            return None
        seen_in[layer] = passes[0]
        pieces = list(z.split(head_dim, dim=-1))
        for c in heads[layer]:
            pieces[c.head] = probe(c.name, pieces[c.head])
        return torch.cat(pieces, dim=-1)

    layer_of = {c.name: c.layer for c in comps}

    def rows(name, _batch):        # a head its attention handed over already is not recomputed
        done = seen_in.get(layer_of[name]) == passes[0]
        return torch.zeros(0, dtype=torch.long) if done else None

    def count(_m, _args):
        passes[0] += 1

    start = model.module.get_submodule(tower.ln_pre).register_forward_pre_hook(count)
    try:
        with projection_inputs(model, edit), _hooks(model, list(store), probe, rows):
            yield store
    finally:
        start.remove()
