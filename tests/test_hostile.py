"""Hostile run folders and requests: nothing escapes a run, nothing is silently repaired, one bad file breaks no listing.

Every case runs from another working directory with the run typed as a relative path
(``runs/x``, the way a user types it), asserts the one sentence and the exit code, and
that the folders it must not touch are byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from helpers_runs import write_run
from PIL import Image

import clipxai
from clipxai.cli.commands import main

FAST = ["--projection", "pca", "--no-labels", "--no-gif", "-q"]
SECRET = b"API_TOKEN=sk-live-do-not-leak-4242\n"


def digest(folder: Path) -> str:
    """One hash of every path under ``folder``: its name, kind, link target and bytes."""
    h = hashlib.sha256()
    for p in sorted(Path(folder).rglob("*")):
        h.update(p.relative_to(folder).as_posix().encode())
        if p.is_symlink():
            h.update(b"link:" + os.readlink(p).encode())
        elif p.is_file():
            h.update(p.read_bytes())
        else:
            h.update(b"dir")
    return h.hexdigest()


def one_sentence(capsys) -> str:
    """The one error line a refused command printed (and no traceback)."""
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in out + err and "unexpected" not in err, err
    return lines[0]


@pytest.fixture()
def elsewhere(tmp_path, monkeypatch):
    """A working directory holding runs/, and a folder outside it that nothing may touch."""
    work = tmp_path / "work"
    (work / "runs").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "victim.txt").write_bytes(SECRET)
    monkeypatch.chdir(work)
    return work, outside


def toy_run(name="x", steps=4, **options):
    """A real, resumable run of the bundled toy CLIP under runs/, typed relatively."""
    [run] = clipxai.ascend("a red heart", model="toy", out="runs", name=name, steps=steps, snapshot_every=2,
                           cutouts=1, size=(16, 16), quiet=True, **options)
    return Path("runs") / name


# ---------------------------------------------------------------------------------------
# class 1: links out of a run, typed as a relative path

@pytest.mark.parametrize("link", ["analysis", "analysis/states.csv"])
def test_analyze_of_a_relative_run_does_not_write_through_a_link(elsewhere, capsys, link):
    work, outside = elsewhere
    run = write_run(Path("runs"), "x", n=40)
    (run / link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(outside if link == "analysis" else outside / "victim.txt", run / link)
    before = digest(outside), digest(work)
    assert main(["analyze", "runs/x", *FAST]) == 2
    assert "outside" in one_sentence(capsys)
    assert (digest(outside), digest(work)) == before


def test_resume_of_a_relative_run_never_overwrites_what_final_png_links_to(elsewhere, capsys):
    work, outside = elsewhere
    run = toy_run()
    (run / "final.png").unlink()
    os.symlink(outside / "victim.txt", run / "final.png")
    before = digest(outside), digest(work)
    assert main(["ascend", "--resume", "runs/x", "--steps", "6", "--quiet"]) == 2
    assert "outside" in one_sentence(capsys)
    assert (digest(outside), digest(work)) == before


def test_an_original_script_folder_typed_relatively_reads_no_linked_pictures(elsewhere, capsys):
    from test_original_layout import write_legacy

    from clipxai.runs.load import load_run

    work, outside = elsewhere
    folder = write_legacy(Path("runs") / "old", steps=[0, 10, 20, 30], layers=(1,))
    private = outside / "images"
    private.mkdir()
    Image.fromarray(np.full((224, 224, 3), (12, 34, 56), np.uint8)).save(private / "image_40.png")
    os.symlink(private / "image_40.png", folder / "images" / "image_40.png")
    run = load_run("runs/old")
    assert run.steps.tolist() == [0, 10, 20, 30]
    assert any("image_40.png" in p and "outside" in p for p in run.problems)
    (folder / "images" / "image_40.png").unlink()
    (folder / "images").rename(outside / "old-images")
    os.symlink(outside / "old-images", folder / "images")
    run = load_run("runs/old")
    assert "images" not in run.array_names()
    assert any("images/" in p and "outside" in p for p in run.problems)
