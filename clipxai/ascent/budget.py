"""How much memory a step will take, checked before anything is allocated.

A step holds the parameterization's tensors (with their gradient and two Adam moments),
the augmented views, and CLIP's saved activations for every view of one encoder pass.
The activations of one view are measured, not guessed: one forward pass of a single view
with a hook that adds up what autograd saves. With ``--checkpoint-activations`` only each
block's input, what the layers outside the blocks save and one block's own activations
(recomputed in backward one block at a time) are held; under bf16 or fp16 autocast the
activations take half as much. The models of an ensemble are all counted. A request that
cannot fit is refused in one sentence that says what would.
"""

from __future__ import annotations

import os

import torch

from clipxai.ascent.compute import resolve_precision
from clipxai.errors import ClipxaiError

# Above this many views in one encoder pass the activations are measured (a small forward);
# below it a step fits any machine this runs on and the measurement is skipped.
MEASURE_ABOVE = 32


def available_bytes(device: torch.device) -> int:
    """Free memory on ``device``: CUDA's free memory, else the system's MemAvailable."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    pages = os.sysconf("SC_AVPHYS_PAGES") if hasattr(os, "sysconf") else 0
    return int(pages * os.sysconf("SC_PAGE_SIZE")) if pages else 1 << 62


def view_activation_bytes(model, normalize: bool = True, checkpointed: bool = False) -> int:
    """Bytes autograd saves for one view's forward pass through ``model.encode_image``.

    The model's own weights, which backward reads but which exist anyway, are not counted.
    ``checkpointed``: what ``--checkpoint-activations`` holds instead, each image-tower
    block's input, what the layers outside the blocks save, and the largest block's own.
    """
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}
    owner: dict[int, int | None] = {}     # storage -> the block that saved it (None: outside the blocks)
    inputs: set[int] = set()
    current: list[int | None] = [None]

    def pack(t: torch.Tensor):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in weights:
            seen[ptr] = max(seen.get(ptr, 0), t.untyped_storage().nbytes())
            owner.setdefault(ptr, current[0])
        return t

    def enter(i: int):
        def hook(_module, args):
            current[0] = i
            if args and isinstance(args[0], torch.Tensor):
                inputs.add(args[0].untyped_storage().data_ptr())
                seen.setdefault(args[0].untyped_storage().data_ptr(), args[0].untyped_storage().nbytes())
        return hook

    def leave(_module, _args, _out):
        current[0] = None

    modules = dict(model.module.named_modules())
    blocks = [modules[name] for name in model.hook_points(model.default_hooks)] if checkpointed else []
    handles = [h for i, b in enumerate(blocks)
               for h in (b.register_forward_pre_hook(enter(i)), b.register_forward_hook(leave))]
    r = model.input_resolution
    x = torch.rand(1, 3, r, r, device=model.device, requires_grad=True)
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model.encode_image(x, normalize=normalize)
    finally:
        for h in handles:
            h.remove()
    if not blocks:
        return sum(seen.values())
    held = sum(seen[p] for p in inputs | {p for p, b in owner.items() if b is None})
    own = [0] * len(blocks)
    for p, b in owner.items():
        if b is not None and p not in inputs:
            own[b] += seen[p]
    return held + max(own)


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def check_step_memory(models, *, seeds: int, shape: tuple[int, int], cutouts: int, cutout_batch: int,
                      normalize: bool = True, precision: str = "fp32", checkpoint_activations: bool = False) -> int:
    """Refuse (``ClipxaiError``) a step that needs more memory than the device has; returns the estimate.

    ``models``: one model or an ensemble's models (on one device), whose needs add up: each
    model's views are held together, and so are their graphs when the views pass at once
    (chunked, backward runs one model's chunk at a time).
    """
    models = list(models) if isinstance(models, (list, tuple)) else [models]
    device = models[0].device
    height, width = shape
    views = seeds * max(cutouts, 1)
    per_pass = min(cutout_batch or views, views)
    image = seeds * 3 * height * width * 4
    parameter = 6 * image                       # tensor, grad, two Adam moments, the image, its grad
    views_bytes = sum(3 * views * 3 * m.input_resolution ** 2 * 4 for m in models)  # views, gradient, grid
    half = per_pass > MEASURE_ABOVE and resolve_precision(precision, device) in ("bf16", "fp16")

    def activations(checkpointed: bool) -> tuple[int, int]:
        """Saved activations of one pass, and as much again for backward's temporaries; and the
        largest model's per view (chunked, backward runs one model's chunk at a time)."""
        if per_pass <= MEASURE_ABOVE:
            return 0, 0
        per_view = [2 * view_activation_bytes(m, normalize, checkpointed) // (2 if half else 1) for m in models]
        return per_pass * (sum(per_view) if per_pass == views else max(per_view)), max(per_view)

    held, largest = activations(checkpoint_activations)
    need = parameter + views_bytes + held
    have = available_bytes(device)
    if need > have:
        where = f"{device.type}"
        hint = []
        if held and per_pass > 8:
            fits = max(1, int((have - parameter - views_bytes) * 0.8 // max(largest, 1)))
            if fits >= 1 and parameter + views_bytes < have:
                hint.append(f"--cutout-batch {min(fits, per_pass - 1)}")
        if held and not checkpoint_activations and parameter + views_bytes + activations(True)[0] <= have:
            hint.append("--checkpoint-activations")
        if parameter + views_bytes >= have:
            hint.append("fewer --cutouts or seeds, or a smaller --size")
        raise ClipxaiError(
            f"One step of {seeds} seed(s) x {max(cutouts, 1)} view(s) at {width}x{height} needs about "
            f"{_gb(need)} of memory on {where}, more than the {_gb(have)} available; "
            f"try {' or '.join(hint) or 'a smaller request'}."
        )
    return need
