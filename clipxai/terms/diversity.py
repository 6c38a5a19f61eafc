"""The diversity term: push the K seeds of one batch apart, so they find more of a prompt's meanings.

``--term diversity[=W]`` (or ``diversity:LAYER``) gives each seed minus its mean similarity to
the other seeds of the batch. Without a layer the similarity is the cosine of the seeds' CLIP
embeddings (averaged over each seed's views); with ``LAYER`` (a hook point or a component name,
as the feature terms take them) it is the cosine of the layer's Gram matrices (width x width,
over tokens, averaged over views): lucent's ``diversity`` objective (``optvis/objectives.py``),
which compares styles rather than contents. The term needs the whole batch: one seed alone has
no other to differ from, and its term is 0.
"""

from __future__ import annotations

import torch

from clipxai.errors import TermError
from clipxai.terms.base import Objective, Step, register_term
from clipxai.terms.features import _per_view, _resolver, _term, live_activations


def pairwise_dissimilarity(vectors: torch.Tensor) -> torch.Tensor:
    """(K, D) vectors -> (K,) minus each one's mean cosine to the K-1 others (0 for a batch of one)."""
    k = vectors.shape[0]
    if k < 2:
        return vectors.new_zeros(k)
    unit = vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)
    cos = unit @ unit.T
    off_diagonal = cos.sum(dim=1) - cos.diagonal()
    return -off_diagonal / (k - 1)


def gram(x: torch.Tensor) -> torch.Tensor:
    """(views, tokens, width) activations -> (views, width*width) Gram matrices over tokens."""
    if x.dim() == 2:   # pooled: one token
        x = x.unsqueeze(1)
    g = x.transpose(1, 2) @ x / x.shape[1]
    return g.flatten(1)


@register_term("diversity")
def diversity(layer: str | None = None) -> Objective:
    """diversity[:LAYER]: minus each seed's mean similarity to the batch's other seeds (embeddings, or LAYER's Gram)."""
    if layer is None:
        def term(step: Step) -> torch.Tensor:
            return pairwise_dissimilarity(step.embeds.mean(dim=1))
        return Objective(term, "diversity")
    if not layer.strip():
        raise TermError("The term 'diversity:' needs a layer after the colon (or none: diversity).")
    resolve = _resolver(layer)

    def layer_term(step: Step) -> torch.Tensor:
        x = live_activations(step, [resolve(step.model)]).outputs[resolve(step.model)]
        grams = _per_view(gram(x.float()), step).mean(dim=1)     # (K, width*width)
        return pairwise_dissimilarity(grams)
    return _term(layer_term, f"diversity({layer})", outputs=[layer])


def parse_diversity(spec: str) -> Objective | None:
    """``diversity:LAYER`` as the diversity term on that layer; None when ``spec`` is not one."""
    kind, sep, rest = spec.partition(":")
    if kind.strip() != "diversity" or not sep:
        return None
    return diversity(rest.strip())
