"""Live activations: a block's output and its attention heads, with their autograd graph kept.

``ClipModel.capture`` records activations for the run folder and detaches them. Objective
terms that maximize a neuron, a channel, a direction or an attention head need the same
activations *with* their graph, so that the gradient flows back into the image:
``ClipModel.hooked(names, heads)`` yields a ``LiveActivations`` filled by the forward
passes made inside it, in one batch-first layout whatever the backend:

- ``outputs[name]``: the module's output, ``(batch, tokens, width)`` (sequence-first
  transformers are permuted; convolutional maps become ``(batch, h*w, channels)``, row-major
  pixels; 2-d outputs stay ``(batch, width)``);
- ``heads[name]``: for a transformer block, each attention head's output (its
  attention-weighted values, before the output projection), ``(batch, heads, tokens, head_dim)``.

Heads are read from the attention module inside the block: ``nn.MultiheadAttention``
(OpenAI's CLIP, open_clip) is recomputed per head from the inputs it was given; an attention
with ``q_proj``/``k_proj``/``v_proj``/``out_proj`` and ``num_heads`` (Hugging Face) is read at
its output projection's input.
"""

from __future__ import annotations

import contextlib
import difflib
import math
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from clipxai.errors import ClipxaiError


@dataclass
class LiveActivations:
    """Activations of the forward passes made inside ``ClipModel.hooked``, graph kept."""

    outputs: dict[str, torch.Tensor] = field(default_factory=dict)
    heads: dict[str, torch.Tensor] = field(default_factory=dict)

    def has(self, names=(), heads=()) -> bool:
        return all(n in self.outputs for n in names) and all(n in self.heads for n in heads)

    def tensors(self) -> dict[tuple[str, str], torch.Tensor]:
        """Every activation, by (``outputs`` or ``heads``, name)."""
        return {**{("outputs", k): t for k, t in self.outputs.items()},
                **{("heads", k): t for k, t in self.heads.items()}}

    @classmethod
    def joined_leaves(cls, parts: list[LiveActivations]) -> LiveActivations:
        """The activations of chunks of one batch of views, joined along the views, as leaves
        that ask for their gradient (``Engine.backward`` carries it into each chunk again)."""
        def join(kind: str) -> dict[str, torch.Tensor]:
            return {k: torch.cat([getattr(p, kind)[k] for p in parts]).requires_grad_(True)
                    for k in getattr(parts[0], kind)}
        return cls(join("outputs"), join("heads"))


def batch_first(output, sequence_first: bool) -> torch.Tensor:
    """A module's output as (batch, tokens, width), (batch, h*w, channels) or (batch, width)."""
    if isinstance(output, (tuple, list)):
        output = output[0]
    if output.dim() == 3 and sequence_first:
        return output.permute(1, 0, 2)
    if output.dim() == 4:
        return output.flatten(2).transpose(1, 2)
    return output


def check_names(module: nn.Module, names, model_name: str) -> dict[str, nn.Module]:
    """The modules named ``names``, or one sentence naming the closest hook points."""
    modules = dict(module.named_modules())
    for name in names:
        if name not in modules or not name:
            close = difflib.get_close_matches(name, [n for n in modules if n], n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else "; `clipxai ascend --hooks PATTERN` names them."
            raise ClipxaiError(f"'{name}' is not a hook point of {model_name}{hint}")
    return modules


def attention_of(block: nn.Module, name: str) -> nn.Module:
    """The attention module inside a transformer block (or the block itself, if it is one)."""
    if _is_mha(block) or _is_projected(block):
        return block
    for child_name, child in block.named_modules():
        if child_name and (_is_mha(child) or _is_projected(child)):
            return child
    raise ClipxaiError(f"'{name}' holds no attention module, so it has no heads; name a transformer block "
                       f"(e.g. visual.transformer.resblocks.0 or vision_model.encoder.layers.0).")


def _is_mha(m: nn.Module) -> bool:
    return isinstance(m, nn.MultiheadAttention)


def _is_projected(m: nn.Module) -> bool:
    return all(isinstance(getattr(m, p, None), nn.Linear) for p in ("q_proj", "k_proj", "v_proj", "out_proj")) \
        and isinstance(getattr(m, "num_heads", None), int)


def head_hook(attn: nn.Module, store: Callable[[torch.Tensor], None]):
    """Register a hook that calls ``store`` with each forward's per-head outputs (batch, heads, tokens, head_dim)."""
    if _is_projected(attn):
        heads = attn.num_heads

        def pre(_mod, args):
            x = args[0]                                   # (batch, tokens, heads * head_dim)
            store(x.view(*x.shape[:-1], heads, -1).transpose(-3, -2))
        return attn.out_proj.register_forward_pre_hook(pre)

    def pre_mha(mod, args, kwargs):
        query, key, value = (list(args) + [kwargs.get(k) for k in ("query", "key", "value")[len(args):]])[:3]
        store(mha_heads(mod, query, key, value, kwargs.get("attn_mask")))
    return attn.register_forward_pre_hook(pre_mha, with_kwargs=True)


def mha_heads(mha: nn.MultiheadAttention, query, key, value, attn_mask=None) -> torch.Tensor:
    """Each head's output of an ``nn.MultiheadAttention`` call, (batch, heads, tokens, head_dim).

    The same arithmetic as the module (packed input projection, scaled dot product, softmax),
    stopped before the heads are concatenated and projected.
    """
    if not mha.batch_first:
        query, key, value = (t.transpose(0, 1) for t in (query, key, value))
    h, width = mha.num_heads, mha.embed_dim
    d = width // h
    if mha.in_proj_weight is not None:
        w_q, w_k, w_v = mha.in_proj_weight.split(width)
    else:
        w_q, w_k, w_v = mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight
    b_q, b_k, b_v = mha.in_proj_bias.split(width) if mha.in_proj_bias is not None else (None, None, None)

    def split(x, w, b):  # (batch, tokens, width) -> (batch, heads, tokens, d)
        return F.linear(x, w, b).view(x.shape[0], x.shape[1], h, d).transpose(1, 2)

    q, k, v = split(query, w_q, b_q), split(key, w_k, b_k), split(value, w_v, b_v)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)
    if attn_mask is not None:
        mask = attn_mask.to(scores.device)
        scores = scores.masked_fill(mask, float("-inf")) if mask.dtype == torch.bool else scores + mask.to(scores.dtype)
    return scores.softmax(dim=-1) @ v


@contextlib.contextmanager
def hooked(module: nn.Module, model_name: str, names, heads, sequence_first: Callable[[str], bool]
           ) -> Iterator[LiveActivations]:
    """The body of ``ClipModel.hooked`` (see there)."""
    names, heads = list(dict.fromkeys(names)), list(dict.fromkeys(heads))
    modules = check_names(module, names + heads, model_name)
    live = LiveActivations()
    handles = []
    try:
        for name in names:
            def hook(_mod, _inp, out, _name=name, _seq=sequence_first(name)):
                live.outputs[_name] = batch_first(out, _seq)
            handles.append(modules[name].register_forward_hook(hook))
        for name in heads:
            def store(value, _name=name):
                live.heads[_name] = value
            handles.append(head_hook(attention_of(modules[name], name), store))
        yield live
    finally:
        for h in handles:
            h.remove()
