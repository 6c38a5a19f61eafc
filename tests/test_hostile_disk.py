"""A full disk, a full quota or a file-size limit while results are written (class 8 of the hostile cases).

``analyze``, ``report``, ``explain`` and ``evaluate`` write aside and move their files into place
whole, so the disk filling up half way leaves no partial figure or half json, and an earlier
result byte-identical; run.json is always replaced whole, and a run keeps room for its last
status. Each case asserts the one sentence, the exit code (2; the Python API raises a
``DiskFullError``) and what must not change. The disk fills where the writing really happens
(the figure, the json), or, as root, on a real 1.5 MB tmpfs.
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers_runs import write_run
from test_hostile import FAST, digest, one_sentence, work_elsewhere

import clipxai
from clipxai.cli.commands import main
from clipxai.errors import DiskFullError

FULL = {errno.ENOSPC: "No space left on device", errno.EDQUOT: "Disk quota exceeded", errno.EFBIG: "File too large"}


@pytest.fixture()
def elsewhere(tmp_path, monkeypatch):
    return work_elsewhere(tmp_path, monkeypatch)


def fill_on(monkeypatch, owner, name, nth, code=errno.ENOSPC, path_arg=0):
    """``owner.name`` writes a few bytes of its file and fails as a full disk on its ``nth`` call."""
    real = getattr(owner, name)
    calls = []

    def filling(*args, **kwargs):
        calls.append(1)
        if len(calls) < nth:
            return real(*args, **kwargs)
        target = args[path_arg] if len(args) > path_arg else None
        if isinstance(target, (str, Path)):
            Path(target).write_bytes(b"\x89PNG half")
        raise OSError(code, FULL[code])
    monkeypatch.setattr(owner, name, filling)
    return lambda: monkeypatch.setattr(owner, name, real)   # the disk freed again


def _figure_save():
    from matplotlib.figure import Figure
    return Figure


@pytest.fixture(scope="module")
def analyzed(synthetic_analysed):
    """A run with a complete analysis (its GIF too; the session's, tests/conftest.py), copied by each test."""
    return synthetic_analysed


@pytest.mark.parametrize("where, code", [("figure", errno.ENOSPC), ("summary", errno.EDQUOT), ("picture", errno.EFBIG)])
def test_a_full_disk_while_analyzing_leaves_the_earlier_analysis_as_it_was(analyzed, elsewhere, capsys, monkeypatch,
                                                                           where, code):
    import importlib

    from PIL import Image

    work, _ = elsewhere
    shutil.copytree(analyzed, work / "runs" / "x")
    before = digest(work)
    if where == "figure":
        fill_on(monkeypatch, _figure_save(), "savefig", 3, code, path_arg=1)
    elif where == "summary":
        fill_on(monkeypatch, importlib.import_module("clipxai.analysis.analyze"), "write_json", 1, code)
    else:
        fill_on(monkeypatch, Image.Image, "save", 1, code, path_arg=1)
    if where != "summary":
        assert main(["analyze", "runs/x", *FAST[:-2], "-q"]) == 2
        message = one_sentence(capsys)
        assert "is full" in message and "analysis" in message and "nothing there changed" in message, message
    else:   # the Python API raises it
        with pytest.raises(DiskFullError, match="the analysis of runs/x was not written"):
            clipxai.analyze("runs/x", projections="pca", labels=False).write()
    assert digest(work) == before


def test_a_first_analysis_on_a_full_disk_leaves_no_analysis_folder(elsewhere, capsys, monkeypatch):
    work, _ = elsewhere
    write_run(Path("runs"), "x", n=40)
    before = digest(work)
    fill_on(monkeypatch, _figure_save(), "savefig", 2, path_arg=1)
    assert main(["analyze", "runs/x", *FAST]) == 2
    assert "is full" in one_sentence(capsys)
    assert digest(work) == before and not (work / "runs" / "x" / "analysis").exists()


def test_a_full_disk_while_reporting_leaves_the_earlier_report_as_it_was(analyzed, elsewhere, capsys, monkeypatch):
    from PIL import Image

    work, _ = elsewhere
    for name in ("a", "b"):
        shutil.copytree(analyzed, work / "runs" / name)
    args = ["report", "runs/a", "runs/b", "-o", "out/report.html", "--no-labels", "-q"]
    assert main(args) == 0
    before = digest(work)
    freed = fill_on(monkeypatch, Image.Image, "save", 1, path_arg=1)   # the first picture
    assert main(args) == 2
    message = one_sentence(capsys)
    assert "is full" in message and "report out/report.html was not written" in message, message
    assert digest(work) == before
    freed()
    fill_on(monkeypatch, Path, "write_text", 2, errno.EFBIG)   # the Markdown twin: after the comparison and the HTML
    with pytest.raises(DiskFullError, match="File too large"):
        from clipxai.analysis.analyze import AnalyzeOptions
        from clipxai.report.report import write_report
        write_report(["runs/a", "runs/b"], "out/report.html", opts=AnalyzeOptions(labels=False))
    assert digest(work) == before


@pytest.fixture(scope="module")
def toy_heart(toy_heart_analysed):
    """A toy run analysed, explained and evaluated (the session's, tests/conftest.py), copied by each test."""
    return toy_heart_analysed[0]


@pytest.mark.parametrize("command, module", [("explain", "clipxai.analysis.explain.run"),
                                             ("evaluate", "clipxai.analysis.trust.run")])
def test_a_full_disk_while_explaining_or_evaluating_changes_nothing(toy_heart, elsewhere, capsys, monkeypatch,
                                                                    command, module):
    import importlib

    work, _ = elsewhere
    shutil.copytree(toy_heart, work / "runs" / "heart")
    before = digest(work)
    fill_on(monkeypatch, importlib.import_module(module), "write_json", 1)
    assert main([command, "runs/heart", "-q"]) == 2
    message = one_sentence(capsys)
    what = {"explain": "the explanation of", "evaluate": "the evaluation of"}[command]
    assert "is full" in message and f"{what} runs/heart was not written" in message, message
    assert digest(work) == before


# ---------------------------------------------------------------------------------------
# run.json: replaced whole or not at all, at the start, at a status change and at the end

ASCEND = ["ascend", "a red heart", "--model", "toy", "--out", "runs", "--name", "r", "--steps", "6",
          "--snapshot-every", "2", "--cutouts", "1", "--size", "16", "16", "--quiet"]


def _manifest_fails(monkeypatch, after: int, code: int, while_room: bool = False):
    """run.json's writes fail as a full disk from the ``after``-th on (only while ``.room`` exists, if asked);
    returns the bytes of the last manifest written whole."""
    from clipxai.runs import writer

    real = writer.atomic_write_text
    state = {"n": 0, "last": None, "real": real}

    def writing(path, text, sync=False):
        if Path(path).name == "run.json":
            state["n"] += 1
            room = Path(path).parent / ".room"
            if state["n"] >= after and (room.exists() or not while_room):
                raise OSError(code, FULL[code])
            real(path, text, sync)
            state["last"] = Path(path).read_bytes()
            return path
        return real(path, text, sync)
    monkeypatch.setattr(writer, "atomic_write_text", writing)
    return state


@pytest.mark.parametrize("code", list(FULL))
def test_a_full_disk_for_the_first_manifest_leaves_no_run_folder(elsewhere, capsys, monkeypatch, code):
    work, _ = elsewhere
    before = digest(work)
    _manifest_fails(monkeypatch, 1, code)
    assert main(ASCEND) == 2
    message = one_sentence(capsys)
    assert "is full" in message and "cannot start" in message and "nothing was left behind" in message, message
    assert digest(work) == before and not list((work / "runs").iterdir())


@pytest.mark.parametrize("code", list(FULL))
def test_a_manifest_that_cannot_be_replaced_stays_as_it_was(elsewhere, capsys, monkeypatch, code):
    work, _ = elsewhere
    state = _manifest_fails(monkeypatch, 4, code)   # the first status change after the arrays are listed
    assert main(ASCEND) == 2
    message = one_sentence(capsys)
    assert "is full" in message and "run.json could not be updated and still says running" in message, message
    run = work / "runs" / "r"
    assert (run / "run.json").read_bytes() == state["last"]   # the previous manifest, whole
    assert json.loads(state["last"])["status"] == "running"
    assert not [p for p in run.iterdir() if p.name not in {"run.json", "metrics.jsonl", "snapshots", ".lock",
                                                           "checkpoint.pt"}]


def test_a_full_disk_still_records_the_status_in_the_room_kept_for_it(elsewhere, capsys, monkeypatch):
    from clipxai.runs import writer
    from clipxai.runs.load import load_run

    work, _ = elsewhere
    state = _manifest_fails(monkeypatch, 4, errno.ENOSPC, while_room=True)   # full until the room is given up
    real = writer.RunWriter.append_metrics

    def metrics(self, record):   # the rest of the disk is full from step 3 on
        if record["step"] >= 3:
            raise OSError(errno.ENOSPC, FULL[errno.ENOSPC])
        real(self, record)
    monkeypatch.setattr(writer.RunWriter, "append_metrics", metrics)
    assert main(ASCEND) == 2
    message = one_sentence(capsys)
    assert "is full" in message and "--resume" in message and "still says running" not in message, message
    run = load_run("runs/r")
    assert run.status == "interrupted" and run.manifest["stop_reason"] == "disk full"
    assert not (work / "runs" / "r" / ".room").exists()
    monkeypatch.setattr(writer.RunWriter, "append_metrics", real)
    monkeypatch.setattr(writer, "atomic_write_text", state["real"])
    [done] = clipxai.ascend(resume="runs/r", quiet=True)
    assert done.status == "complete"


def test_the_last_manifest_on_a_file_size_limit_keeps_the_run_readable(elsewhere, capsys, monkeypatch):
    from clipxai.runs.load import load_run

    work, _ = elsewhere
    _manifest_fails(monkeypatch, 7, errno.EFBIG)   # the status written at the end
    assert main(ASCEND) == 2
    message = one_sentence(capsys)
    assert "every step is recorded" in message, message
    run = load_run("runs/r")
    assert run.status == "running" and run.n == 3 and run.manifest["steps_done"] == 6


# ---------------------------------------------------------------------------------------
# a real disk that fills (root only: a 1.5 MB tmpfs)

@pytest.fixture()
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1500k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("a small tmpfs cannot be mounted here (not root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_analyze_on_a_really_full_disk_is_one_sentence_and_leaves_nothing(small_disk, capsys):
    run = write_run(small_disk, "x", n=40)
    free = shutil.disk_usage(small_disk).free
    (small_disk / "filler").write_bytes(b"\0" * (free - 60_000))   # room for a few figures, not for all
    before = digest(small_disk)
    assert main(["analyze", str(run), *FAST]) == 2
    message = one_sentence(capsys)
    assert "is full" in message and "No space left" in message, message
    assert digest(small_disk) == before and not (run / "analysis").exists()
