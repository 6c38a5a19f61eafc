"""``clipxai evaluate RUN...``, ``clipxai.evaluate`` and the report's "Is it really there?" section, on a short toy run.

The run is the toy CLIP's "❤️" ascent (a few steps). The checks read evaluation.json against the
interface, recompute the final image's and a state's numbers from the models themselves, and feed
the command bad input, which must cost one sentence, exit 2 and write nothing.
"""

import json
import shutil

import numpy as np
import pytest
import torch
from helpers_runs import write_run
from PIL import Image

import clipxai
from clipxai.analysis.trust.judges import image_embeddings, text_embeddings
from clipxai.analysis.trust.perturb import PERTURBATIONS
from clipxai.analysis.trust.run import PER_STATE, default_judges, state_groups
from clipxai.cli.commands import main
from clipxai.models.load import load_clip
from clipxai.prompts import load_image
from clipxai.runs.load import open_run
from clipxai.toy import world

FIELDS = ("judges", "transfer_rate", "agreement", "robustness", "robustness_min", "pathway", "pathway_max",
          "written", "is_written", "sparse_reading", "clipscore", "verdict")


@pytest.fixture(scope="module")
def heart(toy_heart_analysed, tmp_path_factory):
    """A toy "❤️" run analysed (the session's, copied) and evaluated again by the command line; a pristine copy
    without analysis."""
    run, pristine = toy_heart_analysed
    root = tmp_path_factory.mktemp("evaluate")
    shutil.copytree(pristine, root / "pristine")
    path = shutil.copytree(run, root / "heart")
    (path / "analysis" / "evaluation.json").unlink()   # the one the analysis wrote: this is the command's own
    assert main(["evaluate", str(path), "-q"]) == 0
    return path, root


def _evaluation(path):
    return json.loads((path / "analysis" / "evaluation.json").read_text())


def _snapshot_files(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def test_evaluation_json_holds_the_interface_and_its_numbers_are_the_models(heart):
    path, _ = heart
    data = _evaluation(path)
    run = open_run(path)
    summary = json.loads((path / "analysis" / "summary.json").read_text())
    assert data["judges"] == ["toy-b"] == default_judges(run)              # the toy's twin by default
    assert [s["state"] for s in data["states"]] == sorted(set(summary["states"]))
    for e in [data["final"], *data["states"]]:
        assert all(f in e for f in FIELDS)
        assert set(e["judges"]["toy-b"]) >= {"cosine", "z", "reading"}
        assert set(e["robustness"]) == set(PERTURBATIONS)
        assert e["robustness_min"] == min(e["robustness"].values())
        assert e["pathway_max"] == max(e["pathway"].values()) and len(e["pathway"]) == 4
        assert e["transfer_rate"] == float(e["judges"]["toy-b"]["z"] >= 2.0)
        assert e["is_written"] == (e["written"] >= 0)
        assert set(e["sparse_reading"]) >= {"words", "weights", "fidelity"}
        assert len(e["sparse_reading"]["words"]) <= 10 and set(e["sparse_reading"]["words"]) <= set(world.VOCABULARY)
        assert e["clipscore"] == pytest.approx(2.5 * max(e["model"]["cosine"], 0))
    # the final entry is final.png (not the last snapshot), scored by the judge itself
    judge = load_clip("toy-b", "cpu")
    assert data["final"]["source"] == "final.png"
    final = load_image(path / "final.png", tuple(run.images.shape[-2:]))
    cos = float(image_embeddings(judge, final)[0] @ text_embeddings(judge, ["❤️"])[0])
    assert data["final"]["judges"]["toy-b"]["cosine"] == pytest.approx(cos, abs=1e-5)
    # a state's cosine is the mean over the snapshots it names, clipped to [0, 1]
    s = data["states"][0]
    rows = state_groups(run, summary, PER_STATE)[s["state"]]
    assert [int(run.steps[r]) for r in rows] == s["steps"] and s["images"] == len(rows) <= PER_STATE
    images = torch.from_numpy(np.clip(np.asarray(run.images[rows], np.float32), 0, 1))
    mean = float((image_embeddings(judge, images) @ text_embeddings(judge, ["❤️"])[0]).mean())
    assert s["judges"]["toy-b"]["cosine"] == pytest.approx(mean, abs=1e-5)


def test_the_report_shows_each_states_checks_and_verdict(heart, tmp_path):
    path, _ = heart
    out = tmp_path / "report.html"
    assert main(["report", str(path), "-o", str(out), "--projection", "pca", "-q"]) == 0
    html = out.read_text(encoding="utf-8")
    data = _evaluation(path)
    assert "Is it really there?" in html
    assert "robustness_min" in html and "toy-b" in html
    for e in [data["final"], *data["states"]]:
        assert e["verdict"].replace("'", "&#x27;") in html or e["verdict"] in html


def test_the_library_analyses_first_and_takes_judges_labels_and_a_reference(heart, tmp_path):
    _, root = heart
    pristine = root / "pristine"
    ref = tmp_path / "reference"
    ref.mkdir()
    for i, img in enumerate(world.generate(6, 3, concept="none").images):
        Image.fromarray((img.transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(ref / f"{i}.png")
    (pristine / "final.png").unlink()                                        # an interrupted run has none
    data = clipxai.evaluate(pristine, judges=["toy-b", load_clip("random:tiny", "cpu")], reference=ref,
                            labels="a red heart,a gold ring,a pink mouth", per_state=4)
    assert (pristine / "analysis" / "summary.json").is_file()                # analysed first
    assert data == _evaluation(pristine)
    assert data["judges"] == ["toy-b", "random:tiny"] and data["reference"]["kind"] == "folder"
    assert data["reference"]["images"] == 6 and data["labels"] == ["a red heart", "a gold ring", "a pink mouth"]
    assert data["final"]["source"] == "last snapshot"
    assert data["final"]["step"] == int(open_run(pristine).steps[-1])
    for e in [data["final"], *data["states"]]:
        assert set(e["judges"]) == {"toy-b", "random:tiny"}
        assert e["judges"]["toy-b"]["reading"] in data["labels"]
        assert e["images"] <= 4 and len(e["pathway"]) == 4
    shutil.rmtree(pristine / "analysis")


def test_bad_input_is_one_sentence_exit_2_and_writes_nothing(heart, tmp_path, capsys, monkeypatch):
    path, root = heart
    pristine = root / "pristine"
    before, pristine_before = _snapshot_files(path), _snapshot_files(pristine)
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "notes.txt").write_text("not images")
    hollow = write_run(tmp_path, "hollow", n=20, recorded=0, status="running")
    monkeypatch.setenv("CLIPXAI_CLIP_CACHE", str(tmp_path / "no-cache"))
    cases = [
        (["--judge", "no-such-model"], "no-such-model"),
        (["--judge", "ViT-B/32"], "never downloads"),
        (["--reference", str(tmp_path / "missing")], "not a folder of images"),
        (["--reference", str(empty)], "holds no images"),
        (["--labels", "heart"], "two or more different labels"),
        (["--labels", "a,,b"], "two or more different labels"),
        (["--labels", "a,a"], "two or more different labels"),
    ]
    for extra, words in cases:
        capsys.readouterr()
        assert main(["evaluate", str(pristine), str(path), *extra]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and words in err and "\n" not in err and "Traceback" not in err, (extra, err)
    capsys.readouterr()
    assert main(["evaluate", str(pristine), str(hollow)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no snapshots" in err and "\n" not in err
    assert _snapshot_files(path) == before and _snapshot_files(pristine) == pristine_before
    assert not (hollow / "analysis").exists()
