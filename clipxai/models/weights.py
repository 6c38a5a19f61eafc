"""Weight files: reading torch, TorchScript and safetensors files, hashing, and telling layouts apart.

A CLIP state dict comes in one of two layouts: OpenAI's (``visual.conv1.weight``,
``token_embedding.weight``, ... also what open_clip saves for OpenAI-shaped models) or
Hugging Face's (``vision_model.*``, ``text_model.*``). The layout is read from the keys.
"""

from __future__ import annotations

import hashlib
import io
import warnings
import zipfile
from pathlib import Path

import torch

from clipxai.errors import ModelLoadError

OPENAI_KEYS = ("token_embedding.weight", "positional_embedding", "text_projection")
# What OpenAI's TorchScript archives hold besides weights.
NON_WEIGHT_KEYS = ("input_resolution", "context_length", "vocab_size")


def state_dict_sha256(state_dict: dict) -> str:
    """A stable hash of a state dict's names and values (for models that have no file)."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        value = state_dict[key]
        h.update(key.encode())
        if torch.is_tensor(value):
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
        else:
            h.update(repr(value).encode())
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def layout(state_dict: dict) -> str | None:
    """``"openai"``, ``"hf"`` (or ``"hf-siglip"``), or None when the keys are neither."""
    keys = set(state_dict)
    if all(k in keys for k in OPENAI_KEYS) and any(k.startswith("visual.") for k in keys):
        return "openai"
    if any(k.startswith("vision_model.") for k in keys) and any(k.startswith("text_model.") for k in keys):
        return "hf-siglip" if "vision_model.head.probe" in keys else "hf"
    return None


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise ModelLoadError(f"The model file {path} does not exist.")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"The model file {path} is empty.")


def read_safetensors(path: Path) -> dict:
    """The tensors of a ``.safetensors`` file, on the CPU."""
    _check_file(path)
    try:
        from safetensors.torch import load_file  # noqa: PLC0415
    except ImportError as err:
        raise ModelLoadError(f"Reading {path} needs the safetensors package (pip install safetensors).") from err
    try:
        return load_file(str(path), device="cpu")
    except Exception as err:  # noqa: BLE001  (SafetensorError, OSError, ...)
        raise ModelLoadError(
            f"The model file {path} could not be read as safetensors; it may be truncated ({type(err).__name__})."
        ) from err


def read_state_dict(path: Path) -> dict:
    """The state dict in a weights file: safetensors, a TorchScript archive or a torch.save'd dict."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    _check_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return torch.jit.load(str(path), map_location="cpu").state_dict()
            except RuntimeError:
                pass
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, Exception) as err:  # noqa: B014
        raise ModelLoadError(
            f"The model file {path} could not be read; it may be truncated or not a torch file "
            f"({type(err).__name__})."
        ) from err
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise ModelLoadError(f"The model file {path} holds a {type(sd).__name__}, not CLIP weights.")
    if sd and all(str(k).startswith("module.") for k in sd):  # saved from DistributedDataParallel
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def load_state_dict_bytes(data: bytes, origin: str) -> dict:
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise ModelLoadError(f"{origin} could not be read ({type(err).__name__}).") from err
