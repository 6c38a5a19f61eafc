"""Two published scores, defined here once: CLIPScore and CMMD.

CLIPScore (Hessel et al. 2021) is 2.5 * max(cos, 0) between an image and its caption's CLIP
embeddings, so a typical range is 0 to 1 rather than 0 to 0.4. CMMD (Jayasumana et al. 2024,
"Rethinking FID") is the squared maximum mean discrepancy between two sets of CLIP image
embeddings under a Gaussian RBF kernel. Their definition, followed here: embeddings are
scaled to unit length, k(x, y) = exp(-|x - y|^2 / (2 sigma^2)) with sigma = 10 on those unit
vectors (so the kernel is nearly linear and values are tiny), and the MMD^2 is multiplied by
1000 (their reported scale). The paper names the unbiased estimator, used by default (it may
be slightly negative when the sets share a distribution); their released code averages over
all pairs including i = j (the biased V-statistic, ``unbiased=False``).
"""

from __future__ import annotations

import numpy as np
import torch

CLIPSCORE_WEIGHT = 2.5
CMMD_SIGMA = 10.0
CMMD_SCALE = 1000.0


def clipscore(cosine: np.ndarray | float, weight: float = CLIPSCORE_WEIGHT) -> np.ndarray | float:
    """CLIPScore of cosine similarities: ``weight * max(cos, 0)`` (Hessel et al. 2021, w = 2.5)."""
    c = np.maximum(np.asarray(cosine, np.float64), 0.0) * weight
    return float(c) if c.ndim == 0 else c


def _unit(x: np.ndarray | torch.Tensor) -> np.ndarray:
    a = np.asarray(x.detach().cpu() if torch.is_tensor(x) else x, np.float64)
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


def _kernel(a: np.ndarray, b: np.ndarray, sigma: float) -> np.ndarray:
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.exp(-np.maximum(sq, 0.0) / (2.0 * sigma * sigma))


def mmd2(x: np.ndarray, y: np.ndarray, sigma: float, unbiased: bool = True) -> float:
    """Squared MMD between sample sets ``x`` (n, D) and ``y`` (m, D) under an RBF kernel of ``sigma``.

    Unbiased: within-set means leave out the i = j terms (needs n, m >= 2).
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    kxx, kyy, kxy = _kernel(x, x, sigma), _kernel(y, y, sigma), _kernel(x, y, sigma)
    if not unbiased:
        return float(kxx.mean() + kyy.mean() - 2.0 * kxy.mean())
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError(f"the unbiased MMD needs at least 2 samples per set, got {n} and {m}")
    xx = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
    yy = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(xx + yy - 2.0 * kxy.mean())


def cmmd(
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    *,
    sigma: float = CMMD_SIGMA,
    scale: float = CMMD_SCALE,
    unbiased: bool = True,
) -> float:
    """CMMD between two sets of CLIP image embeddings (made unit length here): ``scale`` * MMD^2."""
    return scale * mmd2(_unit(x), _unit(y), sigma, unbiased=unbiased)
