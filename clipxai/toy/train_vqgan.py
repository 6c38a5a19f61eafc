"""Training the bundled toy VQGAN: a small VQ autoencoder in taming-transformers' exact format.

The result is what an official release is: an OmegaConf yaml (target
``taming.models.vqgan.VQModel``, ``ddconfig``, ``n_embed``, ``embed_dim``) and a
Lightning-style checkpoint ``{"state_dict": ...}``, read by the same code path
(``clipxai.generators.vqgan.load_vqgan``). It is trained on procedurally drawn 64x64 images: the toy
world (``clipxai.toy.world``) or, with ``--data shapes``, the simple shapes below. The loss is
reconstruction + codebook + commitment (no perceptual or adversarial term), codes unused
for a while are restarted on encoder outputs, and every random draw comes from the seed.

    clipxai toy train-vqgan --out runs/vqgan-toy          # ~10 min on one busy CPU thread
    clipxai toy train-vqgan --bundle                      # rebuild the shipped files
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from clipxai.util import training

SIZE = 64
# f4 (64x64 images <-> 16x16 latents, like f16 at 256 px); 32 channels is the least taming's
# GroupNorm(32) allows, and no extra residual blocks keep one-thread training under ~10 minutes.
DDCONFIG = dict(double_z=False, z_channels=32, resolution=SIZE, in_channels=3, out_ch=3, ch=32,
                ch_mult=[1, 1, 2], num_res_blocks=0, attn_resolutions=[], dropout=0.0)
HELDOUT_STREAM = 0x5EED
TRAIN_STREAM = 0x7EA1
BUNDLE_DIR = Path(__file__).resolve().parent / "weights"
BUNDLE_STEM = "vqgan-toy"


@dataclass(frozen=True)
class VQTrainConfig:
    """Everything that determines the toy VQGAN; the same config gives the same weights on CPU."""

    seed: int = 0
    steps: int = 1000
    batch_size: int = 8
    lr: float = 2e-3
    lr_final: float = 0.05        # fraction of lr at the end of the cosine decay
    beta: float = 0.25            # commitment weight
    n_embed: int = 256
    embed_dim: int = 32
    restart_every: int = 50       # codes unused for this many steps move onto encoder outputs
    data: str = "world"           # "world" (clipxai.toy.world) or "shapes"
    heldout: int = 128            # held-out images for the recorded reconstruction error


def model_yaml(config: VQTrainConfig) -> dict:
    """The model's yaml in the layout of the official releases."""
    return {"model": {
        "base_learning_rate": config.lr,
        "target": "taming.models.vqgan.VQModel",
        "params": {
            "embed_dim": config.embed_dim,
            "n_embed": config.n_embed,
            "ddconfig": dict(DDCONFIG),
            "lossconfig": {"target": "taming.modules.losses.vqperceptual.DummyLoss"},
        },
    }}


# ---------------------------------------------------------------------------------------
# Data

def images(data: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` images [n, 3, 64, 64] in [0, 1] from the toy world or the simple shapes."""
    if data == "world":
        from clipxai.toy import world  # noqa: PLC0415

        return world.generate(n, rng).images
    if data == "shapes":
        return shapes(n, rng)
    raise ValueError(f"unknown data '{data}' (world or shapes)")


def shapes(n: int, rng: np.random.Generator) -> np.ndarray:
    """Flat-coloured discs, squares and triangles (one or two) on dark, slightly noisy backgrounds."""
    v, u = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE
    out = rng.uniform(0.0, 0.2, (n, 3, 1, 1)).astype(np.float32) * np.ones((1, 1, SIZE, SIZE), np.float32)
    for i in range(n):
        for _ in range(rng.integers(1, 3)):
            cx, cy = rng.uniform(0.25, 0.75, 2)
            r = rng.uniform(0.1, 0.3)
            kind = rng.integers(3)
            if kind == 0:
                mask = (u - cx) ** 2 + (v - cy) ** 2 < r * r
            elif kind == 1:
                mask = (np.abs(u - cx) < r) & (np.abs(v - cy) < r)
            else:
                mask = (v - cy < r) & (v - cy > -r) & (np.abs(u - cx) < (v - cy + r) / 2)
            out[i][:, mask] = rng.uniform(0.1, 1.0, 3).astype(np.float32)[:, None]
    out += rng.normal(0.0, 0.02, out.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0)


def heldout_images(config: VQTrainConfig) -> torch.Tensor:
    """The held-out evaluation images (a stream training never draws from)."""
    rng = np.random.default_rng([HELDOUT_STREAM, config.seed])
    return torch.from_numpy(images(config.data, config.heldout, rng))


# ---------------------------------------------------------------------------------------
# Training

def _lr(config: VQTrainConfig, step: int) -> float:
    warm = min(1.0, (step + 1) / 50)
    t = step / max(config.steps - 1, 1)
    return config.lr * warm * (config.lr_final + (1 - config.lr_final) * 0.5 * (1 + math.cos(math.pi * t)))


def train_model(config: VQTrainConfig, log=print):
    """Train and return the fp32 ``VQGAN`` module (a ``clipxai.generators.vqgan.VQGAN``)."""
    from clipxai.generators.vqgan.files import VQGANConfig  # noqa: PLC0415
    from clipxai.generators.vqgan.model import build_vqgan  # noqa: PLC0415

    params = model_yaml(config)["model"]["params"]
    cfg = VQGANConfig(path="(training)", target="taming.models.vqgan.VQModel", kind="vq",
                      ddconfig=params["ddconfig"], n_embed=config.n_embed, embed_dim=config.embed_dim)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_vqgan(cfg)
    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.5, 0.9))
    usage = torch.zeros(config.n_embed)
    t0 = time.perf_counter()
    for step in range(config.steps):
        rng = np.random.default_rng([TRAIN_STREAM, config.seed, step])
        x = torch.from_numpy(images(config.data, config.batch_size, rng))
        for group in opt.param_groups:
            group["lr"] = _lr(config, step)
        h = model.quant_conv(model.encoder(x * 2 - 1))
        codes = model.nearest_codes(h)
        zq = model.embed_codes(codes)
        rec = model.decode(h + (zq - h).detach())
        loss_rec = F.mse_loss(rec, x * 2 - 1)
        loss = loss_rec + F.mse_loss(zq, h.detach()) + config.beta * F.mse_loss(h, zq.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        usage += torch.bincount(codes.flatten(), minlength=config.n_embed).float()
        if (step + 1) % config.restart_every == 0:
            restarted = _restart_dead_codes(model, usage, h.detach(), gen)
            usage.zero_()
            # PSNR of this batch on [0, 1] images
            psnr = 10 * math.log10(4.0 / max(loss_rec.item(), 1e-12))
            log(f"step {step + 1}/{config.steps}  rec mse {loss_rec.item() / 4:.5f}  psnr {psnr:.2f} dB  "
                f"restarted {restarted} codes  {time.perf_counter() - t0:.0f}s")
    return model.eval()


def _restart_dead_codes(model, usage: torch.Tensor, h: torch.Tensor, gen: torch.Generator) -> int:
    """Move codes no latent used since the last restart onto random encoder outputs."""
    dead = torch.nonzero(usage == 0).flatten()
    if len(dead) == 0:
        return 0
    pool = h.movedim(1, -1).reshape(-1, h.shape[1])
    pick = torch.randint(len(pool), (len(dead),), generator=gen)
    with torch.no_grad():
        model.codebook[dead] = pool[pick] + 0.01 * pool.std() * torch.randn(len(dead), pool.shape[1], generator=gen)
    return len(dead)


@torch.no_grad()
def reconstruction_error(model, x: torch.Tensor, batch: int = 64) -> tuple[float, float]:
    """(MSE, PSNR in dB) of images in [0, 1] through encode -> quantize -> decode, clamped to [0, 1]."""
    total, count = 0.0, 0
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        rec = ((model.decode(model.encode(xb)) + 1) / 2).clamp(0, 1)
        total += F.mse_loss(rec, xb, reduction="sum").item()
        count += xb.numel()
    mse = total / count
    return mse, 10 * math.log10(1.0 / mse)


def save(model, config: VQTrainConfig, out_dir: Path, stem: str, extra: dict) -> tuple[Path, Path]:
    """Write ``<stem>.yaml`` and ``<stem>.ckpt`` (fp16 weights, the taming key layout)."""
    import yaml  # noqa: PLC0415  (comes with omegaconf)

    out_dir.mkdir(parents=True, exist_ok=True)
    yaml_path, ckpt_path = out_dir / f"{stem}.yaml", out_dir / f"{stem}.ckpt"
    yaml_path.write_text(yaml.safe_dump(model_yaml(config), sort_keys=False))
    state = {k: v.detach().half() if v.is_floating_point() else v.detach() for k, v in model.state_dict().items()}
    training.save_named_checkpoint(ckpt_path, {"epoch": 0, "global_step": config.steps, "state_dict": state,
                                               "clipxai": {"train_config": asdict(config), **extra}})
    return yaml_path, ckpt_path


def train(config: VQTrainConfig, out_dir: Path, stem: str = BUNDLE_STEM, log=print) -> dict:
    """Train, save, reload the saved files through the release loader, and record the held-out error.

    The files in ``out_dir`` are replaced (``--bundle`` rebuilds the shipped ones); there is nothing to resume.
    """
    from clipxai.generators.vqgan.model import clear_cache, load_vqgan  # noqa: PLC0415

    training.prepare_folder(out_dir, checkpoint=None)  # a file in the way fails now, not after the training
    t0 = time.perf_counter()
    model = train_model(config, log=log)
    seconds = time.perf_counter() - t0
    yaml_path, ckpt_path = save(model, config, out_dir, stem, {})
    clear_cache()
    reloaded = load_vqgan(config=yaml_path, checkpoint=ckpt_path).module
    mse, psnr = reconstruction_error(reloaded, heldout_images(config))
    summary = {"heldout_mse": mse, "heldout_psnr": psnr, "heldout_n": config.heldout,
               "heldout_stream": [HELDOUT_STREAM, config.seed], "data": config.data,
               "train_seconds": round(seconds, 1), "threads": torch.get_num_threads(),
               "parameters": sum(p.numel() for p in model.parameters())}
    save(model, config, out_dir, stem, summary)  # the same weights, now with their measured error
    clear_cache()
    if out_dir.resolve() != BUNDLE_DIR:  # the bundle keeps only the two release files
        (out_dir / f"{stem}.json").write_text(json.dumps({"config": asdict(config), **summary}, indent=2) + "\n")
    log(f"held-out ({config.heldout} images): mse {mse:.5f}, psnr {psnr:.2f} dB; "
        f"{seconds:.0f}s on {torch.get_num_threads()} thread(s); wrote {yaml_path} and {ckpt_path}")
    return summary
