"""What survives faults: a second writer, a full disk, a kill, a broken term, a foreign checkpoint."""

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli_ascend import start_long_ascend

import clipxai
from clipxai.cli.commands import main
from clipxai.errors import ClipxaiError, NonFiniteLossError, RunError, TermError
from clipxai.runs.load import load_run
from clipxai.runs.writer import RunWriter, is_locked

FAST = dict(quiet=True, cutouts=2, steps=12, snapshot_every=4)


def ascend(tiny_clip, out, **options):
    return clipxai.ascend("a red heart", model_obj=tiny_clip, out=str(out), **{**FAST, **options})


def tree(folder: Path) -> dict:
    """Every file under ``folder`` with its size and modification time (to show nothing changed)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()} if folder.exists() else {}


# -- a second writer --------------------------------------------------------------------------

def test_a_run_being_written_refuses_a_second_writer_and_a_killed_one_resumes(tmp_path):
    proc, run_dir = start_long_ascend(tmp_path, "busy", 3, 4, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert is_locked(run_dir)
        before = (run_dir / "checkpoint.pt").stat().st_mtime_ns if (run_dir / "checkpoint.pt").exists() else None
        with pytest.raises(RunError, match="being written by another process"):
            clipxai.ascend(resume=run_dir, quiet=True, steps=200000)
        with pytest.raises(RunError, match="being written by process"):
            RunWriter.reopen(run_dir)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert not is_locked(run_dir)  # the lock died with its process
    assert before is None or (run_dir / "checkpoint.pt").is_file()
    killed = load_run(run_dir)
    assert killed.status == "running" and killed.n >= 4
    assert main(["analyze", str(run_dir), "--projection", "none", "--no-gif", "--no-labels", "-q"]) == 0
    summary = json.loads((run_dir / "analysis" / "summary.json").read_text())
    assert summary["run"]["partial"]["reason"] == "killed" and summary["run"]["partial"]["rows_used"] == summary["n_snapshots"]
    assert any("killed" in note for note in summary["notes"])
    [resumed] = clipxai.ascend(resume=run_dir, quiet=True, steps=killed.manifest["steps_done"] + 6)
    assert resumed.status == "complete" and not is_locked(run_dir)


# -- a full disk ----------------------------------------------------------------------------------

@pytest.fixture()
def small_disk(tmp_path):
    """A 1.5 MB tmpfs: a real disk that fills up (needs root; skipped otherwise)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1500k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("a small tmpfs cannot be mounted here (not root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_is_one_sentence_and_leaves_a_consistent_resumable_run(tiny_clip, small_disk, tmp_path):
    # The arrays fit; the metrics lines and checkpoints fill the disk a few hundred steps in.
    (small_disk / "filler").write_bytes(b"\0" * 900_000)
    with pytest.raises(RunError, match="disk holding .* is full") as info:
        ascend(tiny_clip, small_disk, name="full", steps=4000, snapshot_every=20, cutouts=1, size=(8, 8))
    message = str(info.value)
    assert "\n" not in message and "--resume" in message
    run_dir = small_disk / "full"
    leftovers = [p.name for p in run_dir.rglob("*") if p.name.endswith((".tmp", ".grow.npy"))]
    assert leftovers == []
    # run.json is whole and says the run stopped for want of room and can go on from its checkpoint.
    run = load_run(run_dir)
    assert run.status == "interrupted" and run.manifest["stop_reason"] == "disk full"
    assert 0 < run.n < 200 and (run_dir / "checkpoint.pt").is_file()
    shutil.copytree(run_dir, tmp_path / "moved")
    (tmp_path / "moved" / ".lock").unlink(missing_ok=True)
    [done] = clipxai.ascend(resume=tmp_path / "moved", model_obj=tiny_clip, quiet=True,
                            steps=run.manifest["steps_done"] + 40)
    assert done.status == "complete"


def test_a_disk_full_before_any_checkpoint_fails_in_one_sentence(tiny_clip, small_disk):
    from clipxai.ascent.engine import Callback

    class Filler(Callback):
        """Another program fills the disk once the run has begun (its arrays fit the disk as it was)."""

        def on_start(self, engine):
            (small_disk / "filler").write_bytes(b"\0" * 1_200_000)

    with pytest.raises(RunError, match="disk holding .* is full") as info:
        ascend(tiny_clip, small_disk, name="full", steps=40, snapshot_every=1, cutouts=1, callbacks=[Filler()])
    assert "cannot be resumed" in str(info.value)
    run = load_run(small_disk / "full")
    assert run.status == "failed" and "disk" in run.manifest["error"] and run.n == 0
    assert [p.name for p in run.path.rglob("*") if p.name.endswith(".tmp")] == []


def test_arrays_are_reserved_on_disk_so_a_full_disk_is_an_error_not_a_sigbus(tmp_path, monkeypatch):
    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "posix_fallocate", no_space)
    writer = RunWriter.create(tmp_path, "r", {})
    with pytest.raises(OSError):
        writer.allocate("images", 10, (3, 8, 8), "float16", "test")
    assert not (tmp_path / "r" / "snapshots" / "images.npy").exists()
    writer.close()


def test_growing_on_a_full_disk_changes_nothing(tiny_clip, tmp_path, monkeypatch):
    [run] = ascend(tiny_clip, tmp_path, name="g", steps=8)
    before = tree(run.path)
    real = os.posix_fallocate
    calls = []

    def fill_on_second(fd, offset, length):
        calls.append(length)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, offset, length)
    monkeypatch.setattr(os, "posix_fallocate", fill_on_second)
    with pytest.raises(RunError, match="disk holding .* is full"):
        clipxai.ascend(resume=run.path, model_obj=tiny_clip, quiet=True, steps=40)
    after = tree(run.path)
    assert {k: v for k, v in after.items() if k != ".lock"} == {k: v for k, v in before.items() if k != ".lock"}


def test_disk_full_mid_run_marks_it_interrupted_and_resume_is_bit_identical(tiny_clip, tmp_path, monkeypatch):
    [full] = ascend(tiny_clip, tmp_path, name="whole")
    original = RunWriter.append_metrics

    def fail_at_step_7(self, record):
        if record["step"] == 7:
            raise OSError(errno.ENOSPC, "No space left on device")
        original(self, record)
    monkeypatch.setattr(RunWriter, "append_metrics", fail_at_step_7)
    with pytest.raises(RunError, match="is full"):
        ascend(tiny_clip, tmp_path, name="cut")
    monkeypatch.setattr(RunWriter, "append_metrics", original)
    cut = load_run(tmp_path / "cut")
    assert cut.status == "interrupted" and cut.manifest["stop_reason"] == "disk full"
    [resumed] = clipxai.ascend(resume=cut.path, model_obj=tiny_clip, quiet=True)
    for name in ("images", "latents", "gradients", "embeddings"):
        np.testing.assert_array_equal(resumed.array(name), full.array(name))
    assert "stop_reason" not in json.loads((cut.path / "run.json").read_text())  # cleared once complete


# -- what a run says about itself ----------------------------------------------------------------------

def test_a_term_that_raises_is_named_with_its_step(tiny_clip, tmp_path):
    f = tmp_path / "bad.py"
    f.write_text("def boom(step):\n    if step.index == 3:\n        raise ValueError('no luck')\n"
                 "    return step.image.mean()\n")
    with pytest.raises(TermError, match="'boom' raised ValueError at step 3: no luck") as info:
        ascend(tiny_clip, tmp_path / "runs", terms=[f"{f}:boom"], name="t")
    assert load_run(info.value.run_paths[0]).status == "failed"


def test_the_command_line_prints_the_folder_a_raising_term_leaves_and_refuses_resume_changes(tmp_path, capsys):
    f = tmp_path / "bad.py"
    f.write_text("def boom(step):\n    if step.index == 3:\n        raise ValueError('no luck')\n"
                 "    return step.image.mean()\n")
    rc = main(["ascend", "red", "--term", f"{f}:boom", "--model", "random:tiny", "--steps", "6", "--snapshot-every",
               "2", "--out", str(tmp_path / "runs"), "--name", "t", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 2 and out.strip().splitlines()[-1] == str(tmp_path / "runs" / "t")
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        line for line in err.splitlines() if "'boom' raised ValueError at step 3" in line]
    for extra in (["--expand", "3"], ["--llm-model", "foo"]):
        assert main(["ascend", "--resume", str(tmp_path / "runs" / "t"), "--steps", "8", *extra]) == 2
        assert "Only --steps, --device and --quiet" in capsys.readouterr().err
    with pytest.raises(ClipxaiError, match="not both"):
        clipxai.ascend("red", resume=tmp_path / "runs" / "t", quiet=True)


def test_non_finite_at_step_0_names_the_term_and_keeps_no_rows(tiny_clip, tmp_path):
    f = tmp_path / "nan.py"
    f.write_text("import torch\ndef nan(step):\n    return torch.tensor(float('nan')) if step.index == 0 "
                 "and step.image.requires_grad else torch.tensor(0.0)\n")
    with pytest.raises(NonFiniteLossError) as info:
        ascend(tiny_clip, tmp_path / "runs", terms=[f"{f}:nan"], name="n")
    message = str(info.value)
    assert "step 0" in message and "the term 'nan'" in message and "no snapshot was recorded" in message
    assert "learning rate" not in message and "check that term" in message


def test_a_foreign_checkpoint_is_refused_in_one_sentence(tiny_clip, tmp_path):
    [run] = ascend(tiny_clip, tmp_path, name="a", steps=4)
    torch.save({"weights": 1}, run.path / "checkpoint.pt")
    with pytest.raises(RunError, match="cannot be read"):
        clipxai.ascend(resume=run.path, model_obj=tiny_clip, quiet=True, steps=8)
    [other] = ascend(tiny_clip, tmp_path, name="b", steps=4, size=(16, 16))
    shutil.copy(other.path / "checkpoint.pt", run.path / "checkpoint.pt")
    with pytest.raises(RunError, match="does not fit this run"):
        clipxai.ascend(resume=run.path, model_obj=tiny_clip, quiet=True, steps=8)


def test_resume_to_fewer_steps_than_done_is_refused(tiny_clip, tmp_path):
    from clipxai.ascent.engine import Callback

    class StopAt5(Callback):
        def on_step_end(self, engine, step):
            if step.index == 5:
                engine.request_stop("test")
    [run] = ascend(tiny_clip, tmp_path, name="i", steps=12, callbacks=[StopAt5()])
    assert run.status == "interrupted" and run.manifest["steps_done"] == 6
    with pytest.raises(RunError, match="interrupted after 6 steps; pass a --steps larger than 6"):
        clipxai.ascend(resume=run.path, model_obj=tiny_clip, quiet=True, steps=4)


def test_every_seed_of_an_existing_group_is_checked_before_any_folder_is_made(tiny_clip, tmp_path):
    ascend(tiny_clip, tmp_path, name="dup", seeds=2, seed=0)
    shutil.rmtree(tmp_path / "dup-seed0")
    with pytest.raises(RunError, match="dup-seed1 already exists"):
        ascend(tiny_clip, tmp_path, name="dup", seeds=2, seed=0)
    assert not (tmp_path / "dup-seed0").exists()  # no orphan made before the refusal


def test_interrupted_group_prints_the_resume_command_of_every_seed(tmp_path, capsys, monkeypatch):
    from clipxai.ascent import engine
    original = engine.Engine.step

    def stop_after_two(self, index):
        step = original(self, index)
        if index == 1:
            self.request_stop("SIGINT")
        return step
    monkeypatch.setattr(engine.Engine, "step", stop_after_two)
    code = main(["ascend", "x", "--model", "random:tiny", "--steps", "6", "--seeds", "2", "--name", "g",
                 "--out", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert code == 130
    for seed in (0, 1):
        assert f"clipxai ascend --resume {tmp_path / f'g-seed{seed}'}" in err


def test_run_files_follow_the_umask_like_every_other_file(tiny_clip, tmp_path):
    old = os.umask(0o022)
    try:
        [run] = ascend(tiny_clip, tmp_path, name="m", steps=12)
        assert main(["analyze", str(run.path), "--projection", "none", "--no-gif", "--no-labels", "-q"]) == 0
    finally:
        os.umask(old)
    for file in (run.path / "run.json", run.path / "checkpoint.pt", run.path / "analysis" / "summary.json",
                 run.path / "snapshots" / "images.npy"):
        assert stat.S_IMODE(file.stat().st_mode) == 0o644, file


@pytest.mark.parametrize("options, words", [
    (dict(size=(100000, 100000)), "needs about"),
    (dict(cutouts=200000), "--cutout-batch"),
    (dict(temperature=0.0, similarity="logexp"), "--temperature must be a positive"),
    (dict(name="x" * 300), "under 255 bytes"),
    (dict(name="two\nlines"), "without control characters"),
])
def test_requests_that_cannot_work_are_refused_before_any_folder(tiny_clip, tmp_path, options, words):
    with pytest.raises(ClipxaiError, match=words):
        ascend(tiny_clip, tmp_path / "runs", **options)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_second_ctrl_c_stops_a_long_step_at_once(tmp_path):
    """A step of many chunked views: the first Ctrl-C waits for the step, the second ends it now."""
    import time
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, str(root / "cli.py"), "ascend", "x", "--model", "toy", "--steps", "5", "--cutouts", "1500",
         "--cutout-batch", "8", "--out", str(tmp_path), "--name", "slow", "--quiet"],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = tmp_path / "slow"
    deadline = time.time() + 90
    while time.time() < deadline and not (run_dir / "run.json").is_file():
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    sent = time.time()
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert time.time() - sent < 10
    assert proc.returncode == 130, err
    assert "stopped at once" in err and f"clipxai ascend --resume {run_dir}" in err
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "interrupted" and not is_locked(run_dir)
