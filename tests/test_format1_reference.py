"""Runs made by clipxai before the engine redesign (format 1, tests/data/runs-format1).

Today's engine must reproduce them bit for bit on CPU from the same commands, and every
format-1 run must still load, resume (bit-identical to the uninterrupted run), analyse and
report. The commands are those of tests/data/make_runs_format1.py.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import clipxai
from clipxai.cli import main
from clipxai.runs import load_run

REFERENCE = Path(__file__).parent / "data" / "runs-format1"


def assert_same_arrays(new, old):
    assert sorted(new.array_names()) == sorted(old.array_names())
    assert new.n == old.n
    for name in old.array_names():
        np.testing.assert_array_equal(new.array(name), old.array(name), err_msg=name)


def test_reference_runs_are_format_1():
    for folder in REFERENCE.iterdir():
        if folder.is_dir():
            assert json.loads((folder / "run.json").read_text())["format_version"] == 1


def test_default_preset_reproduces_the_reference_bit_for_bit(tmp_path):
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


def test_format_1_run_resumes_bit_identical_and_becomes_format_2(tmp_path):
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


@pytest.mark.parametrize("name", ["toy-default", "tiny-default-seed3"])
def test_format_1_runs_analyse_and_report(tmp_path, name, capsys):
    run_dir = tmp_path / name
    shutil.copytree(REFERENCE / name, run_dir)
    assert main(["analyze", str(run_dir), "--projection", "pca", "--no-gif", "--no-labels", "-q"]) == 0
    assert (run_dir / "analysis" / "summary.json").is_file()
    assert main(["report", str(run_dir), "-o", str(tmp_path / "report.html"), "-q"]) == 0
    assert "tiny-default" in (tmp_path / "report.html").read_text() or name == "toy-default"
