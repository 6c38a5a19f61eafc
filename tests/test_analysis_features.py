"""Reading the analysed features out of native runs, and refusing broken ones in one sentence."""

import json

import numpy as np
import pytest
from helpers_runs import HOOKS, write_run

from clipxai.analysis.states.features import pixel_features, resolve_layer, run_features
from clipxai.errors import ClipxaiError, RunError
from clipxai.runs.load import load_run


def test_embeddings_of_only_the_recorded_rows(tmp_path):
    path = write_run(tmp_path, n=60, recorded=40, status="running")
    # rows past n_snapshots are allocated but never written: they must not be read
    np.load(path / "snapshots" / "embeddings.npy", mmap_mode="r+")[40:] = np.nan
    run = load_run(path)
    f = run_features(run)
    assert f.source == "embeddings" and f.values.shape == (40, 64)
    assert np.array_equal(f.values, np.asarray(run.embeddings))


def test_activations_pooled_over_tokens_and_layer_names(tmp_path):
    run = load_run(write_run(tmp_path, n=30, full_tokens=True))
    assert resolve_layer(run, "resblocks.1") == HOOKS[1]
    assert resolve_layer(run, "last") == HOOKS[1]
    f = run_features(run, "activations:resblocks.0")
    full = np.asarray(run.activations[HOOKS[0]], dtype=np.float32)
    assert f.values.shape == (30, 32)
    assert np.allclose(f.values, full.mean(axis=1))
    with pytest.raises(ClipxaiError, match="no layer 'resblocks.9'.*resblocks.0"):
        run_features(run, "activations:resblocks.9")


def test_pixels_are_area_averages(tmp_path):
    run = load_run(write_run(tmp_path, n=20, size=32))
    px = pixel_features(run, size=16)
    img = np.asarray(run.images[3], dtype=np.float32)
    assert px.shape == (20, 3 * 16 * 16)
    assert px[3, 0] == pytest.approx(img[0, :2, :2].mean(), abs=1e-6)


def test_nan_rows_are_named(tmp_path):
    path = write_run(tmp_path, n=30)
    np.load(path / "snapshots" / "embeddings.npy", mmap_mode="r+")[7] = np.nan
    with pytest.raises(RunError, match=r"1 snapshot\(s\) have NaN or infinite embeddings \(rows 7\)"):
        run_features(load_run(path))


def test_mismatched_lengths_are_refused(tmp_path):
    path = write_run(tmp_path, n=30)
    manifest = json.loads((path / "run.json").read_text())
    np.save(path / "snapshots" / "embeddings.npy", np.zeros((20, 64), np.float32))
    manifest["arrays"]["embeddings"]["shape"] = [20, 64]
    (path / "run.json").write_text(json.dumps(manifest))
    with pytest.raises(RunError, match="'embeddings' has 20 rows but the run records 30 snapshots"):
        run_features(load_run(path))


def test_empty_run_is_refused(tmp_path):
    with pytest.raises(RunError, match="no snapshots yet"):
        run_features(load_run(write_run(tmp_path, n=30, recorded=0, status="running")))


def test_legacy_run_without_model_falls_back_to_activations(tmp_path):
    from test_original_layout import write_legacy

    run = load_run(write_legacy(tmp_path / "old", steps=list(range(0, 60, 10)), layers=(2, 11)))
    f = run_features(run)
    assert f.source == "activations:layer11" and f.values.shape == (6, 1024)
    assert resolve_layer(run, "2") == "layer2"  # the original script's layer number
    with pytest.raises(ClipxaiError, match="no recorded embeddings; pass --model"):
        run_features(run, "embeddings")


def test_legacy_embeddings_computed_with_a_model(tmp_path, tiny_clip):
    from test_original_layout import write_legacy

    run = load_run(write_legacy(tmp_path / "old", steps=[0, 10, 20], layers=(1,)))
    f = run_features(run, "embeddings", model=tiny_clip)
    assert f.values.shape == (3, tiny_clip.embed_dim)
    assert "computed with tiny" in f.source
