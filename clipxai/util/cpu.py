"""What the CPU is and which instructions it has: for the precision check and for every bench's header.

The features are PyTorch's own query (``torch.cpu.get_capabilities()``, from the cpuinfo
library, on any OS it supports); on an older PyTorch they are read from ``/proc/cpuinfo`` on
Linux, and elsewhere they cannot be told (``None``). Names follow PyTorch's: ``avx512_f``,
``avx512_bf16``, ``amx_bf16``, ``avx512_fp16``, ``amx_fp16`` on x86; ``bf16``, ``fp16_arith``
on ARM64.
"""

from __future__ import annotations

import functools
import os
import platform
import sys

# /proc/cpuinfo's spellings of the flags PyTorch names otherwise.
_PROC_NAMES = {"avx512f": "avx512_f", "avx512bw": "avx512_bw", "avx512vl": "avx512_vl", "avx512dq": "avx512_dq",
               "avx512_vnni": "avx512_vnni", "asimdhp": "fp16_arith", "sve": "sve"}

# The features a bench header names: the vector width and the low-precision instructions.
SHOWN = ("avx2", "avx512_f", "avx512_bf16", "amx_bf16", "avx512_fp16", "amx_fp16", "bf16", "fp16_arith")
_ARM_ONLY = ("bf16", "fp16_arith")


@functools.lru_cache(maxsize=1)
def _capabilities() -> dict | None:
    try:
        import torch  # noqa: PLC0415  (the ground floor imports torch only when asked)
        caps = torch.cpu.get_capabilities()
    except (ImportError, AttributeError, RuntimeError):
        return None
    return dict(caps) if caps else None


def _proc_flags() -> set[str] | None:
    """The CPU's flags from /proc/cpuinfo (Linux), in PyTorch's names; None where there is no such file."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return {_PROC_NAMES.get(flag, flag) for flag in value.split()}
    except OSError:
        return None
    return None


def cpu_features() -> dict[str, bool] | None:
    """Which instruction-set features this CPU has, by name; ``None`` where they cannot be told."""
    caps = _capabilities()
    if caps is not None:
        return {k: v for k, v in caps.items() if isinstance(v, bool)}
    flags = _proc_flags()
    if flags is None:
        return None
    return {name: name in flags for name in {*SHOWN, *flags}}


def cpu_name() -> str:
    """The CPU's model name as the OS reports it (``AMD EPYC``), or its architecture where none is given."""
    caps = _capabilities() or {}
    if caps.get("cpu_name"):
        return str(caps["cpu_name"]).strip()
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                        return value.strip()
        except OSError:
            pass
    return platform.processor() or platform.machine() or "an unknown CPU"


def describe_cpu() -> str:
    """One line naming the CPU and the features speed depends on: what every bench prints first."""
    features = cpu_features()
    arm = platform.machine().lower() in ("arm64", "aarch64")
    shown = [f for f in SHOWN if arm == (f in _ARM_ONLY)]
    if features is None:
        listed = "instruction features unknown on this OS"
    else:
        listed = ", ".join(f"{f} {'yes' if features.get(f) else 'no'}" for f in shown)
    return f"CPU: {cpu_name()} ({platform.machine()}, {os.cpu_count()} logical cores; {listed})"
