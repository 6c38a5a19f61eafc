"""Training the bundled toy VAE: a small diffusers ``AutoencoderKL`` on the toy world, the way the toy VQGAN is trained.

Same data source as ``clipxai.toy.train_vqgan`` (procedurally drawn 64x64 world images, a fresh
seeded batch every step, a held-out stream training never draws from), the KL-regularized
autoencoder of latent diffusion in diffusers' own class: reconstruction (MSE on [-1, 1]) plus
a small KL term toward N(0, 1), no perceptual or adversarial term. Afterwards the latent's
shift and scaling factors are measured on a calibration stream (the mean and 1 / standard
deviation of the encoder's means, as Stable Diffusion's scaling factor was chosen), so the
scaled latent that ``--param sdvae`` optimizes has unit variance on world images.

    clipxai toy train-vae --out runs/vae-toy     # a diffusers folder: --vae runs/vae-toy
    clipxai toy train-vae --bundle               # rebuild the shipped file: --vae toy

The shipped file (``clipxai/toy/weights/vae-toy.pt.xz``) is xz-compressed ``torch.save`` of
``{"config": AutoencoderKL config, "state_dict": fp16 weights, "clipxai": the recipe and its
measured error}``.
"""

from __future__ import annotations

import io
import json
import lzma
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from clipxai.util import training
from clipxai.util.files import atomic_write_bytes

BUNDLE_DIR = Path(__file__).resolve().parent / "weights"
BUNDLE_FILE = BUNDLE_DIR / "vae-toy.pt.xz"
REBUILD_HINT = "clipxai toy train-vae --bundle"
HELDOUT_STREAM = 0x5EED        # the toy VQGAN's held-out stream: both are measured on the same images
TRAIN_STREAM = 0x7EA2
CALIBRATION_STREAM = 0xCA1B


@dataclass(frozen=True)
class VAETrainConfig:
    """Everything that determines the toy VAE; the same config gives the same weights on CPU."""

    seed: int = 0
    steps: int = 600
    batch_size: int = 8
    lr: float = 2e-3
    lr_final: float = 0.05               # fraction of lr at the end of the cosine decay
    kl_weight: float = 1e-4              # per latent element, against the per-pixel MSE on [-1, 1]
    block_out_channels: tuple = (16, 32, 32)   # f4: 64x64 images <-> 4x16x16 latents
    layers_per_block: int = 1
    norm_num_groups: int = 8
    latent_channels: int = 4
    data: str = "world"                  # "world" (clipxai.toy.world) or "shapes", as for the VQGAN
    heldout: int = 128
    calibration: int = 128


def vae_config(config: VAETrainConfig) -> dict:
    """The ``AutoencoderKL`` keyword arguments of this recipe (before the measured scaling factors)."""
    n = len(config.block_out_channels)
    return dict(in_channels=3, out_channels=3, block_out_channels=tuple(config.block_out_channels),
                layers_per_block=config.layers_per_block, latent_channels=config.latent_channels,
                norm_num_groups=config.norm_num_groups, sample_size=64,
                down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
                mid_block_add_attention=False)


def _images(data: str, n: int, rng: np.random.Generator) -> torch.Tensor:
    from clipxai.toy.train_vqgan import images  # noqa: PLC0415  (one data source for both generators)

    return torch.from_numpy(images(data, n, rng))


def heldout_images(config: VAETrainConfig) -> torch.Tensor:
    """The held-out evaluation images (the same stream as the toy VQGAN's)."""
    return _images(config.data, config.heldout, np.random.default_rng([HELDOUT_STREAM, config.seed]))


def _lr(config: VAETrainConfig, step: int) -> float:
    warm = min(1.0, (step + 1) / 50)
    t = step / max(config.steps - 1, 1)
    return config.lr * warm * (config.lr_final + (1 - config.lr_final) * 0.5 * (1 + math.cos(math.pi * t)))


def build(config: VAETrainConfig):
    """A freshly initialised ``AutoencoderKL`` of the recipe, seeded."""
    from clipxai.util.extras import require_extra  # noqa: PLC0415

    require_extra("sdvae", "clipxai toy train-vae")
    from diffusers import AutoencoderKL  # noqa: PLC0415

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return AutoencoderKL(**vae_config(config))


def train_model(config: VAETrainConfig, log=print):
    """Train and return the fp32 ``AutoencoderKL`` with its measured shift and scaling factors set."""
    model = build(config).train()
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.5, 0.9))
    t0 = time.perf_counter()
    every = max(1, config.steps // 10)
    for step in range(config.steps):
        x = _images(config.data, config.batch_size, np.random.default_rng([TRAIN_STREAM, config.seed, step])) * 2 - 1
        for group in opt.param_groups:
            group["lr"] = _lr(config, step)
        posterior = model.encode(x).latent_dist
        rec = model.decode(posterior.sample(generator=gen)).sample
        loss_rec = F.mse_loss(rec, x)
        kl = 0.5 * (posterior.mean ** 2 + posterior.var - 1.0 - posterior.logvar).mean()
        loss = loss_rec + config.kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % every == 0 or step + 1 == config.steps:
            psnr = 10 * math.log10(4.0 / max(loss_rec.item(), 1e-12))
            log(f"step {step + 1}/{config.steps}  rec mse {loss_rec.item() / 4:.5f}  psnr {psnr:.2f} dB  "
                f"kl {kl.item():.3f}  {time.perf_counter() - t0:.0f}s")
    model.eval().requires_grad_(False)
    shift, scale = latent_statistics(model, config)
    model.register_to_config(shift_factor=shift, scaling_factor=scale)
    return model


@torch.no_grad()
def latent_statistics(model, config: VAETrainConfig) -> tuple[float, float]:
    """(mean, 1 / standard deviation) of the encoder's means on calibration images: the shift and
    scaling factors that give the scaled latent zero mean and unit variance on the world."""
    x = _images(config.data, config.calibration, np.random.default_rng([CALIBRATION_STREAM, config.seed]))
    mu = torch.cat([model.encode(x[i:i + 64] * 2 - 1).latent_dist.mean for i in range(0, len(x), 64)])
    return float(mu.mean()), float(1.0 / mu.std().clamp_min(1e-8))


@torch.no_grad()
def reconstruction_error(model, x: torch.Tensor, batch: int = 64) -> tuple[float, float]:
    """(MSE, PSNR in dB) of images in [0, 1] through the encoder's mean and the decoder, clamped to [0, 1]."""
    total, count = 0.0, 0
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        rec = ((model.decode(model.encode(xb * 2 - 1).latent_dist.mean).sample + 1) / 2).clamp(0, 1)
        total += F.mse_loss(rec, xb, reduction="sum").item()
        count += xb.numel()
    mse = total / count
    return mse, 10 * math.log10(1.0 / max(mse, 1e-12))


def bundle_bytes(model, extra: dict) -> bytes:
    """The shipped file's bytes: xz of ``torch.save({"config", "state_dict" (fp16), "clipxai"})``."""
    state = {k: v.detach().half() if v.is_floating_point() else v.detach() for k, v in model.state_dict().items()}
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(model.config).items() if not k.startswith("_")}
    buffer = io.BytesIO()
    torch.save({"config": config, "state_dict": state, "clipxai": extra}, buffer)
    return lzma.compress(buffer.getvalue(), preset=9 | lzma.PRESET_EXTREME)


def load_bundle(path: Path = BUNDLE_FILE):
    """(the fp32 ``AutoencoderKL`` in eval mode, the file's ``clipxai`` record) from a bundle file."""
    from diffusers import AutoencoderKL  # noqa: PLC0415

    from clipxai.errors import ModelLoadError  # noqa: PLC0415
    from clipxai.models.weights import load_state_dict_bytes  # noqa: PLC0415

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"The bundled toy VAE is missing ({path}); rebuild it with `{REBUILD_HINT}`.")
    corrupt = f"The bundled toy VAE {path} is corrupt; rebuild it with `{REBUILD_HINT}`."
    try:
        payload = load_state_dict_bytes(lzma.decompress(path.read_bytes()), f"The bundled toy VAE {path}")
        vae = AutoencoderKL.from_config(payload["config"])
        vae.load_state_dict({k: v.float() for k, v in payload["state_dict"].items()})
    except (lzma.LZMAError, EOFError, OSError, ModelLoadError, KeyError, TypeError, RuntimeError) as err:
        raise ModelLoadError(corrupt) from err
    return vae.eval().requires_grad_(False), payload.get("clipxai", {})


def train(config: VAETrainConfig, out_dir: Path | None = None, *, bundle: bool = False, log=print) -> dict:
    """Train, write, reload what was written and record its held-out error.

    ``out_dir``: a diffusers folder (``save_pretrained``: ``config.json``, the safetensors weights,
    ``training.json``), loadable with ``--vae DIR``. ``bundle``: the shipped file (``--vae toy``).
    """
    if out_dir is None and not bundle:
        raise ValueError("train() needs out_dir or bundle=True")
    if out_dir is not None:
        training.prepare_folder(out_dir, checkpoint=None)  # a file in the way fails now, not after the training
    t0 = time.perf_counter()
    model = train_model(config, log=log)
    seconds = time.perf_counter() - t0
    held = heldout_images(config)
    summary = {"train_config": asdict(config), "data": config.data, "heldout_n": config.heldout,
               "heldout_stream": [HELDOUT_STREAM, config.seed], "train_seconds": round(seconds, 1),
               "threads": torch.get_num_threads(), "parameters": sum(p.numel() for p in model.parameters()),
               "shift_factor": model.config.shift_factor, "scaling_factor": model.config.scaling_factor}
    if bundle:
        atomic_write_bytes(BUNDLE_FILE, bundle_bytes(model, summary))  # to measure what ships (fp16)
        reloaded, _ = load_bundle(BUNDLE_FILE)
        summary["heldout_mse"], summary["heldout_psnr"] = reconstruction_error(reloaded, held)
        atomic_write_bytes(BUNDLE_FILE, bundle_bytes(model, summary))
        where = f"{BUNDLE_FILE} ({BUNDLE_FILE.stat().st_size / 1e6:.2f} MB)"
    if out_dir is not None:
        from diffusers import AutoencoderKL  # noqa: PLC0415

        model.save_pretrained(str(out_dir))
        reloaded = AutoencoderKL.from_pretrained(str(out_dir), local_files_only=True).eval()
        summary["heldout_mse"], summary["heldout_psnr"] = reconstruction_error(reloaded, held)
        (Path(out_dir) / "training.json").write_text(json.dumps(summary, indent=2) + "\n")
        where = str(out_dir)
    log(f"held-out ({config.heldout} images): mse {summary.get('heldout_mse', float('nan')):.5f}, "
        f"psnr {summary.get('heldout_psnr', float('nan')):.2f} dB; {seconds:.0f}s on {torch.get_num_threads()} "
        f"thread(s); wrote {where}")
    return summary
