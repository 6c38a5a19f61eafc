"""clipxai: see what CLIP thinks a word looks like.

    import clipxai
    run = clipxai.ascend("❤️", model="toy", steps=200)
    run.embeddings.shape      # (n_snapshots, embed_dim)
"""

from importlib.metadata import PackageNotFoundError, version

from .errors import ClipxaiError
from .runs import Run, load_run

try:
    __version__ = version("clipxai")
except PackageNotFoundError:  # a plain checkout
    __version__ = "0.1.0"


def __getattr__(name):
    # The engine pulls in torch and clip; import it only when asked for.
    if name == "ascend":
        from .ascent import ascend
        return ascend
    if name in ("AscendConfig", "list_presets"):
        from . import config
        return getattr(config, name)
    if name in ("load_clip", "list_models"):
        from . import models
        return getattr(models, name)
    if name in ("Objective", "cosine", "spherical", "tv", "memory", "range_penalty", "list_terms", "register_term",
                "list_losses", "register_loss"):
        from . import objectives
        return getattr(objectives, name)
    raise AttributeError(f"module 'clipxai' has no attribute {name!r}")


__all__ = ["ClipxaiError", "Run", "load_run", "ascend", "AscendConfig", "load_clip", "list_models",
           "Objective", "cosine", "spherical", "tv", "memory", "range_penalty", "list_terms",
           "register_term", "__version__"]
