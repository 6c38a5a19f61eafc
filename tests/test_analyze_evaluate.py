"""``clipxai analyze RUN --evaluate`` and ``analyze_run(..., AnalyzeOptions(evaluate=True))`` on a short toy run.

The evaluation made as a stage of the analysis must be the one ``clipxai evaluate`` makes of the same
analysis (same states, same numbers), reach the report's "Is it really there?" section, and refuse bad
judges and references in one sentence before anything is written.
"""

import json
import shutil

import pytest

import clipxai
from clipxai.analysis.analyze import AnalyzeOptions, analyze_run
from clipxai.analysis.trust.run import SCHEMA
from clipxai.cli.commands import main

FAST = ["--projection", "pca", "--no-gif", "-q"]


@pytest.fixture(scope="module")
def heart(toy_heart_analysed, tmp_path_factory):
    """A toy "❤️" run analysed with ``--evaluate --judge toy-b`` (and ``--explain``; the session's, copied) and a
    pristine copy without analysis."""
    run, pristine = toy_heart_analysed
    root = tmp_path_factory.mktemp("analyze-evaluate")
    shutil.copytree(pristine, root / "pristine")
    return shutil.copytree(run, root / "heart"), root


def _read(path, name):
    return json.loads((path / "analysis" / name).read_text())


def _files(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def test_the_stage_writes_the_evaluation_of_this_analysis(heart):
    path, _ = heart
    summary, data = _read(path, "summary.json"), _read(path, "evaluation.json")
    assert data["schema"] == SCHEMA and data["judges"] == ["toy-b"] and data["model"] == "toy"
    states = sorted({s for s in summary["states"] if s >= 0})
    assert [s["state"] for s in data["states"]] == states
    assert summary["analysis"]["options"]["evaluate"] is True
    assert summary["analysis"]["options"]["judges"] == ["toy-b"]
    # the same analysis evaluated by clipxai evaluate gives the same numbers
    again = clipxai.evaluate(path, judges=["toy-b"])
    for a, b in zip([data["final"], *data["states"]], [again["final"], *again["states"]]):
        assert a["judges"]["toy-b"]["cosine"] == pytest.approx(b["judges"]["toy-b"]["cosine"], abs=1e-6)
        assert a["robustness"] == pytest.approx(b["robustness"], abs=1e-6) and a["verdict"] == b["verdict"]


def test_the_report_shows_the_stages_section(heart, tmp_path):
    path, _ = heart
    out = tmp_path / "report.html"
    assert main(["report", str(path), "-o", str(out), "-q"]) == 0
    md = out.with_suffix(".md").read_text()
    assert md.count("Is it really there?") == 1
    assert _read(path, "evaluation.json")["final"]["verdict"] in md


def test_the_library_stage_takes_the_default_judge(heart, tmp_path, monkeypatch):
    path, root = heart
    run = tmp_path / "fresh"
    shutil.copytree(root / "pristine", run)
    monkeypatch.setattr("clipxai.analysis.draw.figures.draw_all", lambda analysis, folder: ({}, {}))  # not tested here
    opts = AnalyzeOptions(projections=("pca",), gif=False, evaluate=True)
    summary = analyze_run(clipxai.load_run(run), opts)
    data = _read(run, "evaluation.json")
    assert data["judges"] == ["toy-b"] and summary["analysis"]["options"]["judges"] is None
    # the same snapshots and the same analysis as the command line's copy: the same final entry
    a, b = data["final"], _read(path, "evaluation.json")["final"]
    assert a["judges"]["toy-b"]["z"] == pytest.approx(b["judges"]["toy-b"]["z"], abs=1e-6)
    assert a["robustness"] == pytest.approx(b["robustness"], abs=1e-6)
    assert a["pathway"] == pytest.approx(b["pathway"], abs=1e-6) and a["verdict"] == b["verdict"]


def test_a_bad_judge_or_reference_is_one_sentence_and_writes_nothing(heart, tmp_path, capsys):
    _, root = heart
    run = tmp_path / "untouched"
    shutil.copytree(root / "pristine", run)
    before = _files(run)
    empty = tmp_path / "empty"
    empty.mkdir()
    for extra, words in ((["--evaluate", "--judge", "no-such-model"], "no-such-model"),
                         (["--reference", str(empty)], "holds no images"),
                         (["--judge", "no-such-model"], "no-such-model")):
        capsys.readouterr()
        assert main(["analyze", str(run), *extra, *FAST]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and words in err and "\n" not in err and "Traceback" not in err, err
    assert _files(run) == before and not (run / "analysis").exists()
