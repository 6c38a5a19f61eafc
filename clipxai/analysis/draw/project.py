"""2-D pictures of the trajectory: PCA, UMAP or t-SNE, drawn as a path coloured by step.

These coordinates are for looking only. UMAP and t-SNE bend distances to make clusters
visible, so no metric is ever computed in them (the metrics use the PCA space of
``states.py``). UMAP is drawn only when asked for (``--projection umap``) and imported only
then, with numba's settings made safe first (``_numba_env``). Its neighbor graph is
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

from clipxai.errors import ClipxaiError
from clipxai.util.interrupt import stop_on_interrupt

METHODS = ("pca", "umap", "tsne")


@dataclass
class Projection:
    """2-D coordinates of every snapshot under one method."""

    coords: np.ndarray   # (N, 2)
    method: str
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"method": self.method, "points": int(len(self.coords)), **self.params}

    def axis_labels(self) -> tuple[str, str]:
        """"PC1 (42%)", "PC2 (17%)" for PCA (variance explained); "UMAP 1", "UMAP 2" otherwise."""
        ratio = self.params.get("explained_variance")
        if self.method == "pca" and ratio:
            return tuple(f"PC{i + 1} ({100 * r:.0f}% of the variance)" for i, r in enumerate(ratio[:2]))
        name = {"umap": "UMAP", "tsne": "t-SNE"}.get(self.method, self.method)
        return f"{name} 1", f"{name} 2"

    def plot(self, ax, steps: np.ndarray, states: np.ndarray | None = None, thumbnails: dict | None = None,
             names: dict | None = None, colors=None) -> None:
        """Path coloured by step, start and end, each state's centroid with its words and its most
        typical snapshot in one box pointing at the centroid (boxes placed outward, so no picture
        covers a label).

        ``thumbnails`` maps a snapshot index to an (H, W, 3) uint8 image of that snapshot.
        """
        from matplotlib.collections import LineCollection  # noqa: PLC0415

        from clipxai.analysis.draw.style import state_colors  # noqa: PLC0415

        xy = self.coords
        steps = np.asarray(steps, dtype=np.float64)
        segs = np.stack([xy[:-1], xy[1:]], axis=1)
        lc = LineCollection(segs, cmap="viridis", linewidths=1.0, alpha=0.85)
        lc.set_array(steps[:-1])
        lc.set_clim(steps[0], steps[-1])
        ax.add_collection(lc)
        ax.scatter(xy[:, 0], xy[:, 1], c=steps, cmap="viridis", vmin=steps[0], vmax=steps[-1], s=8, zorder=2)
        ax.scatter(*xy[0], marker="o", s=110, color="white", edgecolors="tab:green", linewidths=2.2, zorder=4,
                   label=f"start (step {steps[0]:.0f})")
        ax.scatter(*xy[-1], marker="s", s=70, color="tab:red", edgecolors="black", linewidths=0.8, zorder=4,
                   label=f"end (step {steps[-1]:.0f})")
        ax.update_datalim(xy)
        ax.autoscale_view()
        if states is not None:
            k = int(states.max()) + 1
            colors = colors or state_colors(k)
            ax.scatter([], [], marker="X", s=90, color="0.6", edgecolors="black", label="state centroid")
            by_state = {int(states[i]): img for i, img in (thumbnails or {}).items()}
            cents = np.stack([xy[states == s].mean(axis=0) for s in range(k)])
            for s in range(k):
                ax.scatter(*cents[s], marker="X", s=150, color=colors[s], edgecolors="black", zorder=5)
            if k <= 12:
                self._label_states(ax, cents, colors, names, by_state)
        ax.margins(0.08)
        ax.figure.colorbar(lc, ax=ax, label="step", fraction=0.05, pad=0.02, aspect=30)
        note = "" if self.method == "pca" else " (a picture only: metrics use PCA space)"
        ax.set_title(f"the trajectory, {self.method.upper()}{note}")
        xlabel, ylabel = self.axis_labels()
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.tick_params(labelbottom=False, labelleft=False, length=0)
        ax.legend(loc="best", framealpha=0.9)

    @staticmethod
    def _label_states(ax, cents: np.ndarray, colors, names: dict | None, pictures: dict) -> None:
        """One box per state (its picture over its words), placed outward from the cloud and
        spread around it, with an arrow to the state's centroid."""
        from matplotlib.offsetbox import AnnotationBbox, OffsetImage, TextArea, VPacker  # noqa: PLC0415

        from clipxai.analysis.draw.text import label  # noqa: PLC0415

        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        span = np.array([max(x1 - x0, 1e-12), max(y1 - y0, 1e-12)])
        unit = (cents - np.array([x0, y0])) / span - 0.5   # -0.5..0.5 across the axes
        angles = np.arctan2(unit[:, 1], unit[:, 0])
        angles[np.abs(unit).sum(axis=1) < 1e-9] = np.pi / 2
        angles = _spread(angles, min(np.pi / 3, 2 * np.pi / max(len(cents), 1)))
        for s, (c, a) in enumerate(zip(cents, angles)):
            words = f"{s}: {names[s]}" if names and names.get(s) else f"state {s}"
            parts = [TextArea(label(words, 24), textprops={"weight": "bold", "color": "black", "size": 9})]
            if s in pictures:
                img = pictures[s]
                parts.insert(0, OffsetImage(img, zoom=40.0 / max(img.shape[:2])))
            box = VPacker(children=parts, align="center", pad=0, sep=2)
            ab = AnnotationBbox(box, c, xybox=(62 * np.cos(a), 62 * np.sin(a)), boxcoords="offset points",
                                frameon=True, pad=0.25, zorder=6, annotation_clip=False,
                                bboxprops={"edgecolor": colors[s], "linewidth": 2, "facecolor": "white"},
                                arrowprops={"arrowstyle": "-", "color": colors[s], "lw": 1.5})
            ax.add_artist(ab)


def _spread(angles: np.ndarray, gap: float) -> np.ndarray:
    """Angles nudged apart so that no two are closer than ``gap`` (keeping their order)."""
    order = np.argsort(angles)
    a = angles[order].copy()
    for _ in range(len(a) * 4):
        moved = False
        for i in range(len(a)):
            j = (i + 1) % len(a)
            d = (a[j] - a[i]) % (2 * np.pi) if len(a) > 1 else 2 * np.pi
            if d < gap:
                a[i] -= (gap - d) / 2
                a[j] += (gap - d) / 2
                moved = True
        if not moved:
            break
    out = np.empty_like(a)
    out[order] = a
    return out


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

        pca = PCA(n_components=2, random_state=seed)
        coords = pca.fit_transform(x)
        return Projection(coords, "pca", {"explained_variance": [round(float(r), 4)
                                                                  for r in pca.explained_variance_ratio_]})
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
    dist, idx = NearestNeighbors(n_neighbors=nn).fit(x).kneighbors(x)  # each point is its own first neighbor
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
