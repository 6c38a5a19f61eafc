"""How much memory a step will take, checked before anything is allocated.

A step holds the parameterization's tensors (with their gradient and two Adam moments),
the augmented views, and CLIP's saved activations for every view of one encoder pass.
The activations of one view are measured, not guessed: one forward pass of a single view
with a hook that adds up what autograd saves. A request that cannot fit is refused in
one sentence that says what would.
"""

from __future__ import annotations

import os

import torch

from .errors import ClipxaiError

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


def view_activation_bytes(model, normalize: bool = True) -> int:
    """Bytes autograd saves for one view's forward pass through ``model.encode_image``.

    The model's own weights, which backward reads but which exist anyway, are not counted.
    """
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in weights:
            seen[ptr] = max(seen.get(ptr, 0), t.untyped_storage().nbytes())
        return t

    r = model.input_resolution
    x = torch.rand(1, 3, r, r, device=model.device, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model.encode_image(x, normalize=normalize)
    return sum(seen.values())


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def check_step_memory(model, *, seeds: int, size: tuple[int, int], cutouts: int, cutout_batch: int,
                      normalize: bool = True) -> int:
    """Refuse (``ClipxaiError``) a step that needs more memory than the device has; returns the estimate."""
    height, width = size
    r = model.input_resolution
    views = seeds * max(cutouts, 1)
    per_pass = min(cutout_batch or views, views)
    image = seeds * 3 * height * width * 4
    parameter = 6 * image                       # tensor, grad, two Adam moments, the image, its grad
    views_bytes = 3 * views * 3 * r * r * 4     # the views, their gradient, the sampling grid
    activations = 0
    if per_pass > MEASURE_ABOVE:  # saved activations, and as much again for backward's temporaries
        activations = 2 * per_pass * view_activation_bytes(model, normalize)
    need = parameter + views_bytes + activations
    have = available_bytes(model.device)
    if need > have:
        where = f"{model.device.type}"
        hint = []
        if activations and per_pass > 8:
            fits = max(1, int((have - parameter - views_bytes) * 0.8 // max(activations // per_pass, 1)))
            if fits >= 1 and parameter + views_bytes < have:
                hint.append(f"--cutout-batch {min(fits, per_pass - 1)}")
        if parameter + views_bytes >= have:
            hint.append("fewer --cutouts or seeds, or a smaller --size")
        raise ClipxaiError(
            f"One step of {seeds} seed(s) x {max(cutouts, 1)} view(s) at {width}x{height} needs about "
            f"{_gb(need)} of memory on {where}, more than the {_gb(have)} available; "
            f"try {' or '.join(hint) or 'a smaller request'}."
        )
    return need
