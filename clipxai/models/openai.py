"""OpenAI-format CLIPs through clip-anytorch: named models, weight files, random architectures.

A name from ``clip.available_models()`` is read from clip's cache (and downloaded there when
the network allows, with a bounded wait); a local file (TorchScript archive, plain state dict
or ``.safetensors`` in OpenAI's layout) is rebuilt exactly in fp32; ``random:<arch>`` gives a
randomly initialised real architecture for timing and plumbing.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
from pathlib import Path

import torch
from torch import nn

from clipxai.ascent.config import (  # noqa: E402,F401  (one definition, in the config; re-exported)
    DEFAULT_MODEL,
)
from clipxai.errors import ModelLoadError
from clipxai.models.base import ClipModel
from clipxai.models.hooks import DEFAULT_HOOKS
from clipxai.models.offline import clip_cache_dir, offline_hint
from clipxai.models.placement import place, resolve_device
from clipxai.models.tokenizers import ClipBPE, _import_clip
from clipxai.models.weights import NON_WEIGHT_KEYS, OPENAI_KEYS, state_dict_sha256


class OpenAIClip(ClipModel):
    """A ``clip.model.CLIP``; its transformers run sequence-first."""

    backend = "openai"
    library = ("clip", "clip-anytorch")
    trims_text = True

    @property
    def input_resolution(self) -> int:
        return int(self.module.visual.input_resolution)

    @property
    def context_length(self) -> int:
        return int(self.module.context_length)

    @property
    def embed_dim(self) -> int:
        return int(self.module.text_projection.shape[1])

    @property
    def default_hooks(self) -> str:
        if hasattr(self.module.visual, "transformer"):
            return DEFAULT_HOOKS
        return "visual.layer*"  # ModifiedResNet: its four stages

    def _encode_pixels(self, x):
        return self.module.encode_image(x)

    def _encode_tokens(self, tokens):
        return self.module.encode_text(tokens)

    def _sequence_first(self, name: str) -> bool:
        return name == "transformer" or name.startswith(("transformer.", "visual.transformer"))

    def token_embeddings(self) -> torch.Tensor:
        return self.module.token_embedding.weight

    def encode_token_embeddings(self, embeds, eot_positions):
        m = self.module
        n = embeds.shape[1]
        x = embeds.to(self.dtype) + m.positional_embedding[:n].to(self.dtype)
        x = m.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)  # its blocks cut the causal mask to n
        x = m.ln_final(x)
        return (x[torch.arange(x.shape[0], device=x.device), eot_positions] @ m.text_projection).float()


def wrap_openai(module: nn.Module, name: str, device, sha256: str | None = None,
                source: str = "in-memory") -> OpenAIClip:
    dev = resolve_device(device)
    module = place(module, dev)
    sha = sha256 or state_dict_sha256(module.state_dict())
    return OpenAIClip(module, name=name, sha256=sha, device=dev, tokenizer=ClipBPE(), source=source)


# ---------------------------------------------------------------------------------------
# State dicts

def build_from_state_dict(state_dict: dict, origin: str) -> nn.Module:
    """An fp32 ``clip.model.CLIP`` holding exactly these weights.

    clip's ``build_model`` rounds weights to fp16 on the way; we rebuild, go back to fp32
    and load the original tensors so a reload is exact.
    """
    clip = _import_clip()
    missing = [k for k in OPENAI_KEYS if k not in state_dict]
    if missing or not any(k.startswith("visual.") for k in state_dict):
        raise ModelLoadError(
            f"{origin} is not an OpenAI-format CLIP model (it has no "
            f"{missing[0] if missing else 'visual.*'} weights)."
        )
    try:
        model = clip.model.build_model(dict(state_dict)).float()
        model.load_state_dict({k: v for k, v in state_dict.items() if k not in NON_WEIGHT_KEYS})
    except (RuntimeError, KeyError, ValueError, IndexError) as err:
        first = str(err).strip().splitlines()[0][:200]
        raise ModelLoadError(f"{origin} holds CLIP weights whose shapes do not fit together ({first}).") from err
    return model


# ---------------------------------------------------------------------------------------
# Random real architectures (timing, plumbing)

ARCHITECTURES: dict[str, dict] = {
    "tiny": dict(embed_dim=64, image_resolution=32, vision_layers=2, vision_width=64,
                 vision_patch_size=8, context_length=16, vocab_size=49408,
                 transformer_width=64, transformer_heads=1, transformer_layers=2),
    "ViT-B/32": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768,
                     vision_patch_size=32, context_length=77, vocab_size=49408,
                     transformer_width=512, transformer_heads=8, transformer_layers=12),
    "ViT-B/16": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768,
                     vision_patch_size=16, context_length=77, vocab_size=49408,
                     transformer_width=512, transformer_heads=8, transformer_layers=12),
    "ViT-L/14": dict(embed_dim=768, image_resolution=224, vision_layers=24, vision_width=1024,
                     vision_patch_size=14, context_length=77, vocab_size=49408,
                     transformer_width=768, transformer_heads=12, transformer_layers=12),
}


def architecture(arch: str, spec: str | None = None) -> dict:
    """The shape of a named architecture, or one sentence listing the names."""
    if arch not in ARCHITECTURES:
        raise ModelLoadError(
            f"'{spec or 'random:' + arch}' names no architecture; choose one of {', '.join(ARCHITECTURES)}."
        )
    return ARCHITECTURES[arch]


def random_clip(arch: str = "tiny", seed: int = 0) -> nn.Module:
    """A randomly initialised OpenAI-format CLIP of a real (or the tiny test) architecture, in fp32."""
    clip = _import_clip()
    shape = architecture(arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return clip.model.CLIP(**shape).float()


# ---------------------------------------------------------------------------------------
# Named models

def available_models() -> list[str]:
    return list(_import_clip().available_models())


def named_model_file(name: str) -> Path:
    """Where clip keeps the named model's file (it may not be there)."""
    url = _import_clip().clip._MODELS[name]
    return clip_cache_dir() / os.path.basename(url)


def download_named(name: str) -> Path:
    """Path of a named model in clip's cache, downloading it if needed (bounded wait)."""
    clip = _import_clip()
    url = clip.clip._MODELS[name]
    root = clip_cache_dir()
    target = root / os.path.basename(url)
    if target.is_file():
        return target
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            return Path(clip.clip._download(url, str(root)))
    except Exception as err:  # noqa: BLE001  (URLError, timeouts, checksum errors)
        with contextlib.suppress(OSError):
            if target.is_file() and target.stat().st_size == 0:
                target.unlink()
        raise ModelLoadError(
            f"The CLIP model '{name}' is not in {root} and could not be downloaded "
            f"({type(err).__name__}); {offline_hint()}; or place {os.path.basename(url)} from {url} in {root}, "
            f"or pass --model with a local file."
        ) from err
    finally:
        socket.setdefaulttimeout(old_timeout)
