"""clipxai: see what CLIP thinks a word looks like.

    import clipxai
    [run] = clipxai.ascend("❤️", model="toy", steps=200)
    run.embeddings.shape          # (n_snapshots, embed_dim)
    clipxai.analyze(run).states   # the meanings it visited

Everything is imported on first use (torch and CLIP take seconds), so ``import clipxai`` and
``clipxai --help`` stay fast.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from .errors import ClipxaiError

try:
    __version__ = version("clipxai")
except PackageNotFoundError:  # a plain checkout
    __version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    "ascend": "clipxai.ascent", "analyze": "clipxai.api",
    "Run": "clipxai.runs", "load_run": "clipxai.runs",
    "AscendConfig": "clipxai.config", "list_presets": "clipxai.config",
    "load_clip": "clipxai.models", "list_models": "clipxai.models",
    "Callback": "clipxai.engine",
    "Objective": "clipxai.objectives", "cosine": "clipxai.objectives", "spherical": "clipxai.objectives",
    "tv": "clipxai.objectives", "memory": "clipxai.objectives", "range_penalty": "clipxai.objectives",
    "list_terms": "clipxai.objectives", "register_term": "clipxai.objectives",
    "list_losses": "clipxai.objectives", "register_loss": "clipxai.objectives",
    "neuron": "clipxai.feature_terms", "channel": "clipxai.feature_terms", "direction": "clipxai.feature_terms",
    "head": "clipxai.feature_terms",
}

__all__ = ["ClipxaiError", "__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'clipxai' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
