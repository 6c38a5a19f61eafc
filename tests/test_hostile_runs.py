"""A run folder from someone else reads and writes nothing outside itself.

Paths inside run.json, analysis/summary.json and the original script's folders, and links
placed in a run folder, are followed only while they stay within that folder.
"""

import base64
import json
import os

import numpy as np
import pytest
from helpers_runs import write_run
from PIL import Image

from clipxai.cli.commands import main
from clipxai.errors import RunError
from clipxai.util.paths import check_writable_inside, inside, is_inside

FAST = ["--projection", "pca", "--no-labels", "--no-gif", "-q"]
SECRET = b"API_TOKEN=sk-live-do-not-leak-4242\n"


@pytest.fixture()
def analysed(tmp_path):
    path = write_run(tmp_path / "runs", "received", n=40)
    assert main(["analyze", str(path), *FAST]) == 0
    return path


def _secret_png(path):
    """A picture outside the run whose pixels must never reach a report."""
    Image.fromarray(np.full((8, 8, 3), (12, 34, 56), np.uint8)).save(path)
    return path.read_bytes()


def _edit_summary(run, **figures):
    file = run / "analysis" / "summary.json"
    summary = json.loads(file.read_text(encoding="utf-8"))
    summary["figures"].update(figures)
    file.write_text(json.dumps(summary), encoding="utf-8")


def _everything_written(folder):
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------------
# The helper

def test_inside_resolves_and_refuses_what_leaves_the_folder(tmp_path):
    root = tmp_path / "run"
    (root / "snapshots").mkdir(parents=True)
    (root / "snapshots" / "steps.npy").write_bytes(b"x")
    (tmp_path / "secret.env").write_bytes(SECRET)
    assert inside(root, "snapshots/steps.npy") == (root / "snapshots" / "steps.npy").resolve()
    assert inside(root, "snapshots/../snapshots/steps.npy").name == "steps.npy"
    for bad in ("../secret.env", "snapshots/../../secret.env", str(tmp_path / "secret.env"), "/etc/passwd"):
        with pytest.raises(RunError, match="leads outside"):
            inside(root, bad, "array file")
    for bad in (None, 3, ["a"], "", "a\0b"):
        with pytest.raises(RunError):
            inside(root, bad)
    os.symlink(tmp_path / "secret.env", root / "snapshots" / "images.npy")
    with pytest.raises(RunError, match="leads outside"):
        inside(root, "snapshots/images.npy")
    assert not is_inside(root, "snapshots/images.npy") and is_inside(root, "snapshots/steps.npy")


def test_a_folder_linked_elsewhere_as_a_whole_is_still_its_own_root(tmp_path):
    """A run folder that is itself a link (runs/ on another disk) reads its own files."""
    real = tmp_path / "disk" / "run"
    (real / "snapshots").mkdir(parents=True)
    (real / "snapshots" / "steps.npy").write_bytes(b"x")
    os.symlink(real, tmp_path / "run")
    assert inside(tmp_path / "run", "snapshots/steps.npy") == (real / "snapshots" / "steps.npy").resolve()


def test_writing_through_a_link_that_leaves_the_folder_is_refused(tmp_path):
    root = tmp_path / "run"
    (root / "analysis" / "figures").mkdir(parents=True)
    check_writable_inside(root, root / "analysis")
    os.symlink(tmp_path / "victim.txt", root / "analysis" / "states.csv")
    with pytest.raises(RunError, match="outside"):
        check_writable_inside(root, root / "analysis")


# ---------------------------------------------------------------------------------------
# report

@pytest.mark.parametrize("how", ["dotdot", "absolute", "link"])
def test_report_never_embeds_a_file_from_outside_the_run(analysed, tmp_path, capsys, how):
    secret = tmp_path / "secret.env"
    secret.write_bytes(SECRET)
    picture = tmp_path / "holiday.png"
    picture_bytes = _secret_png(picture)
    if how == "dotdot":
        _edit_summary(analysed, states="../../../secret.env", contact_sheet="figures/../../../holiday.png")
    elif how == "absolute":
        _edit_summary(analysed, states=str(secret), contact_sheet=str(picture))
    else:  # the files summary.json names are links leading out of the run
        figures = analysed / "analysis" / "figures"
        for name, target in (("states.png", secret), ("contact_sheet.png", picture)):
            (figures / name).unlink()
            os.symlink(target, figures / name)
    out = tmp_path / "out" / "report.html"
    assert main(["report", str(analysed), "-o", str(out), "--no-labels", "-q"]) == 0
    capsys.readouterr()
    written = _everything_written(out.parent)
    for data in (SECRET, picture_bytes):
        assert data not in written and base64.b64encode(data) not in written
    html = out.read_text(encoding="utf-8")
    assert "outside" in html and "left out" in html  # the reader is told which figure was skipped


def test_report_embeds_only_pictures(analysed, tmp_path):
    (analysed / "analysis" / "notes.txt").write_bytes(SECRET)
    _edit_summary(analysed, states="notes.txt")
    out = tmp_path / "r.html"
    assert main(["report", str(analysed), "-o", str(out), "--no-labels", "-q"]) == 0
    assert base64.b64encode(SECRET) not in out.read_bytes()
    assert "is not a picture; left out" in out.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------
# analyze writes only inside the run

@pytest.mark.parametrize("link", ["analysis/states.csv", "analysis/figures/states.png", "analysis"])
def test_analyze_does_not_write_through_a_link_out_of_the_run(tmp_path, capsys, link):
    path = write_run(tmp_path / "runs", "received", n=40)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_bytes(SECRET)
    (path / link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(outside if link == "analysis" else victim, path / link)
    before = sorted(p.name for p in outside.iterdir())
    assert main(["analyze", str(path), *FAST]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "outside" in err and len(err.strip().splitlines()) == 1
    assert victim.read_bytes() == SECRET and sorted(p.name for p in outside.iterdir()) == before


# ---------------------------------------------------------------------------------------
# the original script's folders

def test_legacy_files_linked_from_outside_are_skipped(tmp_path):
    from test_original_layout import write_legacy

    from clipxai.runs.load import load_run

    folder = write_legacy(tmp_path / "old", steps=[0, 10, 20, 30], layers=(1,))
    picture = tmp_path / "private" / "photo.png"
    picture.parent.mkdir()
    _secret_png(picture)
    os.symlink(picture, folder / "images" / "image_40.png")
    run = load_run(folder)
    assert run.steps.tolist() == [0, 10, 20, 30]
    assert any("image_40.png" in p and "outside" in p for p in run.problems)

    # a whole kind's folder linked elsewhere is left out the same way
    elsewhere = tmp_path / "private" / "images"
    (folder / "images").rename(elsewhere)
    os.symlink(elsewhere, folder / "images")
    run = load_run(folder)
    assert "images" not in run.array_names()
    assert any("outside" in p for p in run.problems)


# ---------------------------------------------------------------------------------------
# report -o replaces only what a report wrote

def test_report_replaces_its_own_files_and_others_only_with_overwrite(analysed, tmp_path, capsys):
    from clipxai.report.document import HTML_MARK, MARKDOWN_MARK

    args = ["report", str(analysed), "--no-labels", "-q", "-o"]
    out = tmp_path / "r.html"
    assert main([*args, str(out)]) == 0
    assert HTML_MARK in out.read_text(encoding="utf-8")
    assert out.with_suffix(".md").read_text(encoding="utf-8").startswith(MARKDOWN_MARK)
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # like any file the user writes
    assert main([*args, str(out)]) == 0  # its own report: replaced
    # a report written before reports carried their mark is recognised by its policy line
    out.write_text(out.read_text(encoding="utf-8").replace(HTML_MARK, ""), encoding="utf-8")
    assert main([*args, str(out)]) == 0

    mine = tmp_path / "mine.html"
    mine.write_text("<p>my notes</p>")
    assert main([*args, str(mine)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert mine.read_text() == "<p>my notes</p>" and not (tmp_path / "mine_figures").exists()
    assert main([*args, str(mine), "--overwrite"]) == 0
    assert HTML_MARK in mine.read_text(encoding="utf-8")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ---------------------------------------------------------------------------------------
# array files named by run.json (read by clipxai.runs.reader)

@pytest.mark.parametrize("how", ["manifest", "link"])
def test_array_files_outside_the_run_are_refused(tmp_path, how):
    from clipxai.runs.load import load_run
    from clipxai.runs.writer import RunWriter

    path = write_run(tmp_path / "runs", "received", n=20)
    outside = tmp_path / "outside.npy"
    np.save(outside, np.ones((20, 64), np.float32))
    if how == "manifest":
        manifest = json.loads((path / "run.json").read_text(encoding="utf-8"))
        manifest["arrays"]["embeddings"]["file"] = "../../outside.npy"
        (path / "run.json").write_text(json.dumps(manifest), encoding="utf-8")
    else:
        (path / "snapshots" / "embeddings.npy").unlink()
        os.symlink(outside, path / "snapshots" / "embeddings.npy")
    stamp = outside.stat().st_mtime_ns
    with pytest.raises(RunError, match="outside"):
        load_run(path).embeddings
    with pytest.raises(RunError, match="outside"):
        RunWriter.reopen(path)  # a resume would write into it
    assert outside.stat().st_mtime_ns == stamp
