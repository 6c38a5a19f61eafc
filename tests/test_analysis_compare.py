"""`clipxai compare`: shared concepts across runs, and each run's time in them."""

import json

import numpy as np
import pytest
from helpers_runs import write_run

from clipxai.analysis.analyze import AnalyzeOptions
from clipxai.analysis.check import synthetic
from clipxai.cli.commands import main
from clipxai.errors import ClipxaiError
from clipxai.report.compare import compare_runs

OPTS = AnalyzeOptions(projections=("pca",), labels=False, gif=False, n_boot=100, n_surrogates=39)


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    """Two runs visiting the same three concepts in different orders (two seeds of one prompt)."""
    root = tmp_path_factory.mktemp("cmp")
    centers = synthetic.planted_centers(np.random.default_rng(0), 3, 64)
    trajs = [synthetic.planted_states(np.random.default_rng(s), n=120, mean_dwell=12, noise=0.4, centers=centers)
             for s in (1, 2)]
    paths = [write_run(root, f"seed{s}", traj=t, seed=s) for s, t in zip((1, 2), trajs)]
    return root, paths, trajs, centers


def test_shared_concepts_and_occupancy_match_the_truth(two_seeds):
    root, paths, trajs, centers = two_seeds
    comp = compare_runs(paths, root / "cmp", opts=OPTS)
    assert [r["run"] for r in comp.rows] == ["seed1", "seed2"]
    assert all(r["n_states"] == 3 for r in comp.rows)
    occ = {name: np.array(v) for name, v in comp.occupancy.items()}
    assert all(len(v) == 3 and v.sum() == pytest.approx(1.0) for v in occ.values())
    # the shared concept holding most of centre c's snapshots gets that centre's share in each run
    for (name, v), traj in zip(occ.items(), trajs):
        truth = np.sort(np.bincount(traj.states, minlength=3) / len(traj.states))
        assert np.allclose(np.sort(v), truth, atol=0.03)
    for f in comp.figures.values():
        assert (comp.folder / f).is_file()
    data = json.loads((comp.folder / "compare.json").read_text())
    assert data["runs"][0]["verdict"] == comp.rows[0]["verdict"]
    assert (comp.folder / "table.csv").read_text().splitlines()[0].startswith('"run","prompt"')


def test_compare_cli_prints_the_table(two_seeds, capsys):
    root, paths, _, _ = two_seeds
    rc = main(["compare", str(paths[0]), str(paths[1]), "-o", str(root / "cli"), "--no-labels", "-q"])
    out = capsys.readouterr().out
    assert rc == 0 and "seed1" in out and "seed2" in out and "verdict" in out


def test_compare_refuses_one_run_and_different_models(two_seeds, tmp_path, capsys):
    _, paths, _, _ = two_seeds
    assert main(["compare", str(paths[0]), "--no-labels"]) != 0
    assert "at least two runs" in capsys.readouterr().err
    other = write_run(tmp_path, "wide", n=60, dim=32)
    with pytest.raises(ClipxaiError, match="different sizes"):
        compare_runs([paths[0], other], tmp_path / "x", opts=OPTS)
    assert not (tmp_path / "x").exists()   # refused before its folder was made


def test_a_failed_comparison_leaves_no_folder_and_links_in_it_are_replaced_not_followed(two_seeds, tmp_path):
    from dataclasses import replace
    _, paths, _, _ = two_seeds
    compare_runs(paths, tmp_path / "first", opts=OPTS)         # both runs analyzed: their summaries are reused
    with pytest.raises(ClipxaiError, match="clusters"):
        compare_runs(paths, tmp_path / "new" / "sub", opts=replace(OPTS, k=500))
    assert not (tmp_path / "new").exists()
    out = tmp_path / "linked"
    out.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("mine\n")
    for name in ("table.csv", "occupancy.png"):
        (out / name).symlink_to(outside)
    comp = compare_runs(paths, out, opts=OPTS)
    assert outside.read_text() == "mine\n"
    assert not (out / "table.csv").is_symlink() and (out / "table.csv").read_text().startswith('"run"')
    assert not (out / "occupancy.png").is_symlink() and (comp.folder / comp.figures["occupancy"]).is_file()
