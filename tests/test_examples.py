"""What examples/ ships works: the sweep spec passes the sweep's own checks, the user term ascends
with several seeds, and the notebook's code cells run top to bottom (with fewer steps)."""

import json
from pathlib import Path

import clipxai
from clipxai.sweep.spec import expand, load_spec
from clipxai.sweep.validate import validate

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_the_sweep_spec_is_valid_as_shipped():
    spec = load_spec(EXAMPLES / "emotions.toml")
    rows = expand(spec)
    assert len(rows) == 3 * 2 * 8
    assert len(validate(spec, rows)) >= 1


def test_the_user_term_adds_to_a_batched_ascent(tmp_path):
    runs = clipxai.ascend("❤️", model="toy", steps=4, seeds=2, cutouts=2, snapshot_every=1, quiet=True,
                          terms=[f"{EXAMPLES / 'my_terms.py'}:saturation=0.1"], out=str(tmp_path))
    for run in runs:
        values = [m["term/saturation"] for m in run.metrics()]
        assert len(values) == 4 and all(0.0 <= v <= 1.0 for v in values)


def test_the_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    notebook = json.loads((EXAMPLES / "first-hour.ipynb").read_text(encoding="utf-8"))
    cells = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    assert cells
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    for source in cells:
        exec(compile(source.replace("STEPS = 60", "STEPS = 15"), "first-hour.ipynb", "exec"), scope)  # noqa: S102
    assert scope["run"].status == "complete" and scope["run"].n == 3
    assert isinstance(scope["analysis"].to_dict()["verdict"], str)
