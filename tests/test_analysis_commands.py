"""The commands around the analysis: runs, analyze on a folder, --open, video, and their help."""

import json
import os
import subprocess
import sys
import webbrowser
from pathlib import Path

import click
import numpy as np
import pytest
from helpers_runs import write_run
from PIL import Image

from clipxai.analysis.check import synthetic
from clipxai.cli.commands import main

FAST = ["--projection", "pca", "--no-labels", "-q"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two runs of a batch (one analyzed) and a run that was killed while running."""
    root = tmp_path_factory.mktemp("runs")
    batch = root / "batch"
    batch.mkdir()
    a = write_run(batch, "heart-seed0", n=60, prompt="❤️")
    write_run(batch, "heart-seed1", n=60, prompt="❤️", seed=1)
    write_run(root, "killed", n=40, recorded=25, status="running", prompt="a gold ring")
    assert main(["analyze", str(a), *FAST, "--no-gif"]) == 0
    return root


def test_runs_lists_every_run_with_its_verdict_in_words(folder, capsys):
    assert main(["runs", str(folder)]) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert lines[0].split() == ["name", "status", "prompt", "model", "steps", "snapshots", "verdict", "age"]
    rows = {Path(line.split()[0]).name: line for line in lines[1:]}   # the name column is each run's path
    assert set(rows) == {"heart-seed0", "heart-seed1", "killed"}
    assert rows["heart-seed0"].split()[0] == str(folder / "batch" / "heart-seed0")
    summary = json.loads((folder / "batch" / "heart-seed0" / "analysis" / "summary.json").read_text())
    from clipxai.util.words import verdict_label
    assert verdict_label(summary["verdict"], summary["n_states"]) in rows["heart-seed0"]
    assert "_" not in rows["heart-seed0"].split("random:tiny")[1]  # words, not a snake_case code
    assert "killed" in rows["killed"].split()[1] and "25" in rows["killed"] and "a gold ring" in rows["killed"]
    assert "3 runs in" in err and "clipxai report" in err


def test_runs_as_json_and_bad_folders(folder, tmp_path, capsys):
    assert main(["runs", str(folder), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows if r["name"].startswith("heart")] == ["heart-seed0", "heart-seed1"]
    assert {r["snapshots"] for r in rows} == {"60", "25"}
    assert main(["runs", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "does not exist" in err and len(err.splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["runs", str(empty)]) == 0 and "No runs in" in capsys.readouterr().out


def test_runs_reads_run_json_only_and_never_imports_torch(folder):
    code = ("import sys; from clipxai.cli.commands import main; rc = main(['runs', sys.argv[1]]); "
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', rc)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, env=env,
                         timeout=60).stdout
    assert out.strip().splitlines()[-1] == "NO-TORCH 0"


def test_analyze_a_folder_analyzes_each_run_and_says_which_failed(tmp_path, capsys):
    good = [write_run(tmp_path, f"seed{i}", n=40, seed=i) for i in range(2)]
    write_run(tmp_path, "short", n=10, recorded=2)  # 2 snapshots: cannot be analyzed
    rc = main(["analyze", str(tmp_path), *FAST, "--no-gif"])
    out, err = capsys.readouterr()
    assert rc == 2
    for run in good:
        assert (run / "analysis" / "summary.json").is_file() and f"{run}:" in out
    assert "skipped: " in err and "only 2 snapshot(s)" in err
    assert err.strip().splitlines()[-1].startswith("error: 1 of 3 runs in")
    assert out.strip().splitlines()[-1].startswith("next: clipxai report ")


def test_analyze_output_grammar_gif_warning_and_next_step(tmp_path, capsys):
    run = write_run(tmp_path, "few", traj=synthetic.single_state(np.random.default_rng(0), n=12, dim=64, noise=0.3))
    assert main(["analyze", str(run), "--projection", "pca", "--no-labels", "-q"]) == 0
    out, err = capsys.readouterr()
    assert "  1 state, 0 switches" in out and "1 states" not in out
    assert f"the animation {run / 'analysis' / 'figures' / 'animation.gif'}" in out
    assert "warning: only 12 snapshots" in err
    assert out.strip().splitlines()[-1] == f"next: clipxai report {run} -o report.html --open"


def test_report_open_uses_the_browser_or_says_there_is_none(tmp_path, monkeypatch, capsys):
    run = write_run(tmp_path, "r", n=40)
    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda uri, *a, **k: opened.append(uri) or True)
    out = tmp_path / "report.html"
    assert main(["report", str(run), "-o", str(out), "--open", *FAST]) == 0
    assert opened == [out.resolve().as_uri()]
    monkeypatch.setattr(webbrowser, "open", lambda *a, **k: False)
    assert main(["report", str(run), "-o", str(out), "--open", "-q", "--no-labels"]) == 0
    err = capsys.readouterr().err
    assert f"No web browser could be started here; open {out} in one yourself." in err


def test_demo_open_opens_its_report(tmp_path, monkeypatch, capsys):
    import clipxai.cli.demo as demo

    page = tmp_path / "demo" / "report.html"
    monkeypatch.setattr(demo, "run_demo", lambda *a, **k: page)
    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda uri, *a, **k: opened.append(uri) or True)
    assert main(["demo", "-o", str(tmp_path / "demo"), "--quiet", "--open"]) == 0
    assert opened == [page.resolve().as_uri()] and capsys.readouterr().out.strip() == str(page)


@pytest.fixture(scope="module")
def analyzed_run(tmp_path_factory):
    run = write_run(tmp_path_factory.mktemp("video"), "vid", n=30)
    assert main(["analyze", str(run), *FAST, "--no-gif"]) == 0
    return run


def test_video_mp4_has_every_snapshot_at_a_readable_size(analyzed_run, tmp_path, capsys):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    out = tmp_path / "run.mp4"
    assert main(["video", str(analyzed_run), "-o", str(out)]) == 0
    assert f"wrote {out} (30 frames" in capsys.readouterr().out
    assert out.read_bytes()[4:8] == b"ftyp"
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert frames == 30
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    assert meta["size"][0] >= 512
    reader.close()
    assert main(["video", str(analyzed_run), "-o", str(out)]) == 2  # not replaced without --overwrite
    assert "--overwrite" in capsys.readouterr().err


def test_video_gif_frames_are_captioned(analyzed_run, tmp_path, capsys):
    out = tmp_path / "run.gif"
    assert main(["video", str(analyzed_run), "-o", str(out), "--size", "256", "--max-frames", "10"]) == 0
    with Image.open(out) as im:
        assert im.n_frames == 10 and im.size[0] == 256  # 16-px snapshots, enlarged 16 times
        band = np.asarray(im.convert("L"))[:40]
    assert (band < 100).sum() > 100  # "step 0 · similarity 0.200" and the state, dark on white


def test_video_without_ffmpeg_or_with_a_bad_name_is_one_sentence(analyzed_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if imageio-ffmpeg were not installed
    assert main(["video", str(analyzed_run), "-o", str(tmp_path / "a.mp4")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'pip install "clipxai[video]"' in err and ".gif" in err
    assert not (tmp_path / "a.mp4").exists()
    assert main(["video", str(analyzed_run), "-o", str(tmp_path / "a.gif")]) == 0  # a GIF needs no ffmpeg
    assert main(["video", str(analyzed_run), "-o", str(tmp_path / "a.avi")]) == 2
    assert "should end in .mp4 or .gif" in capsys.readouterr().err


def _command(name):
    from clipxai.cli.commands import cli
    return cli.get_command(click.Context(cli), name)


@pytest.mark.parametrize("name", ["analyze", "report", "compare", "runs", "video", "demo"])
def test_every_option_has_help_and_shows_its_default(name):
    command = _command(name)
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert param.help, f"{name} {param.opts} has no help"
    text = command.get_help(click.Context(command, info_name=name, **command.context_settings))
    assert "analyse" not in text and "neighbour" not in text
    if name != "runs":
        assert "[default: " in text


def test_projection_and_output_mean_the_same_everywhere():
    projection = {n: next(p for p in _command(n).params if p.name == "projection") for n in ("analyze", "report")}
    assert projection["analyze"].default == projection["report"].default == "pca"
    assert projection["analyze"].help == projection["report"].help
    for name in ("report", "compare", "video", "demo"):
        assert any("-o" in p.opts for p in _command(name).params), name


def test_new_commands_are_listed(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "runs" in out and "video" in out and "analyse" not in out


def test_report_keeps_a_file_it_did_not_write_unless_forced(tmp_path, capsys):
    run = write_run(tmp_path, "kept", n=12)
    notes = tmp_path / "notes.html"
    notes.write_text("<p>my notes</p>")
    assert main(["report", str(run), "-o", str(notes), *FAST]) == 2
    assert notes.read_text() == "<p>my notes</p>" and "--overwrite" in capsys.readouterr().err
    assert main(["report", str(run), "-o", str(notes), "--force", *FAST]) == 0
    assert "my notes" not in notes.read_text()
    assert main(["report", str(run), "-o", str(notes), *FAST]) == 0  # a report it wrote is replaced


def test_default_outputs_in_the_working_folder_are_git_ignored():
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    paths = ["report.html", "report.md", "report_figures/fig.png", "compare-run/table.csv", "atlas/atlas.html", "run.mp4"]
    done = subprocess.run(["git", "check-ignore", *paths], cwd=root, capture_output=True, text=True)
    assert done.stdout.split() == paths
