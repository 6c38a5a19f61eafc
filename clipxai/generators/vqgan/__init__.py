"""VQGAN latents for the ascent: taming-transformers first stages, loaded without Lightning.

Importing this package registers the ``vqgan`` parameterization; taming itself is imported
only when a model is loaded, so a missing extra is reported as one sentence then.
"""

from clipxai.generators.vqgan.files import VQGANConfig, read_config, read_state_dict
from clipxai.generators.vqgan.model import (
    BUNDLED,
    VQGAN,
    LoadedVQGAN,
    build_vqgan,
    clear_cache,
    load_vqgan,
    resolve_files,
)
from clipxai.generators.vqgan.param import vqgan as vqgan_param

__all__ = ["VQGAN", "VQGANConfig", "LoadedVQGAN", "BUNDLED", "load_vqgan", "build_vqgan", "read_config",
           "read_state_dict", "resolve_files", "clear_cache", "vqgan_param"]
