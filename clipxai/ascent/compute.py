"""How the image encoder runs in the loop: precision, compilation, gradient checkpointing, determinism.

None of these changes what is optimized. ``Encoder`` is the callable the engine passes the
views to; it wraps ``model.encode_image`` with what the ``compute`` section of the config
asks for, without changing the model object itself (the same ``ClipModel`` may serve other
runs). The parameters, the objective and the optimizer state always stay fp32.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from typing import Iterator

import torch
from torch.utils.checkpoint import checkpoint

from clipxai.errors import ClipxaiError
from clipxai.util import cpu

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

# The instructions that compute each low precision at speed on a CPU (PyTorch's names, clipxai.util.cpu):
# x86's AVX-512 and AMX extensions, ARM64's bf16 and half-precision arithmetic.
FAST_ON_CPU = {"bf16": ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16"),
               "fp16": ("avx512_fp16", "amx_fp16", "fp16_arith")}
# What a step costs without them, against fp32: bench/bench_precision.py --speed on an AMD EPYC with
# AVX2 only, a ViT-B/32 shape (random weights), 2 cutouts, 1 thread: 32.4x (bf16) and 31.1x (fp16) in
# CPU time, 25-62x in wall time under load (docs/performance.md).
SLOW_STEP_RATIO = {"bf16": 30, "fp16": 30}


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto``: fp32 on CPU and MPS; bf16 on CUDA GPUs that have it (fp16 otherwise).

    On CUDA, bf16 autocast runs on the same tensor cores as fp16 at the same speed, and keeps
    fp32's exponent range, so ViT-L's large activations cannot overflow as they can in fp16.
    """
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if precision not in PRECISIONS:
        raise ClipxaiError(f"--precision must be one of {', '.join(PRECISIONS)} (got {precision}).")
    if precision == "fp16" and device.type not in ("cuda", "cpu"):
        raise ClipxaiError(f"--precision fp16 needs a CUDA GPU or a CPU; on {device.type} use bf16 (or fp32).")
    return precision


def fast_on_cpu(precision: str) -> bool | None:
    """Whether this CPU has instructions for ``precision`` (bf16, fp16); ``None`` where that cannot be told."""
    features = cpu.cpu_features()
    if features is None:
        return None
    return any(features.get(name) for name in FAST_ON_CPU[precision])


def check_precision(precision: str, device: torch.device, force: bool = False) -> None:
    """Refuse bf16 or fp16 on a CPU without instructions for it, where PyTorch emulates them many times
    slower than fp32, unless ``force``; where the CPU's features cannot be read, warn instead.
    CUDA and MPS devices are not concerned."""
    if device.type != "cpu" or precision not in FAST_ON_CPU or force:
        return
    fast = fast_on_cpu(precision)
    if fast:
        return
    cost = (f"PyTorch emulates {precision}, and a step takes about {SLOW_STEP_RATIO[precision]}x as long as "
            f"in fp32 (measured on a ViT-B/32 shape)")
    if fast is None:
        warnings.warn(f"clipxai cannot tell on this OS whether the CPU has {precision} instructions; without them "
                      f"{cost}.", stacklevel=2)
        return
    raise ClipxaiError(f"--precision {precision} is refused on this CPU ({cpu.cpu_name()}): it has no {precision} "
                       f"instructions ({' or '.join(FAST_ON_CPU[precision][:2])}), so {cost}; leave --precision "
                       f"out for fp32, or pass --force-precision to run it anyway.")


@contextlib.contextmanager
def checkpointed_blocks(model) -> Iterator[None]:
    """Within the block, the image tower's residual blocks recompute their activations in backward.

    Each block's ``forward`` is wrapped in ``torch.utils.checkpoint`` for the duration only, so
    hooks on the blocks still fire once per forward and the model is left as it was.
    """
    modules = dict(model.module.named_modules())
    blocks = [modules[name] for name in model.hook_points(model.default_hooks)]
    if not blocks:
        raise ClipxaiError(f"--checkpoint-activations found no image-tower blocks in {model.name}.")
    originals = []
    for block in blocks:
        original = block.forward
        originals.append((block, original))
        block.forward = lambda *a, _f=original, **k: checkpoint(_f, *a, use_reentrant=False, **k)
    try:
        yield
    finally:
        for block, original in originals:
            del block.forward          # back to the class's own forward
            if block.forward != original:
                block.forward = original


class Encoder:
    """``views -> features`` for the loop: ``model.encode_image`` under the chosen compute settings."""

    def __init__(self, model, normalize: bool, precision: str = "fp32", compile: bool = False,
                 checkpoint_activations: bool = False):
        self.model, self.normalize = model, normalize
        self.precision = resolve_precision(precision, model.device)
        self.checkpoint_activations = checkpoint_activations
        self.compiled = compile
        self.compile_seconds: float | None = None
        self._fn = torch.compile(self._encode, dynamic=False) if compile else self._encode

    def _encode(self, views: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(views, normalize=self.normalize)

    def __call__(self, views: torch.Tensor) -> torch.Tensor:
        dtype = _DTYPES.get(self.precision)
        amp = torch.autocast(self.model.device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        ckpt = checkpointed_blocks(self.model) if self.checkpoint_activations else contextlib.nullcontext()
        start = time.perf_counter() if self.compiled and self.compile_seconds is None else None
        with amp, ckpt:
            out = self._fn(views)
        if start is not None:  # the first call of a compiled encoder compiles it
            self.compile_seconds = time.perf_counter() - start
        return out.float()

    def describe(self) -> dict:
        return {"precision": self.precision, "compile": self.compiled,
                "compile_seconds": None if self.compile_seconds is None else round(self.compile_seconds, 1),
                "checkpoint_activations": self.checkpoint_activations}


def set_deterministic(on: bool) -> None:
    """Deterministic kernels where PyTorch has them (and an error where it has none), cuDNN without
    autotuning, and cuBLAS's fixed workspace: the same seed then gives the same run on one GPU."""
    if not on:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # warn_only: a few kernels have no deterministic CUDA version (grid_sample's backward, which
    # cutouts use); they warn instead of failing, and docs/performance.md says what that leaves.
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
