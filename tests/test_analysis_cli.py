"""`clipxai analyze` end to end on synthetic run folders: summary.json, figures, bad input."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from helpers_runs import write_run

from clipxai.analysis.check import synthetic
from clipxai.analysis.motion.verdict import VERDICTS
from clipxai.cli.commands import main
from clipxai.runs.summary import SCHEMA

FAST = ["--projection", "pca", "--no-labels", "--no-gif", "-q"]


def tree(path: Path) -> dict:
    """Content hash of every file of a run folder outside analysis/."""
    return {p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file() and "analysis" not in p.relative_to(path).parts}


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """A run of 200 snapshots switching among 3 planted states, analysed once."""
    rng = np.random.default_rng(5)
    traj = synthetic.planted_states(rng, n=200, k=3, dim=64, mean_dwell=12, min_dwell=4, noise=0.4)
    path = write_run(tmp_path_factory.mktemp("runs"), "switching", traj=traj)
    before = tree(path)
    assert main(["analyze", str(path), "--projection", "pca", "--no-labels", "-q"]) == 0
    summary = json.loads((path / "analysis" / "summary.json").read_text(encoding="utf-8"))
    return path, traj, summary, before


def test_summary_holds_the_documented_fields(analysed):
    path, traj, s, _ = analysed
    assert s["schema"] == SCHEMA
    assert s["n_snapshots"] == 200 and len(s["states"]) == 200 and len(s["steps"]) == 200
    assert s["n_states"] == traj.n_states == 3
    assert s["switches"] == int(np.sum(np.diff(s["states"]) != 0))
    rate = s["switch_rate_per_100_steps"]
    assert rate["value"] == pytest.approx(100 * s["switches"] / (s["steps"][-1] - s["steps"][0]))
    assert rate["ci95"][0] <= rate["value"] <= rate["ci95"][1]
    assert set(s["dwell_steps"]) == {"0", "1", "2"}
    for d in s["dwell_steps"].values():
        assert d["q25"] <= d["median"] <= d["q75"] and d["iqr"] == pytest.approx(d["q75"] - d["q25"])
    assert s["verdict"] in VERDICTS and s["verdict"] in ("metastable_switching", "periodic_oscillation")
    assert s["verdict_reason"].endswith(".")
    assert s["analysis"]["clustering"]["selection"] == "silhouette"
    # the recovered switch points are the planted ones
    found = np.flatnonzero(np.diff(s["states"]) != 0) + 1
    assert synthetic.switch_f1(traj.switch_indices, found) >= 0.9


def test_every_listed_figure_exists_and_states_csv_matches(analysed):
    path, _, s, _ = analysed
    folder = path / "analysis"
    expected = {"states", "dwell_survival", "transitions", "switch_rate_windows", "recurrence", "model_selection",
                "trajectory_pca", "dynamics", "loss_terms", "gradient", "activations", "contact_sheet",
                "state_thumbnails", "animation"}
    assert expected <= set(s["figures"])
    # one prompt: its similarity is the per-step chart's series, so it is not drawn a second time
    assert "similarity" not in s["figures"] and "per-step chart" in s["figures_skipped"]["similarity"]
    for rel in s["figures"].values():
        assert (folder / rel).is_file() and (folder / rel).stat().st_size > 1000
    assert (folder / s["figures"]["animation"]).read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    rows = (folder / "states.csv").read_text().splitlines()
    assert rows[0] == "snapshot,step,cluster,state" and len(rows) == 201
    assert [int(r.split(",")[3]) for r in rows[1:]] == s["states"]


def test_summary_and_text_give_the_states_and_the_per_step_dynamics_side_by_side(analysed):
    path, _, s, _ = analysed
    d = s["dynamics"]
    assert d["signal"] == "sim/❤️" and d["logged_steps"] == 200 and d["snapshot_interval"] == 10
    for key in ("cycling", "events", "mean_spacing_steps", "spacing_cv", "amplitude", "p_value",
                "snapshot_aliasing", "reason"):
        assert key in d
    assert d["cycling"] is False  # the helper logs a smooth tanh climb at every snapshot
    assert "dynamics" in s["figures"]
    from clipxai.cli.analysis import describe
    from clipxai.runs.load import load_run
    text = describe(s)
    assert f"why: {s['verdict_reason']}" in text and f"per step: not cycling. {d['reason']}" in text
    assert load_run(path).metrics()  # the dynamics came from metrics.jsonl


def test_analysis_writes_nothing_outside_its_folder(analysed):
    path, _, _, before = analysed
    assert tree(path) == before


def test_a_run_still_running_is_analysed_on_its_recorded_rows(tmp_path):
    path = write_run(tmp_path, n=90, recorded=60, status="running")
    assert main(["analyze", str(path), *FAST]) == 0
    s = json.loads((path / "analysis" / "summary.json").read_text())
    assert s["n_snapshots"] == 60 and s["run"]["status"] == "running"


def test_legacy_folder_is_analysed_and_charted(tmp_path):
    from test_original_layout import write_legacy

    folder = write_legacy(tmp_path / "old", steps=list(range(0, 240, 10)), layers=(4, 9))
    assert main(["analyze", str(folder), "--projection", "pca", "--no-labels", "-q"]) == 0
    s = json.loads((folder / "analysis" / "summary.json").read_text())
    assert s["run"]["layout"] == "legacy" and s["analysis"]["features"] == "activations:layer9"
    assert s["n_snapshots"] == 24 and s["steps"][:3] == [0, 10, 20] and s["steps"][-1] == 230
    assert s["n_states"] == 2  # the fixture's activations alternate between two levels every 4 snapshots
    for name in ("activations", "gradient", "contact_sheet", "animation"):
        assert (folder / "analysis" / s["figures"][name]).is_file()
    assert s["activations"]["layers"] == ["layer4", "layer9"]


def test_labels_and_concepts_name_the_planted_words(tmp_path, tiny_clip):
    """States planted at the text embeddings of three words get those words as labels."""
    from clipxai.analysis.words.vocab import vocabulary_embeddings

    words = ["red", "heart", "ring", "green", "mouth", "hands", "love"]
    planted = ["red", "heart", "ring"]
    centers = vocabulary_embeddings(tiny_clip, planted, cache_dir=tmp_path / "cache").numpy()
    traj = synthetic.planted_states(np.random.default_rng(1), n=150, mean_dwell=12, noise=0.15, centers=centers)
    path = write_run(tmp_path, "words", traj=traj, model="random:tiny")
    vocab = tmp_path / "words.txt"
    vocab.write_text("\n".join(words) + "\n")
    rc = main(["analyze", str(path), "--projection", "pca", "--no-gif", "-q", "--vocab", str(vocab), "--vocab-only",
               "--concepts", "red,heart,ring", "--top-words", "3"])
    assert rc == 0
    s = json.loads((path / "analysis" / "summary.json").read_text())
    states = np.array(s["states"])
    for st in range(s["n_states"]):
        truth = planted[np.bincount(traj.states[states == st]).argmax()]
        assert s["labels"]["states"][str(st)][0]["word"] == truth
        assert s["concepts"]["top_concept_by_state"][str(st)] == truth
        rep = s["representatives"][str(st)]["snapshot"]  # and its most typical snapshot, on its own
        assert s["labels"]["snapshots"][str(rep)][0]["word"] == planted[traj.states[rep]]
    assert "concepts" in s["figures"]


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("not_a_run", "is not a clipxai run"),
    ("empty", "no snapshots yet"),
    ("one", "only 1 snapshot(s)"),
    ("two", "only 2 snapshot(s)"),
    ("nan", "NaN or infinite embeddings"),
    ("mismatch", "'embeddings' has 10 rows but the run records 30"),
    ("short_images", "'images' has 12 rows but the run records 30"),
    ("layer", "no layer 'resblocks.99'"),
    ("vocab_empty", "holds no words"),
    ("vocab_binary", "binary file"),
])
def test_bad_input_is_one_sentence_and_changes_nothing(tmp_path, capsys, case, message):
    args = ["--projection", "pca", "--no-gif", "-q"]
    if case == "missing":
        path = tmp_path / "nothing-here"
    elif case == "not_a_run":
        path = tmp_path / "plain"
        path.mkdir()
        (path / "notes.txt").write_text("hello")
    else:
        path = write_run(tmp_path, n=30, recorded={"empty": 0, "one": 1, "two": 2}.get(case))
    if case == "nan":
        np.load(path / "snapshots" / "embeddings.npy", mmap_mode="r+")[4, :3] = np.nan
    if case == "mismatch":
        np.save(path / "snapshots" / "embeddings.npy", np.ones((10, 64), np.float32))
    if case == "short_images":
        np.save(path / "snapshots" / "images.npy", np.zeros((12, 3, 16, 16), np.float16))
    if case == "layer":
        args += ["--features", "activations:resblocks.99"]
    if case.startswith("vocab"):
        vocab = tmp_path / "vocab.txt"
        vocab.write_bytes(b"\n# nothing\n" if case == "vocab_empty" else b"\x89PNG\x00\x00binary")
        args += ["--vocab", str(vocab)]
    else:
        args += ["--no-labels"]
    before = tree(path) if path.exists() else None
    rc = main(["analyze", str(path), *args])
    err = capsys.readouterr().err.strip()
    assert rc != 0
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert len(err.splitlines()) == 1
    if before is not None:
        assert tree(path) == before
        assert not (path / "analysis").exists()


def test_bad_options_are_usage_errors(tmp_path, capsys):
    path = write_run(tmp_path, n=30)
    assert main(["analyze", str(path), "--k", "zero"]) == 2
    assert main(["analyze", str(path), "--projection", "pca,mds"]) == 2
    assert "mds" in capsys.readouterr().err
