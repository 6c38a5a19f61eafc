"""``load_clip``: every ``--model`` form to one ``ClipModel``, or one clear sentence.

Tried in order: a bundled name (``toy``), a prefixed form (``random:``, ``openclip:``,
``hf:``), one of OpenAI's names (``ViT-B/32``), then a path: a weights file (``.pt``,
``.safetensors``, ... in OpenAI's or Hugging Face's layout) or a model folder (open_clip's
or ``save_pretrained``'s).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from clipxai.errors import ModelLoadError
from clipxai.models.base import ClipModel
from clipxai.models.openai import (
    ARCHITECTURES,
    DEFAULT_MODEL,
    architecture,
    available_models,
    build_from_state_dict,
    download_named,
    random_clip,
    wrap_openai,
)
from clipxai.models.placement import resolve_device
from clipxai.models.registry import NAMED, list_forms, register_bundled, register_form
from clipxai.models.weights import file_sha256, layout, read_state_dict

WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")


def load_clip(name_or_path: str = DEFAULT_MODEL, device: str | torch.device = "auto") -> ClipModel:
    """Load a CLIP by name, form or path; raises ``ModelLoadError`` with one clear sentence."""
    spec = str(name_or_path).strip()
    if not spec:
        raise ModelLoadError("The model name is empty.")
    dev = resolve_device(device)
    register_bundled()
    if spec in NAMED:
        sd, sha, source = NAMED[spec](spec)
        return wrap_openai(build_from_state_dict(sd, f"The bundled model '{spec}'"), name=spec,
                           device=dev, sha256=sha, source=source)
    for form in list_forms():
        if spec.startswith(form.prefix):
            return form.load(spec[len(form.prefix):], dev, spec)
    path = Path(spec).expanduser()
    looks_like_path = spec.startswith(("/", "./", "../", "~")) or path.suffix in WEIGHT_SUFFIXES
    if not path.exists() and not looks_like_path and spec in available_models():
        file = download_named(spec)
        return wrap_openai(build_from_state_dict(read_state_dict(file), str(file)), name=spec, device=dev,
                           sha256=file_sha256(file), source=str(file))
    if path.is_dir():
        return load_folder(path, dev, spec)
    if path.exists() or looks_like_path:
        return load_file(path, dev)
    known = sorted(NAMED) + available_models()
    raise ModelLoadError(
        f"'{spec}' is neither a known model nor an existing file; known models are {', '.join(known)} "
        f"(or a path to a weights file or model folder, openclip:..., hf:... or random:...; see `clipxai models`)."
    )


def load_file(path: Path, device: torch.device) -> ClipModel:
    """A weights file in OpenAI's layout (also open_clip's for ViTs) or Hugging Face's."""
    sd = read_state_dict(path)
    kind = layout(sd)
    if kind == "hf":
        from clipxai.models.hf import load_hf_state_dict  # noqa: PLC0415
        return load_hf_state_dict(sd, path, device)
    if kind == "hf-siglip":
        from clipxai.models.hf import is_hf_dir, load_hf_dir  # noqa: PLC0415
        if is_hf_dir(path.parent):
            return load_hf_dir(path.parent, device, path.name)
        raise ModelLoadError(f"{path} holds SigLIP weights, which need their config.json and tokenizer: "
                             f"pass hf:DIR with the whole save_pretrained folder.")
    if kind is None and path.suffix == ".safetensors":
        raise ModelLoadError(f"{path} holds neither OpenAI-format nor Hugging Face CLIP weights "
                             f"(no token_embedding.weight nor vision_model.* keys).")
    module = build_from_state_dict(sd, str(path))
    return wrap_openai(module, name=path.name, device=device, sha256=file_sha256(path), source=str(path.resolve()))


def load_folder(path: Path, device: torch.device, spec: str) -> ClipModel:
    """A model folder without a prefix: open_clip's layout or a save_pretrained one."""
    from clipxai.models.hf import is_hf_dir, load_hf_dir  # noqa: PLC0415
    from clipxai.models.openclip import is_openclip_dir, load_openclip_dir  # noqa: PLC0415
    if is_openclip_dir(path):
        return load_openclip_dir(path, device, spec)
    if is_hf_dir(path):
        return load_hf_dir(path, device, spec)
    raise ModelLoadError(f"The folder {path} holds neither open_clip_config.json nor config.json; "
                         f"pass a weights file or a model folder.")


def wrap_module(module: nn.Module, name: str = "custom", device: str | torch.device = "cpu",
                sha256: str | None = None, source: str = "in-memory", tokenizer=None) -> ClipModel:
    """Wrap an in-memory CLIP (tests, notebooks, freshly trained models) of any backend.

    ``clip.model.CLIP`` (OpenAI), open_clip's ``CLIP``/``CustomTextCLIP`` and transformers'
    ``CLIPModel``/``SiglipModel`` are told apart by their class; ``tokenizer`` is the
    library's own tokenizer object (OpenAI's BPE when not given).
    """
    library = type(module).__module__.split(".")[0]
    if library == "open_clip":
        from clipxai.models.openclip import wrap_openclip  # noqa: PLC0415
        return wrap_openclip(module, name, device, tokenizer=tokenizer, sha256=sha256, source=source)
    if library == "transformers":
        from clipxai.models.hf import wrap_hf  # noqa: PLC0415
        return wrap_hf(module, name, device, tokenizer=tokenizer, sha256=sha256, source=source)
    return wrap_openai(module, name=name, device=device, sha256=sha256, source=source)


def list_models() -> list[str]:
    """Every name ``load_clip`` accepts besides paths and the open_clip/HF forms."""
    register_bundled()
    return (sorted(NAMED) + [f"random:{a}" for a in ARCHITECTURES] + [f"random:hf:{a}" for a in ARCHITECTURES]
            + available_models())


# ---------------------------------------------------------------------------------------
# The prefixed forms

@register_form("random:openclip:", "random:openclip:ARCH",
               "any open_clip architecture (open_clip.list_models()) with random weights")
def _random_openclip(rest, device, spec):
    from clipxai.models.openclip import random_openclip  # noqa: PLC0415
    return random_openclip(rest, device, spec)


@register_form("random:hf:", "random:hf:ARCH",
               f"a transformers CLIPModel shaped like {', '.join(ARCHITECTURES)}, random weights")
def _random_hf(rest, device, spec):
    from clipxai.models.hf import random_hf  # noqa: PLC0415
    return random_hf(architecture(rest, spec), device, spec)


@register_form("random:", "random:ARCH", f"an OpenAI-format {', '.join(ARCHITECTURES)} with random weights")
def _random_openai(rest, device, spec):
    architecture(rest, spec)
    return wrap_openai(random_clip(rest), name=spec, device=device, sha256=f"random-{rest}-seed0",
                       source="random init")


@register_form("openclip:", "openclip:ARCH/TAG | openclip:DIR | openclip:hf-hub:ID",
               "an open_clip pretrained tag or hub repository from the local cache, or an open_clip local-dir folder")
def _openclip(rest, device, spec):
    from clipxai.models.openclip import load_openclip  # noqa: PLC0415
    return load_openclip(rest, device, spec)


@register_form("hf:", "hf:ID | hf:DIR",
               "a Hugging Face CLIPModel/SiglipModel from the local cache, or a save_pretrained folder")
def _hf(rest, device, spec):
    from clipxai.models.hf import load_hf  # noqa: PLC0415
    return load_hf(rest, device, spec)
