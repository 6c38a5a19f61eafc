"""`clipxai runs`: names that paste into the other commands, a next command that works for that run,
damaged runs listed as corrupt among the others, ensembles by their models."""

import json
import shlex

import pytest
from helpers_runs import write_run

import clipxai
from clipxai.ascent.engine import Callback
from clipxai.cli.commands import main
from clipxai.cli.runlist import pasteable

FAST = ["--projection", "pca", "--no-labels", "--no-gif", "-q"]


class StopAfter(Callback):
    """Asks the engine to stop after step ``index`` (as Ctrl-C does): the run is left interrupted."""

    def __init__(self, index: int):
        self.index = index

    def on_step_end(self, engine, step):
        if step.index == self.index:
            engine.request_stop("test")


def _listing(args, capsys) -> tuple[list[str], str]:
    assert main(["runs", *args]) == 0
    out, err = capsys.readouterr()
    return out.strip().splitlines(), err


def _advice(err: str) -> str:
    return err.strip().splitlines()[-1]


def _command(advice: str, verb: str) -> list[str]:
    """The command a line of advice offers (``clipxai <verb> ...``), as arguments for ``main``."""
    words = shlex.split(advice[advice.index(f"clipxai {verb}"):].split(" (or ")[0])
    assert words[0] == "clipxai"
    return words[1:]


def test_names_paste_relative_under_the_current_folder_and_absolute_elsewhere(tmp_path, monkeypatch, capsys):
    write_run(tmp_path / "runs" / "heart", "heart-seed0", n=30)
    write_run(tmp_path / "runs", "two words", n=30)
    monkeypatch.chdir(tmp_path)
    lines, err = _listing(["runs"], capsys)
    names = [line.split("  ")[0].strip() for line in lines[1:]]
    assert sorted(names) == ["'runs/two words'", "runs/heart/heart-seed0"]
    for name in names:   # each name, pasted, is a run to analyze
        assert main(["analyze", *shlex.split(name), *FAST]) == 0
    capsys.readouterr()
    monkeypatch.chdir(tmp_path / "runs" / "heart")
    lines, _ = _listing([str(tmp_path / "runs")], capsys)
    assert sorted(line.split("  ")[0].strip() for line in lines[1:]) == sorted([
        "heart-seed0", shlex.quote(str(tmp_path / "runs" / "two words"))])
    assert pasteable(tmp_path / "a" / ".." / "b", cwd=tmp_path) == "b" and pasteable(tmp_path, cwd=tmp_path) == "."


def test_a_run_too_short_to_analyze_is_never_told_to_report(tmp_path, capsys):
    write_run(tmp_path, "short", n=10, recorded=2)
    lines, err = _listing([str(tmp_path)], capsys)
    advice = _advice(err)
    assert "clipxai report" not in advice and "2 snapshot(s), too few to analyze" in advice and "at least 3" in advice
    assert main(["runs", str(tmp_path), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["next"] is None
    assert main(["report", str(tmp_path / "short"), "-o", str(tmp_path / "r.html"), *FAST]) == 2   # as said
    write_run(tmp_path, "enough", n=10, recorded=3)
    advice = _advice(_listing([str(tmp_path / "enough")], capsys)[1])
    assert "clipxai report" in advice


def test_an_interrupted_ensemble_is_offered_resume_then_report_and_both_work(tmp_path, capsys):
    [run] = clipxai.ascend("❤️", model=["toy", "toy-b:0.5"], steps=30, snapshot_every=10, out=str(tmp_path),
                           name="pair", quiet=True, callbacks=[StopAfter(1)])
    assert run.status == "interrupted" and run.n == 1
    lines, err = _listing([str(tmp_path)], capsys)
    assert lines[1].split()[1:4] == ["interrupted", "❤️", "toy"] and "toy + toy-b:0.5" in lines[1]
    # the same words in run.json and the viewer's facts
    from clipxai.view.catalog import run_facts
    assert json.loads((run.path / "run.json").read_text())["model_label"] == "toy + toy-b:0.5"
    assert run_facts(clipxai.load_run(run.path))["model"] == "toy + toy-b:0.5" == clipxai.load_run(run.path).model_label
    advice = _advice(err)
    assert "clipxai report" not in advice and "continue it with: clipxai ascend --resume" in advice
    assert main(_command(advice, "ascend") + ["--quiet"]) == 0
    capsys.readouterr()
    lines, err = _listing([str(tmp_path)], capsys)
    assert "complete" in lines[1] and "30/30" in lines[1]
    report = _command(_advice(err), "report")
    assert report[-1] == "--open"
    assert main(["analyze", report[1], *FAST]) == 0   # the run it names can be analyzed now


def test_corrupt_run_json_is_listed_with_why_and_the_others_still_are(tmp_path, capsys):
    good = write_run(tmp_path, "good", n=30)
    bad = {"deep": "[" * 100_000, "word": '{"format_version": 2, "n_snapshots": "x"}',
           "nan": '{"format_version": 2, "status": "complete", "n_snapshots": NaN}', "cut": '{"format_version": 2, "st'}
    for name, text in bad.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text(text)
    lines, err = _listing([str(tmp_path)], capsys)
    status = {line.split()[0].rsplit("/", 1)[-1]: line.split()[1] for line in lines[1:]}
    assert status == {"good": "complete", "deep": "corrupt", "word": "corrupt", "nan": "corrupt", "cut": "corrupt"}
    assert "nested too deeply" in err and "its n_snapshots is 'x'" in err and "its n_snapshots is NaN" in err
    assert f"corrupt: {tmp_path / 'cut'}: run.json is not JSON" in err
    assert main(["runs", str(tmp_path), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["good"]["path"] == str(good) and rows["good"]["next"] == f"clipxai report {good} --open"
    assert rows["word"]["status"] == "corrupt" and "n_snapshots" in rows["word"]["problem"]
    assert rows["word"]["next"] is None


def test_the_newest_run_decides_the_advice_even_when_corrupt(tmp_path, capsys):
    write_run(tmp_path, "good", n=30)
    (tmp_path / "zz").mkdir()
    (tmp_path / "zz" / "run.json").write_text('{"format_version": 2, "n_snapshots": -3}')
    advice = _advice(_listing([str(tmp_path)], capsys)[1])
    assert "corrupt" in advice and "clipxai report" not in advice and "n_snapshots is -3" in advice


@pytest.mark.parametrize("weights,shown", [((1.0, 0.5), "toy + toy-b:0.5"), ((2.0, 1.0), "toy:2 + toy-b")])
def test_an_ensemble_shows_every_model_and_its_weight(tmp_path, capsys, weights, shown):
    path = write_run(tmp_path, "pair", n=30)
    manifest = json.loads((path / "run.json").read_text())
    manifest["models"] = [{"name": n, "label": n, "weight": w, "array": a}
                          for n, w, a in zip(("toy", "toy-b"), weights, ("embeddings", "embeddings/toy-b"))]
    (path / "run.json").write_text(json.dumps(manifest))
    lines, _ = _listing([str(tmp_path)], capsys)
    assert shown in lines[1] and "random:tiny" not in lines[1]
