"""The ``cvae`` parameterization: ascend in a trained CVAE's latent space instead of in pixels.

The optimized tensor is z, one row per seed, shape (K, zdim), drawn from the prior N(0, I)
by each seed's generator (or, with ``init_image``, from the posterior of that image). The
image is the decoder's output for (z, c), in [0, 1] at the CVAE's own resolution; the
engine's augmentation resizes it to CLIP's input. The condition c is the condition vector
of a sentence (``cvae_text``, else the ascent's prompt when the engine passes it), or the
mean training condition when there is none; with ``cvae_optimize_condition`` it is
optimized too, one row per seed. ``latents.npy`` records z, so analysis treats a CVAE run
like any other.

The CLIP that turns the sentence into c is the one named in the checkpoint; the CLIP the
engine ascends with may be another.
"""

from __future__ import annotations

import torch

from clipxai.errors import ClipxaiError
from clipxai.generators.cvae.checkpoint import LoadedCVAE, load_cvae
from clipxai.params.base import ParamContext, Parameterization, register_param


@register_param("cvae")
def cvae(ctx: ParamContext, *, cvae: str | None = None, cvae_text: str | None = None,
         cvae_optimize_condition: bool = False, cvae_z_scale: float = 1.0,
         init_image: str | None = None) -> Parameterization:
    """A trained CVAE's latent z (and optionally its condition), decoded to an image.

    The image is the decoder's, in [0, 1], at its own resolution (the run's size is not used).
    """
    batch, device, generators, prompt = ctx.batch, ctx.device, ctx.generators, ctx.prompt
    if not cvae:
        raise ClipxaiError("The cvae parameterization needs a trained CVAE: pass --cvae CHECKPOINT (or --cvae toy).")
    z_scale = float(cvae_z_scale)
    if not z_scale >= 0:
        raise ClipxaiError(f"cvae_z_scale must be 0 or more (got {cvae_z_scale}).")
    loaded = load_cvae(cvae, device=device)
    text = cvae_text or _main_text(prompt)
    if text:
        c0 = loaded.conditions([text]).to(device)
    else:
        c0 = loaded.payload["condition_mean"].float().view(1, -1).to(device)
    c0 = c0.expand(batch, -1).clone()
    z = _initial_latent(loaded, init_image, c0, generators, z_scale).to(device).requires_grad_(True)
    params = [z]
    if cvae_optimize_condition:
        c = c0.requires_grad_(True)
        params.append(c)
    else:
        c = c0

    def image_fn() -> torch.Tensor:
        return loaded.model.decode(z, c)

    info = {"kind": "cvae", **loaded.info(), "condition_text": text or None,
            "condition_init": "text" if text else "training mean",
            "optimize_condition": bool(cvae_optimize_condition), "z_scale": z_scale,
            "init_image": str(init_image) if init_image else None}
    return Parameterization(params, image_fn, latent_fn=lambda: z, info=info)


def _main_text(prompt: str | None) -> str | None:
    """The highest-weighted positive text of a prompt string ("a:1|b:-0.5" -> "a")."""
    if not prompt:
        return None
    from clipxai.prompts import parse_prompts  # noqa: PLC0415

    positive = [p for p in parse_prompts(prompt) if p.weight > 0]
    return max(positive, key=lambda p: p.weight).text if positive else None


@torch.no_grad()
def _initial_latent(loaded: LoadedCVAE, init_image: str | None, c0: torch.Tensor,
                    generators: list[torch.Generator], z_scale: float) -> torch.Tensor:
    """(K, zdim) on the CPU: prior draws, or posterior draws for ``init_image``, one per seed."""
    eps = torch.stack([torch.randn(loaded.zdim, generator=g) for g in generators])
    if not init_image:
        return eps * z_scale
    from clipxai.prompts import load_image  # noqa: PLC0415

    x = load_image(init_image, loaded.size).to(loaded.device)
    mu, logvar = loaded.model.encode(x.expand(len(generators), -1, -1, -1), c0.to(loaded.device))
    return (mu + z_scale * eps.to(mu.device) * torch.exp(0.5 * logvar)).cpu()
