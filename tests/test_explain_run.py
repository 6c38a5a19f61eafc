"""``clipxai explain RUN``, ``analyze --explain``, ``clipxai.explain`` and the report's section, on a short toy run.

The run is the toy CLIP's "❤️" ascent (a few steps); the checks read explain.json against the
interface (sum_error, components, states[top, ablation]), recompute each state's similarity
from the model itself, and feed the commands bad input, which must cost one sentence, exit 2
and write nothing.
"""

import json
import shutil

import numpy as np
import pytest
import torch
from helpers_runs import write_run
from PIL import Image

import clipxai
from clipxai.cli.commands import main
from clipxai.models.components import list_components
from clipxai.models.load import load_clip

FAST = ["--projection", "pca", "--no-gif", "-q"]


@pytest.fixture(scope="module")
def heart(tmp_path_factory):
    """A toy "❤️" run analysed and explained by ``analyze --explain``; a pristine copy without analysis."""
    root = tmp_path_factory.mktemp("explain")
    [run] = clipxai.ascend("❤️", model="toy", steps=40, snapshot_every=2, out=str(root), name="heart", quiet=True)
    shutil.copytree(run.path, root / "pristine")
    assert main(["analyze", str(run.path), "--explain", *FAST]) == 0
    return run.path, root


def _explain_json(path):
    return json.loads((path / "analysis" / "explain.json").read_text())


def test_explain_json_holds_the_interface_and_its_numbers_are_the_models(heart):
    path, _ = heart
    data = _explain_json(path)
    model = load_clip("toy")
    assert data["components"] == list_components(model)
    assert 0 <= data["sum_error"] <= 1e-4
    summary = json.loads((path / "analysis" / "summary.json").read_text())
    states = np.asarray(summary["states"])
    assert [s["state"] for s in data["states"]] == sorted(set(states[states >= 0].tolist()))
    run = clipxai.load_run(path)
    with torch.no_grad():
        emb = model.embed_images(torch.as_tensor(np.asarray(run.images, dtype=np.float32)))
        prompt = model.encode_text(["❤️"]).float()
    cosine = (torch.nn.functional.normalize(emb, dim=-1) @ torch.nn.functional.normalize(prompt, dim=-1).t())[:, 0]
    for s in data["states"]:
        assert s["similarity"] == pytest.approx(float(cosine[states == s["state"]].mean()), abs=1e-4)
        assert len(s["top"]) == 5 and all(set(t) >= {"component", "contribution", "ci95", "words"} for t in s["top"])
        contributions = [t["contribution"] for t in s["top"]]
        assert contributions == sorted(contributions, reverse=True)
        for t in s["top"]:
            assert t["component"] in data["components"] and len(t["words"]) == 5
            assert t["ci95"][0] <= t["contribution"] <= t["ci95"][1]
        a = s["ablation"]
        assert set(a) >= {"k", "drop", "random_drop", "p_value"} and a["k"] == 3 and a["draws"] >= 100
        assert 1 / 101 <= a["p_value"] <= 1 and "embed" not in a["components"]
        # ablated: the k of largest total effect (the toy has 8 heads and MLPs: exact, greedy), estimated
        # on other snapshots of the state than the ones tested; the direct top k are tested beside them
        assert a["ranked_by"] == "total_effect" and a["effect_method"] == "exact" and len(a["effects"]) == 3
        assert a["held_out"] == (s["snapshots"] > 1) and 1 <= a["estimated_on"] <= 8 and 1 <= a["images"] <= 8
        direct = s["ablation_direct"]
        assert direct["ranked_by"] == "direct_contribution" and direct["components"] == [
            t["component"] for t in s["top"] if t["component"] != "embed"][:3]
        assert direct["draws"] <= a["draws"] and (direct["p_value"] is None) == (direct["draws"] == 0)
        assert (path / "analysis" / s["map"]["file"]).is_file() and s["map"]["file"].startswith("figures/")
        grid = np.asarray(s["map"]["grid"])
        assert grid.ndim == 2 and grid.shape[0] == grid.shape[1] and np.isfinite(grid).all()
    assert (path / "analysis" / data["figures"]["top_components"]).is_file()


def test_the_report_shows_each_states_top_components_and_words(heart, tmp_path):
    path, _ = heart
    data = _explain_json(path)
    out = tmp_path / "report.html"
    assert main(["report", str(path), "-o", str(out), "-q"]) == 0
    md = out.with_suffix(".md").read_text()
    assert md.count("What in CLIP makes each state") == 1
    section = md.split("What in CLIP makes each state", 1)[1].split("\n## ", 1)[0]
    for s in data["states"]:
        for t in s["top"]:
            assert f"| {s['state']} | {t['component']} |" in section and ", ".join(t["words"]) in section
        assert f"p = {s['ablation']['p_value']:.3g}" in section
    assert "explain_top" in section and "explain_map_state" in section
    assert "What in CLIP makes each state" in out.read_text()


def test_explain_one_state_as_json_and_through_the_library(heart, capsys):
    path, _ = heart
    state = _explain_json(path)["states"][0]["state"]
    assert main(["explain", str(path), "--state", str(state), "--top", "2", "--json", "-q"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [s["state"] for s in printed["states"]] == [state] and len(printed["states"][0]["top"]) == 2
    assert printed == _explain_json(path)
    data = clipxai.explain(path, top=3, components=["blocks.3.mlp"])
    assert data["states"][0]["asked"][0]["component"] == "blocks.3.mlp" and len(data["states"][0]["top"]) == 3


def test_a_run_without_analysis_is_analysed_first_and_a_reference_folder_is_used(heart, tmp_path, capsys):
    _, root = heart
    run = tmp_path / "fresh"
    shutil.copytree(root / "pristine", run)
    ref = tmp_path / "reference"
    ref.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8)).save(ref / f"{i}.png")
    assert main(["explain", str(run), "--reference", str(ref), "-q"]) == 0
    out = capsys.readouterr().out
    assert "state" in out and "ablating its top 3" in out and "explain.json" in out
    assert (run / "analysis" / "summary.json").is_file()
    assert _explain_json(run)["reference"] == {"kind": "folder", "path": str(ref.resolve()), "images": 4}


def _refused(args, capsys, *needles):
    assert main([*args, "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def test_bad_input_is_one_sentence_and_writes_nothing(heart, tmp_path, capsys, tiny_resnet_module):
    path, root = heart
    run = tmp_path / "untouched"
    shutil.copytree(root / "pristine", run)
    before = sorted(p.name for p in run.rglob("*"))
    resnet = tiny_resnet_module
    rn_file = tmp_path / "tiny-rn.pt"
    torch.save(resnet.state_dict(), rn_file)
    picture = tmp_path / "one.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(picture)
    empty = tmp_path / "empty"
    empty.mkdir()
    _refused(["explain", str(run), "--model", str(rn_file)], capsys, "ResNet")
    _refused(["explain", str(run), "--component", "blocks.9.mlp"], capsys, "blocks.9.mlp", "layer")
    _refused(["explain", str(run), "--component", "nonsense"], capsys, "nonsense")
    _refused(["explain", str(run), "--reference", str(picture)], capsys, "not a folder of images")
    _refused(["explain", str(run), "--reference", str(empty)], capsys, "holds no images")
    _refused(["explain", str(run), "--state", "99"], capsys, "no state 99")
    with pytest.raises(clipxai.ClipxaiError, match="estimated by auto, exact, attribution"):
        clipxai.explain(run, effect_method="guess")
    assert sorted(p.name for p in run.rglob("*")) == before
    explained = (path / "analysis" / "explain.json").read_bytes()
    _refused(["explain", str(path), "--state", "99"], capsys, "no state 99")
    assert (path / "analysis" / "explain.json").read_bytes() == explained
    hollow = write_run(tmp_path, "hollow", n=20, recorded=0, status="running")
    _refused(["explain", str(hollow)], capsys, "no snapshots")
    assert not (hollow / "analysis").exists()
