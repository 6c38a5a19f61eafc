"""Grouping snapshots into concepts: KMeans, agglomerative, HDBSCAN or a Gaussian mixture.

Clustering runs on whatever feature rows it is given (by default the PCA-reduced,
L2-normalised CLIP embeddings, see ``features.py``). When the number of clusters is not
given it is chosen automatically and the result says how: the mean silhouette for KMeans and
agglomerative (k = 1 when no k reaches ``min_silhouette``; 0.25 is Kaufman and Rousseeuw's
"no substantial structure" bound), BIC for the Gaussian mixture, and HDBSCAN's own density
criterion. Cluster ids are renumbered by first appearance in time.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from clipxai.errors import ClipxaiError

METHODS = ("kmeans", "agglomerative", "hdbscan", "gmm")
AGGLOMERATIVE_MAX_FIT = 3000  # ward linkage is O(N^2) in memory; larger runs fit a subsample


@dataclass
class ClusterResult:
    """Cluster id per snapshot, with how the number of clusters was chosen."""

    labels: np.ndarray
    k: int
    method: str
    selection: str                   # silhouette | bic | hdbscan | given
    scores: dict[int, float] = field(default_factory=dict)   # candidate k -> score
    centroids: np.ndarray | None = None
    silhouette: float | None = None
    n_noise: int = 0                 # HDBSCAN points assigned to their nearest cluster
    min_score: float | None = None   # the silhouette a k >= 2 had to reach (silhouette selection)

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "k": self.k,
            "selection": self.selection,
            "scores": {str(k): float(v) for k, v in self.scores.items()},
            "silhouette": None if self.silhouette is None else float(self.silhouette),
            "n_noise": int(self.n_noise),
        }

    def plot(self, ax, states: int | None = None, silhouette: float | None = None,
             transient: tuple[int, ...] | list[int] = ()) -> None:
        """The model-selection curve (silhouette or BIC against k), and the states finally used.

        ``states`` and ``silhouette`` are the state path's count and mean silhouette (the numbers
        of the summary table); ``transient`` the sizes of clusters merged away as transients.
        """
        merged = ""
        if transient:
            from clipxai.analysis.motion.verdict import plural  # noqa: PLC0415
            merged = (f"{plural(len(transient), 'transient cluster')} ({', '.join(map(str, transient))} "
                      f"snapshot(s)) merged: {plural(states, 'state')}")
        if not self.scores:
            why = "no principal component above the noise floor" if self.selection == "noise floor" else self.selection
            ax.text(0.5, 0.5, f"k = {self.k} ({why})" + (f"\n{merged}" if merged else ""), ha="center", va="center")
            ax.set_axis_off()
            return
        ks = sorted(self.scores)
        ax.plot(ks, [self.scores[k] for k in ks], "o-", label=f"{self.method} clusters")
        ax.axvline(self.k, color="tab:red", ls="--", lw=1)
        if self.min_score is not None:
            ax.axhline(self.min_score, color="0.5", ls=":", lw=1, label=f"bar for k >= 2 ({self.min_score:g})")
        if states is not None and silhouette is not None and self.selection == "silhouette":
            ax.plot([states], [silhouette], "*", color="tab:green", ms=12,
                    label=f"states used: {states}, silhouette {silhouette:.2f}")
        elif states is not None:
            ax.plot([], [], " ", label=f"states used: {states}")
        if merged:
            ax.plot([], [], " ", label=merged)
        ax.set_xlabel("number of clusters k")
        ax.set_ylabel({"silhouette": "mean silhouette", "bic": "BIC (lower is better)"}.get(self.selection, "score"))
        chosen = self.scores.get(self.k)
        score = "" if chosen is None else f" ({chosen:.2f})" if self.selection == "silhouette" else f" ({chosen:.4g})"
        ax.set_title(f"{self.method}: k = {self.k} chosen by {self.selection}{score}")
        from clipxai.analysis.draw.style import integer_axis  # noqa: PLC0415
        integer_axis(ax.xaxis)
        ax.legend()


def renumber_by_first_appearance(labels: np.ndarray) -> np.ndarray:
    """Relabel so that the first cluster visited is 0, the next new one 1, and so on."""
    labels = np.asarray(labels)
    if not len(labels):
        return labels.astype(np.int64)
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    return rank[inverse].astype(np.int64)


def centroids_of(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    k = int(labels.max()) + 1 if len(labels) else 0
    return np.stack([features[labels == i].mean(axis=0) for i in range(k)]) if k else np.empty((0, features.shape[1]))


def mean_silhouette(features: np.ndarray, labels: np.ndarray, seed: int = 0, sample_size: int = 2000) -> float | None:
    """Mean silhouette (on a seeded subsample for large runs); None for a single cluster."""
    from sklearn.metrics import silhouette_score  # noqa: PLC0415

    n_labels = len(np.unique(labels))
    if n_labels < 2 or n_labels >= len(labels):
        return None
    size = sample_size if len(labels) > sample_size else None
    return float(silhouette_score(features, labels, sample_size=size, random_state=seed))


def one_cluster(x: np.ndarray, method: str, selection: str) -> ClusterResult:
    """Every snapshot in one cluster, chosen before any fit (``selection`` says why)."""
    x = np.asarray(x, dtype=np.float64)
    return ClusterResult(labels=np.zeros(len(x), dtype=np.int64), k=1, method=method, selection=selection,
                         centroids=x.mean(axis=0, keepdims=True))


def _fit_kmeans(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans  # noqa: PLC0415

    return KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(x)


def _fit_agglomerative(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering  # noqa: PLC0415

    if len(x) <= AGGLOMERATIVE_MAX_FIT:
        return AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(x)
    # Fit on an evenly spaced subsample (keeps every part of the run), assign the rest to the nearest centroid.
    idx = np.linspace(0, len(x) - 1, AGGLOMERATIVE_MAX_FIT).round().astype(int)
    sub = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(x[idx])
    cents = centroids_of(x[idx], sub)
    return _nearest(x, cents)


def _nearest(x: np.ndarray, cents: np.ndarray) -> np.ndarray:
    d = (x * x).sum(1)[:, None] - 2 * x @ cents.T + (cents * cents).sum(1)[None]
    return d.argmin(axis=1)


def _select_by_silhouette(x, fit, k_max, seed, min_silhouette, sample_size):
    scores, fits = {}, {}
    for k in range(2, k_max + 1):
        labels = fit(x, k, seed)
        s = mean_silhouette(x, labels, seed, sample_size)
        if s is None:
            continue
        scores[k], fits[k] = s, labels
    if not scores or max(scores.values()) < min_silhouette:
        return np.zeros(len(x), dtype=np.int64), 1, scores
    best = max(scores, key=lambda k: (scores[k], -k))
    return fits[best], best, scores


def _gmm(x: np.ndarray, k: int, seed: int):
    """A mixture with one diagonal covariance per component: in the few dimensions the analysis
    keeps, a state's spread differs between directions (L2 normalisation flattens the radial
    one), and a spherical mixture then splits every state along its wide axis."""
    from sklearn.mixture import GaussianMixture  # noqa: PLC0415

    return GaussianMixture(n_components=k, covariance_type="diag", n_init=2, random_state=seed,
                           reg_covar=1e-5).fit(x)


def _select_by_bic(x, k_max, seed):
    scores, models = {}, {}
    for k in range(1, k_max + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings on degenerate k
            m = _gmm(x, k, seed)
        scores[k], models[k] = float(m.bic(x)), m
    best = min(scores, key=lambda k: (scores[k], k))
    return models[best].predict(x), best, scores


def _hdbscan(x: np.ndarray, min_cluster_size: int | None):
    from sklearn.cluster import HDBSCAN  # noqa: PLC0415

    size = min_cluster_size or max(5, len(x) // 50)
    labels = HDBSCAN(min_cluster_size=size, copy=True).fit_predict(x)
    noise = labels < 0
    if noise.all():
        return np.zeros(len(x), dtype=np.int64), int(noise.sum())
    if noise.any():
        valid = labels[~noise]
        _, dense = np.unique(valid, return_inverse=True)
        cents = centroids_of(x[~noise], dense)
        labels = labels.copy()
        labels[~noise] = dense
        labels[noise] = _nearest(x[noise], cents)
    return labels, int(noise.sum())


def cluster(features: np.ndarray, method: str = "kmeans", k: int | str = "auto", k_max: int = 10,
            seed: int = 0, min_silhouette: float = 0.25, sample_size: int = 2000,
            min_cluster_size: int | None = None) -> ClusterResult:
    """Cluster feature rows (one per snapshot); ``k="auto"`` picks the number (see module doc)."""
    x = np.asarray(features, dtype=np.float64)
    if method not in METHODS:
        raise ClipxaiError(f"Unknown clustering method '{method}'; choose one of {', '.join(METHODS)}.")
    if x.ndim != 2 or len(x) < 3:
        raise ClipxaiError(f"Clustering needs at least 3 snapshots; this run has {len(x)}.")
    if not np.isfinite(x).all():
        raise ClipxaiError("The features to cluster contain NaN or infinite values.")
    k_max = max(1, min(k_max, len(x) - 1))
    scores: dict[int, float] = {}
    n_noise = 0
    if k != "auto":
        k = int(k)
        if not 1 <= k <= len(x) - 1:
            raise ClipxaiError(f"The number of clusters must be between 1 and {len(x) - 1}; got {k}.")
        if method == "hdbscan":
            raise ClipxaiError("HDBSCAN finds its own number of clusters; leave --k at auto for it.")
        selection = "given"
        if k == 1:
            labels = np.zeros(len(x), dtype=np.int64)
        elif method == "kmeans":
            labels = _fit_kmeans(x, k, seed)
        elif method == "agglomerative":
            labels = _fit_agglomerative(x, k, seed)
        else:
            labels = _gmm(x, k, seed).predict(x)
    elif method == "gmm":
        labels, k, scores = _select_by_bic(x, k_max, seed)
        selection = "bic"
    elif method == "hdbscan":
        labels, n_noise = _hdbscan(x, min_cluster_size)
        selection = "hdbscan"
    else:
        fit = _fit_kmeans if method == "kmeans" else _fit_agglomerative
        labels, k, scores = _select_by_silhouette(x, fit, k_max, seed, min_silhouette, sample_size)
        selection = "silhouette"
    labels = renumber_by_first_appearance(labels)
    k = int(labels.max()) + 1
    return ClusterResult(labels=labels, k=k, method=method, selection=selection, scores=scores,
                         centroids=centroids_of(x, labels), silhouette=mean_silhouette(x, labels, seed, sample_size),
                         n_noise=n_noise, min_score=min_silhouette if selection == "silhouette" else None)
