"""Run directory format v1: preallocated memmaps, atomic manifest, lazy reading."""

import json

import numpy as np
import pytest

from clipxai.errors import RunError
from clipxai.runs.load import load_run
from clipxai.runs.reader import Run, slugify
from clipxai.runs.writer import RunWriter


def make(tmp_path, rows=5):
    w = RunWriter.create(tmp_path, "r", {"prompt": "x"})
    w.allocate("steps", rows, (), "int64", "step")
    w.allocate("embeddings", rows, (4,), "float32", "emb")
    w.allocate("activations/visual.transformer.resblocks.0", rows, (8,), "float32", "act")
    w.write_manifest()
    return w


def test_a_killed_run_leaves_valid_files_with_only_recorded_rows(tmp_path):
    w = make(tmp_path)
    w.arrays["steps"][:2] = [0, 10]
    w.arrays["embeddings"][:2] = 1.0
    w.flush()
    w.write_manifest(n_snapshots=2)
    # No close(): as if the process died here.
    run = load_run(tmp_path / "r")
    assert run.n == 2 and list(run.steps) == [0, 10]
    assert run.embeddings.shape == (2, 4) and isinstance(run.embeddings, np.memmap)
    assert list(run.activations) == ["visual.transformer.resblocks.0"]
    assert np.load(tmp_path / "r" / "snapshots" / "steps.npy").shape == (5,)


def test_create_refuses_a_folder_with_content(tmp_path):
    make(tmp_path)
    with pytest.raises(RunError, match="already exists"):
        RunWriter.create(tmp_path, "r", {})


def test_grow_keeps_rows(tmp_path):
    w = make(tmp_path, rows=2)
    w.arrays["steps"][:] = [3, 4]
    w.grow(4)
    assert w.arrays["steps"].shape == (4,) and list(w.arrays["steps"][:2]) == [3, 4]
    assert w.manifest["arrays"]["steps"]["shape"] == [4]


def test_metrics_skip_a_torn_last_line_and_truncate(tmp_path):
    w = make(tmp_path)
    for s in range(4):
        w.append_metrics({"step": s, "loss": -s})
    w.close()
    with open(tmp_path / "r" / "metrics.jsonl", "a") as f:
        f.write('{"step": 4, "lo')
    assert [m["step"] for m in load_run(tmp_path / "r").metrics()] == [0, 1, 2, 3]
    w.truncate_metrics(after_step=1)
    assert [m["step"] for m in load_run(tmp_path / "r").metrics()] == [0, 1]


def test_a_last_line_cut_inside_an_emoji_is_skipped(tmp_path):
    """A killed run can stop mid-character: "❤️" is written as UTF-8, four bytes then three."""
    w = make(tmp_path)
    for s in range(3):
        w.append_metrics({"step": s, "sim/❤️": 0.1 * s})
    w.close()
    torn = '{"step": 3, "sim/❤️": 0.3}'.encode()
    with open(tmp_path / "r" / "metrics.jsonl", "ab") as f:
        f.write(torn[:torn.index("❤".encode()) + 2])
    run = load_run(tmp_path / "r")
    assert [m["step"] for m in run.metrics()] == [0, 1, 2]
    assert run.metrics()[2]["sim/❤️"] == pytest.approx(0.2)
    w.truncate_metrics(after_step=1)    # a resume replays from step 2
    assert [m["step"] for m in load_run(tmp_path / "r").metrics()] == [0, 1]


def test_load_errors(tmp_path):
    with pytest.raises(RunError, match="does not exist"):
        load_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="not a clipxai run"):
        load_run(tmp_path / "empty")
    make(tmp_path)
    manifest = json.loads((tmp_path / "r" / "run.json").read_text())
    manifest["format_version"] = 99
    (tmp_path / "r" / "run.json").write_text(json.dumps(manifest))
    with pytest.raises(RunError, match="format 99"):
        load_run(tmp_path / "r")


def test_slugs_name_emoji():
    assert slugify("❤️") == "heavy-black-heart"
    assert slugify("A red heart!") == "a-red-heart"
    assert slugify("///") == "run"


def test_the_main_prompt_is_the_first_positive_text_prompt(tmp_path):
    prompts = [{"text": "text", "weight": -0.5, "kind": "text"}, {"text": "a.png", "weight": 1, "kind": "image"},
               {"text": "❤️", "weight": 1, "kind": "text"}]
    run = Run(path=tmp_path, manifest={"prompt": "text:-0.5|❤️", "prompts": prompts})
    assert run.main_prompt == "❤️" and run.prompt == "text:-0.5|❤️"
