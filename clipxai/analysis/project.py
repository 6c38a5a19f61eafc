"""2-D pictures of the trajectory: PCA, UMAP or t-SNE, drawn as a path coloured by step.

These coordinates are for looking only. UMAP and t-SNE bend distances to make clusters
visible, so no metric is ever computed in them (the metrics use the PCA space of
``states.py``). UMAP is drawn only when asked for (``--projection umap``) and imported only
then, with numba's settings made safe first (``_numba_env``). Its neighbour graph is
computed exactly with scikit-learn and handed over: on the low-dimensional PCA input that
is faster than UMAP's own approximate search, whose compilation alone takes over a minute
in a fresh process.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ClipxaiError
from ..interrupt import stop_on_interrupt

METHODS = ("pca", "umap", "tsne")


@dataclass
class Projection:
    """2-D coordinates of every snapshot under one method."""

    coords: np.ndarray   # (N, 2)
    method: str
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"method": self.method, "points": int(len(self.coords)), **self.params}

    def plot(self, ax, steps: np.ndarray, states: np.ndarray | None = None, thumbnails: dict | None = None,
             names: dict | None = None, colors=None) -> None:
        """Path coloured by step, state centroids (named when ``names`` is given), a few thumbnails.

        ``thumbnails`` maps a snapshot index to an (H, W, 3) uint8 image placed at that point.
        """
        from matplotlib.collections import LineCollection  # noqa: PLC0415
        from matplotlib.offsetbox import AnnotationBbox, OffsetImage  # noqa: PLC0415

        from .style import state_colors  # noqa: PLC0415

        xy = self.coords
        steps = np.asarray(steps, dtype=np.float64)
        segs = np.stack([xy[:-1], xy[1:]], axis=1)
        lc = LineCollection(segs, cmap="viridis", linewidths=0.8, alpha=0.8)
        lc.set_array(steps[:-1])
        ax.add_collection(lc)
        ax.scatter(xy[:, 0], xy[:, 1], c=steps, cmap="viridis", s=6, zorder=2)
        ax.scatter(*xy[0], marker="o", s=60, facecolors="none", edgecolors="black", zorder=4, label="start")
        ax.scatter(*xy[-1], marker="s", s=60, facecolors="none", edgecolors="black", zorder=4, label="end")
        if states is not None:
            k = int(states.max()) + 1
            colors = colors or state_colors(k)
            for s in range(k):
                c = xy[states == s].mean(axis=0)
                ax.scatter(*c, marker="X", s=140, color=colors[s], edgecolors="black", zorder=5)
                text = f"{s}" + (f": {names[s]}" if names and s in names else "")
                ax.annotate(text, c, xytext=(6, 6), textcoords="offset points", fontsize=8, weight="bold")
        for idx, img in (thumbnails or {}).items():
            zoom = 36.0 / max(img.shape[:2])
            box = AnnotationBbox(OffsetImage(img, zoom=zoom), xy[idx], frameon=True, pad=0.1, zorder=6,
                                 xybox=(22, -22), boxcoords="offset points")
            ax.add_artist(box)
        ax.autoscale_view()
        ax.figure.colorbar(lc, ax=ax, label="step")
        note = "" if self.method == "pca" else " (picture only: metrics use PCA space)"
        ax.set_title(f"trajectory, {self.method.upper()}{note}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(loc="best", fontsize=7)


def _numba_env() -> None:
    """Settings numba reads when umap first imports it (a user's own settings win).

    numba needs a writable cache folder; the compiled code is kept beside clipxai's other caches
    (``$CLIPXAI_CACHE/numba`` or ``~/.cache/clipxai/numba``), where it outlives a reboot, so only
    the first UMAP after an install pays the compile. Its default OpenMP threading layer keeps
    worker threads spinning; next to torch's own OpenMP runtime that made everything after a
    UMAP fit ~40x slower on a 2-core machine. UMAP runs seeded, hence single-threaded, so the
    plain ``workqueue`` layer costs nothing.
    """
    if not os.environ.get("NUMBA_CACHE_DIR"):
        os.environ["NUMBA_CACHE_DIR"] = str(_numba_cache_dir())
    os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")


def _numba_cache_dir() -> Path:
    """A writable folder for numba's cache: the user's cache folder, else the temporary one."""
    root = os.environ.get("CLIPXAI_CACHE")
    for folder in (Path(root).expanduser() if root else Path.home() / ".cache" / "clipxai",
                   Path(tempfile.gettempdir()) / "clipxai"):
        folder = folder / "numba"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK):
            return folder
    return Path(tempfile.mkdtemp(prefix="clipxai-numba-"))


def project(features: np.ndarray, method: str = "pca", seed: int = 0, n_neighbors: int = 15,
            min_dist: float = 0.1, perplexity: float = 30.0) -> Projection:
    """2-D coordinates of ``features`` (rows = snapshots; already normalised / PCA-reduced)."""
    x = np.asarray(features, dtype=np.float64)
    if method not in METHODS:
        raise ClipxaiError(f"Unknown projection '{method}'; choose from {', '.join(METHODS)}.")
    if len(x) < 3:
        raise ClipxaiError(f"A projection needs at least 3 snapshots; this run has {len(x)}.")
    if x.shape[1] == 1:
        x = np.hstack([x, np.zeros_like(x)])
    if method == "pca":
        from sklearn.decomposition import PCA  # noqa: PLC0415

        coords = PCA(n_components=2, random_state=seed).fit_transform(x)
        return Projection(coords, "pca")
    with stop_on_interrupt():  # the slow ones: Ctrl-C must stop them even if a library loses it
        if method == "tsne":
            from sklearn.manifold import TSNE  # noqa: PLC0415

            perp = float(min(perplexity, (len(x) - 1) / 3))
            coords = TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed).fit_transform(x)
            return Projection(coords, "tsne", {"perplexity": perp})
        return _umap(x, seed, n_neighbors, min_dist)


def _umap(x: np.ndarray, seed: int, n_neighbors: int, min_dist: float) -> Projection:
    from sklearn.neighbors import NearestNeighbors  # noqa: PLC0415

    _numba_env()
    nn = int(max(2, min(n_neighbors, len(x) - 1)))
    dist, idx = NearestNeighbors(n_neighbors=nn).fit(x).kneighbors(x)  # each point is its own first neighbour
    epochs = 200 if len(x) > 2000 else 500  # UMAP's own defaults, switching at 2000 rather than 10000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap's n_jobs/random_state note, numba deprecations
        import umap  # noqa: PLC0415

        reducer = umap.UMAP(n_components=2, n_neighbors=nn, min_dist=min_dist, random_state=seed,
                            n_epochs=epochs, precomputed_knn=(idx, dist, None),
                            init="spectral" if len(x) > nn + 2 else "random")
        coords = reducer.fit_transform(x)
    return Projection(np.asarray(coords, dtype=np.float64), "umap",
                      {"n_neighbors": nn, "min_dist": min_dist, "n_epochs": epochs})
