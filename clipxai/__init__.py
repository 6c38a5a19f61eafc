"""clipxai: see what CLIP thinks a word looks like.

    import clipxai
    [run] = clipxai.ascend("❤️", model="toy", steps=200)
    run.embeddings.shape          # (n_snapshots, embed_dim)
    clipxai.analyze(run).states   # the meanings it visited

Everything is imported on first use (torch and CLIP take seconds), so ``import clipxai`` and
``clipxai --help`` stay fast.
"""

from importlib.metadata import PackageNotFoundError, version

from clipxai.errors import ClipxaiError
from clipxai.util.lazy import lazy_attributes

try:
    __version__ = version("clipxai")
except PackageNotFoundError:  # a plain checkout
    __version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    "ascend": "clipxai.ascent.run", "analyze": "clipxai.analysis.api", "explain": "clipxai.analysis.explain.api",
    "evaluate": "clipxai.analysis.trust.api",
    "Run": "clipxai.runs.reader", "load_run": "clipxai.runs.load",
    "AscendConfig": "clipxai.ascent.config", "list_presets": "clipxai.ascent.config",
    "load_clip": "clipxai.models", "list_models": "clipxai.models",
    "Callback": "clipxai.ascent.engine",
    "Objective": "clipxai.terms", "cosine": "clipxai.terms", "spherical": "clipxai.terms",
    "tv": "clipxai.terms", "memory": "clipxai.terms", "range_penalty": "clipxai.terms",
    "list_terms": "clipxai.terms", "register_term": "clipxai.terms",
    "list_losses": "clipxai.terms", "register_loss": "clipxai.terms",
    "neuron": "clipxai.terms", "channel": "clipxai.terms", "direction": "clipxai.terms",
    "head": "clipxai.terms",
}

__all__ = ["ClipxaiError", "__version__", *_LAZY]


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
