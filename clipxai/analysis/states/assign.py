"""From feature rows to one state per snapshot: normalise, reduce with PCA, cluster, smooth.

All metrics are computed in this PCA space (never in UMAP or t-SNE coordinates, which
distort distances). PCA keeps the directions the run actually moves along and drops most
of the isotropic noise spread over CLIP's other dimensions. How many components it keeps is
decided by the data: one more than those whose singular value clears the noise floor
(Gavish and Donoho's hard threshold), at least 2 and at most ``pca_components``; with none
above the floor the run is one state. A fixed count would keep pure noise dimensions when
the embedding is small (64-D) or the run simple, and that noise alone pulls every
silhouette down until real states are counted as one. The one extra component is for a
state the run visits only briefly: its direction is real but too weak to clear a threshold
tuned for reconstruction, and without it that state's snapshots fall into a neighbor's
cluster (64-D, 4 states with Pareto dwells: exact K 90% -> 95%; see docs/analysis.md).

Two things keep the count a count of meanings (issue 27). Rows that repeat the row before them
exactly (a frozen image recorded twice) are set aside before anything is estimated, and get the
state of the row they repeat: half the rows duplicated made the matrix rank deficient, the noise
floor collapsed and noise was split into 8 states. And clusters whose switches are not jumps
(``states.jumps``: window means across each switch against the same windows inside the visits)
are merged, weakest pair first: a smooth motion inside one state (AR(1) noise, a drift, a random
walk) is cut into many clusters by any clustering, but it never jumps between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from clipxai.analysis.motion.verdict import MERGE_RATIO, StateOrigin
from clipxai.analysis.states.cluster import (
    ClusterResult,
    centroids_of,
    cluster,
    one_cluster,
    renumber_by_first_appearance,
)
from clipxai.analysis.states.hmm import hmm_states
from clipxai.analysis.states.jumps import MIN_PHI, decorrelate, distinct_rows, merge_without_jumps, motion_correlation
from clipxai.errors import ClipxaiError

STATE_MODELS = ("hmm", "clusters")



@dataclass
class StateResult:
    """The analysis space, the clusters found in it, and the state path used for the metrics."""

    reduced: np.ndarray            # (N, C) PCA coordinates of the normalised features
    explained_variance: np.ndarray
    clusters: ClusterResult
    states: np.ndarray             # (N,) int: the state path the metrics use
    state_model: str
    transient: int = 0             # clusters dropped because the run never stayed in them
    signal_rank: int | None = None  # principal components above the noise floor (None: not estimated)
    transient_sizes: list[int] = field(default_factory=list)  # snapshots in each dropped cluster
    min_run: int = 3               # a cluster the run never stays in this many snapshots is a transient
    merged_ratios: list[float] = field(default_factory=list)  # jump ratio of each pair merged as one motion
    repeated_rows: int = 0         # rows that repeat the row before exactly (set aside, then given its state)
    motion_phi: float = 0.0        # AR(1) coefficient of the motion between snapshots (0: below MIN_PHI)

    def to_dict(self) -> dict:
        return {
            "space": {"pca_components": int(self.reduced.shape[1]),
                      "signal_rank": None if self.signal_rank is None else int(self.signal_rank),
                      "explained_variance": float(self.explained_variance.sum())},
            "clustering": self.clusters.to_dict(),
            "state_model": self.state_model,
            "transient_clusters_dropped": int(self.transient),
            "transient_cluster_sizes": [int(v) for v in self.transient_sizes],
            "merged_without_jumps": [round(float(v), 4) for v in self.merged_ratios],
            "motion_correlation": round(float(self.motion_phi), 4),
            "repeated_rows": int(self.repeated_rows),
        }


    def origin(self) -> StateOrigin:
        """How these states were counted, for the verdict's reason."""
        c = self.clusters
        best = max(c.scores, key=lambda k: (c.scores[k], -k)) if c.selection == "silhouette" and c.scores else None
        return StateOrigin(clusters=c.k, selection=c.selection, score=c.scores.get(c.k),
                           best_k=best, best_score=None if best is None else c.scores[best],
                           min_score=c.min_score, transient_sizes=tuple(self.transient_sizes), min_run=self.min_run,
                           merged_ratios=tuple(self.merged_ratios), motion_phi=self.motion_phi)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ClipxaiError("Some feature rows are all zero, so they have no direction to compare.")
    return x / norms


def pca_reduce(x: np.ndarray, n_components: int = 16, seed: int = 0,
               fit: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """PCA coordinates (N, C) of ``x`` with C <= n_components, and the variance share of each
    component (the components of ``fit``'s rows when given, else of ``x``'s)."""
    from sklearn.decomposition import PCA  # noqa: PLC0415

    fit = x if fit is None else fit
    c = int(max(1, min(n_components, fit.shape[0] - 1, x.shape[1])))
    pca = PCA(n_components=c, random_state=seed, svd_solver="auto")
    pca.fit(fit)
    return pca.transform(x), pca.explained_variance_ratio_


def signal_rank(x: np.ndarray) -> int:
    """How many principal components of ``x`` (rows: snapshots) stand above its noise floor.

    Gavish and Donoho's (2014) optimal hard threshold for an unknown noise level: singular
    values of the centred matrix above omega(beta) times their median, beta being the aspect
    ratio. It assumes most singular values are noise, which holds for a run whose motion
    spans fewer directions than it has snapshots and dimensions.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0)
    beta = min(x.shape) / max(x.shape)
    omega = 0.56 * beta ** 3 - 0.95 * beta ** 2 + 1.82 * beta + 1.43
    if x.shape[0] >= 8 * x.shape[1]:
        rank = _rank_from_gram(x, omega)
        if rank is not None:
            return rank
    sv = np.linalg.svd(x, compute_uv=False)
    return int((sv > omega * np.median(sv)).sum())


def _rank_from_gram(x: np.ndarray, omega: float) -> int | None:
    """The count ``signal_rank`` gives, from the eigenvalues of x'x (a tall run: 100k x 512 in ~1 s
    instead of an SVD's ~4 s); None when a singular value lies so near the threshold that the
    eigenvalues' rounding (~n eps sigma_max^2, taken 1000 times larger) could move it across."""
    ev = np.linalg.eigvalsh(x.T @ x)[::-1]
    sv = np.sqrt(np.clip(ev, 0.0, None))
    med = float(np.median(sv))
    tiny = np.finfo(np.float64).tiny
    err = 1e3 * x.shape[1] * np.finfo(np.float64).eps * sv[0] ** 2 / (2.0 * np.maximum(sv, tiny))
    err_med = 1e3 * x.shape[1] * np.finfo(np.float64).eps * sv[0] ** 2 / (2.0 * max(med, tiny))
    thr = omega * med
    if med <= 0 or np.any(np.abs(sv - thr) <= err + omega * err_med):
        return None
    return int((sv > thr).sum())


def longest_runs(labels: np.ndarray, k: int) -> np.ndarray:
    """For each label, the longest stretch of consecutive snapshots carrying it."""
    best = np.zeros(k, dtype=np.int64)
    starts = np.concatenate([[0], np.flatnonzero(labels[1:] != labels[:-1]) + 1, [len(labels)]])
    for a, b in zip(starts[:-1], starts[1:]):
        best[labels[a]] = max(best[labels[a]], b - a)
    return best


def drop_transient(x: np.ndarray, labels: np.ndarray, min_run: int = 3) -> tuple[np.ndarray, list[int]]:
    """Merge clusters the run never stays in (< ``min_run`` snapshots in a row) into the nearest other.

    Such clusters hold the snapshots of transitions (or of the start, before the run found
    anything), which a mixture model or a large k happily gives a component of their own; a
    state is somewhere the run stays. Returns the labels and the size of each dropped cluster.
    """
    labels = renumber_by_first_appearance(labels)
    dropped: list[int] = []
    while True:
        k = int(labels.max()) + 1
        runs = longest_runs(labels, k)
        if k < 2 or runs.min() >= min_run:
            return labels, dropped
        gone = int(runs.argmin())
        cents = centroids_of(x, labels)
        keep = [i for i in range(k) if i != gone]
        members = labels == gone
        d = ((x[members][:, None, :] - cents[keep][None]) ** 2).sum(-1)
        labels = labels.copy()
        labels[members] = np.asarray(keep)[d.argmin(axis=1)]
        labels = renumber_by_first_appearance(labels)
        dropped.append(int(members.sum()))


def infer_states(features: np.ndarray, *, method: str = "kmeans", k: int | str = "auto", k_max: int = 10,
                 state_model: str = "hmm", pca_components: int = 16, normalize: bool = True,
                 min_run: int = 3, min_jump_ratio: float = MERGE_RATIO, seed: int = 0) -> StateResult:
    """States of a run from its feature rows (embeddings, activations or pixels).

    Everything is estimated on the rows that differ from the row before; a repeated row gets the
    state (and cluster) of the row it repeats. With ``k="auto"``, clusters whose switches are not
    jumps (ratio under ``min_jump_ratio``) are merged."""
    if state_model not in STATE_MODELS:
        raise ClipxaiError(f"Unknown state model '{state_model}'; choose one of {', '.join(STATE_MODELS)}.")
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) < 3:
        raise ClipxaiError(f"The analysis needs at least 3 snapshots; this run has {len(x)}.")
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).any(axis=1).sum())
        raise ClipxaiError(f"{bad} snapshot(s) have NaN or infinite values in the analyzed features.")
    if normalize:
        x = l2_normalize(x)
    keep = distinct_rows(x)
    if keep.sum() < 3:
        keep[:] = True
    source = np.cumsum(keep) - 1                       # row -> the distinct row it is (or repeats)
    phi = motion_correlation(x[keep])
    phi = phi if phi >= MIN_PHI else 0.0
    # Smooth motion inside a state fills many directions with slow variance; its innovations do not,
    # so the directions (and their number) come from the decorrelated rows and the rows are drawn in them.
    fit = decorrelate(x[keep], phi) if phi else x[keep]
    rank = signal_rank(fit)
    reduced, explained = pca_reduce(x, min(max(rank + 1, 2), pca_components), seed, fit=fit)
    xs = reduced[keep]
    if rank == 0 and k == "auto" and (not phi or signal_rank(x[keep]) == 0):
        clusters = one_cluster(xs, method, "noise floor")
    else:
        clusters = cluster(xs, method=method, k=k, k_max=k_max, seed=seed)
    labels, transient = drop_transient(xs, clusters.labels, min_run)
    states = hmm_states(xs, labels) if state_model == "hmm" else labels
    merged: list[float] = []
    if phi:  # now that there are states, the motion is measured inside their visits only (not across switches)
        phi = motion_correlation(x[keep], states)
        phi = phi if phi >= MIN_PHI else 0.0
    if k == "auto":
        relabel = hmm_states if state_model == "hmm" else None
        states, merged = merge_without_jumps(xs, states, min_jump_ratio, relabel, phi=phi)
    clusters = replace(clusters, labels=clusters.labels[source])
    return StateResult(reduced, explained, clusters, states[source], state_model, len(transient), rank, transient,
                       min_run, merged, int((~keep).sum()), phi)
