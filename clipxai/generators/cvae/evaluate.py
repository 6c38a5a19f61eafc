"""How good is a trained CVAE: reconstruction, KL, CLIP agreement of samples, attribute accuracy.

On held-out images (the test split when the dataset has one, else validation):

- **reconstruction**: the training loss and the per-pixel MSE of the image decoded at the
  posterior mean, and the KL of q(z | x, c) to the prior, in nats per image;
- **CLIP agreement**: one sample per image, conditioned on that image's sentence; a judge
  CLIP (by default the conditioning CLIP) scores the cosine of each sample to its own
  sentence and to a different sentence drawn from the same split. ``gap`` = own - shuffled
  and ``win_rate`` = how often own > shuffled (0.5 = the condition is ignored). The same
  numbers for the real images say what the judge can tell at all;
- **attribute accuracy** (with a classifier from ``clipxai cvae train-classifier``): how
  many of the sentence's attributes the classifier reads off the samples, beside its
  accuracy on the real images and the majority-value baseline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from clipxai.errors import ClipxaiError
from clipxai.generators.cvae.checkpoint import LoadedCVAE, load_cvae
from clipxai.generators.cvae.classifier import load_classifier
from clipxai.generators.cvae.conditioning import text_embeddings
from clipxai.generators.cvae.data import decode_images, default_cache_dir, read_table, split_rows
from clipxai.generators.cvae.model import kl_per_image, recon_per_image
from clipxai.generators.cvae.phrases import SentenceBuilder


@dataclass
class EvalResult:
    split: str
    n: int
    reconstruction: dict
    clip_agreement: dict | None = None
    attributes: dict | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"split": self.split, "n": self.n, "reconstruction": self.reconstruction,
                "clip_agreement": self.clip_agreement, "attributes": self.attributes, "notes": self.notes}

    def lines(self) -> list[str]:
        """A short human-readable summary."""
        r = self.reconstruction
        out = [f"{self.n} {self.split} images",
               f"reconstruction: {r['loss']} {r['rec']:.2f} per image, MSE {r['mse_pixel']:.4f} per pixel; "
               f"KL {r['kl']:.2f} nats per image"]
        if self.clip_agreement:
            a = self.clip_agreement
            out.append(f"CLIP agreement ({a['judge']}): samples own {a['own']:.4f} vs shuffled {a['shuffled']:.4f} "
                       f"(gap {a['gap']:+.4f}, win rate {a['win_rate']:.3f}); real images gap "
                       f"{a['real_gap']:+.4f}, win rate {a['real_win_rate']:.3f}")
        if self.attributes:
            a = self.attributes
            out.append(f"attribute accuracy: samples {a['samples']:.3f}, real images {a['real']:.3f}, "
                       f"majority baseline {a['majority']:.3f}")
        out.extend(f"note: {n}" for n in self.notes)
        return out


def _shuffled(sentences: list[str], rng: np.random.Generator) -> list[int]:
    """For each row, another row with a different sentence (itself only when all are the same)."""
    n = len(sentences)
    out = []
    for i in range(n):
        for _ in range(20):
            j = int(rng.integers(n))
            if sentences[j] != sentences[i]:
                break
        out.append(j)
    return out


def _clip_scores(judge, images: torch.Tensor, text_unit: torch.Tensor, own: torch.Tensor,
                 other: torch.Tensor) -> dict:
    with torch.no_grad():
        x = images.to(judge.device)
        feats = torch.cat([judge.embed_images(x[s:s + 256]) for s in range(0, len(x), 256)]).cpu()
    feats = feats / feats.norm(dim=-1, keepdim=True)
    cos_own = (feats * text_unit[own]).sum(-1)
    cos_other = (feats * text_unit[other]).sum(-1)
    return {"own": float(cos_own.mean()), "shuffled": float(cos_other.mean()),
            "gap": float((cos_own - cos_other).mean()), "win_rate": float((cos_own > cos_other).float().mean())}


@torch.no_grad()
def evaluate(cvae: LoadedCVAE | str | Path, data: str | Path, *, n: int = 500, split: str = "auto",
             seed: int = 0, classifier: str | Path | None = None, judge=None, clip=None,
             images: str | Path | None = None, cache_dir: str | Path | None = None) -> EvalResult:
    """Evaluate ``cvae`` on up to ``n`` held-out images of ``data`` (see the module doc).

    ``judge`` is a loaded ClipModel scoring the samples (default: the conditioning CLIP);
    ``clip`` passes the conditioning CLIP already loaded.
    """
    loaded = cvae if isinstance(cvae, LoadedCVAE) else load_cvae(cvae, clip=clip)
    tc = loaded.payload.get("train_config", {})
    table = read_table(data, images)
    if list(table.attributes) != loaded.attributes:
        raise ClipxaiError(f"The attributes of {data} are not the ones the CVAE was trained on, so its "
                           f"sentences would not mean the same.")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    decoded = decode_images(table, loaded.size, tc.get("crop"), cache_dir=cache)
    parts = split_rows(table, decoded.rows, tc.get("val_fraction", 0.05), tc.get("seed", 0))
    if split == "auto":
        split = "test" if len(parts["test"]) else "val"
    if split not in parts or not len(parts[split]):
        raise ClipxaiError(f"The dataset {data} has no {split} images to evaluate on.")
    if n < 1:
        raise ClipxaiError(f"-n must be at least 1 (got {n}).")
    pick = parts[split][:n]
    rows = decoded.rows[pick]
    x = torch.from_numpy(np.asarray(decoded.images[pick], np.float32) / 255.0)
    builder = SentenceBuilder(table.attributes, warn=False)
    sentences = [builder.sentence(table.values[r]) for r in rows]
    attrs = torch.from_numpy(table.values[rows].astype(np.float32))
    cond_clip = loaded.conditioning_clip(clip)
    clip_unit = text_embeddings(cond_clip, sentences, cache_dir=cache_dir) if cond_clip is not None else None
    c = loaded.conditioner.build(clip_unit, attrs).to(loaded.device)
    model = loaded.model
    xd = x.to(loaded.device)
    mu, logvar = model.encode(xd, c)
    logits = model.decode_logits(mu, c)
    recon = {"loss": tc.get("recon", "mse"), "rec": float(recon_per_image(logits, xd, tc.get("recon", "mse")).mean()),
             "mse_pixel": float((torch.sigmoid(logits) - xd).pow(2).mean()),
             "kl": float(kl_per_image(mu, logvar).mean())}
    g = torch.Generator().manual_seed(seed)
    samples = model.decode(torch.randn((len(c), loaded.zdim), generator=g).to(loaded.device), c).cpu()
    result = EvalResult(split, len(rows), recon)

    judge = judge or cond_clip
    if judge is None:
        result.notes.append("no CLIP agreement: the CVAE is conditioned on attributes only; pass --judge MODEL")
    else:
        unique = list(dict.fromkeys(sentences))
        unit = text_embeddings(judge, unique, cache_dir=cache_dir)
        index = {s: i for i, s in enumerate(unique)}
        own = torch.tensor([index[s] for s in sentences])
        other = own[_shuffled(sentences, np.random.default_rng(seed))]
        got = _clip_scores(judge, samples, unit, own, other)
        real = _clip_scores(judge, x, unit, own, other)
        result.clip_agreement = {"judge": judge.name, **got, "real_gap": real["gap"], "real_win_rate": real["win_rate"]}
        if len(unique) == 1:
            result.notes.append("every evaluated image has the same sentence, so the shuffled score equals the own one")
    if classifier is not None:
        clf = load_classifier(classifier)
        if clf.attributes != list(table.attributes):
            raise ClipxaiError("The classifier was trained on other attributes than the CVAE.")
        acc_samples = float((clf.predict(samples) == attrs).float().mean())
        acc_real = float((clf.predict(x) == attrs).float().mean())
        majority = torch.where(attrs.mean(0, keepdim=True) > 0, 1.0, -1.0)
        per_attr = (clf.predict(samples) == attrs).float().mean(0)
        result.attributes = {"samples": acc_samples, "real": acc_real,
                             "majority": float((majority == attrs).float().mean()),
                             "per_attribute": dict(zip(table.attributes, per_attr.tolist()))}
    return result
