"""Canonical names for the parts of a ViT image tower, the same for every backend.

The decomposition and the ablations speak of ``embed`` (class token and positional embedding
after the pre-norm), ``blocks.{i}`` (a whole residual block), ``blocks.{i}.attn`` (its attention),
``blocks.{i}.attn.head{h}`` (one head of it) and ``blocks.{i}.mlp``. Each backend keeps these
modules under its own dotted names (``visual.transformer.resblocks.3.attn`` in OpenAI's CLIP and
open_clip, ``vision_model.encoder.layers.3.self_attn`` in Hugging Face's); ``component`` reads
either spelling, and ``VisionTower`` holds the backend facts (where the blocks are, which layout
they run in, the final norm and projection) that the analysis needs to take a tower apart.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import torch
from torch import nn

from clipxai.errors import ClipxaiError

KINDS = ("embed", "block", "attn", "head", "mlp")
_CANONICAL = re.compile(r"blocks\.(\d+)(?:\.(attn|mlp))?(?:\.head(\d+))?\Z")
_SPELLING = "embed, blocks.{i}, blocks.{i}.attn, blocks.{i}.attn.head{h} and blocks.{i}.mlp"


class ComponentError(ClipxaiError):
    """A component name the model lacks, or an image tower that cannot be taken apart."""


@dataclass(frozen=True)
class Component:
    """One named part of the image tower: its canonical name and the backend module that computes it."""

    name: str
    kind: str
    layer: int | None
    head: int | None
    module: str


@dataclass(frozen=True)
class AttentionParams:
    """One attention module's weights in one form (fp32): ``y = softmax(q k^T * scale) v @ wo^T + bo``."""

    wq: torch.Tensor
    wk: torch.Tensor
    wv: torch.Tensor
    bq: torch.Tensor
    bk: torch.Tensor
    bv: torch.Tensor
    wo: torch.Tensor
    bo: torch.Tensor
    heads: int
    scale: float

    @property
    def head_dim(self) -> int:
        return self.wq.shape[0] // self.heads

    def out_by_head(self) -> torch.Tensor:
        """The output projection split by head, (heads, head_dim, width): head h writes ``z_h @ out[h]``."""
        return self.wo.t().reshape(self.heads, self.head_dim, -1)


@dataclass(frozen=True)
class VisionTower:
    """Where a ViT image tower keeps its parts, by backend module name, and how its tensors are laid out."""

    model_name: str
    blocks: str           # the ModuleList of residual blocks
    attn: str             # the attention's name inside a block
    mlp: str              # the MLP's name inside a block
    ln_pre: str
    ln_post: str
    layers: int
    heads: int
    width: int
    sequence_first: bool  # blocks and MLPs output (tokens, batch, width)

    def block_name(self, i: int) -> str:
        return f"{self.blocks}.{i}"

    def attn_name(self, i: int) -> str:
        return f"{self.blocks}.{i}.{self.attn}"

    def mlp_name(self, i: int) -> str:
        return f"{self.blocks}.{i}.{self.mlp}"

    def module_of(self, model, kind: str, layer: int | None = None) -> nn.Module:
        """The backend module computing a component of ``kind`` (a head is computed by its attention)."""
        name = {"embed": self.ln_pre, "block": self.block_name, "attn": self.attn_name,
                "head": self.attn_name, "mlp": self.mlp_name}[kind]
        return model.module.get_submodule(name if isinstance(name, str) else name(layer))

    def layer_scale(self, model, i: int, which: int) -> nn.Module | None:
        """open_clip's LayerScale after the attention (``which`` 1) or the MLP (2); None when it has none."""
        scale = getattr(model.module.get_submodule(self.block_name(i)), f"ls_{which}", None)
        return None if scale is None or isinstance(scale, nn.Identity) else scale

    def projection(self, model) -> torch.Tensor | None:
        """(width, embed_dim): the projection after the final norm, None when the tower has none."""
        if self.blocks.startswith("vision_model."):
            return model.module.visual_projection.weight.t()
        return model.module.visual.proj


def vision_tower(model) -> VisionTower:
    """The ViT facts of ``model``'s image tower, or one sentence saying why it cannot be taken apart."""
    m, name = model.module, model.name
    if hasattr(m, "vision_model") and hasattr(m, "visual_projection"):
        return _tower(model, "vision_model.encoder.layers", "self_attn", "vision_model.pre_layrnorm",
                      "vision_model.post_layernorm")
    visual = getattr(m, "visual", None)
    visual = getattr(m, "vision_model", None) if visual is None else visual
    kind = type(visual).__name__ if visual is not None else type(m).__name__
    if "ResNet" in kind:
        raise ComponentError(f"clipxai decomposes ViT image towers only; {name} has a ResNet image tower.")
    if "Siglip" in kind:
        raise ComponentError(f"clipxai decomposes ViT image towers that read their class token; {name} pools "
                             f"its tokens with an attention head.")
    if visual is None or not hasattr(getattr(visual, "transformer", None), "resblocks"):
        raise ComponentError(f"clipxai decomposes ViT image towers only; {name} has a {kind} image tower.")
    if getattr(visual, "attn_pool", None) is not None or getattr(visual, "pool_type", "tok") != "tok":
        raise ComponentError(f"clipxai decomposes ViT image towers that read their class token; {name} pools "
                             f"its tokens another way.")
    tower = _tower(model, "visual.transformer.resblocks", "attn", "visual.ln_pre", "visual.ln_post")
    if not isinstance(model.module.get_submodule(tower.attn_name(0)), nn.MultiheadAttention):
        raise ComponentError(f"clipxai decomposes ViT blocks with standard attention; {name}'s blocks are "
                             f"custom.")
    return tower


def _tower(model, blocks: str, attn: str, ln_pre: str, ln_post: str) -> VisionTower:
    layers = model.module.get_submodule(blocks)
    first = layers[0].get_submodule(attn)
    width = int(getattr(first, "embed_dim", None) or first.out_proj.out_features)
    return VisionTower(model_name=model.name, blocks=blocks, attn=attn, mlp="mlp", ln_pre=ln_pre,
                       ln_post=ln_post, layers=len(layers), heads=int(first.num_heads), width=width,
                       sequence_first=model._sequence_first(f"{blocks}.0"))


def attention_params(attn: nn.Module) -> AttentionParams:
    """The weights of an ``nn.MultiheadAttention`` (OpenAI, open_clip) or of a q/k/v-projected one (HF)."""
    if isinstance(attn, nn.MultiheadAttention):
        width = attn.embed_dim
        if attn.in_proj_weight is not None:
            wq, wk, wv = attn.in_proj_weight.float().split(width)
        else:
            wq, wk, wv = (w.float() for w in (attn.q_proj_weight, attn.k_proj_weight, attn.v_proj_weight))
        zero = torch.zeros(width, device=wq.device)
        bq, bk, bv = attn.in_proj_bias.float().split(width) if attn.in_proj_bias is not None else (zero,) * 3
        heads = attn.num_heads
        scale = (width // heads) ** -0.5
    else:
        wq, wk, wv = (getattr(attn, p).weight.float() for p in ("q_proj", "k_proj", "v_proj"))
        zero = torch.zeros(wq.shape[0], device=wq.device)
        bq, bk, bv = (zero if getattr(attn, p).bias is None else getattr(attn, p).bias.float()
                      for p in ("q_proj", "k_proj", "v_proj"))
        heads = attn.num_heads
        scale = float(getattr(attn, "scale", (wq.shape[0] // heads) ** -0.5))
    out = attn.out_proj
    bo = out.bias.float() if out.bias is not None else torch.zeros(out.out_features, device=wq.device)
    return AttentionParams(wq, wk, wv, bq, bk, bv, out.weight.float(), bo, heads, scale)


def attend(params: AttentionParams, x: torch.Tensor, queries: slice | None = None
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """(attention weights (batch, heads, queries, tokens), values (batch, tokens, heads, head_dim)).

    ``x`` is the attention's input, batch-first; ``queries`` picks the query tokens (all of them
    by default). The same arithmetic as the module, so ``weights @ values`` is each head's output.
    """
    b, t, _ = x.shape
    h, d = params.heads, params.head_dim
    xq = x if queries is None else x[:, queries]
    q = (xq @ params.wq.t() + params.bq).view(b, xq.shape[1], h, d)
    k = (x @ params.wk.t() + params.bk).view(b, t, h, d)
    v = (x @ params.wv.t() + params.bv).view(b, t, h, d)
    weights = (torch.einsum("bqhd,bkhd->bhqk", q, k) * params.scale).softmax(dim=-1)
    return weights, v


def head_outputs(params: AttentionParams, x: torch.Tensor) -> torch.Tensor:
    """Each head's output at every token before the output projection, (batch, tokens, heads, head_dim)."""
    weights, v = attend(params, x)
    return torch.einsum("bhqk,bkhd->bqhd", weights, v)


def head_output(params: AttentionParams, x: torch.Tensor, head: int) -> torch.Tensor:
    """One head's output at every token before the output projection, (batch, tokens, head_dim).

    The arithmetic of ``head_outputs`` for that head alone (its rows of the projections), so
    ablating a few heads does not pay for all of them.
    """
    d = params.head_dim
    rows = slice(head * d, (head + 1) * d)
    q = x @ params.wq[rows].t() + params.bq[rows]
    k = x @ params.wk[rows].t() + params.bk[rows]
    v = x @ params.wv[rows].t() + params.bv[rows]
    return ((q @ k.transpose(-1, -2)) * params.scale).softmax(dim=-1) @ v


def attention_input(attn: nn.Module, args: tuple, kwargs: dict) -> torch.Tensor:
    """The query input an attention module was called with, batch-first."""
    x = args[0] if args else kwargs.get("hidden_states", kwargs.get("query"))
    if isinstance(attn, nn.MultiheadAttention) and not attn.batch_first:
        x = x.transpose(0, 1)
    return x


def component(model, name: str) -> Component:
    """The component ``name`` (canonical, or the backend's own dotted module name) of ``model``."""
    tower = vision_tower(model)
    canonical = _canonical(tower, name.strip())
    if canonical == "embed":
        return Component("embed", "embed", None, None, tower.ln_pre)
    match = _CANONICAL.match(canonical or "")
    if match is None or (match.group(3) is not None and match.group(2) != "attn"):
        close = difflib.get_close_matches(name, list_components(model, kinds=KINDS), n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise ComponentError(f"'{name}' names no component of {tower.model_name}; components are "
                             f"{_SPELLING}, or the backend's module names{hint}.")
    layer, part, head = int(match.group(1)), match.group(2), match.group(3)
    if layer >= tower.layers:
        raise ComponentError(f"{tower.model_name} has {_count(tower.layers, 'layer')}; "
                             f"{name} names layer {layer}.")
    if head is not None and int(head) >= tower.heads:
        raise ComponentError(f"{tower.model_name} has {_count(tower.heads, 'head')} per layer; "
                             f"{name} names head {int(head)}.")
    kind = "head" if head is not None else (part or "block")
    module = {"block": tower.block_name, "mlp": tower.mlp_name}.get(kind, tower.attn_name)(layer)
    return Component(canonical, kind, layer, None if head is None else int(head), module)


def _count(n: int, what: str) -> str:
    """'12 layers (0-11)', '1 head (0)'."""
    return f"{n} {what}{'s' if n != 1 else ''} ({'0' if n == 1 else f'0-{n - 1}'})"


def _canonical(tower: VisionTower, name: str) -> str | None:
    """``name`` in canonical spelling when it is canonical or one of the backend's module names."""
    if name in ("embed", tower.ln_pre):
        return "embed"
    if name.startswith(tower.blocks + "."):
        rest = name[len(tower.blocks) + 1:].split(".")
        inner = {tower.attn: "attn", tower.mlp: "mlp"}
        if not rest[0].isdigit() or len(rest) > 3 or (len(rest) > 1 and rest[1] not in inner):
            return None
        if len(rest) == 3 and (rest[1] != tower.attn or not re.fullmatch(r"head\d+", rest[2])):
            return None
        return ".".join(["blocks", rest[0]] + ([inner[rest[1]]] if len(rest) > 1 else []) + rest[2:])
    return name


def canonical_name(model, name: str) -> str | None:
    """The canonical name of a module that is a component (``visual.transformer.resblocks.3`` is
    ``blocks.3``); None for any other module, or a tower that cannot be taken apart."""
    try:
        return component(model, name).name
    except ComponentError:
        return None


def module_name(model, name: str) -> str:
    """The backend's dotted module name for a component (a head's is its attention module's)."""
    return component(model, name).module


def head_names(tower: VisionTower, layer: int) -> list[str]:
    return [f"blocks.{layer}.attn.head{h}" for h in range(tower.heads)]


def list_components(model, kinds=("embed", "head", "mlp")) -> list[str]:
    """The model's components of the given kinds, in the order of the residual stream.

    The default kinds are the decomposition's: ``embed``, then each layer's heads and its MLP,
    which together add up to the image embedding.
    """
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ComponentError(f"'{unknown[0]}' is not a kind of component; kinds are {', '.join(KINDS)}.")
    tower = vision_tower(model)
    names = ["embed"] if "embed" in kinds else []
    for i in range(tower.layers):
        names += [f"blocks.{i}"] if "block" in kinds else []
        names += [f"blocks.{i}.attn"] if "attn" in kinds else []
        names += head_names(tower, i) if "head" in kinds else []
        names += [f"blocks.{i}.mlp"] if "mlp" in kinds else []
    return names
