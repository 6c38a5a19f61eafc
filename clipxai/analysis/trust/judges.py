"""Judges: do independently trained CLIPs see the prompt in an image, or only the model that made it?

Each judge scores the images by its own cosine to the prompt, puts that cosine on the scale
of its own baseline (what it gives seeded Gaussian noise, and natural reference images
where given) and reads each image zero-shot among candidate labels. A state that only the
ascending model sees transfers to no judge (Geirhos et al. 2024; CLIPAG).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from clipxai.models.base import ClipModel

# The noise baseline: NOISE_COUNT images of 0.5 + 0.25 * N(0, 1), clipped to [0, 1] (where
# ascent usually starts), drawn from one generator seeded NOISE_SEED at the judge's own size.
NOISE_COUNT = 32
NOISE_SEED = 0
# A judge "sees" the prompt when its cosine stands TRANSFER_Z baseline SDs above the mean of
# every baseline group (median and scaled MAD, ``robust_location``).
TRANSFER_Z = 2.0
# The smallest baseline SD used to scale a z-score (a group of identical cosines has SD 0).
SD_FLOOR = 1e-3


def unit(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit length, in fp32."""
    return F.normalize(x.float(), dim=-1)


@torch.no_grad()
def image_embeddings(
    model: ClipModel, images: torch.Tensor | np.ndarray, batch_size: int = 64
) -> torch.Tensor:
    """Unit-length image embeddings [N, D] on the CPU, by the model's own path (``embed_images``)."""
    x = torch.as_tensor(np.asarray(images) if not torch.is_tensor(images) else images, dtype=torch.float32)
    out = [
        unit(model.embed_images(x[i : i + batch_size].to(model.device))).cpu()
        for i in range(0, len(x), batch_size)
    ]
    return torch.cat(out) if out else torch.empty(0, model.embed_dim)


@torch.no_grad()
def text_embeddings(model: ClipModel, texts: Sequence[str]) -> torch.Tensor:
    """Unit-length text embeddings [T, D] on the CPU, by the model's own ``encode_text``."""
    return unit(model.encode_text(list(texts))).cpu()


def noise_images(n: int = NOISE_COUNT, size: int = 64, seed: int = NOISE_SEED) -> torch.Tensor:
    """``n`` seeded Gaussian-noise images [n, 3, size, size] around mid grey, clipped to [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    return (0.5 + 0.25 * torch.randn(n, 3, size, size, generator=g)).clamp(0, 1)


@dataclass
class Baseline:
    """A model's cosines to the prompt on its baseline groups, as robust (mean, SD) per group.

    ``centre`` is the mean unit embedding of the natural reference images (of the noise
    images when there are none): the ordinary a sparse reading is taken relative to.
    """

    groups: dict[str, tuple[float, float]]
    centre: torch.Tensor | None = None

    def z(self, cosine: np.ndarray | float) -> np.ndarray:
        """How many SDs ``cosine`` stands above each group's mean; the smallest over groups.

        Taking the smallest means an image must stand out against noise *and* against
        natural images: a prompt natural images already score high on cannot be "seen".
        """
        c = np.asarray(cosine, dtype=np.float64)
        return np.min([(c - m) / max(s, SD_FLOOR) for m, s in self.groups.values()], axis=0)

    @property
    def noise_mean(self) -> float:
        return self.groups["noise"][0]

    @property
    def noise_sd(self) -> float:
        return self.groups["noise"][1]

    def to_dict(self) -> dict:
        return {k: {"mean": m, "sd": s} for k, (m, s) in self.groups.items()}


def baseline(
    model: ClipModel,
    prompt_embedding: torch.Tensor,
    reference: torch.Tensor | None = None,
    reference_embeddings: torch.Tensor | None = None,
) -> Baseline:
    """The model's baseline for a prompt: its cosines on seeded noise and on ``reference`` images."""
    noise = image_embeddings(model, noise_images(size=model.input_resolution))
    groups, centre = {"noise": noise @ prompt_embedding}, noise.mean(dim=0)
    if reference_embeddings is None and reference is not None and len(reference):
        reference_embeddings = image_embeddings(model, reference)
    if reference_embeddings is not None and len(reference_embeddings) > 1:
        groups["reference"] = reference_embeddings @ prompt_embedding
        centre = reference_embeddings.mean(dim=0)
    return Baseline({k: robust_location(v.numpy()) for k, v in groups.items()}, centre=centre)


def robust_location(values: np.ndarray) -> tuple[float, float]:
    """(median, 1.4826 * median absolute deviation): mean and SD for normal data, unmoved by a minority
    of outliers, such as reference photos that happen to show the prompt."""
    v = np.asarray(values, np.float64)
    med = float(np.median(v))
    return med, float(1.4826 * np.median(np.abs(v - med)))


@dataclass
class JudgeScores:
    """One model's view of a batch of images: per-image cosines to the prompt and to the labels."""

    name: str
    cosine: np.ndarray  # (N,) cosine of each image to the prompt
    baseline: Baseline
    embeddings: torch.Tensor  # (N, D) unit image embeddings
    labels: list[str] = field(default_factory=list)
    label_cosine: np.ndarray | None = None  # (N, L)
    reference_embeddings: torch.Tensor | None = None

    def z(self, index: Sequence[int] | None = None) -> float:
        """The z-score of the mean cosine of the images ``index`` (all by default)."""
        return float(self.baseline.z(self.cosine[_idx(index, len(self.cosine))].mean()))

    def reading(self, index: Sequence[int] | None = None) -> str | None:
        """The label the images' mean embedding is closest to (None without labels)."""
        if not self.labels:
            return None
        return self.labels[int(self.label_cosine[_idx(index, len(self.cosine))].mean(axis=0).argmax())]

    def entry(self, index: Sequence[int] | None = None) -> dict:
        """``{"cosine", "z", "reading"}`` for the images ``index`` taken together."""
        idx = _idx(index, len(self.cosine))
        return {"cosine": float(self.cosine[idx].mean()), "z": self.z(idx), "reading": self.reading(idx)}


def _idx(index: Sequence[int] | None, n: int) -> np.ndarray:
    return np.arange(n) if index is None else np.asarray(list(index), dtype=int)


def score_images(
    model: ClipModel,
    images: torch.Tensor | None,
    prompt: str,
    *,
    labels: Sequence[str] | None = None,
    reference: torch.Tensor | None = None,
    embeddings: torch.Tensor | None = None,
    reference_embeddings: torch.Tensor | None = None,
) -> JudgeScores:
    """One model's cosines, baseline and label cosines for ``images`` (or their ``embeddings``).

    ``embeddings`` and ``reference_embeddings``, when given, stand for the model's embeddings
    of ``images`` and ``reference`` (computed elsewhere, e.g. with the pathway's activations).
    """
    emb = image_embeddings(model, images) if embeddings is None else unit(embeddings.cpu())
    prompt_emb = text_embeddings(model, [prompt])[0]
    ref_emb = reference_embeddings
    if ref_emb is None and reference is not None and len(reference):
        ref_emb = image_embeddings(model, reference)
    base = baseline(model, prompt_emb, reference_embeddings=ref_emb)
    labels = list(labels or [])
    label_cos = (emb @ text_embeddings(model, labels).T).numpy() if labels else None
    return JudgeScores(
        name=model.name,
        cosine=(emb @ prompt_emb).numpy().astype(np.float64),
        baseline=base,
        embeddings=emb,
        labels=labels,
        label_cosine=label_cos,
        reference_embeddings=ref_emb,
    )


def transfer_rate(z_by_judge: Mapping[str, float], threshold: float = TRANSFER_Z) -> float | None:
    """Share of judges whose cosine stands at least ``threshold`` SDs above their own baseline."""
    if not z_by_judge:
        return None
    return float(np.mean([z >= threshold for z in z_by_judge.values()]))


def agreement(readings: Mapping[str, str | None], own_reading: str | None) -> float | None:
    """Share of judges whose zero-shot reading equals the ascending model's own (None without labels)."""
    if not readings or own_reading is None:
        return None
    return float(np.mean([r == own_reading for r in readings.values()]))


def judge_images(
    model: ClipModel,
    images: torch.Tensor,
    prompt: str,
    *,
    judges: Sequence[ClipModel],
    labels: Sequence[str] | None = None,
    reference: torch.Tensor | None = None,
) -> dict:
    """The judges' view of ``images`` taken together: per judge, transfer rate and agreement."""
    own = score_images(model, images, prompt, labels=labels, reference=reference)
    per = {
        j.name: score_images(j, images, prompt, labels=labels, reference=reference).entry() for j in judges
    }
    return {
        "judges": per,
        "transfer_rate": transfer_rate({k: v["z"] for k, v in per.items()}),
        "agreement": agreement({k: v["reading"] for k, v in per.items()}, own.reading()),
        "model": own.entry(),
    }
