"""Sweeps on a local Ray (2 CPUs, started once for the module): the same runs, bit for bit, as on local."""

import json

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'clipxai[sweep]'); "
                                        "the Ray executor is untested")

from clipxai.cli.commands import main  # noqa: E402
from clipxai.runs.load import load_run  # noqa: E402

SPEC = """
name = "grid"
[grid]
prompt = ["❤️", "love"]
seed = [0, 1]
[ascend]
model = "toy"
steps = 9
snapshot_every = 3
cutouts = 2
"""


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


def test_ray_and_local_make_the_same_runs(tmp_path, capsys, local_ray):
    spec = tmp_path / "grid.toml"
    spec.write_text(SPEC, encoding="utf-8")
    assert main(["sweep", str(spec), "--out", str(tmp_path / "local")]) == 0
    assert main(["sweep", str(spec), "--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    err = capsys.readouterr().err
    assert "2 units to do on ray" in err and "4/4 runs complete" in err
    assert ray.is_initialized()                         # a Ray started by the caller is left running
    local, distributed = (json.loads((tmp_path / k / "grid" / "sweep.json").read_text()) for k in ("local", "ray"))
    assert distributed["executor"] == "ray" and distributed["counts"] == {"complete": 4}
    assert [r["folder"] for r in local["rows"]] == [r["folder"] for r in distributed["rows"]]
    for row in local["rows"]:
        a = load_run(tmp_path / "local" / "grid" / row["folder"])
        b = load_run(tmp_path / "ray" / "grid" / row["folder"])
        assert a.array_names() == b.array_names() and a.n == b.n == 3
        for name in a.array_names():
            assert np.array_equal(a.array(name), b.array(name)), f"{row['folder']}: {name} differs"
        assert [m["loss"] for m in a.metrics()] == [m["loss"] for m in b.metrics()]
    # rerunning on Ray finds every run complete and starts nothing
    before = (tmp_path / "ray" / "grid" / local["rows"][0]["folder"] / "run.json").read_text()
    assert main(["sweep", str(spec), "--out", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    assert "0 units to do" in capsys.readouterr().err
    assert (tmp_path / "ray" / "grid" / local["rows"][0]["folder"] / "run.json").read_text() == before


def test_ray_reports_a_failing_run_and_completes_the_others(tmp_path, capsys, local_ray):
    (tmp_path / "nan_term.py").write_text(
        "import torch\n\ndef nan_for_love(step):\n"
        "    bad = any(p.text == 'love' for p in step.prompts)\n"
        "    return torch.full((step.batch,), float('nan') if bad else 0.0)\n")
    spec = tmp_path / "bad.toml"
    spec.write_text(SPEC.replace('name = "grid"', 'name = "bad"')
                    + f'terms = ["{tmp_path / "nan_term.py"}:nan_for_love"]\n', encoding="utf-8")
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--executor", "ray"]) == 1
    err = capsys.readouterr().err
    rows = json.loads((tmp_path / "out" / "bad" / "sweep.json").read_text())["rows"]
    assert [r["status"] for r in rows] == ["complete", "complete", "failed", "failed"]
    assert all(r["error"].startswith("The objective became nan") for r in rows[2:])
    assert "2 runs failed:" in err and rows[2]["folder"].split("/")[-1] in err


def test_a_request_larger_than_the_local_ray_is_one_sentence(tmp_path, capsys, local_ray):
    spec = tmp_path / "big.toml"
    spec.write_text(SPEC.replace('name = "grid"', 'name = "big"') + "[resources]\nnum_cpus = 4\n", encoding="utf-8")
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--executor", "ray"]) == 2
    err = capsys.readouterr().err
    assert "Each run asks for 4 CPU and 0 GPU, but the Ray on this machine has 2 CPU" in err
    assert not list((tmp_path / "out" / "big").glob("runs/*"))
