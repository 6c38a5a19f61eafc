"""The ascend command-line contract: last stdout line is the run, exit codes, one-sentence errors."""

import json

import pytest

from clipxai.cli.commands import main


def ascend(tmp_path, *args):
    return main(["ascend", *args, "--out", str(tmp_path / "runs"), "--quiet"])


def test_ascend_writes_a_complete_run_and_prints_its_path_last(tmp_path, tiny_clip_file, capsys):
    code = ascend(tmp_path, "a red heart", "--model", str(tiny_clip_file), "--steps", "8",
                  "--snapshot-every", "4", "--cutouts", "2", "--name", "cli-run")
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert out[-1] == str(tmp_path / "runs" / "cli-run")
    manifest = json.loads((tmp_path / "runs" / "cli-run" / "run.json").read_text())
    assert manifest["status"] == "complete" and manifest["n_snapshots"] == 2
    assert manifest["model"]["source"] == str(tiny_clip_file.resolve())
    assert manifest["config"]["optim"]["steps"] == 8


def test_seeds_print_every_path(tmp_path, capsys):
    code = ascend(tmp_path, "❤️", "--model", "random:tiny", "--steps", "3", "--seeds", "2", "--name", "pair")
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and [line.rsplit("/", 1)[-1] for line in out] == ["pair-seed0", "pair-seed1"]


@pytest.mark.parametrize("args, message", [
    (["   "], "prompt is empty"),
    ([""], "prompt is empty"),
    (["a:b"], "weight 'b'"),
    (["x", "--model", "ViT-Q/1"], "neither a known model"),
    (["x", "--model", "/no/such/file.pt"], "does not exist"),
    (["x", "--steps", "0"], "--steps must be a positive"),
    (["x", "--lr", "-0.1"], "--lr must be a positive"),
    (["x", "--loss", "/no/such/losses.py:fn"], "does not exist"),
    (["x", "--loss", "nosuchloss"], "not a known term"),
    (["x", "--image-prompt", "/no/such.png"], "does not exist"),
    ([], "prompt is missing"),
])
def test_bad_input_is_one_sentence_and_nonzero(tmp_path, capsys, args, message):
    if "--model" not in args:
        args = [*args, "--model", "random:tiny"]
    code = ascend(tmp_path, *args)
    err = capsys.readouterr().err
    assert code != 0
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_loss_file_errors(tmp_path, capsys):
    f = tmp_path / "l.py"
    f.write_text("import torch\ndef vec(step):\n    return torch.ones(5)\n")
    assert ascend(tmp_path, "x", "--model", "random:tiny", "--loss", f"{f}:missing") == 2
    assert "has no function named 'missing'" in capsys.readouterr().err
    assert ascend(tmp_path, "x", "--model", "random:tiny", "--loss", f"{f}:vec") == 2
    assert "shape (5,)" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_truncated_and_non_clip_weights(tmp_path, tiny_clip_file, capsys):
    bad = tmp_path / "trunc.pt"
    bad.write_bytes(tiny_clip_file.read_bytes()[:1000])
    assert ascend(tmp_path, "x", "--model", str(bad)) == 2
    assert "could not be read" in capsys.readouterr().err


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = main(["ascend", "x", "--model", "random:tiny", "--out", str(blocker / "runs"), "--quiet"])
    assert code == 2 and "cannot be created" in capsys.readouterr().err


def test_resume_errors(tmp_path, capsys):
    (tmp_path / "notarun").mkdir()
    assert main(["ascend", "--resume", str(tmp_path / "notarun")]) == 2
    assert "not a clipxai run" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "run.json").write_text("{ not json")
    (corrupt / "keep.npy").write_bytes(b"precious")
    assert main(["ascend", "--resume", str(corrupt)]) == 2
    assert "is corrupt" in capsys.readouterr().err
    assert (corrupt / "keep.npy").read_bytes() == b"precious"
    assert (corrupt / "run.json").read_text() == "{ not json"


def test_interrupted_run_exits_130_and_resume_completes(tmp_path, capsys, monkeypatch):
    from clipxai.ascent import engine
    original = engine.Engine.step

    def stop_after_three(self, index):
        step = original(self, index)
        if index == 2 and self.start_step == 0:
            self.request_stop("SIGTERM")
        return step

    monkeypatch.setattr(engine.Engine, "step", stop_after_three)
    code = ascend(tmp_path, "x", "--model", "random:tiny", "--steps", "6", "--name", "r")
    captured = capsys.readouterr()
    assert code == 130 and captured.out.strip().splitlines()[-1].endswith("/r")
    assert "--resume" in captured.err
    assert main(["ascend", "--resume", str(tmp_path / "runs" / "r"), "--quiet"]) == 0
    assert json.loads((tmp_path / "runs" / "r" / "run.json").read_text())["status"] == "complete"


def test_nan_exits_3_and_prints_the_run(tmp_path, capsys):
    f = tmp_path / "nan.py"
    f.write_text("import torch\ndef boom(step):\n    return torch.tensor(float('inf') if step.index >= 2 else 0.0)\n")
    code = ascend(tmp_path, "x", "--model", "random:tiny", "--steps", "6", "--loss", f"{f}:boom", "--name", "n")
    captured = capsys.readouterr()
    assert code == 3 and "step 2" in captured.err
    assert captured.out.strip().splitlines()[-1].endswith("/n")


def test_losses_lists_builtins_with_descriptions(capsys):
    assert main(["losses"]) == 0
    out = capsys.readouterr().out
    for name in ("cosine", "spherical", "tv", "memory", "range", "logexp_cosine"):
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert len(line.split(None, 1)[1]) > 10


def start_long_ascend(tmp_path, name, snapshot_every, min_snapshots, **popen):
    """A real `clipxai ascend` subprocess, returned once its run has ``min_snapshots`` rows."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    run_dir = tmp_path / "runs" / name
    proc = subprocess.Popen(
        [sys.executable, str(root / "cli.py"), "ascend", "x", "--model", "random:tiny", "--steps", "100000",
         "--snapshot-every", str(snapshot_every), "--cutouts", "1", "--out", str(tmp_path / "runs"),
         "--name", name, "--quiet"], env={**os.environ, "OMP_NUM_THREADS": "1"}, **popen)
    deadline = time.time() + 60
    while time.time() < deadline:
        manifest = run_dir / "run.json"
        if manifest.is_file() and json.loads(manifest.read_text())["n_snapshots"] >= min_snapshots:
            break
        time.sleep(0.1)
    return proc, run_dir


def test_sigterm_to_a_running_ascend_stops_cleanly(tmp_path):
    import signal
    import subprocess

    proc, run_dir = start_long_ascend(tmp_path, "long", 5, 2, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    manifest = json.loads((run_dir / "run.json").read_text())
    assert proc.returncode == 130, err
    assert out.strip().splitlines()[-1] == str(run_dir)
    assert manifest["status"] == "interrupted" and manifest["stop_reason"] == "SIGTERM"
    assert manifest["n_snapshots"] >= 2 and (run_dir / "checkpoint.pt").is_file()


def test_progress_bar_on_a_terminal(tiny_clip, tmp_path):
    import io

    import clipxai
    from clipxai.ascent.progress import Progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    progress = Progress(stream=stream, next_command="clipxai analyze RUN")
    [run] = clipxai.ascend("a red heart", model_obj=tiny_clip, steps=5, cutouts=1, quiet=True,
                           out=str(tmp_path), callbacks=[progress])
    text = stream.getvalue()
    final = run.metrics()[-1]["sim/a red heart"]
    assert "5/5" in text and "step/s" in text and "<" in text  # done/total, rate, elapsed<remaining
    assert f"a red heart {final:.3f} (best" in text
    assert "done: 5 steps" in text and "next: clipxai analyze RUN" in text
    # Not a terminal (a batch job): log lines with the same figures, the first and the last step always.
    log = io.StringIO()
    clipxai.ascend("a red heart", model_obj=tiny_clip, steps=3, seeds=2, cutouts=1, quiet=True,
                   out=str(tmp_path), callbacks=[Progress(stream=log, every=3600)])
    lines = log.getvalue().splitlines()
    assert lines[0] == "3 steps of 2 seeds to go" and lines[1].startswith("step 3/3 (100%)")
    assert "ETA 0:00" in lines[1] and "best" in lines[1] and lines[-1].startswith("done: 3 steps")


def test_progress_shows_the_true_best_and_every_term(tiny_clip, tmp_path):
    """The best is the maximum over every step (lines print only now and then); the last line names each term."""
    import io

    import clipxai
    from clipxai.ascent.progress import Progress

    log = io.StringIO()
    [run] = clipxai.ascend("a red heart", model_obj=tiny_clip, steps=12, cutouts=1, quiet=True, lr=0.3,
                           out=str(tmp_path), callbacks=[Progress(stream=log, every=3600)])
    sims = [m["sim/a red heart"] for m in run.metrics()]
    assert max(sims) > max(sims[-1], sims[0])  # the best step printed no line of its own
    assert f"(best {max(sims):.3f})" in log.getvalue().splitlines()[-1]
    # A run of terms alone ends with their values, not with an empty '|'.
    (tmp_path / "terms.py").write_text("def saturation(step):\n"
                                       "    img = step.image\n"
                                       "    return (img.max(1).values - img.min(1).values).mean()\n")
    log = io.StringIO()
    [run] = clipxai.ascend(terms=[f"{tmp_path / 'terms.py'}:saturation"], model_obj=tiny_clip, steps=3, cutouts=1,
                           quiet=True, out=str(tmp_path), callbacks=[Progress(stream=log, every=3600)])
    last = log.getvalue().splitlines()[-1]
    assert last.startswith("done: 3 steps") and "| ;" not in last
    assert f"saturation {run.metrics()[-1]['term/saturation']:.4g}" in last


def test_a_killed_process_leaves_every_recorded_row_readable(tmp_path):
    import signal
    import subprocess

    import numpy as np

    import clipxai

    proc, run_dir = start_long_ascend(tmp_path, "killed", 3, 4, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run = clipxai.load_run(run_dir)
    assert run.status == "running" and run.n >= 4
    assert list(run.steps) == [3 * i for i in range(run.n)]
    images = np.asarray(run.images, dtype=np.float32)
    assert np.isfinite(images).all() and all(np.abs(row).sum() > 0 for row in images)
    assert len(run.metrics()) >= 3 * (run.n - 1) + 1


def test_help_lists_every_command_without_importing_torch():
    import subprocess
    import sys
    from pathlib import Path

    from clipxai.cli.commands import COMMANDS, SUMMARIES
    assert set(COMMANDS) <= set(SUMMARIES)  # a command without a summary would be imported to list it
    root = Path(__file__).resolve().parents[1]
    code = ("import sys; from clipxai.cli.commands import main; main(['--help']); "
            "sys.stderr.write(str(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'clip'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=60)
    assert proc.returncode == 0 and proc.stderr.strip() == "[]"
    for name in COMMANDS:
        assert f"  {name} " in proc.stdout


def test_a_kill_right_after_a_checkpoint_loses_no_metrics_once_resumed(tmp_path):
    """Killed during the step after a snapshot: the checkpoint covers steps its metrics must hold too."""
    import subprocess
    import sys

    import clipxai
    script = ("import os, signal, clipxai\n"
              "from clipxai.ascent.engine import Callback\n"
              "class Kill(Callback):\n"
              "    def on_forward(self, engine, step):\n"
              "        if step.index == 20: os.kill(os.getpid(), signal.SIGKILL)\n"
              f"clipxai.ascend('red', model='random:tiny', steps=40, cutouts=2, out={str(tmp_path)!r}, name='k',\n"
              "               quiet=True, callbacks=[Kill()])\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9
    [run] = clipxai.ascend(resume=tmp_path / "k", quiet=True)
    assert run.status == "complete"
    assert [m["step"] for m in run.metrics()] == list(range(40))


def test_debug_is_taken_after_the_command_and_a_missing_command_says_why_whatever_its_arguments(
        tmp_path, capsys, monkeypatch):
    from clipxai.cli import commands as cli
    assert main(["runs", str(tmp_path), "--debug"]) == 0
    capsys.readouterr()
    monkeypatch.setitem(cli.COMMANDS, "video", "clipxai.not_a_module:video_command")
    assert main(["video", "runs/x", "-o", "run.mp4"]) == 2
    err = capsys.readouterr().err
    assert "'video' command is not available in this install" in err and "No such option" not in err


def test_ascend_help_lists_the_presets_then_every_option_in_its_section(capsys):
    from clipxai.ascent.config import list_presets
    from clipxai.cli.ascend import SECTIONS

    assert main(["ascend", "--help"]) == 0
    text = capsys.readouterr().out
    titles = ["Presets", *(title for title, _ in SECTIONS)]
    positions = [text.index(f"\n{title}:\n") for title in titles]
    assert positions == sorted(positions) and "Other options" not in text
    presets = text[positions[0]:positions[1]]
    assert all(f"  {name} " in presets for name in list_presets())
    optimisation = text[positions[titles.index("Optimisation")]:positions[titles.index("Terms")]]
    assert "--lr " in optimisation and "--cutouts" not in optimisation
