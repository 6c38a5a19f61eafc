"""Runs made by clipxai before the engine redesign (format 1, tests/data/runs-format1).

Today's engine must reproduce them from the same commands, and every format-1 run must still
load, resume, analyse and report. The commands are those of tests/data/make_runs_format1.py.

The references were computed on another machine. What does not depend on float rounding
(array names, shapes, dtypes, row counts, snapshot steps, manifests) must match exactly; the
float arrays must match within ``RTOL``, a relative RMS error per array. Why that number:
float rounding differs from one CPU to another in the last bits, and the ascent carries those
differences forward. Measured on the toy run and the tiny runs (20 and 12 steps), rounding-level
changes (another thread count, the learning rate times 1 + 1e-6) move every array by at most
2e-5 of its norm; a real change of the recipe (the learning rate times 1.001, tv 0.55 for 0.5)
moves at least one array by more than 5e-3 and the embeddings by more than 8e-4.
``test_the_tolerance_admits_rounding_and_rejects_a_real_change`` keeps both sides of that
margin under test. Bit-for-bit checks are made where both sides are computed here: resume
against an uninterrupted run (test_interrupt.py), the original recipe against its
re-implementation (test_original_recipe.py).
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import clipxai
from clipxai.cli.commands import main
from clipxai.runs.load import load_run

REFERENCE = Path(__file__).parent / "data" / "runs-format1"


RTOL = 1e-4  # relative RMS error per float array: 5x the rounding-level changes measured above


def relative_error(new: np.ndarray, old: np.ndarray) -> float:
    """|new - old| / |old| in the Frobenius norm, computed in float64."""
    new, old = new.astype(np.float64), old.astype(np.float64)
    return float(np.linalg.norm(new - old) / max(np.linalg.norm(old), np.finfo(np.float64).tiny))


def assert_same_arrays(new, old, rtol: float = RTOL):
    """Exact where rounding cannot reach (names, rows, shapes, dtypes, steps), within rtol elsewhere."""
    assert sorted(new.array_names()) == sorted(old.array_names())
    assert new.n == old.n
    for name in old.array_names():
        a, b = new.array(name), old.array(name)
        assert a.shape == b.shape and a.dtype == b.dtype, name
        if not np.issubdtype(b.dtype, np.floating):
            np.testing.assert_array_equal(a, b, err_msg=name)
            continue
        assert np.isfinite(a).all(), name
        error = relative_error(a, b)
        assert error <= rtol, f"{name}: relative error {error:.2e} > {rtol:.0e}"


def test_reference_runs_are_format_1():
    for folder in REFERENCE.iterdir():
        if folder.is_dir():
            assert json.loads((folder / "run.json").read_text())["format_version"] == 1


def test_default_preset_reproduces_the_reference(tmp_path):
    runs = clipxai.ascend("a red heart|text:-0.5", model="random:tiny", steps=12, snapshot_every=4, cutouts=2,
                          seeds=2, seed=3, name="tiny-default", quiet=True, out=str(tmp_path))
    for run in runs:
        assert_same_arrays(run, load_run(REFERENCE / run.path.name))
    fourier = clipxai.ascend("a red heart", model="random:tiny", steps=8, snapshot_every=4, cutouts=2,
                             param="fourier", name="tiny-fourier", quiet=True, out=str(tmp_path))
    assert_same_arrays(fourier[0], load_run(REFERENCE / "tiny-fourier"))


def test_toy_run_from_the_command_line_reproduces_the_reference(tmp_path):
    code = main(["ascend", "❤️", "--model", "toy", "--steps", "20", "--snapshot-every", "5", "--init-tint", "0.2",
                 "--tv", "0.5", "--name", "toy-default", "--out", str(tmp_path), "--quiet"])
    assert code == 0
    assert_same_arrays(load_run(tmp_path / "toy-default"), load_run(REFERENCE / "toy-default"))


def test_format_1_run_resumes_to_the_reference_and_becomes_format_2(tmp_path):
    run_dir = tmp_path / "toy-interrupted"
    shutil.copytree(REFERENCE / "toy-interrupted", run_dir)
    before = load_run(run_dir)
    assert before.status == "interrupted" and before.n == 2
    assert before.option("steps") == 20 and before.option("init_tint") == 0.2 and before.option("cutouts") == 8
    resumed = clipxai.ascend(resume=run_dir, quiet=True)[0]
    assert resumed.status == "complete"
    assert_same_arrays(resumed, load_run(REFERENCE / "toy-default"))
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["format_version"] == 2 and manifest["config"]["optim"]["steps"] == 20
    assert [m["step"] for m in resumed.metrics()] == list(range(20))


def _toy_run(tmp_path, name, *extra):
    code = main(["ascend", "❤️", "--model", "toy", "--steps", "20", "--snapshot-every", "5", "--init-tint", "0.2",
                 "--tv", "0.5", "--name", name, "--out", str(tmp_path), "--quiet", *extra])
    assert code == 0
    return load_run(tmp_path / name)


def test_the_tolerance_admits_rounding_and_rejects_a_real_change(tmp_path):
    reference = load_run(REFERENCE / "toy-default")
    # A rounding-level change that every CPU makes the same way: the arrays differ, within RTOL.
    rounded = _toy_run(tmp_path, "rounded", "--lr", repr(0.05 * (1 + 1e-6)))
    assert any(not np.array_equal(rounded.array(n), reference.array(n)) for n in reference.array_names())
    assert_same_arrays(rounded, reference)
    # Another thread count changes how sums are split (on this CPU or not): still within RTOL.
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        runs = clipxai.ascend("a red heart|text:-0.5", model="random:tiny", steps=12, snapshot_every=4, cutouts=2,
                              seeds=2, seed=3, name="tiny-default", quiet=True, out=str(tmp_path))
    finally:
        torch.set_num_threads(threads)
    for run in runs:
        assert_same_arrays(run, load_run(REFERENCE / run.path.name))
    # A real change of the recipe, a thousandth of the learning rate, is caught.
    changed = _toy_run(tmp_path, "changed", "--lr", repr(0.05 * 1.001))
    with pytest.raises(AssertionError, match="relative error"):
        assert_same_arrays(changed, reference)


@pytest.mark.parametrize("name", ["toy-default", "tiny-default-seed3"])
def test_format_1_runs_analyse_and_report(tmp_path, name, capsys):
    run_dir = tmp_path / name
    shutil.copytree(REFERENCE / name, run_dir)
    assert main(["analyze", str(run_dir), "--projection", "pca", "--no-gif", "--no-labels", "-q"]) == 0
    assert (run_dir / "analysis" / "summary.json").is_file()
    assert main(["report", str(run_dir), "-o", str(tmp_path / "report.html"), "-q"]) == 0
    assert "tiny-default" in (tmp_path / "report.html").read_text() or name == "toy-default"
