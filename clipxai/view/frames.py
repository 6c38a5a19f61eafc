"""What the run page draws, computed from a run's memory-mapped arrays on request.

A frame is one row of ``images`` (float16 [3,H,W], raw values) clipped to [0,1] and
encoded as PNG; only that row is read from disk, so a frame costs the same in a run of ten
snapshots or ten thousand. The 2-D map is a PCA of the unit CLIP embeddings: a picture for
finding your way, computed in numpy so it is there for live and unanalysed runs too.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

MAX_THUMB = 512
PCA_FIT_ROWS = 4000
MAX_FIT_VALUES = 4_000_000    # values of the rows a map is fitted on (32 MB as float64)
PROJECT_ROWS = 512             # rows projected at a time
MAX_WIDTH = 1 << 20           # wider embeddings are not mapped
MAX_SERIES_POINTS = 4000


def frame_png(images: np.ndarray | None, index: int, size: int | None = None) -> bytes | None:
    """Row ``index`` of ``images`` (negative: from the end) as PNG bytes, at most ``size`` px a side; None if absent."""
    n = 0 if images is None else len(images)
    if index < 0:
        index += n
    if not 0 <= index < n:
        return None
    try:
        row = np.asarray(images[index], dtype=np.float32)
    except (OSError, ValueError):
        return None
    if row.ndim == 2:
        row = row[None]
    if row.ndim != 3 or row.shape[0] not in (1, 3, 4):
        return None
    pixels = np.nan_to_num(row[:3], nan=0.0, posinf=1.0, neginf=0.0)
    pixels = (np.clip(pixels, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    image = Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0)) if pixels.shape[0] == 3 else pixels[0])
    if size is not None:
        size = max(8, min(int(size), MAX_THUMB))
        if max(image.size) > size:
            image.thumbnail((size, size), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _unit_rows(rows) -> np.ndarray:
    """Rows as float64 unit vectors (NaN as 0), flattened to one axis each."""
    emb = np.nan_to_num(np.asarray(rows, dtype=np.float64).reshape(len(rows), -1))
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return emb


def projection(embeddings: np.ndarray | None) -> dict:
    """2-D PCA coordinates of every row's unit embedding (empty lists when there are fewer than two).

    What it holds in memory is bounded whatever the run's shape: at most ``MAX_FIT_VALUES``
    values are fitted (fewer rows when the embeddings are wide, a row-by-row Gram matrix when
    they are wider than the rows fitted), the rest are projected as many rows at a time,
    and embeddings wider than ``MAX_WIDTH`` are not mapped at all (``error`` says so).
    """
    empty = {"x": [], "y": [], "method": "pca"}
    if embeddings is None or len(embeddings) < 2:
        return empty
    n, width = len(embeddings), int(np.prod(np.shape(embeddings)[1:], dtype=np.int64))
    if not 1 <= width <= MAX_WIDTH:
        return {**empty, "error": f"embeddings {width} wide are not mapped (at most {MAX_WIDTH})"}
    try:
        fit_rows = max(2, min(PCA_FIT_ROWS, MAX_FIT_VALUES // width))
        fit = _unit_rows(embeddings[:: max(1, n // fit_rows)])
        mean = fit.mean(axis=0)
        centred = fit - mean
        if width <= len(fit):
            _, vectors = np.linalg.eigh(centred.T @ centred)
            axes = vectors[:, ::-1][:, :2]
        else:   # the same two axes from the rows' Gram matrix, never a width x width one
            _, vectors = np.linalg.eigh(centred @ centred.T)
            axes = centred.T @ vectors[:, ::-1][:, :2]
            axes /= np.maximum(np.linalg.norm(axes, axis=0, keepdims=True), 1e-12)
        # a fixed sign per axis, so a growing live run does not flip its picture
        axes *= np.where(axes[np.abs(axes).argmax(axis=0), [0, 1]] < 0, -1.0, 1.0)
        chunk = max(1, min(PROJECT_ROWS, MAX_FIT_VALUES // width))
        xy = np.concatenate([(_unit_rows(embeddings[i:i + chunk]) - mean) @ axes for i in range(0, n, chunk)])
    except (OSError, ValueError, MemoryError):
        return empty
    return {"x": np.round(xy[:, 0], 5).tolist(), "y": np.round(xy[:, 1], 5).tolist(), "method": "pca"}


def series(metrics: list[dict]) -> dict:
    """Per-step similarity to each prompt (``sim/*``), or the objective when none is logged."""
    rows = [m for m in metrics if isinstance(m, dict) and isinstance(m.get("step"), (int, float))]
    keys = sorted({k for m in rows for k in m if k.startswith("sim/")})
    if not keys and any("objective" in m for m in rows):
        keys = ["objective"]

    def value(v):
        return round(float(v), 6) if isinstance(v, (int, float)) and np.isfinite(v) else None

    return {"steps": [int(m["step"]) for m in rows], "series": {k: [value(m.get(k)) for m in rows] for k in keys}}
