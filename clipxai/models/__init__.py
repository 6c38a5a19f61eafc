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

from clipxai.models.base import OPENAI_MEAN, OPENAI_STD, ClipModel
from clipxai.models.hooks import DEFAULT_HOOKS, pool_activation
from clipxai.models.load import list_models, load_clip, load_file, wrap_module
from clipxai.models.openai import (
    ARCHITECTURES,
    DEFAULT_MODEL,
    build_from_state_dict,
    clip_cache_dir,
    random_clip,
)
from clipxai.models.placement import resolve_device
from clipxai.models.registry import list_forms, register_form, register_model
from clipxai.models.tokenizers import _import_clip
from clipxai.models.weights import file_sha256, load_state_dict_bytes, read_state_dict, state_dict_sha256

__all__ = ["ClipModel", "load_clip", "wrap_module", "random_clip", "list_models", "list_forms", "register_form",
           "register_model", "DEFAULT_HOOKS", "DEFAULT_MODEL", "ARCHITECTURES", "OPENAI_MEAN", "OPENAI_STD",
           "resolve_device", "file_sha256", "state_dict_sha256", "read_state_dict", "load_state_dict_bytes",
           "build_from_state_dict", "clip_cache_dir", "pool_activation", "load_file", "_import_clip"]
