"""Projections, charts and snapshot sheets on small arrays with known answers."""

import numpy as np
import pytest
from helpers_runs import write_run
from PIL import Image

from clipxai.analysis.draw.chart import activation_stats, concept_similarity, metric_series, parse_concepts
from clipxai.analysis.draw.project import project
from clipxai.analysis.draw.sheets import (
    animated_gif,
    contact_sheet,
    even_indices,
    representatives,
    thumbnails,
    to_uint8,
)
from clipxai.analysis.draw.style import new_figure
from clipxai.analysis.states.cluster import cluster
from clipxai.errors import ClipxaiError
from clipxai.runs.load import load_run


def _two_blobs(n=60, dim=10, seed=0):
    rng = np.random.default_rng(seed)
    x = 0.05 * rng.standard_normal((n, dim))
    x[n // 2:, 0] += 3.0
    return x, np.repeat([0, 1], n // 2)


def _neighbours_agree(coords, labels):
    d = ((coords[:, None] - coords[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    return np.mean(labels[d.argmin(axis=1)] == labels)


def test_pca_keeps_distances_of_planar_data():
    rng = np.random.default_rng(0)
    plane = rng.standard_normal((40, 2))
    basis, _ = np.linalg.qr(rng.standard_normal((8, 2)))
    x = plane @ basis.T
    coords = project(x, "pca").coords
    d_in = np.linalg.norm(x[:, None] - x[None], axis=-1)
    d_out = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    assert np.allclose(d_in, d_out, atol=1e-8)


@pytest.mark.parametrize("method", ["umap", "tsne"])
def test_nonlinear_projections_keep_clusters_apart_and_are_seeded(method):
    x, labels = _two_blobs()
    a = project(x, method, seed=3)
    b = project(x, method, seed=3)
    assert a.coords.shape == (60, 2) and np.isfinite(a.coords).all()
    assert np.allclose(a.coords, b.coords)
    assert _neighbours_agree(a.coords, labels) == 1.0
    if method == "umap":  # numba's spinning OpenMP layer next to torch's slowed later work ~40x
        import numba
        assert numba.threading_layer() == "workqueue"


def test_projection_plot_draws_path_and_centroids():
    from matplotlib.collections import LineCollection
    from matplotlib.offsetbox import AnnotationBbox
    from matplotlib.text import Text

    x, labels = _two_blobs()
    proj = project(x, "pca")
    fig, ax = new_figure()
    proj.plot(ax, np.arange(60) * 10, labels, thumbnails={0: np.zeros((8, 8, 3), np.uint8)}, names={0: "red ❤️"})
    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(lines) == 1 and len(lines[0].get_segments()) == 59
    boxes = [a for a in ax.artists if isinstance(a, AnnotationBbox)]
    texts = [t.get_text() for b in boxes for t in b.offsetbox.findobj(Text)]
    assert "0: red ❤" in texts and "state 1" in texts  # the variation selector no font draws is dropped
    # the axes say what they are, with the variance each principal component explains
    ratio = proj.params["explained_variance"]
    assert ax.get_xlabel() == f"PC1 ({100 * ratio[0]:.0f}% of the variance)" and ax.get_ylabel().startswith("PC2 (")
    # a state's words and its picture share one box, and the boxes do not cover one another
    fig.canvas.draw()
    extents = [b.get_window_extent() for b in boxes]
    assert len(extents) == 2 and not extents[0].overlaps(extents[1])
    (start, end, *_), (start_label, end_label, *_) = ax.get_legend_handles_labels()
    assert start_label == "start (step 0)" and end_label == "end (step 590)"
    assert start.get_facecolor().tolist() != end.get_facecolor().tolist()  # a hollow circle, a filled square


def test_unknown_projection_and_too_few_points():
    with pytest.raises(ClipxaiError, match="Unknown projection 'mds'"):
        project(np.zeros((5, 3)), "mds")
    with pytest.raises(ClipxaiError, match="at least 3 snapshots"):
        project(np.zeros((2, 3)), "pca")


@pytest.mark.parametrize("method", ["kmeans", "agglomerative", "hdbscan", "gmm"])
def test_every_clustering_method_finds_two_blobs(method):
    x, labels = _two_blobs(n=80)
    res = cluster(x, method=method)
    assert res.k == 2
    assert (res.labels == labels).all()  # renumbered by first appearance, like the truth
    assert res.selection == {"kmeans": "silhouette", "agglomerative": "silhouette",
                             "hdbscan": "hdbscan", "gmm": "bic"}[method]


def test_noise_is_one_cluster_and_k_can_be_given():
    x = np.random.default_rng(0).standard_normal((100, 5))
    assert cluster(x).k == 1
    assert cluster(x, method="gmm").k == 1
    assert cluster(x, k=3).k == 3
    with pytest.raises(ClipxaiError, match="Unknown clustering method"):
        cluster(x, method="dbscan")
    with pytest.raises(ClipxaiError, match="NaN"):
        cluster(np.full((5, 2), np.nan))


def test_metric_series_and_concept_similarity():
    metrics = [{"step": 0, "sim/a": 0.1, "term/tv": 1.0}, {"step": 5, "sim/a": 0.3}]
    steps, sims = metric_series(metrics, "sim/")
    assert steps.tolist() == [0, 5] and sims["a"].tolist() == [0.1, 0.3]
    assert np.isnan(metric_series(metrics, "term/")[1]["tv"][1])
    emb = np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    cs = concept_similarity(emb, np.arange(3), ["x", "y"], np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert np.allclose(cs.sims, [[1, 0, np.sqrt(0.5)], [0, 1, np.sqrt(0.5)]], atol=1e-6)
    assert cs.to_dict(np.array([0, 1, 1]))["top_concept_by_state"] == {"0": "x", "1": "y"}
    with pytest.raises(ClipxaiError, match="dimensions"):
        concept_similarity(emb, np.arange(3), ["x"], np.ones((1, 5)))
    assert parse_concepts(" love, mouth ,,love") == ["love", "mouth"]
    with pytest.raises(ClipxaiError):
        parse_concepts(" , ")


def test_activation_stats_match_numpy(tmp_path):
    run = load_run(write_run(tmp_path, n=40, full_tokens=True))
    stats = activation_stats(run)
    arr = np.asarray(run.activations["visual.transformer.resblocks.1"], dtype=np.float32).reshape(40, -1)
    assert stats.layers == ["visual.transformer.resblocks.0", "visual.transformer.resblocks.1"]
    assert np.allclose(stats.mean[1], arr.mean(axis=1), atol=1e-5)
    assert np.allclose(stats.std[1], arr.std(axis=1), atol=1e-5)
    assert stats.steps.tolist() == np.asarray(run.steps).tolist()


def test_sheets_read_only_the_rows_they_show(tmp_path):
    run = load_run(write_run(tmp_path, n=50, size=16))

    class Counting:
        def __init__(self, arr):
            self.arr, self.rows = arr, 0

        def __len__(self):
            return len(self.arr)

        def __getitem__(self, key):
            out = self.arr[key]
            self.rows += len(out)
            return out

    images = Counting(run.images)
    idx = even_indices(50, 12)
    assert idx[0] == 0 and idx[-1] == 49 and len(idx) == 12
    sheet = contact_sheet(images, run.steps, idx, np.zeros(50, int), {0: "red"}, columns=4, size=32)
    assert isinstance(sheet, Image.Image) and images.rows == 12
    gif = animated_gif(images, run.steps, tmp_path / "a.gif", max_frames=10, size=32)
    with Image.open(gif) as im:
        assert im.n_frames == 10
    assert images.rows == 22


def test_pixels_to_uint8_and_thumbnails():
    chw = np.stack([np.full((4, 4), v) for v in (-1.0, 0.5, 2.0)])
    assert to_uint8(chw)[0, 0].tolist() == [0, 128, 255]
    th = thumbnails(np.random.default_rng(0).random((3, 3, 200, 100)), [2], size=50)
    assert th[2].shape == (50, 25, 3)
    feats = np.array([[0.0], [0.1], [5.0], [5.2], [0.05]])
    assert representatives(feats, np.array([0, 0, 1, 1, 0])) == {0: 4, 1: 2}
