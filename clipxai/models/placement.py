"""Where a model runs and in which precision: the same rule for every backend."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ModelLoadError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ModelLoadError(f"'{device}' is not a device name (use auto, cpu, cuda or mps).") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("--device cuda was asked for, but no CUDA GPU is available here.")
    return dev


def place(module: nn.Module, device: torch.device) -> nn.Module:
    """The module on ``device``, frozen, with fp32 weights: lower precision is autocast in the loop
    (``--precision``, ``clipxai.compute``), where layer norms and the optimized tensors stay fp32."""
    return module.to(device).float().eval().requires_grad_(False)
