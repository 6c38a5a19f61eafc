"""Forward passes of a ViT image tower that start at a later block, from a cached residual stream.

An ablation changes nothing before the first block it touches, so every ablated re-encoding of
an image repeats the same unablated prefix. ``Prefix`` encodes a batch of images once, keeping
the residual stream after every block (in the blocks' own layout), and ``Prefix.starting_at``
then makes the model skip the blocks before a given one: they are swapped, for the duration of
the block, for stand-ins that pass their input on (and, for the block just before the start,
hand on the cached residual of the images asked for). Everything else — the patch embedding
(which runs and is discarded, cheap), the later blocks with any hooks on them, the final norm
and projection — is the model's own code, so the embeddings equal a full forward pass up to
rounding (float sums taken in another batch).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch
from torch import nn

from clipxai.models.components import ComponentError, vision_tower


class _Pass(nn.Module):
    """A block that writes nothing: its input goes on (in the output form the real block has)."""

    def __init__(self, extra: int):
        super().__init__()
        self.extra = extra

    def forward(self, x, *args, **kwargs):
        return (x,) + (None,) * self.extra if self.extra >= 0 else x


class _Feed(_Pass):
    """The block before the start: it hands on the cached residual stream of the images of the batch."""

    def __init__(self, extra: int, residual: torch.Tensor, batch_dim: int):
        super().__init__(extra)
        self.residual, self.batch_dim = residual, batch_dim

    def forward(self, x, *args, **kwargs):
        x = _first(x)
        if x.shape[self.batch_dim] != self.residual.shape[self.batch_dim]:
            raise ComponentError(f"A batch of {x.shape[self.batch_dim]} images met a cached residual stream of "
                                 f"{self.residual.shape[self.batch_dim]}.")
        return super().forward(self.residual.to(x.device, x.dtype))


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


class Prefix:
    """``images`` encoded once: ``embeddings`` (fp32) and the residual stream after every block.

    ``outputs[i]`` holds block ``i``'s output for every image, in the block's layout
    (tokens first where the backend runs so). Memory: layers x images x tokens x width floats.
    """

    def __init__(self, model, images: torch.Tensor, *, batch_size: int = 32):
        self._in(model)
        images = torch.as_tensor(np.asarray(images, dtype=np.float32) if not torch.is_tensor(images) else images)
        with keeping_residuals(model) as kept, torch.inference_mode():
            self.embeddings = torch.cat([
                model.embed_images(images[s:s + batch_size].to(model.device, torch.float32)).float()
                for s in range(0, len(images), batch_size)]) if len(images) else torch.zeros(0, model.embed_dim)
        self.extra, self.outputs = kept.extra, kept.joined()

    @classmethod
    def of(cls, model, outputs: list, embeddings: torch.Tensor, extra: int) -> Prefix:
        """A ``Prefix`` of residual streams kept in another pass (``KeptResiduals.prefix``)."""
        prefix = cls.__new__(cls)
        prefix._in(model)
        prefix.outputs, prefix.embeddings, prefix.extra = outputs, embeddings.float(), extra
        return prefix

    def _in(self, model) -> None:
        self.model, self.tower = model, vision_tower(model)
        self.batch_dim = 1 if self.tower.sequence_first else 0
        self.blocks = model.module.get_submodule(self.tower.blocks)

    @contextlib.contextmanager
    def starting_at(self, layer: int, rows) -> Iterator[None]:
        """Within the block, a forward pass of the images ``rows`` (indices into the cached ones, in
        that order) runs blocks ``layer`` onwards only, from their cached residual stream."""
        if layer <= 0:
            yield
            return
        rows = torch.as_tensor(np.asarray(rows), dtype=torch.long)
        residual = self.outputs[layer - 1].index_select(self.batch_dim, rows.to(self.outputs[layer - 1].device))
        saved = [self.blocks[i] for i in range(layer)]
        try:
            for i in range(layer - 1):
                self.blocks[i] = _Pass(self.extra)
            self.blocks[layer - 1] = _Feed(self.extra, residual, self.batch_dim)
            yield
        finally:
            for i, block in enumerate(saved):
                self.blocks[i] = block


class KeptResiduals:
    """The residual stream after every block, for the images of the passes run inside ``keeping_residuals``.

    ``select`` says which images of the next batch to keep (indices into it; None: all), so the
    residuals of a few images can be kept inside a pass over many (the decomposition's). Past
    ``budget`` bytes it stops keeping and ``complete`` turns false: ``prefix`` then answers None.
    """

    def __init__(self, model, budget: int | None = None):
        self.tower = vision_tower(model)
        self.batch_dim = 1 if self.tower.sequence_first else 0
        self.select: torch.Tensor | None = None
        self.budget, self.held, self.complete = budget, 0, True
        self.extra = -1
        self.outputs: list[list[torch.Tensor]] = [[] for _ in range(self.tower.layers)]
        self._joined: list[torch.Tensor | None] | None = None

    def keep(self, layer: int, out) -> None:
        if isinstance(out, (tuple, list)):
            self.extra = len(out) - 1
        x = _first(out).detach()
        if self.select is not None:
            x = x.index_select(self.batch_dim, self.select.to(x.device))
        if not self.complete or (self.budget is not None and self.held + x.numel() * x.element_size() > self.budget):
            self.complete, self.outputs, self._joined = False, [[] for _ in range(self.tower.layers)], None
            return
        self.held += x.numel() * x.element_size()
        self.outputs[layer].append(x)
        self._joined = None

    def joined(self) -> list[torch.Tensor | None]:
        """Each block's kept residuals as one tensor (joined once per pass, not once per question)."""
        if self._joined is None:
            self._joined = [torch.cat(o, dim=self.batch_dim) if o else None for o in self.outputs]
        return self._joined

    def prefix(self, model, rows, embeddings: torch.Tensor) -> Prefix | None:
        """The ``Prefix`` of the kept images ``rows`` (positions among them, in that order) whose unablated
        embeddings are ``embeddings``; None when the budget stopped the keeping."""
        if not self.complete:
            return None
        rows = torch.as_tensor(np.asarray(rows), dtype=torch.long)
        outputs = [None if o is None else o.index_select(self.batch_dim, rows.to(o.device)) for o in self.joined()]
        return Prefix.of(model, outputs, embeddings, self.extra)


@contextlib.contextmanager
def keeping_residuals(model, budget: int | None = None) -> Iterator[KeptResiduals]:
    """Within the block, each forward pass keeps the residual stream after every block (``KeptResiduals``)."""
    kept = KeptResiduals(model, budget)
    blocks = model.module.get_submodule(kept.tower.blocks)
    handles = [blocks[i].register_forward_hook(lambda _m, _a, out, _i=i: kept.keep(_i, out))
               for i in range(kept.tower.layers)]
    try:
        yield kept
    finally:
        for h in handles:
            h.remove()
