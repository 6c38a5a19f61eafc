"""A small CNN that reads the attributes off an image: the judge of CVAE samples' attributes.

Trained on the same dataset as the CVAE (multi-label, one logit per attribute), it says
whether a sample for "a smiling woman wearing eyeglasses" shows eyeglasses, without
involving CLIP at all. ``classifier.pt`` holds its shape, weights, attribute names and
validation accuracy.
"""

from __future__ import annotations

import dataclasses
import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from clipxai.errors import ModelLoadError, TrainError
from clipxai.generators.cvae.data import DataError, decode_images, default_cache_dir, read_table, split_rows
from clipxai.util import training
from clipxai.util.seeding import derive_seed

FORMAT = "clipxai-cvae-classifier"
FILE = "classifier.pt"


@dataclass(frozen=True)
class ClassifierConfig:
    seed: int = 0
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    size: int = 64
    crop: int | None = None
    width: int = 16
    val_fraction: float = 0.05
    limit: int | None = None

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 2 or not self.lr > 0 or self.width < 1:
            raise TrainError("The classifier needs --epochs >= 1, --batch-size >= 2, a positive --lr and --width.")


class AttributeCNN(nn.Module):
    """Four strided convolutions, global average pooling, one logit per attribute."""

    def __init__(self, n_attributes: int, width: int = 16):
        super().__init__()
        chans = [3, width, 2 * width, 4 * width, 8 * width]
        layers = []
        for a, b in zip(chans, chans[1:]):
            layers += [nn.Conv2d(a, b, 3, 2, 1), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1], n_attributes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x * 2 - 1).mean(dim=(2, 3)))


@dataclass
class AttributeClassifier:
    model: AttributeCNN
    attributes: list[str]
    size: int
    payload: dict

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
        """+1/-1 predictions (N, A) for images [N, 3, H, W] in [0, 1] (resized to the training size)."""
        self.model.eval()
        out = []
        for s in range(0, len(images), batch):
            x = images[s:s + batch].float()
            if x.shape[-1] != self.size or x.shape[-2] != self.size:
                x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
            out.append(torch.where(self.model(x) > 0, 1.0, -1.0))
        return torch.cat(out) if out else torch.empty(0, len(self.attributes))


def train_classifier(data: str | Path, out: str | Path, config: ClassifierConfig | None = None, *,
                     overwrite: bool = False, images: str | Path | None = None,
                     cache_dir: str | Path | None = None,
                     progress: Callable[[str], None] | None = None) -> Path:
    """Train the attribute classifier on ``data``; writes ``out/classifier.pt`` and returns its path."""
    config = config or ClassifierConfig()
    say = progress or (lambda _line: None)
    out = Path(out)
    path = out / FILE
    # one training, no checkpoints on the way: nothing to resume, the folder is made when the file is written
    training.prepare_folder(out, overwrite=overwrite, checkpoint=None, holds={FILE: "a classifier"}, create=False)
    table = read_table(data, images).head(config.limit)
    decoded = decode_images(table, config.size, config.crop,
                            cache_dir=Path(cache_dir) if cache_dir is not None else default_cache_dir())
    split = split_rows(table, decoded.rows, config.val_fraction, config.seed)
    targets = torch.from_numpy((table.values[decoded.rows] > 0).astype(np.float32))
    train_idx, val_idx = split["train"], split["val"]
    if len(train_idx) < 2:
        raise DataError(f"The dataset {data} has fewer than two training images.")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(config.seed, "classifier"))
        model = AttributeCNN(len(table.attributes), config.width)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    steps = max(1, len(train_idx) // config.batch_size)
    history = []
    for epoch in range(config.epochs):
        g = torch.Generator().manual_seed(derive_seed(config.seed, "classifier-epoch", epoch))
        order = train_idx[torch.randperm(len(train_idx), generator=g).numpy()]
        model.train()
        t0, total = time.perf_counter(), 0.0
        for b in range(steps):
            idx = order[b * config.batch_size:(b + 1) * config.batch_size]
            x = torch.from_numpy(np.asarray(decoded.images[idx], np.float32) / 255.0)
            loss = F.binary_cross_entropy_with_logits(model(x), targets[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
        acc = _accuracy(model, decoded.images, targets, val_idx)
        history.append({"epoch": epoch + 1, "loss": total / steps, "val_accuracy": acc})
        say(f"epoch {epoch + 1}/{config.epochs} loss {total / steps:.4f} val accuracy {acc:.3f} "
            f"({steps * config.batch_size / (time.perf_counter() - t0):.0f} img/s)")
    payload = {"format": FORMAT, "version": 1, "config": asdict(config), "attributes": list(table.attributes),
               "state_dict": model.state_dict(), "history": history}
    training.save_checkpoint(path, payload)
    (out / "classifier.json").write_text(json.dumps({**asdict(config), "attributes": table.attributes,
                                                     "history": history}, indent=2) + "\n")
    return path


@torch.no_grad()
def _accuracy(model: AttributeCNN, images: np.ndarray, targets: torch.Tensor, idx: np.ndarray) -> float:
    if len(idx) == 0:
        return float("nan")
    model.eval()
    x = torch.from_numpy(np.asarray(images[idx], np.float32) / 255.0)
    return float(((model(x) > 0).float() == targets[idx]).float().mean())


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> AttributeClassifier:
    """A trained attribute classifier (a file, or the folder holding ``classifier.pt``)."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / FILE
    if not path.is_file():
        raise ModelLoadError(f"The classifier {path} does not exist (train one with `clipxai cvae train-classifier`).")
    try:
        payload = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
        if payload.get("format") != FORMAT:
            raise ValueError("not a classifier")
        cfg = ClassifierConfig(**{k: v for k, v in payload["config"].items()
                                  if k in {f.name for f in dataclasses.fields(ClassifierConfig)}})
        model = AttributeCNN(len(payload["attributes"]), cfg.width)
        model.load_state_dict(payload["state_dict"])
    except Exception as err:  # noqa: BLE001
        raise ModelLoadError(f"{path} is not a readable clipxai attribute classifier ({type(err).__name__}).") from err
    return AttributeClassifier(model.to(device).eval().requires_grad_(False), list(payload["attributes"]),
                               cfg.size, payload)
