"""The ``vqgan`` parameterization: CLIP+VQGAN's latent optimization as one more factory.

The optimized tensor is a continuous latent z, one row per seed, of shape
(K, embed_dim, H/f, W/f). Each forward pass keeps z inside the codebook's bounding box,
optionally adds noise, snaps every position to its nearest codebook vector with a
straight-through gradient, decodes, and maps the result to [0, 1] with a straight-through
clamp. ``latents.npy`` records z; ``images.npy`` records the decoded images, so the
analysis commands treat a VQGAN run like a pixel run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from clipxai.errors import ClipxaiError
from clipxai.generators.vqgan.model import VQGAN, load_vqgan
from clipxai.params.base import ParamContext, Parameterization, clamp_st, register_param

INITS = ("codes", "noise", "image")


@register_param("vqgan")
def vqgan(ctx: ParamContext, *, vqgan: str | None = None, vqgan_config: str | None = None,
          vqgan_checkpoint: str | None = None, init: str | None = None, init_image: str | None = None,
          noise_factor: float = 0.0, quantize: bool = True, z_clamp: bool = True) -> Parameterization:
    """VQGAN latents (taming-transformers), snapped to the codebook and decoded, as in CLIP+VQGAN."""
    batch, device, generators = ctx.batch, ctx.device, ctx.generators
    init = init or ("image" if init_image else "codes")
    if init not in INITS:
        raise ClipxaiError(f"The vqgan init '{init}' is not one of {', '.join(INITS)}.")
    if (init == "image") != bool(init_image):
        raise ClipxaiError("The vqgan init 'image' and --init-image go together: give both or neither.")
    if init_image and not Path(init_image).expanduser().is_file():
        raise ClipxaiError(f"The init image {init_image} does not exist.")
    noise_factor = float(noise_factor or 0.0)
    if not noise_factor >= 0:
        raise ClipxaiError(f"--noise-factor must be 0 or more (got {noise_factor}).")

    loaded = load_vqgan(vqgan, vqgan_config, vqgan_checkpoint, device=device)
    model = loaded.module
    h, w = ctx.shape
    f = model.factor
    if h % f or w % f:
        raise ClipxaiError(
            f"The image size {w}x{h} is not a multiple of the VQGAN's downsampling factor {f}; "
            f"use --size {max(f, w // f * f)} {max(f, h // f * f)} or another multiple of {f}."
        )
    codebook = model.codebook
    z = _initial_latent(model, init, init_image, batch, (h // f, w // f), generators).to(device).requires_grad_(True)
    z_min, z_max = codebook.min(0).values.view(1, -1, 1, 1), codebook.max(0).values.view(1, -1, 1, 1)
    noise = _LatentNoise(generators, float(codebook.std())) if noise_factor else None

    def image_fn() -> torch.Tensor:
        if z_clamp:
            # Keep z where codes live (a projection after each optimizer step, as the notebooks do).
            with torch.no_grad():
                z.copy_(torch.maximum(torch.minimum(z, z_max), z_min))
        latent = z + noise_factor * noise(z) if noise is not None else z
        decoded = model.decode(model.snap(latent) if quantize else latent)
        return clamp_st((decoded + 1) / 2)

    info = {"kind": "vqgan", **loaded.info, "latent_shape": list(z.shape[1:]), "init": init,
            "init_image": str(init_image) if init_image else None, "noise_factor": noise_factor,
            "quantize": bool(quantize), "z_clamp": bool(z_clamp)}
    return Parameterization([z], image_fn, latent_fn=lambda: z, info=info)


def _initial_latent(model: VQGAN, init: str, init_image: str | None, batch: int, hw: tuple[int, int],
                    generators: list[torch.Generator]) -> torch.Tensor:
    """(K, embed_dim, h, w) on the CPU: random codes, codebook-shaped noise, or an encoded image."""
    codebook = model.codebook.detach().cpu()
    if init == "image":
        from clipxai.prompts import load_image  # noqa: PLC0415

        image = load_image(Path(init_image).expanduser(), (hw[0] * model.factor, hw[1] * model.factor))
        z = model.encode(image.to(model.codebook.device)).cpu()
        return z.expand(batch, -1, -1, -1).clone()
    rows = []
    for g in generators:
        if init == "codes":
            codes = torch.randint(model.n_embed, hw, generator=g)
            rows.append(codebook[codes].movedim(-1, 0))
        else:
            mean, std = codebook.mean(0).view(-1, 1, 1), codebook.std(0).view(-1, 1, 1)
            rows.append(mean + std * torch.randn((codebook.shape[1], *hw), generator=g))
    return torch.stack(rows)


class _LatentNoise:
    """Noise of the codebook's scale, a pure function of (seed, z).

    Each row's noise comes from a generator seeded by that seed's key and the bytes of its
    current z: every optimizer step (which changes z) gets fresh noise, while calling
    ``image_fn`` again on the same z (snapshots, a resumed run) reproduces the same image.
    """

    def __init__(self, generators: list[torch.Generator], scale: float):
        self.keys = [int(torch.randint(2**62, (1,), generator=g)).to_bytes(8, "little") for g in generators]
        self.scale = scale

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        host = z.detach().to("cpu", torch.float32).contiguous()
        rows = []
        for key, row in zip(self.keys, host):
            digest = hashlib.blake2b(row.numpy().tobytes(), digest_size=8, key=key).digest()
            g = torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)
            rows.append(torch.randn(row.shape, generator=g))
        return (torch.stack(rows) * self.scale).to(z.device, z.dtype)
