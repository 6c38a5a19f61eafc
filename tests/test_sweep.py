"""Sweeps on the local executor: the grid and its seed groups, reruns that redo nothing, a failing
run among good ones, bad specs, and the concept atlas."""

import json
import os
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

from clipxai.cli.commands import main
from clipxai.errors import ClipxaiError
from clipxai.sweep.plan import RUN, plan
from clipxai.sweep.spec import expand, parse_spec

FIXED = """
[ascend]
model = "toy"
steps = 9
snapshot_every = 3
cutouts = 2
"""
NAN_TERM = """
import torch

def nan_for_poison(step):
    bad = any(p.text == "poison" for p in step.prompts)
    return torch.full((step.batch,), float("nan") if bad else 0.0, device=step.image.device)
"""


def write_spec(folder: Path, text: str, name: str = "spec.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def sweep(spec: Path, out: Path, *args) -> int:
    return main(["sweep", str(spec), "--out", str(out), *args])


def manifests(folder: Path) -> dict[str, str]:
    return {p.parent.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("runs/*/run.json"))}


def test_grid_is_crossed_and_consecutive_seeds_batch_together():
    spec = parse_spec({"name": "g", "grid": {"prompt": ["a", "b"], "lr": [0.1, 0.2], "seed": [0, 1, 2, 5]},
                       "ascend": {"model": "toy"}, "max_batch": 2})
    rows = expand(spec)
    assert len(rows) == 16 and len({r.folder for r in rows}) == 16
    assert rows[0].values == {"prompt": "a", "lr": 0.1, "seed": 0} and rows[0].options == {"model": "toy", "lr": 0.1}
    units = plan(rows, {r.folder: RUN for r in rows}, spec.max_batch, {})
    # per (prompt, lr): seeds 0,1 | 2 | 5 -- a gap or max_batch ends a batch
    assert [[r.seed for r in u.rows] for u in units[:3]] == [[0, 1], [2], [5]]
    assert len(units) == 12 and all(len({r.base for r in u.rows}) == 1 for u in units)
    # the same options give the same folder names; other fixed options give other names
    again = expand(parse_spec({"name": "g", "grid": {"prompt": ["a"], "seed": [0]}, "ascend": {"model": "toy"}}))
    other = expand(parse_spec({"name": "g", "grid": {"prompt": ["a"], "seed": [0]}, "ascend": {"model": "toy-b"}}))
    assert again[0].folder == expand(parse_spec({"name": "x", "grid": {"prompt": ["a"], "seed": [0]},
                                                 "ascend": {"model": "toy"}}))[0].folder
    assert again[0].folder != other[0].folder


def test_local_sweep_completes_and_a_rerun_redoes_nothing(tmp_path, capsys):
    spec = write_spec(tmp_path, 'name = "pair"\n[grid]\nprompt = ["❤️", "love"]\nseed = [0, 1]\n' + FIXED)
    assert sweep(spec, tmp_path / "out") == 0
    captured = capsys.readouterr()
    folder = tmp_path / "out" / "pair"
    assert captured.out.strip().splitlines()[-1] == str(folder)
    assert "[2/2]" in captured.err and "ETA" in captured.err
    record = json.loads((folder / "sweep.json").read_text())
    assert record["counts"] == {"complete": 4} and len(record["rows"]) == 4
    first_two = [r["values"] for r in record["rows"][:2]]
    assert first_two == [{"prompt": "❤️", "seed": 0}, {"prompt": "❤️", "seed": 1}]
    for row in record["rows"]:
        run = json.loads((folder / row["folder"] / "run.json").read_text())
        assert run["status"] == "complete" and run["seed"] == row["seed"] and run["prompt"] == row["prompt"]
        assert run["group"]["seeds"] == [0, 1]          # two seeds, one batched ascent
        assert row["attempts"] == 1 and row["error"] is None
    before = manifests(folder)
    assert sweep(spec, tmp_path / "out") == 0
    assert "0 units to do" in capsys.readouterr().err
    assert manifests(folder) == before
    assert not (folder / "sweep.lock").exists()


def test_a_finished_sweep_rerun_returns_from_the_files_alone(tmp_path, capsys, monkeypatch):
    """No checks that load models when this spec has finished; a changed spec is checked again."""
    import clipxai.sweep.driver as driver

    spec = write_spec(tmp_path, 'name = "done"\n[grid]\nprompt = ["❤️"]\nseed = [0]\n' + FIXED)
    assert sweep(spec, tmp_path / "out") == 0
    capsys.readouterr()

    def no_checks(*a, **k):
        raise AssertionError("validated a finished sweep")
    monkeypatch.setattr(driver, "validate", no_checks)
    assert sweep(spec, tmp_path / "out") == 0
    assert "1 complete, 0 units to do" in capsys.readouterr().err
    spec.write_text(spec.read_text().replace('seed = [0]', 'seed = [0, 1]'))
    assert sweep(spec, tmp_path / "out") == 1  # checked again: the stand-in check refuses
    assert "validated a finished sweep" in capsys.readouterr().err


def test_failing_run_does_not_stop_the_others_and_is_reported(tmp_path, capsys):
    (tmp_path / "nan_term.py").write_text(NAN_TERM)
    spec = write_spec(tmp_path, 'name = "mixed"\n[grid]\nprompt = ["a <b>\\"heart\\"</b> & co", "poison"]\n'
                      + FIXED + f'terms = ["{tmp_path / "nan_term.py"}:nan_for_poison"]\n')
    assert sweep(spec, tmp_path / "out") == 1
    err = capsys.readouterr().err
    folder = tmp_path / "out" / "mixed"
    record = {r["prompt"]: r for r in json.loads((folder / "sweep.json").read_text())["rows"]}
    good, bad = record['a <b>"heart"</b> & co'], record["poison"]
    assert good["status"] == "complete" and bad["status"] == "failed"
    assert bad["error"].startswith("The objective became nan at step 0") and bad["failures"] == 1
    assert "1 run failed:" in err and bad["folder"].split("/")[-1] in err and "The objective became nan" in err
    # with no retries left the failed run is not started again, and the exit code still says so
    assert sweep(spec, tmp_path / "out", "--retries", "0") == 1
    assert "no retries left" in capsys.readouterr().err
    assert json.loads((folder / "sweep.json").read_text())["rows"][1]["attempts"] == 1

    # the atlas analyzes the complete run (never analyzed) and lists the failed one
    assert main(["atlas", str(folder), "-o", str(tmp_path / "atlas")]) == 0
    assert (folder / good["folder"] / "analysis" / "summary.json").is_file()
    lines = (tmp_path / "atlas" / "atlas.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("prompt,seed,folder,status,verdict,n_states,switches")
    import csv
    rows = list(csv.DictReader(lines))
    assert [r["status"] for r in rows] == ["complete", "failed"]
    assert rows[0]["verdict"] and int(rows[0]["n_states"]) >= 1 and rows[0]["state_words"].startswith("0: ")
    assert float(rows[0]["final_similarity"]) > 0 and "objective became nan" in rows[1]["error"]
    page = (tmp_path / "atlas" / "atlas.html").read_text(encoding="utf-8")
    assert "<b>\"heart\"" not in page and "a &lt;b&gt;&quot;heart&quot;&lt;/b&gt; &amp; co" in page
    assert 'src="data:image/png;base64,' in page
    assert "http://" not in page and "https://" not in page and "<script" not in page and "<link" not in page


@pytest.mark.parametrize("text, message", [
    ('name = "s"\n[grid]\nprompt = ["x"]\n[ascend]\nmodel = "toy"\nlrr = 0.1\n', "lrr (did you mean lr?)"),
    ('name = "s"\n[grid]\nprompt = ["x"]\nsteps = [10, 0]\n[ascend]\nmodel = "toy"\n', "--steps must be a positive"),
    ('name = "s"\n[grid]\nprompt = "x"\n', "must be a list of values"),
    ('name = "s"\n[grid\nprompt = ["x"]\n', "is not valid TOML"),
    ('name = "s"\n[ascend]\nmodel = "toy"\n', "the spec needs a prompt"),
    ('[grid]\nprompt = ["x"]\n', "the spec needs a name"),
    ('name = "s"\n[grid]\nprompt = ["x", "a:b"]\n[ascend]\nmodel = "toy"\n', "weight 'b'"),
    ('name = "s"\n[grid]\nprompt = ["x"]\nmodel = ["toy", "ViT-Q/1"]\n', "'ViT-Q/1' is neither a known model"),
    ('name = "s"\n[grid]\nprompt = ["x"]\n[ascend]\nmodel = "toy"\nout = "elsewhere"\n', "cannot set 'out'"),
    ('name = "s"\n[grid]\nprompt = ["x"]\n[ascend]\nmodel = "toy"\n[analyze]\nprojection = ["pca"]\n',
     "no option 'projection' (did you mean projections?)"),
    ('name = "s"\n[grid]\nprompt = ["x"]\n[ascend]\nmodel = "toy"\nsteps = 4\n[analyze]\n', "at least 3 snapshots"),
    ('name = "s"\ngrid = 3\n', "[grid] must be a table"),
    ('name = "s"\nretry = 2\n[grid]\nprompt = ["x"]\n', "unknown key 'retry' (did you mean retries?)"),
    ('name = "s\\u0000"\n[grid]\nprompt = ["x"]\n', "without control characters (got 's\\x00')"),
    ('name = "s\\nt"\n[grid]\nprompt = ["x"]\n', "without control characters (got 's\\nt')"),
])
def test_bad_spec_is_one_sentence_and_exit_2_before_anything_runs(tmp_path, capsys, text, message):
    spec = write_spec(tmp_path, text)
    assert sweep(spec, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_missing_spec_and_address_without_ray(tmp_path, capsys):
    assert sweep(tmp_path / "nope.toml", tmp_path / "out") == 2
    assert "does not exist" in capsys.readouterr().err
    spec = write_spec(tmp_path, 'name = "s"\n[grid]\nprompt = ["x"]\n' + FIXED)
    assert sweep(spec, tmp_path / "out", "--address", "10.0.0.1:6379") == 2
    assert "--address applies to --executor ray only" in capsys.readouterr().err
    assert main(["atlas", str(tmp_path), "-o", str(tmp_path / "a")]) == 2
    assert "has no sweep.json" in capsys.readouterr().err


def hold_lock(folder: Path, content: str) -> int:
    """Hold ``folder``'s sweep lock as a live driver does (the caller closes the descriptor)."""
    import fcntl
    import os

    fd = os.open(folder / "sweep.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, content.encode())
    return fd


@pytest.mark.parametrize("content, message", [
    (json.dumps({"host": socket.gethostname(), "pid": os.getppid()}), f"Another sweep (process {os.getppid()})"),
    (json.dumps({"host": "node7", "pid": 12}), "A sweep on host node7 (process 12)"),
    ("", "Another sweep is running"),               # a driver that has not written its name yet
])
def test_a_second_driver_on_a_running_sweep_is_refused(tmp_path, capsys, content, message):
    spec = write_spec(tmp_path, 'name = "busy"\n[grid]\nprompt = ["x"]\n' + FIXED)
    folder = tmp_path / "out" / "busy"
    folder.mkdir(parents=True)
    fd = hold_lock(folder, content)
    try:
        assert sweep(spec, tmp_path / "out") == 2
    finally:
        os.close(fd)
    err = capsys.readouterr().err
    assert message in err and "is running" in err and len(err.strip().splitlines()) == 1
    assert not (folder / "runs").exists() and (folder / "sweep.lock").read_text() == content


def test_a_lock_nobody_holds_is_taken_over_and_another_lock_is_never_removed(tmp_path):
    from clipxai.sweep.lock import SweepLock

    folder = tmp_path / "s"
    folder.mkdir()
    # the file of a killed driver names a live process, but no process holds its lock
    (folder / "sweep.lock").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getppid()}))
    with SweepLock(folder):
        assert json.loads((folder / "sweep.lock").read_text())["pid"] == os.getpid()
        with pytest.raises(ClipxaiError, match=f"Another sweep \\(process {os.getpid()}\\) is running"):
            SweepLock(folder).__enter__()
        (folder / "sweep.lock").unlink()            # someone removed it, and another driver took a new one
        fd = hold_lock(folder, json.dumps({"host": socket.gethostname(), "pid": 1}))
    try:
        assert (folder / "sweep.lock").exists()     # ending, the first driver left the other's lock alone
        with pytest.raises(ClipxaiError, match="process 1"):
            SweepLock(folder).__enter__()
    finally:
        os.close(fd)
    with SweepLock(folder):
        pass
    assert not (folder / "sweep.lock").exists()


def test_atlas_csv_cells_never_become_spreadsheet_formulas(tmp_path):
    import csv

    from clipxai.sweep.atlas import Atlas, AtlasEntry, write_csv

    prompts = ['=HYPERLINK("http://evil.example","x")', "@SUM(1)", "+1", "-cmd", "\tx", "a = b"]
    entries = [AtlasEntry(values={"prompt": p, "seed": -1, "lr": -0.5}, prompt=p, seed=-1, folder=f"runs/r{i}",
                          status="failed", error="-1 is no step") for i, p in enumerate(prompts)]
    atlas = Atlas(name="x", grid_keys=["prompt", "seed", "lr"], spec={}, entries=entries)
    rows = list(csv.DictReader(write_csv(atlas, tmp_path / "atlas.csv").open(encoding="utf-8", newline="")))
    assert [r["prompt"] for r in rows] == ["'" + p for p in prompts[:5]] + ["a = b"]
    assert {r["error"] for r in rows} == {"'-1 is no step"}
    assert {(r["seed"], r["lr"]) for r in rows} == {("-1", "-0.5")}     # numbers stay numbers


def test_retries_are_a_limit_whatever_the_folder_holds_and_analysis_counts_apart(tmp_path):
    from clipxai.sweep.plan import ANALYZE, Unit
    from clipxai.sweep.progress import failure_table
    from clipxai.sweep.state import SweepState

    table = {"name": "r", "grid": {"prompt": ["a"], "seed": [0, 1, 2]}, "ascend": {"model": "toy"}, "retries": 1}
    spec = parse_spec({**table, "analyze": {}})
    rows = expand(spec)
    broken, resumable, done = (tmp_path / "runs" / r.folder for r in rows)
    broken.mkdir(parents=True)
    (broken / "junk").write_text("a try that left no run.json")
    for path, status in ((resumable, "running"), (done, "complete")):
        path.mkdir()
        (path / "run.json").write_text(json.dumps({"format_version": 2, "status": status}))
    (resumable / "checkpoint.pt").write_bytes(b"")
    state = SweepState(tmp_path, spec, rows)
    for row in rows[:2]:                                    # failed twice: no retries left
        state.records[row.folder].update(status="failed", attempts=2, failures=2, error="It broke.")
    state.records[rows[2].folder].update(attempts=2, failures=1)   # failed once, then completed
    assert state.reconcile() == {rows[2].folder: ANALYZE}
    assert [state.records[r.folder]["status"] for r in rows] == ["failed", "failed", "complete"]

    def analysis_fails():
        state.finished(Unit(ANALYZE, [rows[2]]), [{"folder": rows[2].folder, "status": "complete", "ran": False,
                                                   "analysis": "failed", "analysis_error": "No words."}])

    analysis_fails()                                        # its analysis has one retry of its own
    assert state.reconcile() == {rows[2].folder: ANALYZE}
    analysis_fails()
    assert state.reconcile() == {}
    assert "analysis: No words. (no retries left)" in failure_table(state.problems(), spec.retries)
    state.save()

    # without [analyze], an old analysis failure is forgotten: only the failed runs remain problems
    again = SweepState(tmp_path, parse_spec(table), expand(parse_spec(table)))
    assert again.reconcile() == {}
    assert [row.folder for row, _ in again.problems()] == [r.folder for r in rows[:2]]
    assert again.records[rows[2].folder]["analysis"] is None


def test_a_folder_that_cannot_be_moved_aside_fails_its_row_only(tmp_path, capsys):
    import tomllib

    text = 'name = "stuck"\n[grid]\nprompt = ["a", "b"]\n' + FIXED
    spec = write_spec(tmp_path, text)
    folder = tmp_path / "out" / "stuck"
    stuck = folder / "runs" / expand(parse_spec(tomllib.loads(text)))[0].folder
    stuck.mkdir(parents=True)
    (stuck / "notes.txt").write_text("an earlier try, not a run")
    (folder / "attempts").write_text("a file where the attempts folder would go")
    assert sweep(spec, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "unexpected" not in err and "cannot be moved aside" in err
    rows = json.loads((folder / "sweep.json").read_text())["rows"]
    assert [r["status"] for r in rows] == ["failed", "complete"]
    assert "cannot be moved aside" in rows[0]["error"] and (stuck / "notes.txt").is_file()


def test_atlas_output_that_cannot_be_written_is_refused_before_any_analysis(tmp_path, capsys):
    spec = write_spec(tmp_path, 'name = "one"\n[grid]\nprompt = ["x"]\n' + FIXED)
    assert sweep(spec, tmp_path / "out") == 0
    (tmp_path / "a-file").write_text("not a folder")
    capsys.readouterr()
    assert main(["atlas", str(tmp_path / "out" / "one"), "-o", str(tmp_path / "a-file" / "atlas")]) == 2
    err = capsys.readouterr().err
    assert "a-file is not a folder" in err and len(err.strip().splitlines()) == 1
    assert not list((tmp_path / "out" / "one").glob("runs/*/analysis"))    # nothing analyzed in vain


class FakeRay:
    """What RayExecutor._check asks of Ray, answered without starting it."""

    def __init__(self, cpus: float, sees_folder: bool):
        self.cpus, self.sees_folder = cpus, sees_folder

    def cluster_resources(self):
        return {"CPU": self.cpus}

    def remote(self, **options):
        return lambda fn: SimpleNamespace(remote=lambda *args: self.sees_folder)

    def get(self, value):
        return value


def test_ray_address_from_the_environment_is_a_cluster_that_must_see_the_folder(tmp_path, monkeypatch):
    from clipxai.sweep.executor_ray import RayExecutor

    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    executor = RayExecutor(None, {"num_cpus": 4}, 1, str(tmp_path))
    assert executor.address == "ray://head:10001"
    with pytest.raises(ClipxaiError, match="The Ray workers cannot see"):
        executor._check(FakeRay(cpus=0, sees_folder=False))
    executor._check(FakeRay(cpus=0, sees_folder=True))      # a cluster's own CPUs are its autoscaler's business
    assert RayExecutor("10.0.0.1:6379", {}, 1, str(tmp_path)).address == "10.0.0.1:6379"   # --address wins
    monkeypatch.setenv("RAY_ADDRESS", "local")
    local = RayExecutor(None, {"num_cpus": 4}, 1, str(tmp_path))
    assert local.address is None
    with pytest.raises(ClipxaiError, match="the Ray on this machine has 2 CPU"):
        local._check(FakeRay(cpus=2, sees_folder=True))
