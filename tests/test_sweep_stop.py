"""A sweep stopped from outside (SIGKILL, SIGTERM) loses no complete run, and the rerun finishes it.

The driver runs in a subprocess (`python -m clipxai.cli.commands sweep`); it is stopped once the first
run is complete and the second has written its first checkpoint.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from clipxai.cli.commands import main

ROOT = Path(__file__).resolve().parents[1]
SPEC = """name = "stopped"
[grid]
prompt = ["❤️", "love"]
[ascend]
model = "toy"
steps = 80
snapshot_every = 4
cutouts = 1
"""


def statuses(folder: Path) -> dict[str, str]:
    out = {}
    for p in folder.glob("runs/*/run.json"):
        try:
            out[p.parent.name] = json.loads(p.read_text())["status"]
        except (OSError, ValueError, KeyError):
            pass
    return out


def manifests(folder: Path) -> dict[str, str]:
    return {p.parent.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("runs/*/run.json"))}


def start_and_stop(tmp_path: Path, sig: int) -> tuple[Path, Path, int]:
    """Start a sweep in a subprocess, send ``sig`` once one run is complete and the other under way."""
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC, encoding="utf-8")
    folder = tmp_path / "out" / "stopped"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "clipxai.cli", "sweep", str(spec), "--out", str(tmp_path / "out")],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def second_under_way() -> bool:
        s = statuses(folder)
        return "complete" in s.values() and any((folder / "runs" / n / "checkpoint.pt").exists()
                                                for n, v in s.items() if v != "complete")
    try:
        end = time.monotonic() + 120
        while time.monotonic() < end and not second_under_way() and proc.poll() is None:
            time.sleep(0.05)
        assert "complete" in statuses(folder).values(), "the first run never completed"
    finally:
        if proc.poll() is None:
            proc.send_signal(sig)
        code = proc.wait(timeout=120)
    return spec, folder, code


def test_killed_driver_loses_no_complete_run(tmp_path, capsys):
    spec, folder, _ = start_and_stop(tmp_path, signal.SIGKILL)
    done = {n for n, v in statuses(folder).items() if v == "complete"}
    unfinished = {n for n, v in statuses(folder).items() if v != "complete"}
    before = {n: text for n, text in manifests(folder).items() if n in done}
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 0      # its stale lock is taken over
    capsys.readouterr()
    after = manifests(folder)
    assert len(after) == 2 and all(json.loads(t)["status"] == "complete" for t in after.values())
    assert {n: after[n] for n in done} == before          # not redone: run.json untouched, `created` included
    for name in unfinished:                                # the run under way resumed from its checkpoint
        assert json.loads(after[name]).get("resumed_at", 0) > 0


def test_sigterm_stops_cleanly_with_130_and_the_rerun_resumes(tmp_path, capsys):
    spec, folder, code = start_and_stop(tmp_path, signal.SIGTERM)
    assert code == 130
    rows = {Path(r["folder"]).name: r for r in json.loads((folder / "sweep.json").read_text())["rows"]}
    stopped = [n for n, v in statuses(folder).items() if v != "complete"]
    assert len(stopped) == 1 and statuses(folder)[stopped[0]] == "interrupted"
    assert rows[stopped[0]]["status"] == "interrupted" and (folder / "runs" / stopped[0] / "checkpoint.pt").is_file()
    assert not (folder / "sweep.lock").exists()
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 0
    assert "1 unit to do" in capsys.readouterr().err
    resumed = json.loads((folder / "runs" / stopped[0] / "run.json").read_text())
    assert resumed["status"] == "complete" and resumed["resumed_at"] > 0
