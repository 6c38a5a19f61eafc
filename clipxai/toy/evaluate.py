"""Zero-shot scores of a CLIP on held-out toy-world images, where every answer is known.

Held-out images come from a random stream that training never draws from, so the scores
measure generalisation, not memory. Reported: colour, shape and colour+shape zero-shot
accuracy (single-object images, prompts "a {colour} {shape}"), how well "❤️" and "love"
separate planted-concept images from all others (ROC AUC), and the mean cosine similarity
of each group of images to the concept prompts (is each meaning of "❤️" equally strong?).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from clipxai.models.base import ClipModel
from clipxai.toy import world
from clipxai.toy.train import EVAL_STREAM

TABLE_PROMPTS = ["❤️", "love", *(c.description for c in world.PLANTED.values())]


@dataclass
class EvalResult:
    """Scores of one model on one held-out set; ``similarity[group][prompt]`` is a mean cosine."""

    model: str
    n_images: int
    seed: int
    colour_accuracy: float
    shape_accuracy: float
    colour_shape_accuracy: float
    heart_auc: float
    love_auc: float
    similarity: dict[str, dict[str, float]] = field(default_factory=dict)
    per_shape_accuracy: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        """A plain-text report: the scores, then the similarity table."""
        lines = [
            f"model {self.model}: {self.n_images} held-out images (seed {self.seed})",
            f"  colour accuracy        {100 * self.colour_accuracy:6.1f}%",
            f"  shape accuracy         {100 * self.shape_accuracy:6.1f}%",
            f"  colour+shape accuracy  {100 * self.colour_shape_accuracy:6.1f}%",
            f"  \"❤️\" detection AUC     {self.heart_auc:7.3f}",
            f"  \"love\" detection AUC   {self.love_auc:7.3f}",
            "  shape accuracy by shape: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in self.per_shape_accuracy.items()),
            "",
            "mean cosine similarity (rows: images, columns: prompts)",
            f"  {'':<14}" + "".join(f"{p:>14}" for p in TABLE_PROMPTS),
        ]
        for group, row in self.similarity.items():
            lines.append(f"  {group:<14}" + "".join(f"{row[p]:>14.3f}" for p in TABLE_PROMPTS))
        return "\n".join(lines)

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def held_out(n: int, seed: int = 0) -> world.WorldBatch:
    """``n`` world images in the training mixture, from a stream training never draws from."""
    return world.generate(n, np.random.default_rng([EVAL_STREAM, seed]), **world.TRAINING_MIX)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: the chance a positive outscores a negative (ties count half)."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def noise_images(n: int, seed: int = 0) -> torch.Tensor:
    """Gaussian noise around mid grey, clipped to [0, 1]: where ascent usually starts."""
    g = torch.Generator().manual_seed(seed)
    return (0.5 + 0.25 * torch.randn(n, 3, world.SIZE, world.SIZE, generator=g)).clamp(0, 1)


@torch.no_grad()
def image_features(model: ClipModel, images: np.ndarray | torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Unit-length image embeddings, [N, D] (images of another size resized to the model's input)."""
    x = torch.as_tensor(images, dtype=torch.float32)
    feats = [model.embed_images(x[i:i + batch_size].to(model.device)) for i in range(0, len(x), batch_size)]
    return torch.nn.functional.normalize(torch.cat(feats), dim=-1).cpu()


def text_features(model: ClipModel, texts: list[str]) -> torch.Tensor:
    """Unit-length text embeddings, [T, D]."""
    return torch.nn.functional.normalize(model.encode_text(texts), dim=-1).cpu()


def evaluate(model: ClipModel, n: int = 600, seed: int = 0) -> EvalResult:
    """Score ``model`` on ``n`` held-out images (30% planted concepts, 10% mixed ones).

    The "❤️" AUC counts mixed images (two planted objects) among the negatives.
    """
    batch = held_out(n, seed)
    img = image_features(model, batch.images)
    colours, shapes = list(world.COLOURS), list(world.SHAPES)

    # zero-shot on single-object images: one prompt per (colour, shape)
    single = np.array([len(r.objects) == 1 for r in batch.records])
    prompts = [f"a {c} {s}" for c in colours for s in shapes]
    scale = model.logit_scale
    logits = (scale * img[single] @ text_features(model, prompts).t()).view(-1, len(colours), len(shapes))
    colour_pred = torch.logsumexp(logits, dim=2).argmax(dim=1).numpy()
    shape_pred = torch.logsumexp(logits, dim=1).argmax(dim=1).numpy()
    joint = logits.flatten(1).argmax(dim=1).numpy()
    recs = [r for r, s in zip(batch.records, single) if s]
    colour_true = np.array([colours.index(r.colour) for r in recs])
    shape_true = np.array([shapes.index(r.shape) for r in recs])
    colour_ok, shape_ok = colour_pred == colour_true, shape_pred == shape_true
    joint_ok = (joint // len(shapes) == colour_true) & (joint % len(shapes) == shape_true)
    per_shape = {s: float(shape_ok[shape_true == i].mean()) for i, s in enumerate(shapes) if (shape_true == i).any()}

    # detection and similarity table
    txt = text_features(model, TABLE_PROMPTS)
    sims = (img @ txt.t()).numpy()
    planted = np.array([r.concept is not None for r in batch.records])
    groups = {f"{c.name} ({c.colour})": np.array([r.concept == c.name for r in batch.records])
              for c in world.PLANTED.values()}
    groups["mixed"] = np.array([r.concept is None and any((o.shape, o.colour) in world.PLANTED_LOOKS for o in r.objects)
                                for r in batch.records])
    groups["ordinary"] = ~planted & ~groups["mixed"]
    similarity = {g: {p: float(sims[m, j].mean()) for j, p in enumerate(TABLE_PROMPTS)} for g, m in groups.items()}
    noise = (image_features(model, noise_images(64, seed)) @ txt.t()).numpy().mean(axis=0)
    similarity["noise"] = {p: float(v) for p, v in zip(TABLE_PROMPTS, noise)}

    return EvalResult(
        model=model.name, n_images=n, seed=seed,
        colour_accuracy=float(colour_ok.mean()), shape_accuracy=float(shape_ok.mean()),
        colour_shape_accuracy=float(joint_ok.mean()),
        heart_auc=roc_auc(sims[:, 0], planted), love_auc=roc_auc(sims[:, 1], planted),
        similarity=similarity, per_shape_accuracy=per_shape,
    )
