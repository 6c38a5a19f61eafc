"""Training a CVAE on an attribute-captioned dataset, reproducibly and resumably.

Each epoch's order and reparameterization noise come from a generator seeded by
(seed, epoch), and a checkpoint is written at every epoch's end, so a training resumed
from its checkpoint does exactly what an uninterrupted one would have (identical weights
on CPU). The folder holds ``config.json`` (every hyperparameter), ``checkpoint.pt``
(config, weights, optimizer, the conditioning CLIP's name and sha256), ``history.jsonl``
(one line of metrics per epoch) and ``grids/`` (validation reconstructions and samples).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from clipxai.errors import TrainError
from clipxai.generators.cvae import checkpoint as ckpt
from clipxai.generators.cvae.conditioning import MODES, Conditioner, text_embeddings
from clipxai.generators.cvae.data import (
    AttributeTable,
    DataError,
    decode_images,
    default_cache_dir,
    read_table,
    split_rows,
)
from clipxai.generators.cvae.grid import save_grid
from clipxai.generators.cvae.model import CVAE, RECON_LOSSES, CVAEConfig, kl_per_image, recon_per_image
from clipxai.generators.cvae.phrases import SentenceBuilder
from clipxai.models.openai import DEFAULT_MODEL
from clipxai.util import training
from clipxai.util.seeding import derive_seed

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.jsonl"
GRID_DIR = "grids"


@dataclass(frozen=True)
class TrainConfig:
    """Every hyperparameter of a CVAE training; the same config and data give the same weights."""

    seed: int = 0
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    size: int = 64               # image side after cropping and resizing
    crop: int | None = None      # side of the centre square cut first (None: the largest)
    zdim: int = 32
    width: int = 32
    cond_embed: int = 128
    condition: str = "clip"      # clip | attributes | both
    clip: str = DEFAULT_MODEL    # the CLIP whose text embeddings condition the CVAE
    recon: str = "mse"           # mse | bce | l1, summed over pixels
    beta: float = 1.0            # weight of the KL term after warm-up
    kl_warmup: float = 2.0       # epochs over which the KL weight rises linearly from 0 to beta
    val_fraction: float = 0.05   # held out when the dataset has no partition file
    limit: int | None = None     # use only the first N listed images
    grid_rows: int = 8           # validation images / sentences shown in the per-epoch grids

    def __post_init__(self):
        def need(ok, message):
            if not ok:
                raise TrainError(message)
        need(self.epochs >= 1, f"--epochs must be at least 1 (got {self.epochs}).")
        need(self.batch_size >= 2, f"--batch-size must be at least 2 (got {self.batch_size}).")
        need(self.lr > 0, f"--lr must be positive (got {self.lr}).")
        need(self.condition in MODES, f"--condition must be one of {', '.join(MODES)} (got {self.condition}).")
        need(self.recon in RECON_LOSSES, f"--recon must be one of {', '.join(RECON_LOSSES)} (got {self.recon}).")
        need(self.beta >= 0 and self.kl_warmup >= 0, "--beta and --kl-warmup must not be negative.")
        need(0 < self.val_fraction < 1, f"--val-fraction must be between 0 and 1 (got {self.val_fraction}).")
        need(self.crop is None or self.crop >= 8, f"--crop must be at least 8 pixels (got {self.crop}).")
        need(self.size >= 16 and not self.size & (self.size - 1),
             f"--size must be a power of two of at least 16 (got {self.size}).")
        need(min(self.zdim, self.width, self.cond_embed) >= 1, "--zdim, --width and --cond-embed must be positive.")

    def model_config(self, cond_dim: int) -> CVAEConfig:
        return CVAEConfig(cond_dim=cond_dim, size=self.size, zdim=self.zdim, width=self.width,
                          cond_embed=self.cond_embed)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Prepared:
    """A dataset made ready for training: images, sentences, what conditions them, splits.

    CLIP embeddings are kept once per distinct sentence (CelebA's 200k rows at D = 512
    would otherwise hold 400 MB of repeats); ``conditions(idx)`` assembles rows on demand.
    """

    table: AttributeTable
    images: np.ndarray           # (M, 3, S, S) uint8
    rows: np.ndarray             # (M,) table rows of the images
    sentences: list[str]
    sentence_index: np.ndarray   # (M,) row of each image's sentence in clip_unit
    clip_unit: torch.Tensor | None   # (U, D) unit CLIP embeddings of the distinct sentences
    attributes: torch.Tensor     # (M, A) +1/-1
    conditioner: Conditioner
    split: dict[str, np.ndarray]
    clip_info: dict | None
    skipped: int

    def conditions(self, idx) -> torch.Tensor:
        """(len(idx), cond_dim) condition vectors of the images at positions ``idx``."""
        idx = np.asarray(idx)
        clip = self.clip_unit[torch.from_numpy(self.sentence_index[idx])] if self.clip_unit is not None else None
        return self.conditioner.build(clip, self.attributes[torch.from_numpy(idx)])


def _clip_spec(spec: str) -> str:
    """What the checkpoint records to reload the CLIP: its name, or a file's absolute path."""
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.is_file() else spec


def prepare(data: str | Path, config: TrainConfig, images: str | Path | None = None,
            cache_dir: str | Path | None = None, clip=None,
            progress: Callable[[str], None] | None = None) -> Prepared:
    """Read, decode and condition a dataset as ``config`` says (everything cached on disk).

    ``clip`` passes an already loaded conditioning CLIP; otherwise ``config.clip`` is loaded.
    """
    say = progress or (lambda _line: None)
    table = read_table(data, images).head(config.limit)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    say(f"decoding {len(table)} images at {config.size}x{config.size} (cached in {cache})")
    decoded = decode_images(table, config.size, config.crop, cache_dir=cache,
                            progress=lambda i, n: say(f"  decoded {i}/{n}"))
    if len(decoded.rows) < 2:
        raise DataError(f"The dataset {data} has only {len(decoded.rows)} usable image; training needs at least two.")
    builder = SentenceBuilder(table.attributes)
    sentences = [builder.sentence(table.values[r]) for r in decoded.rows]
    unique = list(dict.fromkeys(sentences))
    position = {s: i for i, s in enumerate(unique)}
    sentence_index = np.fromiter((position[s] for s in sentences), np.int64, count=len(sentences))
    attrs = torch.from_numpy(table.values[decoded.rows].astype(np.float32))
    clip_unit, clip_info, clip_dim = None, None, 0
    if config.condition in ("clip", "both"):
        name = clip.name if clip is not None else _clip_spec(config.clip)
        if clip is None:
            from clipxai.models.load import load_clip  # noqa: PLC0415

            clip = load_clip(name, "cpu")
        say(f"embedding {len(unique)} distinct sentences of {len(sentences)} with {clip.name} (cached)")
        clip_unit = text_embeddings(clip, unique, cache_dir=cache_dir,
                                    progress=lambda i, n: say(f"  embedded {i}/{n}"))
        clip_info = {"name": name, "sha256": clip.sha256, "embed_dim": clip.embed_dim}
        clip_dim = clip.embed_dim
    conditioner = Conditioner(config.condition, clip_dim, len(table.attributes))
    split = split_rows(table, decoded.rows, config.val_fraction, config.seed)
    return Prepared(table, decoded.images, decoded.rows, sentences, sentence_index, clip_unit, attrs,
                    conditioner, split, clip_info, len(decoded.skipped))


@dataclass
class TrainResult:
    checkpoint: Path
    history: list[dict]
    epochs_done: int


def train(data: str | Path, out: str | Path, config: TrainConfig | None = None, *, resume: bool = False,
          overwrite: bool = False, epochs: int | None = None, images: str | Path | None = None,
          cache_dir: str | Path | None = None, clip=None,
          progress: Callable[[str], None] | None = None) -> TrainResult:
    """Train (or, with ``resume``, continue) a CVAE on ``data``; results go to the folder ``out``.

    ``epochs`` extends a resumed training. A folder already holding a checkpoint is refused
    unless ``resume`` or ``overwrite`` says what to do with it (``resume`` wins when both do).
    """
    out = Path(out)
    say = progress or (lambda _line: None)
    path = out / ckpt.CHECKPOINT
    training.prepare_folder(out, resume=resume, overwrite=overwrite and not resume, checkpoint=ckpt.CHECKPOINT,
                            holds={ckpt.CHECKPOINT: "a CVAE checkpoint"}, create=False)
    previous = ckpt.read_checkpoint(path)[0] if resume else None
    config = _training_config(config, epochs, previous, out)
    prep = prepare(data, config, images=images, cache_dir=cache_dir, clip=clip, progress=say)
    if previous is not None:
        _check_same_data(previous, prep, data)
    if len(prep.split["train"]) < 2:
        raise DataError(f"The dataset {data} has fewer than two training images.")
    loop = CVAETraining(out, config, prep, say)
    if previous is not None:
        loop.restore(previous)
    loop.write_config(fresh=previous is None)
    loop.run()
    return TrainResult(path, loop.history, config.epochs)


def _training_config(config: TrainConfig | None, epochs: int | None, previous: dict | None, out: Path) -> TrainConfig:
    """The config to train with: the given one (or the defaults), or on a resume the checkpoint's,
    where only the number of epochs may change."""
    extend = {"epochs": epochs} if epochs else {}
    if previous is None:
        return dataclasses.replace(config or TrainConfig(), **extend)
    saved = previous["train_config"]
    if config is not None:
        training.check_resumed_config(saved, asdict(config), out, allowed=("epochs",))
        extend = {"epochs": config.epochs, **extend}
    return TrainConfig.from_dict({**saved, **extend})


class CVAETraining:
    """One CVAE training as it runs: the model and its optimizer, the epochs and steps done, the history."""

    def __init__(self, out: Path, config: TrainConfig, prep: Prepared, say: Callable[[str], None]):
        self.out, self.config, self.prep, self.say = out, config, prep, say
        self.mcfg = config.model_config(prep.conditioner.dim)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(config.seed, "init"))
            self.model = CVAE(self.mcfg)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.epoch, self.step, self.history = 0, 0, []
        self.steps_per_epoch = max(1, len(prep.split["train"]) // config.batch_size)

    def restore(self, previous: dict) -> None:
        """Continue from a checkpoint's weights, optimizer and history (refused when it has no epochs left)."""
        self.model.load_state_dict(previous["state_dict"])
        self.optimizer.load_state_dict(previous["optimizer"])
        self.epoch, self.step, self.history = int(previous["epoch"]), int(previous["step"]), list(previous["history"])
        if self.epoch >= self.config.epochs:
            raise TrainError(f"The training in {self.out} has already done {self.epoch} epochs; "
                             f"pass a larger --epochs to continue it.")

    def write_config(self, fresh: bool) -> None:
        """config.json; a fresh training also starts an empty history and drops a replaced training's previews."""
        out = self.out
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_FILE).write_text(json.dumps({**asdict(self.config), "model": self.mcfg.to_dict(),
                                                   "conditioning": _conditioning(self.prep)}, indent=2) + "\n")
        if fresh:
            (out / HISTORY_FILE).write_text("")
            for stale in (out / GRID_DIR).glob("*-e[0-9][0-9][0-9].png"):
                stale.unlink()

    def run(self) -> None:
        """Train the remaining epochs, each ending in validation, grids, a checkpoint and a history line."""
        config, prep = self.config, self.prep
        train_idx = prep.split["train"]
        cond_mean = torch.stack([prep.conditions(train_idx[s:s + 4096]).sum(0)
                                 for s in range(0, len(train_idx), 4096)]).sum(0) / len(train_idx)
        self.say(f"training on {len(train_idx)} images ({len(prep.split['val'])} validation), "
                 f"{self.steps_per_epoch} steps per epoch, condition {config.condition} ({prep.conditioner.dim} values)")
        for epoch in range(self.epoch, config.epochs):
            sums, seen, beta, seconds = self._train_epoch(epoch)
            self._end_epoch(epoch, sums, seen, beta, seconds, cond_mean)

    def _train_epoch(self, epoch: int) -> tuple[dict, int, float, float]:
        """One pass over the training images in the epoch's seeded order:
        (summed losses, images seen, the last KL weight, seconds)."""
        config, prep, model, optimizer, steps = self.config, self.prep, self.model, self.optimizer, self.steps_per_epoch
        train_idx = prep.split["train"]
        warmup_steps = config.kl_warmup * steps
        g = torch.Generator().manual_seed(derive_seed(config.seed, "epoch", epoch))
        order = train_idx[torch.randperm(len(train_idx), generator=g).numpy()]
        model.train()
        sums = {"loss": 0.0, "rec": 0.0, "kl": 0.0}
        t0, seen = time.perf_counter(), 0
        for b in range(steps):
            idx = order[b * config.batch_size:(b + 1) * config.batch_size]
            x = torch.from_numpy(np.asarray(prep.images[idx], np.float32) / 255.0)
            c = prep.conditions(idx)
            logits, mu, logvar = model(x, c, generator=g)
            rec = recon_per_image(logits, x, config.recon).mean()
            kl = kl_per_image(mu, logvar).mean()
            beta = config.beta * (min(1.0, (self.step + 1) / warmup_steps) if warmup_steps > 0 else 1.0)
            loss = rec + beta * kl
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            self.step += 1
            seen += len(idx)
            for k, v in (("loss", loss), ("rec", rec), ("kl", kl)):
                sums[k] += float(v.detach())
            if (b + 1) % max(1, steps // 4) == 0 and b + 1 < steps:
                n = b + 1
                self.say(f"epoch {epoch + 1}/{config.epochs} step {n}/{steps} loss {sums['loss'] / n:.2f} "
                         f"rec {sums['rec'] / n:.2f} kl {sums['kl'] / n:.2f} beta {beta:.3f} "
                         f"{seen / (time.perf_counter() - t0):.0f} img/s")
        return sums, seen, beta, time.perf_counter() - t0

    def _end_epoch(self, epoch: int, sums: dict, seen: int, beta: float, elapsed: float,
                   cond_mean: torch.Tensor) -> None:
        """Validate, say so, draw the grids, save the checkpoint and add the epoch's history line."""
        config, prep, out = self.config, self.prep, self.out
        val = validate(self.model, prep, config)
        record = {"epoch": epoch + 1, "step": self.step, "beta": beta,
                  **{k: v / self.steps_per_epoch for k, v in sums.items()},
                  **{f"val_{k}": v for k, v in val.items()},
                  "images_per_s": seen / elapsed, "seconds": elapsed}
        self.history.append(record)
        self.say(f"epoch {epoch + 1}/{config.epochs} loss {record['loss']:.2f} rec {record['rec']:.2f} "
                 f"kl {record['kl']:.2f} beta {beta:.3f} | val rec {val['rec']:.2f} kl {val['kl']:.2f} "
                 f"mse/px {val['mse_pixel']:.4f} | {record['images_per_s']:.0f} img/s")
        write_grids(self.model, prep, config, out / GRID_DIR, epoch + 1)
        payload = _payload(config, self.mcfg, self.model, prep, cond_mean, epoch + 1, self.step, self.history)
        payload["optimizer"] = self.optimizer.state_dict()
        ckpt.save_checkpoint(out / ckpt.CHECKPOINT, payload)
        training.append_line(out / HISTORY_FILE, json.dumps(record))


def _conditioning(prep: Prepared) -> dict:
    return {**prep.conditioner.to_dict(), "clip": prep.clip_info, "attributes": list(prep.table.attributes)}


def _payload(config: TrainConfig, mcfg: CVAEConfig, model: CVAE, prep: Prepared, cond_mean: torch.Tensor,
             epoch: int, step: int, history: list[dict]) -> dict:
    return {
        "format": ckpt.FORMAT, "version": ckpt.VERSION,
        "model_config": mcfg.to_dict(), "train_config": asdict(config),
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "conditioning": _conditioning(prep), "condition_mean": cond_mean.clone(),
        "dataset": {"root": str(prep.table.root), "layout": prep.table.layout, "listed": len(prep.table),
                    "used": len(prep.rows), "skipped": prep.skipped,
                    "distinct_sentences": len(set(prep.sentences))},
        "epoch": epoch, "step": step, "history": history,
    }


def _check_same_data(previous: dict, prep: Prepared, data) -> None:
    was = previous.get("dataset", {})
    if (previous["conditioning"]["attributes"] != list(prep.table.attributes) or was.get("used") != len(prep.rows)
            or (previous["conditioning"].get("clip") or {}).get("sha256") != (prep.clip_info or {}).get("sha256")):
        raise TrainError(f"{data} (or the conditioning CLIP) is not what this training started with, so it "
                         f"cannot be resumed on it.")


@torch.no_grad()
def validate(model: CVAE, prep: Prepared, config: TrainConfig, batch: int = 256) -> dict:
    """Reconstruction (decoded at the posterior mean), its per-pixel MSE, and KL on the validation images."""
    model.eval()
    idx = prep.split["val"]
    if len(idx) == 0:
        return {"rec": float("nan"), "kl": float("nan"), "mse_pixel": float("nan")}
    rec = kl = mse = 0.0
    for s in range(0, len(idx), batch):
        part = idx[s:s + batch]
        x = torch.from_numpy(np.asarray(prep.images[part], np.float32) / 255.0)
        c = prep.conditions(part)
        mu, logvar = model.encode(x, c)
        logits = model.decode_logits(mu, c)
        rec += float(recon_per_image(logits, x, config.recon).sum())
        kl += float(kl_per_image(mu, logvar).sum())
        mse += float((torch.sigmoid(logits) - x).pow(2).mean(dim=(1, 2, 3)).sum())
    n = len(idx)
    return {"rec": rec / n, "kl": kl / n, "mse_pixel": mse / n}


@torch.no_grad()
def write_grids(model: CVAE, prep: Prepared, config: TrainConfig, folder: Path, epoch: int) -> None:
    """recon-eNNN.png (validation images over their reconstructions) and samples-eNNN.png
    (one row per validation sentence, fixed noise so epochs compare)."""
    model.eval()
    idx = prep.split["val"][:config.grid_rows]
    if len(idx) == 0:
        return
    x = torch.from_numpy(np.asarray(prep.images[idx], np.float32) / 255.0)
    c = prep.conditions(idx)
    recon = model.decode(model.encode(x, c)[0], c)
    save_grid(torch.cat([x, recon]), folder / f"recon-e{epoch:03d}.png", ncol=len(idx))
    first_of: dict[str, int] = {}
    for i in prep.split["val"].tolist():
        first_of.setdefault(prep.sentences[i], i)
        if len(first_of) == config.grid_rows:
            break
    firsts = list(first_of)
    conds = prep.conditions(list(first_of.values()))
    n = config.grid_rows
    g = torch.Generator().manual_seed(derive_seed(config.seed, "grid"))
    z = torch.randn((len(firsts) * n, model.config.zdim), generator=g)
    save_grid(model.decode(z, conds.repeat_interleave(n, dim=0)), folder / f"samples-e{epoch:03d}.png", ncol=n)
    (folder / "samples.txt").write_text("".join(f"row {i + 1}: {s}\n" for i, s in enumerate(firsts)))
