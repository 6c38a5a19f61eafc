"""Where a model runs and in which precision: the same rule for every backend."""

from __future__ import annotations

import torch
from torch import nn

from clipxai.errors import ModelLoadError


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; otherwise cpu, cuda, cuda:N (a GPU that is here)
    or mps (where PyTorch has it). Any other device is one sentence."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ModelLoadError(f"'{device}' is not a device name (use auto, cpu, cuda or mps).") from err
    if dev.type not in ("cpu", "cuda", "mps") or (dev.type != "cuda" and dev.index not in (None, 0)):
        raise ModelLoadError(f"--device {device} is not supported (use auto, cpu, cuda, cuda:N or mps).")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"--device {device} was asked for, but no CUDA GPU is available here.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise ModelLoadError(f"--device {device} names GPU {dev.index}, but this machine has {count} CUDA GPU(s) "
                             f"(cuda:0 to cuda:{count - 1}).")
    if dev.type == "mps" and not _mps_available():
        raise ModelLoadError(f"--device {device} was asked for, but PyTorch has no MPS (Apple GPU) support here.")
    return dev


def place(module: nn.Module, device: torch.device) -> nn.Module:
    """The module on ``device``, frozen, with fp32 weights: lower precision is autocast in the loop
    (``--precision``, ``clipxai.ascent.compute``), where layer norms and the optimized tensors stay fp32."""
    return module.to(device).float().eval().requires_grad_(False)
