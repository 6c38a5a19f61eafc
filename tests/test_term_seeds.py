"""A term that returns one number is every seed's term: through the Python API and the command line.

The README's own ``saturation`` term returns a scalar; with several seeds it must count once per
seed (the sum of the batch's objective is what is maximized), not crash or reach only seed 0.
"""

import json

import numpy as np

import clipxai
from clipxai.cli.commands import main

SATURATION = ("def saturation(step):\n"
              "    img = step.image\n"
              "    return (img.max(1).values - img.min(1).values).mean()\n")


def _term_file(tmp_path):
    path = tmp_path / "terms.py"
    path.write_text(SATURATION)
    return f"{path}:saturation"


def test_a_scalar_term_reaches_every_seed_through_the_api(tiny_clip, tmp_path):
    runs = clipxai.ascend("a red heart", terms=[_term_file(tmp_path)], model_obj=tiny_clip, seeds=2, steps=3,
                          cutouts=1, quiet=True, out=str(tmp_path / "runs"))
    assert len(runs) == 2
    values = [[m["term/saturation"] for m in r.metrics()] for r in runs]
    # one scalar for the whole batch, so both seeds log the same value, and every step has it
    assert all(len(v) == 3 for v in values) and values[0] == values[1]
    assert np.isfinite(values).all()


def test_a_scalar_term_reaches_every_seed_through_the_command_line(tmp_path, capsys):
    code = main(["ascend", "a red heart", "--term", _term_file(tmp_path), "--model", "random:tiny", "--seeds", "2",
                 "--steps", "3", "--cutouts", "1", "--quiet", "--out", str(tmp_path / "runs")])
    assert code == 0, capsys.readouterr().err
    folders = sorted(p.parent for p in (tmp_path / "runs").glob("*/run.json"))
    assert len(folders) == 2
    for folder in folders:
        rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        assert len(rows) == 3 and all(np.isfinite(r["term/saturation"]) for r in rows)
