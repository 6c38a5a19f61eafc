"""One vocabulary (clipxai.util.words): one run shows the same verdict words, with its cycling note,
in 'clipxai runs', the viewer, the report and the atlas."""

import json

import numpy as np
import pytest
from helpers_runs import write_run

from clipxai.analysis.analyze import AnalyzeOptions, analyze_run
from clipxai.analysis.check.planted_series import drop_series
from clipxai.analysis.motion.dynamics import dynamics, dynamics_word
from clipxai.cli.commands import main
from clipxai.runs.load import load_run
from clipxai.runs.summary import Summary
from clipxai.util.words import VERDICT_WORDS, cycling_note, verdict_label, verdict_phrase


def test_the_phrase_is_the_verdict_words_then_the_cycling_note():
    assert verdict_phrase({"verdict": "converging", "n_states": 1}) == VERDICT_WORDS["converging"] == "settled"
    regular = {"cycling": True, "regular": True, "mean_spacing_steps": 11.2}
    irregular = {**regular, "regular": False}
    assert cycling_note(regular) == "drops every ~11 steps"
    assert cycling_note(irregular) == "drops at irregular times, ~11 steps apart on average"
    assert cycling_note({"cycling": False}) == "" and cycling_note(None) == ""
    s = {"verdict": "single_state", "n_states": 1, "dynamics": irregular}
    assert verdict_phrase(s) == "one state, not settled; cycling: drops at irregular times, ~11 steps apart on average"
    assert dynamics_word(irregular) == "cycling: " + cycling_note(irregular)   # the report's per-step column too
    assert verdict_label("single_state", 3) == "drifting, no recurring states"
    assert verdict_phrase(None) == "" and verdict_phrase({}) == ""


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """A run analysed from its snapshots, whose per-step series drops at irregular times."""
    root = tmp_path_factory.mktemp("words") / "runs"
    folder = write_run(root, "cycling")
    s = analyze_run(load_run(folder), AnalyzeOptions(projections=("pca",), labels=False, gif=False, n_boot=20,
                                                     n_surrogates=19))
    series = drop_series(np.random.default_rng(3), timing="poisson", spacing=13)
    dyn = dynamics(series.steps, series.values, snapshot_interval=10, n_surrogates=199)
    assert dyn.cycling and not dyn.regular
    s["dynamics"] = dyn.to_dict()
    (folder / "analysis" / "summary.json").write_text(json.dumps(s), encoding="utf-8")
    phrase = verdict_phrase(s)
    assert "cycling: drops at irregular times" in phrase
    return root, folder, phrase


def test_runs_viewer_report_and_atlas_say_the_same_words(analysed, tmp_path, capsys):
    root, folder, phrase = analysed
    assert main(["runs", str(root)]) == 0
    assert phrase in capsys.readouterr().out

    from starlette.testclient import TestClient  # noqa: PLC0415

    from clipxai.view import create_app  # noqa: PLC0415
    client = TestClient(create_app(root, hosts=("testserver",)))
    [row] = client.get("/api/runs").json()["runs"]
    assert row["verdict_words"] == phrase
    assert client.get(f"/api/run?id={row['id']}").json()["analysis"]["verdict_words"] == phrase   # the run page

    from clipxai.report.report import write_report  # noqa: PLC0415
    html, md = write_report([folder], tmp_path / "report.html")
    assert phrase in md.read_text(encoding="utf-8")

    from clipxai.sweep.atlas import Atlas, AtlasEntry, csv_rows  # noqa: PLC0415
    from clipxai.sweep.atlas_html import render  # noqa: PLC0415
    summary = Summary(json.loads((folder / "analysis" / "summary.json").read_text(encoding="utf-8")))
    entry = AtlasEntry(values={"prompt": "❤️", "seed": 0}, prompt="❤️", seed=0, folder="cycling", status="complete",
                       summary=summary)
    atlas = Atlas(name="w", grid_keys=["prompt", "seed"], spec={}, entries=[entry])
    _, rows = csv_rows(atlas)
    assert rows[0]["verdict_words"] == phrase
    assert phrase in render(atlas)
