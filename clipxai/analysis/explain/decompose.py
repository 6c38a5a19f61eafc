"""The image embedding of a ViT CLIP split exactly into the parts that wrote it.

The class token's final residual is a sum: the embedding term (class token and position after
the pre-norm), each attention head of each layer and each MLP. The final layer norm is linear
once its scale is fixed, so with each image's own scale (the standard deviation of its whole
final residual) every part is centred, scaled, multiplied by the norm's weight and projected;
the norm's bias goes to the embedding term. The parts then add up to exactly what the model
returns (Gandelsman, Efros & Steinhardt, ICLR 2024). A head's part further splits over the
image tokens it attends to, weighted by its attention.

One forward pass per batch records the embedding term, each MLP's output, the final residual
and what each attention hands its output projection (every head's output, concatenated:
``models.projection``, so nothing is computed twice); a head's part is its slice of that at the
class token through its own columns of the projection. The per-patch split needs the attention
weights, so it recomputes them from each attention's input.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from clipxai.models.components import (  # noqa: F401  (attend, attention_input and head_outputs: importable here too)
    AttentionParams,
    VisionTower,
    attend,
    attention_input,
    attention_params,
    head_names,
    head_outputs,
    vision_tower,
)
from clipxai.models.projection import fused_attention, projection_inputs


@dataclass
class Decomposition:
    """Parts of image embeddings, in the model's embedding space before L2 normalisation.

    ``parts[b, c]`` is component ``names[c]``'s part of image ``b``'s ``embedding``; the parts
    of an image add up to its embedding. ``patches[b, j, t]`` (with ``per_patch``) is head
    ``head_names[j]``'s part read from token ``t`` (0 is the class token); they add up over
    ``t`` to the head's part. ``scale`` is each image's final-norm standard deviation,
    ``bias`` the norm's bias through the projection (held in the ``embed`` part).
    """

    names: list[str]
    parts: torch.Tensor
    embedding: torch.Tensor
    scale: torch.Tensor
    bias: torch.Tensor
    head_names: list[str] = field(default_factory=list)
    patches: torch.Tensor | None = None

    @property
    def sum_error(self) -> float:
        """max over images of |sum of parts - embedding| / |embedding|."""
        err = (self.parts.double().sum(1) - self.embedding.double()).norm(dim=-1)
        return float((err / self.embedding.double().norm(dim=-1).clamp_min(1e-30)).max()) if len(err) else 0.0

    def part(self, name: str) -> torch.Tensor:
        """(images, embed_dim): one component's part of every image."""
        return self.parts[:, self.names.index(name)]

    def to_dict(self) -> dict:
        return {"names": list(self.names), "images": int(self.parts.shape[0]),
                "embed_dim": int(self.parts.shape[-1]), "sum_error": self.sum_error,
                "per_patch": self.patches is not None}


def class_row(out, sequence_first: bool) -> torch.Tensor:
    """The class token's row (batch, width) of a block-level output in either layout."""
    out = out[0] if isinstance(out, (tuple, list)) else out
    return out[0] if sequence_first else out[:, 0]


@contextlib.contextmanager
def _recording(model, tower: VisionTower) -> Iterator[dict]:
    """Within the block, a forward pass fills the dict with what the decomposition reads (fp32, detached)."""
    store: dict = {}
    handles = []
    mod = model.module.get_submodule

    def keep(key, value):
        store[key] = value.detach().float()

    handles.append(mod(tower.ln_pre).register_forward_hook(lambda _m, _i, out: keep("embed", out[:, 0])))
    for i in range(tower.layers):
        def attn_in(m, args, kwargs, _i=i):
            keep(("attn", _i), attention_input(m, args, kwargs))

        def mlp_out(_m, _in, out, _i=i, _s=tower.layer_scale(model, i, 2)):
            keep(("mlp", _i), _scaled(_s, class_row(out, tower.sequence_first)))
        handles.append(mod(tower.attn_name(i)).register_forward_pre_hook(attn_in, with_kwargs=True))
        handles.append(mod(tower.mlp_name(i)).register_forward_hook(mlp_out))

    def final(_m, args):
        x = args[0]
        keep("final", x[:, 0] if x.dim() == 3 else x)
    handles.append(mod(tower.ln_post).register_forward_pre_hook(final))

    def heads_out(layer: int, z: torch.Tensor) -> None:      # the class token's row is all a part needs
        keep(("z", layer), z[:, :1])

    # A batch-first nn.MultiheadAttention without gradients runs a fused kernel, which an active
    # mode would turn off (changing the last bits of the embedding): its heads are recomputed instead.
    try:
        with contextlib.nullcontext() if fused_attention(model) else projection_inputs(model, heads_out):
            yield store
    finally:
        for h in handles:
            h.remove()


def _scaled(scale: nn.Module | None, x: torch.Tensor) -> torch.Tensor:
    return x if scale is None else scale(x)


def _norm_and_projection(model, tower: VisionTower, final: torch.Tensor):
    """(the linear map of a part into the embedding space, each image's scale, the norm's bias projected)."""
    ln = model.module.get_submodule(tower.ln_post)
    width = final.shape[-1]
    gamma = ln.weight.float() if ln.weight is not None else final.new_ones(width)
    beta = ln.bias.float() if ln.bias is not None else final.new_zeros(width)
    proj = tower.projection(model)
    proj = torch.eye(width, device=final.device) if proj is None else proj.float()
    scale = (final.var(dim=-1, unbiased=False) + ln.eps).sqrt()

    def linear(part: torch.Tensor) -> torch.Tensor:  # part: (batch, ..., width)
        s = scale.view(-1, *([1] * (part.dim() - 1)))
        return ((part - part.mean(dim=-1, keepdim=True)) * (gamma / s)) @ proj
    return linear, scale, beta @ proj


def _class_heads(params: AttentionParams, store: dict, layer: int, batch: int) -> torch.Tensor:
    """Each head's write at the class token (batch, heads, width).

    From what the layer's output projection was handed when the pass recorded it (every head's
    output, concatenated, at the class token: (batch, 1, width)); otherwise recomputed from the
    attention's input.
    The output projection's bias is shared equally by the heads.
    """
    z = store.get(("z", layer))
    if z is not None:
        per_head = z[:, 0].reshape(batch, params.heads, params.head_dim)
    else:
        weights, v = attend(params, store[("attn", layer)], slice(0, 1))
        per_head = torch.einsum("bht,bthd->bhd", weights[:, :, 0], v)
    return torch.einsum("bhd,hdw->bhw", per_head, params.out_by_head()) + params.bo / params.heads


def _layer_patches(params: AttentionParams, x: torch.Tensor) -> torch.Tensor:
    """Each head's write from each token it reads (batch, heads, tokens, width), recomputed from the
    attention's input ``x``: a head's share of the output bias is spread over the tokens by its attention,
    so the per-token writes add up to the head's.
    """
    weights, v = attend(params, x, slice(0, 1))
    written = torch.einsum("bthd,hdw->bhtw", v, params.out_by_head()) + params.bo / params.heads
    return weights[:, :, 0].unsqueeze(-1) * written


def _decompose_batch(model, tower: VisionTower, images: torch.Tensor, per_patch: bool):
    with _recording(model, tower) as store:
        embedding = model.embed_images(images).float()
    linear, scale, bias = _norm_and_projection(model, tower, store["final"])
    parts, patches = [linear(store["embed"]) + bias], []
    for i in range(tower.layers):
        params = attention_params(model.module.get_submodule(tower.attn_name(i)))
        layer_scale = tower.layer_scale(model, i, 1)
        heads = _class_heads(params, store, i, len(images))
        parts += list(linear(_scaled(layer_scale, heads)).unbind(1)) + [linear(store[("mlp", i)])]
        if per_patch:
            patches.append(linear(_scaled(layer_scale, _layer_patches(params, store[("attn", i)]))))
    return (torch.stack(parts, dim=1), embedding, scale, bias, torch.cat(patches, dim=1) if patches else None)


def decomposition_names(model) -> list[str]:
    """The components ``decompose`` splits an embedding into: ``embed``, then each layer's heads and MLP."""
    tower = vision_tower(model)
    return ["embed"] + [n for i in range(tower.layers) for n in head_names(tower, i) + [f"blocks.{i}.mlp"]]


@torch.no_grad()
def decompose(model, images, *, per_patch: bool = False, batch_size: int = 32,
              before_batch: Callable[[int, int], None] | None = None) -> Decomposition:
    """Split ``model``'s embedding of each image ([B,3,H,W] in [0,1], any size) into its components' parts.

    The names are ``embed``, then each layer's heads and its MLP; ``per_patch`` also splits each
    head over the tokens it reads (memory grows with layers x heads x tokens per image).
    ``before_batch(start, stop)`` is called before the forward pass of images ``start:stop``, so
    other hooks can read the same pass (the explanation takes its mean writes in it).
    """
    tower = vision_tower(model)
    images = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images)
    names = decomposition_names(model)
    heads = [n for i in range(tower.layers) for n in head_names(tower, i)]
    chunks = []
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].to(model.device, torch.float32)
        if before_batch is not None:
            before_batch(start, start + len(batch))
        chunks.append([None if t is None else t.cpu()
                       for t in _decompose_batch(model, tower, batch, per_patch)])
    if not chunks:
        empty = torch.zeros(0, len(names), model.embed_dim)
        return Decomposition(names, empty, empty[:, 0], torch.zeros(0), torch.zeros(model.embed_dim), heads)
    parts, embedding, scale = (torch.cat([c[j] for c in chunks]) for j in range(3))
    patches = torch.cat([c[4] for c in chunks]) if per_patch else None
    return Decomposition(names, parts, embedding, scale, chunks[0][3].cpu(), heads, patches)
