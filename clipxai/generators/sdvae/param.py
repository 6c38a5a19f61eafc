"""The ``sdvae`` parameterization: ascend in the latent space of a diffusion autoencoder (``AutoencoderKL``).

The optimized tensor is the VAE's scaled latent (what diffusion models work in: the encoder's
mean, minus the shift factor, times the scaling factor), one row per seed, of shape
(K, latent channels, H/f, W/f) for a VAE downsampling by f. It starts as N(0, sigma^2) noise
from each seed's generator, or as the encoding of ``init_image``. The image is the decoder's
output mapped from [-1, 1] to [0, 1], clamped with a straight-through gradient. With
``checkpoint_decoder`` each layer of the decoder is recomputed in backward: less memory, more
time. ``latents.npy`` records the latent.
"""

from __future__ import annotations

import torch

from clipxai.errors import ClipxaiError
from clipxai.generators.sdvae.load import load_vae
from clipxai.params.base import ParamContext, Parameterization, clamp_st, register_param
from clipxai.params.pixels import load_init_image


@register_param("sdvae")
def sdvae(ctx: ParamContext, *, vae: str | None = None, sigma: float = 1.0, init_image: str | None = None,
          checkpoint_decoder: bool = False) -> Parameterization:
    """An AutoencoderKL's scaled latent, decoded to the image (``--vae toy | hf:ID | DIR | FILE.safetensors | random:sd``)."""
    if not vae:
        raise ClipxaiError("The sdvae parameterization needs a VAE: pass --vae hf:ID, a diffusers folder, "
                           "a .safetensors file or random:sd.")
    if not sigma >= 0:
        raise ClipxaiError(f"--sigma must not be negative (got {sigma}).")
    model, info = load_vae(vae, ctx.device)
    f, h, w = info["downsampling"], ctx.height, ctx.width
    if h % f or w % f:
        raise ClipxaiError(f"The VAE {vae} turns {f}x{f} pixels into one latent cell, so the image size must be a "
                           f"multiple of {f}; --size {w} {h} is not (try --size {max(f, w // f * f)} {max(f, h // f * f)}).")
    if checkpoint_decoder:
        checkpoint_layers(model.decoder)
    scale, shift = info["scaling_factor"], info["shift_factor"] or 0.0
    if init_image:
        with torch.no_grad():
            start = load_init_image(init_image, (h, w)).to(ctx.device)
            z0 = (model.encode(start * 2 - 1).latent_dist.mean - shift) * scale
        z = z0.expand(ctx.batch, -1, -1, -1).clone()
    else:
        z = ctx.randn(info["latent_channels"], h // f, w // f) * sigma
    z.requires_grad_(True)

    def image_fn() -> torch.Tensor:
        decoded = model.decode(z / scale + shift).sample
        return clamp_st((decoded + 1) / 2)

    info = {"kind": "sdvae", **info, "vae": str(vae), "sigma": sigma, "checkpoint_decoder": bool(checkpoint_decoder),
            "init_image": str(init_image) if init_image else None}
    return Parameterization([z], image_fn, info=info)


def checkpoint_layers(decoder: torch.nn.Module) -> None:
    """Recompute each residual, attention and upsampling layer of the decoder in backward.

    Finer than diffusers' own gradient checkpointing (one whole up block at a time, whose three
    full-resolution residual layers then live at once): only one layer's activations are held
    at a time, which is what makes a 512x512 decode fit in well under the memory it takes plain.
    """
    from torch.utils.checkpoint import checkpoint  # noqa: PLC0415

    layers = [m for block in [decoder.mid_block, *decoder.up_blocks]
              for group in ("resnets", "attentions", "upsamplers") for m in (getattr(block, group, None) or [])
              if m is not None]
    for layer in layers:
        forward = layer.forward

        def recomputed(*args, _forward=forward, **kwargs):
            if torch.is_grad_enabled():
                return checkpoint(_forward, *args, use_reentrant=False, **kwargs)
            return _forward(*args, **kwargs)
        layer.forward = recomputed
