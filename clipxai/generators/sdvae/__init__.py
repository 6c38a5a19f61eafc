"""Diffusion-autoencoder latents for the ascent: the Stable Diffusion VAE family (``AutoencoderKL``, diffusers).

Importing ``clipxai.generators.sdvae.param`` registers the ``sdvae`` parameterization; diffusers
(the ``sdvae`` extra) is needed then, and its absence is one sentence naming the extra.
"""
