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

from clipxai.errors import TrainError
from clipxai.models.base import OPENAI_MEAN, OPENAI_STD
from clipxai.toy import world
from clipxai.util import training
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
    training.prepare_folder(out_dir, resume=resume, overwrite=overwrite, checkpoint=CHECKPOINT_FILE,
                            holds={MODEL_FILE: "a trained model", CHECKPOINT_FILE: "an unfinished training"},
                            replace=(MODEL_FILE, COMPRESSED_FILE, CHECKPOINT_FILE, LOG_FILE, SUMMARY_FILE))


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
    loop = ToyTraining(out_dir, config, progress)
    if resume:
        loop.restore(_load_checkpoint(out_dir / CHECKPOINT_FILE))
    (out_dir / "config.json").write_text(json.dumps(asdict(config), indent=2) + "\n", encoding="utf-8")
    if not loop.run(resumed=resume, log_every=log_every, stop_after=stop_after):
        return None
    return _finish(loop, BUNDLED_MODELS[bundle] if bundle is not None else None)


class ToyTraining:
    """One toy training as it runs: the model and its optimizer, the step reached, the seconds spent,
    and the tokens and positions the captions used (the saved model keeps only those)."""

    def __init__(self, out_dir: Path, config: TrainConfig, progress: Callable[[str], None] | None = None):
        self.out_dir, self.config = out_dir, config
        self.say = progress or (lambda line: None)
        self.model = build_model(config)
        self.optimizer = make_optimizer(self.model, config)
        self.step, self.used_tokens, self.used_positions, self.elapsed = 0, {SOT, EOT}, 2, 0.0
        self.loss_value = float("nan")

    def restore(self, ckpt: dict) -> None:
        """Continue from a checkpoint made with this very config (anything else is refused)."""
        training.check_resumed_config(ckpt.get("config", {}), asdict(self.config), self.out_dir)
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.step, self.used_tokens = int(ckpt["step"]), set(ckpt["used_tokens"])
        self.used_positions, self.elapsed = int(ckpt["used_positions"]), float(ckpt.get("seconds", 0.0))

    def note(self, line: str) -> None:
        """One line into train.log and to the progress callback."""
        training.append_line(self.out_dir / LOG_FILE, line)
        self.say(line)

    def checkpoint(self) -> None:
        training.save_checkpoint(self.out_dir / CHECKPOINT_FILE, {
            "step": self.step, "config": asdict(self.config), "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "used_tokens": sorted(self.used_tokens),
            "used_positions": self.used_positions, "seconds": self.elapsed})

    def advance(self, tokens: Tokens) -> float:
        """One optimizer step on the batch of the current step; returns the batch's accuracy."""
        config, model, optimizer, step = self.config, self.model, self.optimizer, self.step
        batch = world_batch(config, step)
        toks = tokens(batch.captions)
        self.used_tokens.update(torch.unique(toks[toks > 0]).tolist())
        self.used_positions = max(self.used_positions, int(toks.argmax(dim=-1).max()) + 1)
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
        self.step += 1
        self.loss_value = loss.item()
        return acc

    def run(self, *, resumed: bool, log_every: int, stop_after: int | None) -> bool:
        """Train up to ``config.steps`` (True), or stop with a checkpoint once ``stop_after`` steps are
        done (False); Ctrl-C saves a checkpoint too before it goes on up."""
        config = self.config
        self.note(f"{'resuming at' if resumed else 'starting'} step {self.step}/{config.steps}; "
                  f"config {json.dumps(asdict(config))}")
        tokens = Tokens(config.context_length)
        self.model.train()
        start, acc_sum, n_sum = self.step, 0.0, 0
        t0 = time.perf_counter()
        try:
            while self.step < config.steps:
                acc_sum, n_sum = acc_sum + self.advance(tokens), n_sum + 1
                step = self.step
                if step % log_every == 0 or step == config.steps:
                    self._note_progress(start, t0, acc_sum / n_sum)
                    acc_sum, n_sum = 0.0, 0
                if step % config.checkpoint_every == 0 or step == config.steps:
                    self.elapsed += time.perf_counter() - t0
                    t0, start = time.perf_counter(), step
                    self.checkpoint()
                if stop_after is not None and step >= stop_after and step < config.steps:
                    self.elapsed += time.perf_counter() - t0
                    self.checkpoint()
                    self.note(f"stopped at step {step}; continue with --resume")
                    return False
        except KeyboardInterrupt:
            self.elapsed += time.perf_counter() - t0
            self.checkpoint()
            self.note(f"interrupted at step {self.step}; the checkpoint is saved, continue with --resume")
            raise
        return True

    def _note_progress(self, start: int, t0: float, accuracy: float) -> None:
        """The log line of a logged step: loss, accuracy, temperature, rate and time left."""
        config, step = self.config, self.step
        rate = (step - start) / max(time.perf_counter() - t0, 1e-9)
        eta = (config.steps - step) / max(rate, 1e-9)
        self.note(f"step {step}/{config.steps}  loss {self.loss_value:.4f}  acc {accuracy:.3f}  "
                  f"temp {self.model.logit_scale.exp().item():.1f}  lr {learning_rate(config, step - 1):.2e}  "
                  f"{rate:.2f} steps/s  eta {eta / 60:.1f} min")


def _finish(loop: ToyTraining, bundled_path: Path | None) -> TrainResult:
    """Write the compact model (and, for a bundle, its xz copy into the package) and train.json."""
    out_dir, config, step, elapsed = loop.out_dir, loop.config, loop.step, loop.elapsed
    loop.model.eval()
    sd = compact_state_dict(loop.model, loop.used_tokens, loop.used_positions)
    model_path = out_dir / MODEL_FILE
    save_torch(sd, model_path)
    compressed = None
    if bundled_path is not None:  # xz at its strongest takes a few seconds; only bundles need it
        compressed = out_dir / COMPRESSED_FILE
        compress_file(model_path, compressed)
        bundled_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(bundled_path, compressed.read_bytes())
    summary = {"config": asdict(config), "steps": step, "seconds": round(elapsed, 1),
               "final_loss": loop.loss_value, "used_tokens": len(loop.used_tokens),
               "used_positions": loop.used_positions, "model_bytes": model_path.stat().st_size,
               "compressed_bytes": compressed.stat().st_size if compressed else None,
               "torch": torch.__version__, "threads": torch.get_num_threads(),
               "bundled": str(bundled_path) if bundled_path else None}
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    training.append_line(out_dir / LOG_FILE, f"done: {step} steps in {elapsed / 60:.1f} min; wrote {model_path}")
    return TrainResult(out_dir, model_path, compressed, step, elapsed, loop.loss_value, bundled_path)


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
