"""What each attention of a ViT image tower hands its output projection, read or changed in the pass itself.

Every head's output, concatenated over the heads, is the input of the attention's output
projection. Hugging Face's attention calls ``linear`` on it through its ``out_proj`` module;
``nn.MultiheadAttention`` calls it inside ``multi_head_attention_forward``, which a torch function
mode sees only whole, so a plain self-attention call (a ViT's: one packed projection, no mask,
no dropout, no weights asked for) is computed here by that function's own arithmetic, bit for
bit. Either call carries the projection's weight, which names the layer. Inside
``projection_inputs(model, edit)`` each such input goes to ``edit(layer, z)`` batch-first
(batch, tokens, width); a tensor ``edit`` returns replaces it. A call of any other form runs as
it is and reaches ``edit`` not at all.

Nothing is computed twice: the decomposition reads the heads' outputs here instead of
recomputing keys and values, and attribution patching adds its probes here instead of
recomputing every head. One caution: a batch-first ``nn.MultiheadAttention`` run without
gradients takes a fused kernel, which any active mode turns off (``fused_attention`` says
whether the model has one), so the embedding moves in its last bits there.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Callable, Iterator

import torch
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from clipxai.models.components import vision_tower

_MHA_ARGS = inspect.signature(F.multi_head_attention_forward)

Edit = Callable[[int, torch.Tensor], "torch.Tensor | None"]


def _plain_self_attention(a: dict) -> bool:
    """Whether a ``multi_head_attention_forward`` call is a ViT's plain self-attention."""
    x = a["query"]
    return (x is a["key"] is a["value"] and x.dim() == 3 and a["in_proj_weight"] is not None
            and not a.get("use_separate_proj_weight") and a["bias_k"] is None and a["bias_v"] is None
            and not a["add_zero_attn"] and (not a.get("training", True) or not a["dropout_p"])
            and a.get("key_padding_mask") is None and a.get("attn_mask") is None and not a.get("need_weights", True)
            and a.get("static_k") is None and a.get("static_v") is None and not a.get("is_causal"))


def _self_attention(a: dict, layer: int, edit: Edit) -> torch.Tensor:
    """The output of a plain self-attention call (tokens first), by the arithmetic of
    ``multi_head_attention_forward``, with its heads' outputs handed to ``edit`` on the way."""
    x, heads = a["query"], a["num_heads"]
    t, b, width = x.shape
    q, k, v = F.linear(x, a["in_proj_weight"], a["in_proj_bias"]).unflatten(-1, (3, width)).unbind(-2)

    def split(y: torch.Tensor) -> torch.Tensor:
        return y.reshape(t, b * heads, width // heads).transpose(0, 1).reshape(b, heads, t, width // heads)
    z = F.scaled_dot_product_attention(split(q), split(k), split(v))          # (batch, heads, tokens, head_dim)
    z = z.permute(2, 0, 1, 3).reshape(t * b, width)
    new = edit(layer, z.view(t, b, width).transpose(0, 1))
    if new is not None:
        z = new.transpose(0, 1).reshape(t * b, width)
    return F.linear(z, a["out_proj_weight"], a["out_proj_bias"]).view(t, b, width)


class _ProjectionInputs(TorchFunctionMode):
    def __init__(self, layer_of: dict[int, int], edit: Edit):
        super().__init__()
        self.layer_of, self.edit = layer_of, edit

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.linear:
            weight = args[1] if len(args) > 1 else kwargs.get("weight")
            layer = self.layer_of.get(id(weight))
            z = args[0] if args else kwargs.get("input")
            if layer is not None and z is not None and z.dim() == 3:
                new = self.edit(layer, z)
                if new is not None:
                    return func(new, *args[1:], **kwargs) if args else func(**{**kwargs, "input": new})
        elif func is F.multi_head_attention_forward:
            call = _MHA_ARGS.bind(*args, **kwargs)
            layer = self.layer_of.get(id(call.arguments["out_proj_weight"]))
            if layer is not None and _plain_self_attention(call.arguments):
                return _self_attention(call.arguments, layer, self.edit), None
        return func(*args, **kwargs)


def fused_attention(model) -> bool:
    """Whether the tower's attention is a batch-first ``nn.MultiheadAttention`` (a fused kernel without
    gradients, which an active mode would turn off)."""
    tower = vision_tower(model)
    return any(isinstance(a, nn.MultiheadAttention) and a.batch_first
               for a in (model.module.get_submodule(tower.attn_name(i)) for i in range(tower.layers)))


@contextlib.contextmanager
def projection_inputs(model, edit: Edit) -> Iterator[None]:
    """Within the block, every forward pass hands ``edit(layer, z)`` what each attention gives its output
    projection (batch-first)."""
    tower = vision_tower(model)
    layer_of = {id(model.module.get_submodule(tower.attn_name(i)).out_proj.weight): i for i in range(tower.layers)}
    with _ProjectionInputs(layer_of, edit):
        yield
