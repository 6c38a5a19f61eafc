"""CLIP models of any library behind one interface, ``ClipModel``.

``load_clip(spec, device)`` accepts OpenAI's names (``ViT-B/32``, read from clip's cache),
the bundled toys (``toy``, ``toy-b``), weight files (``.pt``, ``.safetensors``, ... in OpenAI's
or Hugging Face's layout), ``openclip:ARCH/TAG`` and ``openclip:DIR``, ``hf:ID`` and
``hf:DIR``, and random weights (``random:ARCH``, ``random:openclip:ARCH``, ``random:hf:ARCH``).
Every path ends in a frozen ``ClipModel`` in eval mode with fp32 weights on every device
(``--precision`` autocasts in the loop, ``clipxai.ascent.compute``).
docs/models.md says where each form looks for its weights.

One module per backend: ``openai`` (clip-anytorch), ``openclip``, ``hf`` (transformers);
``weights`` reads files, ``convert`` turns OpenAI-format weights into the other layouts.
"""


from clipxai.util.lazy import lazy_attributes

# public name -> the module that defines it; imported on first use, so that the torch-free parts
# (offline, catalog) load without torch
_LAZY = {
    "OPENAI_MEAN": "clipxai.models.base",
    "OPENAI_STD": "clipxai.models.base",
    "ClipModel": "clipxai.models.base",
    "DEFAULT_HOOKS": "clipxai.models.hooks",
    "pool_activation": "clipxai.models.hooks",
    "list_models": "clipxai.models.load",
    "load_clip": "clipxai.models.load",
    "load_file": "clipxai.models.load",
    "wrap_module": "clipxai.models.load",
    "ARCHITECTURES": "clipxai.models.openai",
    "DEFAULT_MODEL": "clipxai.models.openai",
    "build_from_state_dict": "clipxai.models.openai",
    "clip_cache_dir": "clipxai.models.openai",
    "random_clip": "clipxai.models.openai",
    "resolve_device": "clipxai.models.placement",
    "list_forms": "clipxai.models.registry",
    "register_form": "clipxai.models.registry",
    "register_model": "clipxai.models.registry",
    "_import_clip": "clipxai.models.tokenizers",
    "file_sha256": "clipxai.models.weights",
    "load_state_dict_bytes": "clipxai.models.weights",
    "read_state_dict": "clipxai.models.weights",
    "state_dict_sha256": "clipxai.models.weights",
}

__all__ = ['ClipModel', 'load_clip', 'wrap_module', 'random_clip', 'list_models', 'list_forms', 'register_form',
           'register_model', 'DEFAULT_HOOKS', 'DEFAULT_MODEL', 'ARCHITECTURES', 'OPENAI_MEAN', 'OPENAI_STD',
           'resolve_device', 'file_sha256', 'state_dict_sha256', 'read_state_dict', 'load_state_dict_bytes',
           'build_from_state_dict', 'clip_cache_dir', 'pool_activation', 'load_file', '_import_clip']


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
