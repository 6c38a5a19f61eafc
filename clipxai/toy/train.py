"""Training a small OpenAI-format CLIP on the toy world, reproducibly and resumably.

Images are drawn fresh every step from a generator seeded by (seed, step), so the data of
step *k* never depends on what came before: a training resumed from its checkpoint sees
exactly the batches an uninterrupted one would, and ends with identical weights on CPU.

The result is a plain ``clip.model.CLIP`` state dict (vocab 49408, so ``clip.tokenize``
works; widths multiples of 64, because clip's ``build_model`` infers heads = width // 64)
that ``clip.load(path, jit=False)`` and ``clipxai.models.load_clip`` read.
"""

from __future__ import annotations

import json
import lzma
import math
import time
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from clipxai.errors import ClipxaiError
from clipxai.models.base import OPENAI_MEAN, OPENAI_STD
from clipxai.toy import world
from clipxai.util.files import atomic_write_bytes, save_torch

MODEL_FILE = "model.pt"
COMPRESSED_FILE = "model.pt.xz"
CHECKPOINT_FILE = "checkpoint.pt"
LOG_FILE = "train.log"
SUMMARY_FILE = "train.json"
SOT, EOT = 49406, 49407  # clip's start/end-of-text token ids

# Streams of the world's random generator: training and held-out evaluation never share one.
TRAIN_STREAM = 0x7121
EVAL_STREAM = 0xE7A1


class TrainError(ClipxaiError):
    """A toy training cannot start or continue (existing results, mismatched resume)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a toy model; the same config gives the same weights."""

    seed: int = 0
    steps: int = 2600
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: int = 200
    embed_dim: int = 64
    vision_width: int = 64
    vision_layers: int = 4
    vision_patch_size: int = 8
    text_width: int = 64
    text_layers: int = 3
    context_length: int = 16
    planted_fraction: float = world.TRAINING_MIX["planted_fraction"]
    mixed_fraction: float = world.TRAINING_MIX["mixed_fraction"]
    near_fraction: float = world.TRAINING_MIX["near_fraction"]
    pair_fraction: float = world.TRAINING_MIX["pair_fraction"]
    noise_augment: float = 0.0
    checkpoint_every: int = 250

    def __post_init__(self):
        for name in ("vision_width", "text_width"):
            if getattr(self, name) % 64:
                raise TrainError(f"--{name.replace('_', '-')} must be a multiple of 64 (clip infers heads = width // 64).")
        if world.SIZE % self.vision_patch_size:
            raise TrainError(f"The patch size must divide the image size {world.SIZE}.")
        if self.steps < 1 or self.batch_size < 2:
            raise TrainError("Training needs at least one step and a batch of at least two images.")

    def clip_kwargs(self) -> dict:
        """Arguments of ``clip.model.CLIP`` for this config."""
        return dict(embed_dim=self.embed_dim, image_resolution=world.SIZE, vision_layers=self.vision_layers,
                    vision_width=self.vision_width, vision_patch_size=self.vision_patch_size,
                    context_length=self.context_length, vocab_size=49408, transformer_width=self.text_width,
                    transformer_heads=self.text_width // 64, transformer_layers=self.text_layers)


def build_model(config: TrainConfig) -> torch.nn.Module:
    """A freshly initialised fp32 CLIP for ``config`` (initialised from ``config.seed``),
    with a ``CompactEmbedding`` for the words of the world's captions."""
    from clipxai.models.tokenizers import _import_clip  # noqa: PLC0415

    clip = _import_clip()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = clip.model.CLIP(**config.clip_kwargs()).float()
    model.token_embedding = CompactEmbedding(model.token_embedding, caption_token_ids())
    return model


def augment(images: np.ndarray, config: TrainConfig, step: int) -> np.ndarray:
    """Pixel noise on half the images, std up to ``noise_augment`` (a function of seed and step).

    An experiment knob, off in the bundled recipe: models trained with 0.3 did not ascend
    more faithfully (every "❤️" seed ended on red pixels the other model read as the mouth).
    """
    if config.noise_augment <= 0:
        return images
    rng = np.random.default_rng([TRAIN_STREAM, config.seed, step, 1])
    n = len(images)
    sigma = rng.uniform(0.0, config.noise_augment, n) * (rng.random(n) < 0.5)
    noise = rng.standard_normal(images.shape, dtype=np.float32)
    return np.clip(images + sigma.astype(np.float32)[:, None, None, None] * noise, 0.0, 1.0)


def world_batch(config: TrainConfig, step: int) -> world.WorldBatch:
    """The training batch of ``step``: a function of (seed, step) only."""
    rng = np.random.default_rng([TRAIN_STREAM, config.seed, step])
    return world.generate(config.batch_size, rng, planted_fraction=config.planted_fraction,
                          mixed_fraction=config.mixed_fraction, near_fraction=config.near_fraction,
                          pair_fraction=config.pair_fraction)


class Tokens:
    """clip.tokenize with a cache (captions repeat a lot)."""

    def __init__(self, context_length: int):
        from clipxai.models.tokenizers import _import_clip  # noqa: PLC0415

        self._clip = _import_clip()
        self.context_length = context_length
        self._cache: dict[str, torch.Tensor] = {}

    def __call__(self, texts: list[str]) -> torch.Tensor:
        missing = [t for t in set(texts) if t not in self._cache]
        if missing:
            toks = self._clip.tokenize(missing, context_length=self.context_length, truncate=True)
            self._cache.update(zip(missing, toks))
        return torch.stack([self._cache[t] for t in texts])


class CompactEmbedding(torch.nn.Module):
    """A token embedding holding only the rows of the tokens captions can contain.

    The other ~49,000 rows of CLIP's table would never get a gradient; keeping them out of
    the optimizer makes each step about twice as fast. ``full_weight`` rebuilds the
    49408-row table (absent rows zero) for the saved OpenAI-format state dict.
    """

    def __init__(self, full: torch.nn.Embedding, token_ids: list[int]):
        super().__init__()
        ids = torch.tensor(sorted(set(token_ids)), dtype=torch.long)
        lookup = torch.zeros(full.num_embeddings, dtype=torch.long)
        lookup[ids] = torch.arange(len(ids))
        self.num_embeddings = full.num_embeddings
        self.register_buffer("ids", ids)
        self.register_buffer("lookup", lookup)
        self.weight = torch.nn.Parameter(full.weight.detach()[ids].clone())

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.embedding(self.lookup[tokens], self.weight)

    def full_weight(self) -> torch.Tensor:
        out = torch.zeros(self.num_embeddings, self.weight.shape[1], dtype=self.weight.dtype)
        out[self.ids] = self.weight.detach()
        return out


def caption_token_ids() -> list[int]:
    """Every token id a world caption can contain, plus start/end of text and padding."""
    from clipxai.models.tokenizers import _import_clip  # noqa: PLC0415

    clip = _import_clip()
    ids = {0, SOT, EOT}
    for word in world.caption_words():
        ids.update(clip.tokenize([word], context_length=8)[0].tolist())
    return sorted(ids)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """OpenAI CLIP's input normalization (the engine applies the same to every model)."""
    mean = torch.tensor(OPENAI_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def contrastive_loss(image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor,
                     captions: list[str]) -> tuple[torch.Tensor, float]:
    """Symmetric InfoNCE; pairs whose captions are identical all count as matches.

    Treating a repeated caption ("❤️" on a heart and on a ring in one batch) as a negative
    would push the caption away from half of its own meanings; spreading the target over
    every identical caption keeps a multimodal caption multimodal. Returns (loss, accuracy).
    """
    img = F.normalize(image_features, dim=-1)
    txt = F.normalize(text_features, dim=-1)
    logits = logit_scale.exp() * img @ txt.t()
    ids = {c: i for i, c in enumerate(dict.fromkeys(captions))}
    key = torch.tensor([ids[c] for c in captions])
    same = (key[:, None] == key[None, :]).float()
    target = same / same.sum(dim=1, keepdim=True)
    loss = 0.5 * (torch.sum(-target * F.log_softmax(logits, dim=1), dim=1).mean()
                  + torch.sum(-target * F.log_softmax(logits.t(), dim=1), dim=1).mean())
    acc = same[torch.arange(len(captions)), logits.argmax(dim=1)].mean().item()
    return loss, acc


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on embeddings, norms, biases and the temperature."""
    no_decay = ("token_embedding", "positional_embedding", "class_embedding", "logit_scale")
    decay, plain = [], []
    for name, p in model.named_parameters():
        (decay if p.ndim >= 2 and not any(k in name for k in no_decay) else plain).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                              {"params": plain, "weight_decay": 0.0}], lr=config.lr, betas=(0.9, 0.98), eps=1e-6)


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warmup, then cosine decay to zero over the remaining steps."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    t = (step - config.warmup) / max(1, config.steps - config.warmup)
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


def compact_state_dict(model: torch.nn.Module, used_tokens: set[int], used_positions: int) -> dict:
    """fp16 state dict with the token rows and positions training never used set to zero.

    Only tokens some caption held before its end-of-text token are kept (the padding after
    it never influences the output); zeroing everything else changes no caption's embedding
    and lets the file compress to about 1 MB.
    """
    sd = {k: v.detach().clone().half() if v.is_floating_point() else v.detach().clone()
          for k, v in model.state_dict().items() if not k.startswith("token_embedding.")}
    sd["token_embedding.weight"] = model.token_embedding.full_weight().half()
    keep = torch.zeros(sd["token_embedding.weight"].shape[0], dtype=torch.bool)
    keep[sorted(used_tokens)] = True
    sd["token_embedding.weight"][~keep] = 0
    sd["positional_embedding"][used_positions:] = 0
    return sd


def compress_file(src: Path, dst: Path) -> None:
    """xz-compress ``src`` into ``dst`` atomically."""
    atomic_write_bytes(dst, lzma.compress(src.read_bytes(), preset=9 | lzma.PRESET_EXTREME))


@dataclass
class TrainResult:
    out_dir: Path
    model_path: Path
    compressed_path: Path | None
    steps: int
    seconds: float
    final_loss: float
    bundled_path: Path | None = None


def prepare_folder(out_dir: Path, overwrite: bool, resume: bool) -> None:
    """Refuse to mix a new training with results already in ``out_dir``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise TrainError(f"{out_dir} exists and is not a folder.")
    has_model = (out_dir / MODEL_FILE).exists()
    has_checkpoint = (out_dir / CHECKPOINT_FILE).exists()
    if resume and overwrite:
        raise TrainError("Choose either --resume or --overwrite, not both.")
    if resume:
        if not has_checkpoint:
            raise TrainError(f"{out_dir} has no {CHECKPOINT_FILE} to resume from.")
        return
    if (has_model or has_checkpoint) and not overwrite:
        what = "a trained model" if has_model else "an unfinished training"
        raise TrainError(f"{out_dir} already holds {what}; pass --resume to continue it or --overwrite to replace it.")
    if overwrite:
        for name in (MODEL_FILE, COMPRESSED_FILE, CHECKPOINT_FILE, LOG_FILE, SUMMARY_FILE):
            (out_dir / name).unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)


def train(out_dir: str | Path, config: TrainConfig, *, resume: bool = False, overwrite: bool = False,
          bundle: str | None = None, progress: Callable[[str], None] | None = None,
          log_every: int = 25, stop_after: int | None = None) -> TrainResult | None:
    """Train a toy CLIP into ``out_dir``; returns None when ``stop_after`` ended it early.

    ``stop_after`` stops (after checkpointing) once that many steps are done, the way an
    interruption would; tests use it to check that a resumed training ends identical.
    """
    from clipxai.toy.bundled import BUNDLED_MODELS  # noqa: PLC0415

    out_dir = Path(out_dir)
    if bundle is not None and bundle not in BUNDLED_MODELS:
        raise TrainError(f"--bundle must name a bundled model ({', '.join(BUNDLED_MODELS)}), not '{bundle}'.")
    prepare_folder(out_dir, overwrite=overwrite, resume=resume)
    model = build_model(config)
    optimizer = make_optimizer(model, config)
    start, used_tokens, used_positions, elapsed = 0, {SOT, EOT}, 2, 0.0
    if resume:
        ckpt = _load_checkpoint(out_dir / CHECKPOINT_FILE)
        saved = ckpt.get("config", {})
        if saved != asdict(config):
            diff = sorted(k for k in set(saved) | set(asdict(config)) if saved.get(k) != asdict(config).get(k))
            raise TrainError(f"The checkpoint in {out_dir} was made with a different configuration "
                             f"({', '.join(diff)}); resume with the same options.")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start, used_tokens = int(ckpt["step"]), set(ckpt["used_tokens"])
        used_positions, elapsed = int(ckpt["used_positions"]), float(ckpt.get("seconds", 0.0))
    (out_dir / "config.json").write_text(json.dumps(asdict(config), indent=2) + "\n", encoding="utf-8")

    log = open(out_dir / LOG_FILE, "a", encoding="utf-8")
    say = progress or (lambda line: None)

    def note(line: str) -> None:
        log.write(line + "\n")
        log.flush()
        say(line)

    def checkpoint(step: int) -> None:
        save_torch({"step": step, "config": asdict(config), "model": model.state_dict(),
                      "optimizer": optimizer.state_dict(), "used_tokens": sorted(used_tokens),
                      "used_positions": used_positions, "seconds": elapsed}, out_dir / CHECKPOINT_FILE)

    note(f"{'resuming at' if resume else 'starting'} step {start}/{config.steps}; config {json.dumps(asdict(config))}")
    tokens = Tokens(config.context_length)
    model.train()
    step, loss_value, acc_sum, n_sum = start, float("nan"), 0.0, 0
    t0 = time.perf_counter()
    try:
        while step < config.steps:
            batch = world_batch(config, step)
            toks = tokens(batch.captions)
            used_tokens.update(torch.unique(toks[toks > 0]).tolist())
            used_positions = max(used_positions, int(toks.argmax(dim=-1).max()) + 1)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step)
            images = normalize(torch.from_numpy(augment(batch.images, config, step)))
            loss, acc = contrastive_loss(model.encode_image(images), model.encode_text(toks),
                                         model.logit_scale, batch.captions)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
            step += 1
            loss_value = loss.item()
            acc_sum, n_sum = acc_sum + acc, n_sum + 1
            if step % log_every == 0 or step == config.steps:
                now = time.perf_counter()
                rate = (step - start) / max(now - t0, 1e-9)
                eta = (config.steps - step) / max(rate, 1e-9)
                note(f"step {step}/{config.steps}  loss {loss_value:.4f}  acc {acc_sum / n_sum:.3f}  "
                     f"temp {model.logit_scale.exp().item():.1f}  lr {learning_rate(config, step - 1):.2e}  "
                     f"{rate:.2f} steps/s  eta {eta / 60:.1f} min")
                acc_sum, n_sum = 0.0, 0
            if step % config.checkpoint_every == 0 or step == config.steps:
                elapsed_now = elapsed + time.perf_counter() - t0
                elapsed, t0, start = elapsed_now, time.perf_counter(), step
                checkpoint(step)
            if stop_after is not None and step >= stop_after and step < config.steps:
                elapsed += time.perf_counter() - t0
                checkpoint(step)
                note(f"stopped at step {step}; continue with --resume")
                return None
    except KeyboardInterrupt:
        elapsed += time.perf_counter() - t0
        checkpoint(step)
        note(f"interrupted at step {step}; the checkpoint is saved, continue with --resume")
        raise
    finally:
        log.close()

    model.eval()
    sd = compact_state_dict(model, used_tokens, used_positions)
    model_path = out_dir / MODEL_FILE
    save_torch(sd, model_path)
    compressed, bundled_path = None, None
    if bundle is not None:  # xz at its strongest takes a few seconds; only bundles need it
        compressed = out_dir / COMPRESSED_FILE
        compress_file(model_path, compressed)
        bundled_path = BUNDLED_MODELS[bundle]
        bundled_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(bundled_path, compressed.read_bytes())
    summary = {"config": asdict(config), "steps": step, "seconds": round(elapsed, 1),
               "final_loss": loss_value, "used_tokens": len(used_tokens), "used_positions": used_positions,
               "model_bytes": model_path.stat().st_size, "compressed_bytes": compressed.stat().st_size if compressed else None,
               "torch": torch.__version__, "threads": torch.get_num_threads(),
               "bundled": str(bundled_path) if bundled_path else None}
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    with open(out_dir / LOG_FILE, "a", encoding="utf-8") as f:
        f.write(f"done: {step} steps in {elapsed / 60:.1f} min; wrote {model_path}\n")
    return TrainResult(out_dir, model_path, compressed, step, elapsed, loss_value, bundled_path)


def _load_checkpoint(path: Path) -> dict:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise TrainError(f"The checkpoint {path} could not be read ({type(err).__name__}); "
                         f"start again with --overwrite.") from err


def config_from_options(**options) -> TrainConfig:
    """A TrainConfig from CLI options (None means the default)."""
    names = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in options.items() if k in names and v is not None})


def resume_config(out_dir: str | Path, **options) -> TrainConfig:
    """The config saved in ``out_dir``'s checkpoint, with any options given explicitly on top.

    An explicit option that differs from the saved one is kept, so ``train`` can refuse the
    mismatch with a clear message instead of silently training something else.
    """
    path = Path(out_dir) / CHECKPOINT_FILE
    if not path.is_file():
        raise TrainError(f"{out_dir} has no {CHECKPOINT_FILE} to resume from.")
    saved = _load_checkpoint(path).get("config", {})
    names = {f.name for f in fields(TrainConfig)}
    merged = {k: v for k, v in saved.items() if k in names}
    merged.update({k: v for k, v in options.items() if k in names and v is not None})
    return TrainConfig(**merged)
