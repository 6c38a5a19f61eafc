"""The first `clipxai analyze` after an install is not held up by a one-off compile.

UMAP is compiled by numba the first time it runs (~30 s on a 2-core machine, more under load),
so it is drawn only when asked for, and its compiled code is kept in the user's cache folder.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from helpers_runs import write_run

from clipxai.analysis.analyze import AnalyzeOptions

REPO = Path(__file__).resolve().parents[1]


def test_analyze_by_default_draws_pca_and_never_loads_numba(tmp_path):
    run = write_run(tmp_path / "runs", "r", n=40)
    code = ("import sys; from clipxai.cli.commands import main; rc = main(sys.argv[1:]); "
            "print(sorted(m for m in ('numba', 'umap', 'pynndescent') if m in sys.modules)); sys.exit(rc)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", code, "analyze", str(run), "--no-labels", "--no-gif", "-q"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    summary = json.loads((run / "analysis" / "summary.json").read_text())
    assert "trajectory_pca" in summary["figures"] and "trajectory_umap" not in summary["figures"]
    assert summary["analysis"]["options"]["projections"] == ["pca"]
    assert AnalyzeOptions().projections == ("pca",)  # the Python default is the command's


def test_umap_when_asked_and_its_compiled_code_kept_in_the_user_cache(tmp_path, monkeypatch):
    from clipxai.analysis.draw.project import _numba_env

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("CLIPXAI_CACHE", str(tmp_path / "cache"))
    _numba_env()
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "cache" / "numba")
    assert (tmp_path / "cache" / "numba").is_dir()
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    _numba_env()
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "mine")  # the user's own choice wins
