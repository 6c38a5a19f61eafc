"""The typed Summary (clipxai.runs.summary): the fields of a real analysis, and plain defaults where a
summary written by another version lacks a field or holds something else there."""

import json
import shutil

import pytest

from clipxai.cli.commands import main
from clipxai.report.findings import finding
from clipxai.report.sections import _numbers
from clipxai.runs.load import load_run
from clipxai.runs.summary import Summary, load_summary, read_summary


@pytest.fixture(scope="module")
def analysed(synthetic_analysed):
    """The session's synthetic run of 60 snapshots, analysed with two concepts (tests/conftest.py): read only."""
    return load_run(synthetic_analysed)


def test_a_real_summary_reads_through_its_fields(analysed):
    raw = read_summary(analysed)
    s = load_summary(analysed)
    assert isinstance(s, Summary) and s.data == raw and Summary.of(s) is s and Summary.of(raw).data is raw
    assert read_summary(analysed.path) == raw          # a run folder's path reads the same file
    assert s.verdict == raw["verdict"] and s.verdict_reason == raw["verdict_reason"]
    assert (s.n_states, s.switches, s.returns, s.n_snapshots) == (raw["n_states"], raw["switches"], raw["returns"], 60)
    assert s.steps == raw["steps"] and s.states == raw["states"] and len(s.states) == 60
    assert s.state_by_step == dict(zip(raw["steps"], raw["states"]))
    assert s.switch_rate["value"] == raw["switch_rate_per_100_steps"]["value"]
    assert s.dwell == raw["dwell_steps_all"] and set(s.dwell_by_state) == {str(i) for i in range(s.n_states)}
    assert s.windows == raw["windows"] and len(s.windows) == 3
    assert s.dynamics == raw["dynamics"] and s.dynamics["signal"].startswith("sim/")
    assert s.figures == raw["figures"] and "states" in s.figures
    assert s.representatives == {k: v["snapshot"] for k, v in raw["representatives"].items()}
    for state in s.worded_states:
        assert s.words(state) == [w["word"] for w in raw["labels"]["states"][state]]
        assert s.words(int(state), 2) == s.words(state)[:2]
    assert s.worded_states and s.top_concepts == raw["concepts"]["top_concept_by_state"]
    assert set(s.top_concepts.values()) <= {"a red heart", "a gold ring"}
    assert s.clustering["k"] == raw["analysis"]["clustering"]["k"] and s.options == raw["analysis"]["options"]
    assert s.thresholds == raw["analysis"]["thresholds"] and s.run["path"] == str(analysed.path)
    assert s.created == raw["created"] and s.clipxai_version == raw["clipxai_version"]


def test_missing_and_foreign_fields_read_as_plain_defaults():
    empty = Summary({})
    assert (empty.verdict, empty.n_states, empty.switches, empty.dynamics, empty.concepts) == (None,) * 5
    assert (empty.steps, empty.states, empty.windows, empty.notes, empty.worded_states) == ([],) * 5
    assert (empty.figures, empty.representatives, empty.switch_rate, empty.clustering) == ({},) * 4
    assert Summary(None).data == {} and empty.words(0) == [] and empty.opinion(0) is None
    odd = Summary({"verdict": 3, "n_states": "2", "switches": True, "steps": [0, "10", 20], "states": [0, 1, 1],
                   "dynamics": [], "figures": {"states": "figures/states.png", "bad": 3}, "notes": "one",
                   "representatives": {"0": {"snapshot": "x"}, "1": {"snapshot": 4}, "2": 5},
                   "labels": {"states": {"0": [{"word": "mouth"}, {"similarity": 0.2}, "ring"], "1": "x"}}})
    assert (odd.verdict, odd.n_states, odd.switches, odd.dynamics) == (None, None, None, None)
    assert odd.steps == [] and odd.states == [0, 1, 1] and odd.state_by_step == {0: 0, 20: 1}
    assert odd.figures == {"states": "figures/states.png"} and odd.representatives == {"1": 4}
    assert odd.words(0) == ["mouth"] and odd.worded_states == ["0"] and odd.notes == []


def test_findings_and_the_numbers_table_survive_an_old_summary():
    old = {"verdict": "converging", "n_states": 1, "switches": 0, "states": [0, 0], "steps": [0, 10]}
    assert finding("seed 0", old) == "seed 0 settled on one state, state 0; its per-step similarity was not logged."
    table = dict(_numbers(old))
    assert table["snapshots"] == "None (steps 0-10)" and table["switch rate per 100 steps (95% CI)"] == "n/a (n/a-n/a)"


def test_a_report_of_a_summary_that_lacks_fields_is_still_written(analysed, tmp_path):
    run = shutil.copytree(analysed.path, tmp_path / "old")   # its summary is rewritten: a copy
    file = run / "analysis" / "summary.json"
    data = json.loads(file.read_text(encoding="utf-8"))
    for key in ("dynamics", "figures_skipped", "windows", "representatives", "labels", "dwell_steps_all"):
        data.pop(key)
    file.write_text(json.dumps(data), encoding="utf-8")
    out = tmp_path / "report.html"
    assert main(["report", str(run), "-o", str(out), "--no-labels", "-q"]) == 0
    text = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "this summary predates the per-step dynamics" in text
    assert "| dwell, median (IQR) in steps | n/a (n/a) |" in text


def test_the_viewer_hands_out_a_summary(analysed):
    pytest.importorskip("starlette")
    from clipxai.view.catalog import Catalog
    from clipxai.view.summary import analysis_view

    catalog = Catalog(analysed.path.parent.resolve())
    s = catalog.summary(catalog.run(analysed.path.name))
    assert isinstance(s, Summary) and s.verdict == read_summary(analysed)["verdict"]
    view = analysis_view(s, list(s.steps) + [10_000])
    assert view["states"] == s.states + [None] and view == analysis_view(s.data, list(s.steps) + [10_000])
    assert catalog.rows()[0]["verdict"] == s.verdict
