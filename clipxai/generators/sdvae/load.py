"""Where an ``AutoencoderKL`` comes from: ``hf:ID``, a diffusers folder, a ``.safetensors`` file, ``random:<config>``,
or ``toy`` (the VAE trained on the toy world, shipped in ``clipxai/toy/weights/``).

Every source gives the same thing, a frozen VAE in eval mode and what run.json records about
it. ``random:<config>`` builds a randomly initialised VAE of a known shape (seeded, so two
builds are equal) for timing and memory measurements: speed does not depend on weight values.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from clipxai.errors import ClipxaiError
from clipxai.util.extras import require_extra

# random:<name> -> AutoencoderKL keyword arguments
RANDOM_CONFIGS = {
    # the Stable Diffusion 1.x/2.x VAE's architecture (8x downsampling, 4 latent channels)
    "sd": dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4, norm_num_groups=32,
               down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
               scaling_factor=0.18215),
    # a few thousand weights, 2x downsampling: tests and quick looks
    "tiny": dict(block_out_channels=(8, 16), layers_per_block=1, latent_channels=4, norm_num_groups=4,
                 down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                 scaling_factor=0.5),
}

# names of the VAEs shipped with clipxai
BUNDLED = ("toy",)


def load_vae(source: str, device: torch.device | str = "cpu"):
    """(the VAE, its description for run.json) from ``source``; one sentence when it cannot be loaded."""
    require_extra("sdvae", "--param sdvae")
    from diffusers import AutoencoderKL  # noqa: PLC0415

    source = str(source).strip()
    if source.startswith("random:"):
        name = source.split(":", 1)[1]
        if name not in RANDOM_CONFIGS:
            raise ClipxaiError(f"--vae {source}: there is no random VAE '{name}'; choose one of "
                               f"{', '.join('random:' + n for n in RANDOM_CONFIGS)}.")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            vae = AutoencoderKL(**RANDOM_CONFIGS[name])
        digest = None
    elif source in BUNDLED:
        from clipxai.toy.train_vae import BUNDLE_FILE, load_bundle  # noqa: PLC0415

        vae, _ = load_bundle(BUNDLE_FILE)  # a missing or corrupt file: one sentence (ModelLoadError)
        digest = _sha256(BUNDLE_FILE)
    elif source.startswith("hf:"):
        vae, digest = _from_pretrained(AutoencoderKL, source[3:], source), None
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            vae, digest = _from_pretrained(AutoencoderKL, str(path), source), None
        elif path.is_file() and path.suffix == ".safetensors":
            vae, digest = _from_file(AutoencoderKL, path), _sha256(path)
        else:
            raise ClipxaiError(f"--vae {source} is neither toy, hf:ID, a diffusers folder, a .safetensors file nor "
                               f"random:<config> ({', '.join(RANDOM_CONFIGS)}).")
    vae = vae.to(device).eval().requires_grad_(False)
    config = vae.config
    info = {"source": source, "sha256": digest, "latent_channels": int(config.latent_channels),
            "downsampling": downsampling(vae), "scaling_factor": float(config.scaling_factor),
            "shift_factor": float(config.shift_factor) if getattr(config, "shift_factor", None) is not None else None,
            "block_out_channels": list(config.block_out_channels)}
    return vae, info


def downsampling(vae) -> int:
    """How many image pixels one latent cell covers along a side (2 per down block after the first)."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


def _from_pretrained(kind, where: str, source: str):
    """A diffusers folder (``save_pretrained``) or a hub ID already in the local cache (no download here)."""
    try:
        return kind.from_pretrained(where, local_files_only=True)
    except (OSError, ValueError, EnvironmentError) as err:
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise ClipxaiError(f"--vae {source} cannot be loaded as a diffusers AutoencoderKL ({type(err).__name__}: "
                           f"{first}).") from err


def _from_file(kind, path: Path):
    """A ``.safetensors`` file: diffusers' own keys with the ``config.json`` beside it, or the original
    Stable Diffusion layout that diffusers converts (``from_single_file``)."""
    config = path.with_name("config.json")
    try:
        if config.is_file():
            from safetensors.torch import load_file  # noqa: PLC0415

            vae = kind.from_config(json.loads(config.read_text()))
            missing, unexpected = vae.load_state_dict(load_file(str(path)), strict=False)
            if missing or unexpected:
                raise ValueError(f"{len(missing)} weight(s) missing and {len(unexpected)} unexpected for its config.json")
            return vae
        return kind.from_single_file(str(path), local_files_only=True)
    except Exception as err:  # noqa: BLE001  (a foreign or damaged file: one sentence)
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise ClipxaiError(f"--vae {path} cannot be read as an AutoencoderKL ({type(err).__name__}: {first}).") from err


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
