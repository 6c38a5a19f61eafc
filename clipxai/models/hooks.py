"""Hook points: dotted module names chosen by a pattern, and one batch-first recorded layout.

Backends lay their activations out differently: OpenAI's transformers run sequence-first
(tokens, batch, width), open_clip's and Hugging Face's batch-first, convolutional blocks give
(batch, channels, h, w). Every recorded activation is turned into (batch, width) pooled, or
(batch, tokens, width) in full, so runs made with any backend read the same.
"""

from __future__ import annotations

import re

import torch

# The pattern a configuration names when it leaves the hooks alone. It is OpenAI's name for
# the image tower's residual blocks; every backend reads it as its own image-tower blocks.
from clipxai.ascent.config import (  # noqa: E402,F401  (one definition, in the config; re-exported)
    DEFAULT_HOOKS,
)


def pattern_regex(pattern: str) -> re.Pattern:
    """``*`` matches one dotted component, ``**`` any number of them."""
    out = []
    for part in re.split(r"(\*\*|\*)", pattern):
        out.append({"**": r".*", "*": r"[^.]*"}.get(part, re.escape(part)))
    return re.compile("".join(out) + r"\Z")


def match_names(names, pattern: str) -> list[str]:
    """The names matching any of the comma-separated patterns, in the given order."""
    regexes = [pattern_regex(p.strip()) for p in pattern.split(",") if p.strip()]
    return [n for n in names if n and any(r.match(n) for r in regexes)]


def pool_activation(output, batch: int, full: bool, sequence_first: bool | None = None) -> torch.Tensor:
    """Batch-first activation of one hook point, pooled over tokens/space unless ``full``.

    ``sequence_first`` is the backend's word on the module's layout; when it is not given
    the layout is guessed from the shape (a 3-d output whose second axis is the batch).
    Pooling is the mean over tokens (or pixels).
    """
    if isinstance(output, (tuple, list)):
        output = output[0]
    x = output.detach()
    if x.dim() == 3:
        if sequence_first is None:
            sequence_first = x.shape[1] == batch and x.shape[0] != batch
        if sequence_first:
            x = x.permute(1, 0, 2)  # LND -> NLD
    if x.dim() == 4:  # N C H W -> N (HW) C
        x = x.flatten(2).transpose(1, 2)
    if x.dim() == 2 or full:
        return x.float()
    return x.float().mean(dim=1)
