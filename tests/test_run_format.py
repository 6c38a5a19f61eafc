"""The run format in one place (clipxai.runs.format): a recorded run is laid out by its names, and a
damaged run.json is one clear sentence, never a traceback."""

import json

import pytest
from helpers_runs import write_run

import clipxai
from clipxai.ascent import recorder
from clipxai.cli.commands import main
from clipxai.errors import RunError
from clipxai.runs import format as fmt
from clipxai.runs import reader, writer
from clipxai.runs.load import load_run


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A real ascent on the tiny random CLIP: 3 snapshots, pooled activations, frames."""
    [run] = clipxai.ascend("x", model="random:tiny", steps=3, snapshot_every=1, out=str(tmp_path_factory.mktemp("f")),
                           name="r", quiet=True, frames=True)
    return run


def test_a_recorded_run_is_laid_out_by_the_format_names(recorded):
    path = recorded.path
    for name in (fmt.RUN_FILE, fmt.METRICS_FILE, fmt.CHECKPOINT_FILE, fmt.FINAL_IMAGE):
        assert (path / name).is_file(), name
    assert sorted(p.name for p in (path / fmt.FRAMES_DIR).iterdir()) == [f"step_{k}.png" for k in range(3)]
    assert [(path / fmt.frame_file(k)).is_file() for k in range(3)] == [True] * 3
    manifest = json.loads((path / fmt.RUN_FILE).read_text())
    assert manifest["format_version"] == fmt.FORMAT_VERSION and manifest["snapshot_semantics"] == fmt.SNAPSHOT_SEMANTICS
    arrays = manifest["arrays"]
    for name, info in arrays.items():
        assert info["file"] == fmt.array_file(name) and (path / info["file"]).is_file()
    for name in ("steps", "images", "embeddings", "gradients"):
        assert arrays[name]["meaning"] == fmt.ARRAYS[name]
    assert arrays["latents"]["meaning"] == fmt.latents_meaning("pixels") == "state of the pixels parameterization"
    hooks = [n[len(fmt.ACTIVATIONS_PREFIX):] for n in arrays if n.startswith(fmt.ACTIVATIONS_PREFIX)]
    assert hooks and set(recorded.activations) == set(hooks)
    assert all(arrays[fmt.ACTIVATIONS_PREFIX + h]["meaning"] == fmt.activations_meaning(h, full=False) for h in hooks)
    assert recorded.n == fmt.rows_for(3, 1) == 3 and list(recorded.steps) == [0, 1, 2]


def test_rows_follow_the_snapshot_spacing():
    assert [fmt.rows_for(s, 10) for s in (1, 10, 11, 300)] == [1, 1, 2, 30]
    assert [fmt.row_of(s, 10) for s in (0, 10, 290)] == [0, 1, 29]


def test_the_old_import_names_still_work():
    assert reader.FORMAT_VERSION == fmt.FORMAT_VERSION and reader.READABLE_FORMATS == fmt.READABLE_FORMATS
    assert reader.rows_for is fmt.rows_for and reader.row_of is fmt.row_of
    assert recorder.CHECKPOINT == "checkpoint.pt" and recorder.SNAPSHOT_SEMANTICS == fmt.SNAPSHOT_SEMANTICS
    assert writer.LOCK_FILE == ".lock"
    from clipxai.runs.summary import SUMMARY_FILE
    from clipxai.sweep.plan import CHECKPOINT
    assert SUMMARY_FILE == "summary.json" and CHECKPOINT == fmt.CHECKPOINT_FILE


DAMAGED = {   # what a run.json holds -> what the sentence says
    "deep": ("[" * 100_000, "nested too deeply"),
    "word": ('{"format_version": 2, "status": "complete", "n_snapshots": "x"}', "its n_snapshots is 'x'"),
    "nan": ('{"format_version": 2, "status": "complete", "n_snapshots": NaN}', "its n_snapshots is NaN"),
    "steps": ('{"format_version": 2, "status": "complete", "n_snapshots": 3, "steps_done": -1}', "its steps_done is -1"),
    "list": ("[1, 2]", "not a clipxai manifest"),
    "arrays": ('{"format_version": 2, "arrays": {"steps": {"shape": [3]}}}', "its arrays is"),
}


@pytest.mark.parametrize("kind", sorted(DAMAGED))
def test_a_damaged_manifest_is_one_sentence(tmp_path, kind, capsys):
    text, said = DAMAGED[kind]
    run = write_run(tmp_path, "r", n=20)
    (run / fmt.RUN_FILE).write_text(text)
    with pytest.raises(RunError, match="corrupt|not a clipxai manifest") as err:
        load_run(run)
    assert said in str(err.value) and str(run) in str(err.value)
    assert main(["analyze", str(run), "--projection", "pca", "--no-labels", "-q"]) == 2
    out = capsys.readouterr().err.strip()
    assert out.startswith("error: ") and said in out and "Traceback" not in out


def test_manifest_problem_names_the_field_and_accepts_what_the_writer_writes(tmp_path):
    run = write_run(tmp_path, "r", n=20)
    manifest = json.loads((run / fmt.RUN_FILE).read_text())
    assert fmt.manifest_problem(manifest) is None
    assert fmt.manifest_problem({**manifest, "format_version": 99}).startswith("it uses run format 99")
    assert fmt.manifest_problem({**manifest, "format_version": True}).startswith("it uses run format True")
    assert fmt.manifest_problem({**manifest, "prompts": "x"}) == "its prompts is 'x', not a list of prompts"
    assert fmt.manifest_problem({**manifest, "steps_total": None}) is None   # a run without a known end
