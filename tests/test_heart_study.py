"""``analysis/heart_study.py --model MODEL --judge MODEL...``: the heart study's plumbing on tiny models.

A random tiny CLIP (32 px) ascends two short conditions, the bundled ``toy`` (64 px) judges; the
script must write the report naming them, judge every final image with the trust checks (the numbers
``clipxai evaluate`` gives), keep a section of the old report it does not write, and refuse a judge
this machine does not have in one sentence before any ascent.
"""

import importlib.util
import json
from pathlib import Path

import pytest

import clipxai
from clipxai.models.load import load_clip

SCRIPT = Path(__file__).resolve().parents[1] / "analysis" / "heart_study.py"
KEPT = "## Which components make the states (`clipxai explain`)"


def _script():
    spec = importlib.util.spec_from_file_location("heart_study_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("heart-study")
    out = root / "out"
    out.mkdir()
    (out / "heart.md").write_text(f"# old\n\n## The answer\n\nold words\n\n{KEPT}\n\nkept by hand\n\n"
                                  "## Is it really there? (`clipxai evaluate`)\n\nold trust\n", encoding="utf-8")
    args = ["--model", "random:tiny", "--judge", "toy", "--seeds", "2", "--steps", "30",
            "--conditions", "original,default", "--out", str(out), "--runs", str(root / "runs")]
    with pytest.MonkeyPatch.context() as mp:  # the analysis' own figures are tested elsewhere
        mp.setattr("clipxai.analysis.draw.figures.draw_all", lambda analysis, folder: ({}, {}))
        assert _script().main(args) == 0
    return out, root / "runs"


def test_the_report_names_the_models_and_keeps_what_it_does_not_write(study):
    out, _ = study
    md = (out / "heart.md").read_text(encoding="utf-8")
    assert md.startswith("<!-- written by analysis/heart_study.py") and "# Does `random:tiny` settle" in md
    assert "--model random:tiny --judge toy" in md and "`random:tiny` ascends, `toy` judges" in md
    assert "old words" not in md and "old trust" not in md
    assert md.count(KEPT) == 1 and "kept by hand" in md
    assert md.index("## Every seed") < md.index(KEPT) < md.index("## Is it really there?")
    trust = md.split("## Is it really there?", 1)[1]
    assert "| `original` | " in trust and "| `default` | " in trust and "judged by `toy`" in trust
    for name in ("heart/finals.png", "heart/similarity.png", "heart/controls.png"):
        assert (out / name).is_file()


def test_every_final_image_is_judged_with_the_trust_checks(study):
    out, runs = study
    data = json.loads((out / "heart" / "heart_study.json").read_text(encoding="utf-8"))
    assert data["model"] == "random:tiny" and data["judges"] == ["toy"]
    tiny, toy = load_clip("random:tiny", "cpu"), load_clip("toy", "cpu")
    for slug in ("original", "default"):
        cond = data["conditions"][slug]
        assert len(cond["seeds"]) == 2
        assert cond["trust"]["trusted"] == sum(s["trust"]["trusted"] for s in cond["seeds"])
    seed = data["conditions"]["default"]["seeds"][1]
    final = clipxai.evaluate(seed["path"], judges=[toy], model=tiny)["final"]
    t = seed["trust"]
    assert t["judges"]["toy"]["z"] == pytest.approx(final["judges"]["toy"]["z"], abs=1e-5)
    assert t["robustness_min"] == pytest.approx(final["robustness_min"], abs=1e-5)
    assert (t["trusted"], t["flags"]) == (final["trusted"], final["flags"])


def test_a_judge_this_machine_lacks_is_one_sentence_before_any_ascent(tmp_path, capsys):
    runs = tmp_path / "runs"
    rc = _script().main(["--model", "random:tiny", "--judge", "no-such-model", "--seeds", "1", "--steps", "30",
                         "--conditions", "default", "--out", str(tmp_path / "out"), "--runs", str(runs)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error:") and "no-such-model" in err and "\n" not in err, err
    assert not runs.exists() and not (tmp_path / "out").exists()
