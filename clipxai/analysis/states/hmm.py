"""A hidden Markov model's Viterbi path over snapshot features: clusters, smoothed in time.

Clusters assign every snapshot on its own, so noise near a boundary makes a state flicker
for one snapshot. An HMM weighs each assignment against how rarely the run actually switches:
Gaussian emissions (one mean per state, one diagonal covariance shared by all), a transition
matrix learned from the data, and the most likely state path (Viterbi). It is trained by hard
EM (Viterbi training), starting from the cluster labels; states that lose all their snapshots
are dropped.
"""

from __future__ import annotations

import numpy as np

from clipxai.analysis.states.cluster import renumber_by_first_appearance


def viterbi(log_emission: np.ndarray, log_trans: np.ndarray, log_start: np.ndarray) -> np.ndarray:
    """The most likely state path given per-snapshot log-likelihoods (N, K)."""
    n, k = log_emission.shape
    back = np.empty((n, k), dtype=np.int64)
    score = log_start + log_emission[0]
    for t in range(1, n):
        cand = score[:, None] + log_trans          # from state i to state j
        back[t] = cand.argmax(axis=0)
        score = cand[back[t], np.arange(k)] + log_emission[t]
    path = np.empty(n, dtype=np.int64)
    path[-1] = int(score.argmax())
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def _gaussian_log_likelihood(x: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Log-likelihood of every snapshot under every state: one mean per state, one shared spread.

    The spread (a diagonal variance) is pooled over all states, as k-means assumes: with one
    variance per state, a spread-out cluster such as the noisy first snapshots of a run
    explains the snapshots on the way out of it better than where the run arrives, and the
    state path then moves a switch far from where the clusters put it.
    """
    floor = 1e-3 * x.var(axis=0).mean() + 1e-12
    means = np.stack([x[labels == i].mean(axis=0) for i in range(k)])
    var = ((x - means[labels]) ** 2).mean(axis=0) + floor
    dist = (((x[:, None, :] - means[None]) ** 2) / var).sum(axis=-1)
    return -0.5 * (dist + np.log(2 * np.pi * var).sum())


def _log_transitions(labels: np.ndarray, k: int) -> np.ndarray:
    """Per-snapshot transition matrix from the current path, with add-one smoothing."""
    counts = np.ones((k, k))
    np.add.at(counts, (labels[:-1], labels[1:]), 1)
    return np.log(counts / counts.sum(axis=1, keepdims=True))


def hmm_states(features: np.ndarray, init_labels: np.ndarray, n_iter: int = 10) -> np.ndarray:
    """Viterbi path of a Gaussian HMM trained by hard EM from ``init_labels``."""
    x = np.asarray(features, dtype=np.float64)
    labels = renumber_by_first_appearance(np.asarray(init_labels))
    for _ in range(n_iter):
        k = int(labels.max()) + 1
        if k < 2:
            return labels
        log_em = _gaussian_log_likelihood(x, labels, k)
        log_start = np.log(np.bincount(labels, minlength=k) + 1.0) - np.log(len(labels) + k)
        new = renumber_by_first_appearance(viterbi(log_em, _log_transitions(labels, k), log_start))
        if np.array_equal(new, labels):
            break
        labels = new
    return labels
