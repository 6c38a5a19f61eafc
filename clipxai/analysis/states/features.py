"""What the analysis looks at in a run: embeddings, one layer's activations, or pixels.

Arrays are read in chunks of rows, so a run with full-token activations or large images is
never loaded whole. Every row is checked for NaN/inf and every array for the recorded
length, so a broken run fails with one sentence instead of a misleading figure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from clipxai.errors import ClipxaiError, RunError

CHUNK = 256
PIXEL_SIZE = 16  # pixel features are images averaged down to 16x16


@dataclass
class Features:
    """One feature row per snapshot, and where it came from."""

    values: np.ndarray   # (N, F) float32
    source: str          # embeddings | activations:<hook> | pixels | embeddings (computed with <model>)


def natural_key(name: str) -> list:
    """Sort ``resblocks.10`` after ``resblocks.9``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def layer_names(run) -> list[str]:
    return sorted(run.activations, key=natural_key)


def resolve_layer(run, name: str) -> str:
    """The hook ``name`` stands for: an exact name, a unique dotted suffix, a legacy layer number, ``first`` or ``last``."""
    names = layer_names(run)
    if not names:
        raise ClipxaiError(f"{run.path} recorded no activations.")
    if name in names:
        return name
    if name in ("first", "last"):
        return names[0 if name == "first" else -1]
    hits = [n for n in names if n.endswith("." + name) or n == f"layer{name}"]  # "resblocks.7"; legacy "7"
    if len(hits) == 1:
        return hits[0]
    shown = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")
    raise ClipxaiError(f"The run has no layer '{name}'; its layers are {shown}.")


def checked_array(run, name: str) -> np.ndarray:
    """A recorded array of the run, after checking it has one row per snapshot."""
    arr = run.array(name)
    if len(arr) != run.n:
        raise RunError(f"{run.path}: '{name}' has {len(arr)} rows but the run records {run.n} snapshots.")
    return arr


def check_lengths(run) -> None:
    """Every array of the run has one row per recorded snapshot (a run cut short mid-write may not)."""
    for name in run.array_names():
        checked_array(run, name)


def check_steps(run) -> np.ndarray:
    """The steps of the recorded snapshots, checked to be finite and increasing."""
    if run.n == 0:
        raise RunError(f"{run.path} has no snapshots yet (0 recorded), so there is nothing to analyze.")
    steps = np.asarray(checked_array(run, "steps"), dtype=np.int64)
    if len(steps) > 1 and np.any(np.diff(steps) <= 0):
        raise RunError(f"{run.path}: the snapshot steps are not increasing, so the run's arrays are out of order.")
    return steps


def _rows_in_chunks(arr, fn, chunk: int = CHUNK) -> np.ndarray:
    parts = [fn(np.asarray(arr[i:i + chunk], dtype=np.float32)) for i in range(0, len(arr), chunk)]
    return np.concatenate(parts) if parts else np.empty((0, 0), dtype=np.float32)


def _check_finite(values: np.ndarray, what: str, run) -> np.ndarray:
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        first = np.flatnonzero(bad)[:5].tolist()
        raise RunError(f"{run.path}: {int(bad.sum())} snapshot(s) have NaN or infinite {what} "
                       f"(rows {', '.join(map(str, first))}{' ...' if bad.sum() > 5 else ''}).")
    return values


def pooled_activations(run, hook: str) -> np.ndarray:
    """(N, width): mean over tokens when the run kept every token, as recorded otherwise."""
    arr = checked_array(run, f"activations/{hook}")
    if arr.ndim == 2:
        return _rows_in_chunks(arr, lambda a: a)
    return _rows_in_chunks(arr, lambda a: a.reshape(len(a), -1, a.shape[-1]).mean(axis=1))


def pixel_features(run, size: int = PIXEL_SIZE) -> np.ndarray:
    """Images averaged down to ``size`` x ``size`` (area mean), flattened."""
    images = checked_array(run, "images")
    h, w = images.shape[-2:]

    def shrink(a):
        fh, fw = max(h // size, 1), max(w // size, 1)
        a = a[..., : (h // fh) * fh, : (w // fw) * fw]
        a = a.reshape(len(a), a.shape[1], h // fh, fh, w // fw, fw).mean(axis=(3, 5))
        return a.reshape(len(a), -1)

    return _rows_in_chunks(images, shrink)


def model_embeddings(run, model, chunk: int = 64) -> np.ndarray:
    """CLIP embeddings of the run's images under ``model`` (for runs that did not record them)."""
    import torch  # noqa: PLC0415

    images = checked_array(run, "images")
    normalize = bool(run.option("normalize", True)) if run.layout == "native" else True
    out = []
    with torch.no_grad():
        for i in range(0, len(images), chunk):
            x = torch.as_tensor(np.asarray(images[i:i + chunk], dtype=np.float32), device=model.device)
            out.append(model.embed_images(x, normalize=normalize).cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def run_features(run, source: str = "auto", model=None) -> Features:
    """Feature rows of a run: ``auto``, ``embeddings``, ``activations:<layer>`` or ``pixels``.

    ``auto`` uses the recorded embeddings; without them, embeddings computed with ``model``
    when one is given, else the deepest layer's activations, else pixels.
    """
    check_steps(run)
    names = run.array_names()
    if source == "auto":
        if "embeddings" in names:
            source = "embeddings"
        elif model is not None and "images" in names:
            source = "embeddings"
        elif run.activations:
            source = f"activations:{layer_names(run)[-1]}"
        elif "images" in names:
            source = "pixels"
        else:
            raise RunError(f"{run.path} has no embeddings, activations or images to analyze.")
    if source == "embeddings":
        if "embeddings" in names:
            values = _rows_in_chunks(checked_array(run, "embeddings"), lambda a: a.reshape(len(a), -1))
            return Features(_check_finite(values, "embeddings", run), "embeddings")
        if model is None:
            raise ClipxaiError(f"{run.path} has no recorded embeddings; pass --model to compute them from its "
                               f"images, or use --features activations:<layer> or pixels.")
        values = model_embeddings(run, model)
        return Features(_check_finite(values, "embeddings", run), f"embeddings computed with {model.name}")
    if source.startswith("activations"):
        hook = resolve_layer(run, source.partition(":")[2] or "last")
        return Features(_check_finite(pooled_activations(run, hook), f"activations of {hook}", run),
                        f"activations:{hook}")
    if source == "pixels":
        if "images" not in names:
            raise ClipxaiError(f"{run.path} has no images to take pixels from.")
        return Features(_check_finite(pixel_features(run), "pixels", run), "pixels")
    raise ClipxaiError(f"Unknown features '{source}'; use embeddings, activations:<layer> or pixels.")
