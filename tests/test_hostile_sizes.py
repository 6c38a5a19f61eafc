"""Hostile sizes, replies and damage: a full disk, sizes no run can take, an LLM's reply, a damaged run, sys.exit.

The second half of tests/test_hostile.py, with its helpers: each case asserts the one
sentence and the exit code, and that what must not change is byte-identical afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from helpers_runs import write_run
from test_hostile import FAST, digest, one_sentence, toy_run, work_elsewhere

import clipxai
from clipxai.cli.commands import main


@pytest.fixture()
def elsewhere(tmp_path, monkeypatch):
    """A working directory holding runs/, and a folder outside it that nothing may touch."""
    return work_elsewhere(tmp_path, monkeypatch)


# ---------------------------------------------------------------------------------------
# classes 4 and 5: a full disk or a file-size limit, and sizes no disk holds, are one sentence

LIMITED = """
import resource, signal, sys
from clipxai.cli.commands import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)      # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
sys.exit(main(sys.argv[1:]))
"""


def test_a_file_size_limit_during_the_checkpoint_interrupts_the_run_and_it_resumes(elsewhere):
    import subprocess
    import sys

    from clipxai.runs.load import load_run

    work, _ = elsewhere
    run = toy_run()
    # the arrays grow to 4 rows within the limit; the checkpoint (~17 kB) does not fit it
    proc = subprocess.run([sys.executable, "-c", LIMITED.format(limit=14_000), "ascend", "--resume", "runs/x",
                           "--steps", "8", "--quiet"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert "is full" in errors[0] and "--resume" in errors[0] and "Traceback" not in proc.stderr
    stopped = load_run(run)
    assert stopped.status == "interrupted" and stopped.manifest["stop_reason"] == "disk full"
    assert not [p for p in run.rglob("*") if ".tmp" in p.name]
    [resumed] = clipxai.ascend(resume=run, quiet=True)
    assert resumed.status == "complete" and resumed.n == 4


def test_a_checkpoint_on_a_full_disk_is_an_oserror_with_its_errno(tmp_path, monkeypatch):
    import errno

    import torch

    from clipxai.util import files

    real_write = files.atomic_write

    def full(path, write, sync=False):   # the disk fills while the checkpoint is written
        def failing(f):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(path, failing, sync=sync)
    monkeypatch.setattr(files, "atomic_write", full)
    with pytest.raises(OSError) as info:
        files.save_torch({"x": torch.zeros(3)}, tmp_path / "checkpoint.pt")
    assert info.value.errno == errno.ENOSPC and not list(tmp_path.iterdir())


@pytest.mark.parametrize("args, words", [
    (["--steps", "1000000000"], ["--steps 1000000000", "at most"]),
    (["--steps", "90000000", "--snapshot-every", "1", "--size", "64", "64"], ["need about", "TB", "free"]),
    (["--steps", "1e20"], ["--steps", "1e20"]),
    (["--seeds", "1e20"], ["--seeds", "1e20"]),
    (["--seeds", "100000"], ["--seeds", "1 to 1024"]),
])
def test_sizes_no_run_can_take_are_refused_before_any_folder(elsewhere, capsys, args, words):
    work, _ = elsewhere
    before = digest(work)
    assert main(["ascend", "dog", "--model", "toy", "--out", "runs", "--quiet", *args]) == 2
    message = one_sentence(capsys) if any(w.startswith("need") for w in words) else _click_or_own(capsys)
    assert all(w in message for w in words), message
    assert digest(work) == before


def _click_or_own(capsys) -> str:
    """The one error line, whether click (a value that is not a number) or clipxai wrote it."""
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.lower().startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in out + err, err
    return lines[0]


@pytest.mark.parametrize("options, words", [
    (dict(steps=True), ["steps", "whole number", "True"]),
    (dict(steps=10**30), ["--steps", "at most"]),
    (dict(snapshot_every=0.5), ["snapshot_every", "whole number"]),
    (dict(seeds=10**20), ["--seeds", "1 to 1024"]),
    (dict(seed=1.5), ["seed", "whole number"]),
    (dict(lr="x"), ["lr", "a number"]),
    (dict(size=16), ["size", "width, height"]),
    (dict(size=(16, "a")), ["size", "width, height"]),
    (dict(cutouts=2.5), ["cutouts", "whole number"]),
    (dict(name=5), ["name", "text"]),
    (dict(model=5), ["model", "text"]),
    (dict(tv="a"), ["tv", "a number"]),
    (dict(gradients="yes"), ["gradients", "true or false"]),
])
def test_the_python_api_names_the_option_of_a_wrong_kind_before_any_folder(elsewhere, options, words):
    work, _ = elsewhere
    before = digest(work)
    with pytest.raises(clipxai.ClipxaiError) as info:
        clipxai.ascend("dog", out="runs", quiet=True, **{"model": "toy", "steps": 2, "size": (16, 16), **options})
    assert all(w in str(info.value) for w in words), info.value
    assert digest(work) == before


@pytest.mark.parametrize("spec, extra, words", [
    ('[grid]\nprompt = [{p}]\nlr = [{v}]\n', [], ["1,000,000 runs", "--max-rows"]),
    ('[grid]\nprompt = ["a", "b", "c"]\nseed = [0, 1, 2, 3]\n', ["--max-rows", "10"], ["12 runs", "10"]),
    ('[grid]\nprompt = ["x"]\n[ascend]\nsteps = true\n', [], ["steps", "whole number"]),
    ('[grid]\nprompt = ["x"]\n[ascend]\nsnapshot_every = 0.5\n', [], ["snapshot_every", "whole number"]),
    ('[grid]\nprompt = ["x"]\n[ascend]\nsteps = 1000000000000\n', [], ["--steps", "at most"]),
])
def test_a_sweep_spec_no_run_can_take_is_refused_before_anything(elsewhere, capsys, spec, extra, words):
    work, _ = elsewhere
    text = spec.format(p=", ".join(f'"p{i}"' for i in range(1000)), v=", ".join(str(i / 1e4) for i in range(1, 1001)))
    text = 'name = "s"\n' + text + ("" if "[ascend]" in text else "[ascend]\n") + 'model = "toy"\n'
    (work / "spec.toml").write_text(text, encoding="utf-8")
    before = digest(work)
    assert main(["sweep", "spec.toml", "--out", "runs", *extra]) == 2
    message = one_sentence(capsys)
    assert all(w in message for w in words), message
    assert digest(work) == before


# ---------------------------------------------------------------------------------------
# classes 5, 7 and 8 for the LLM: a huge or absurdly nested reply, and control characters in its text

@pytest.fixture()
def llm(monkeypatch):
    pytest.importorskip("openai")
    from test_expand import FakeLLM

    from clipxai.ascent import expand

    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(expand, "RETRY_BACKOFF", 0.01)
    server = FakeLLM()
    yield server
    server.close()


def test_an_llm_reply_over_the_size_limit_or_nested_absurdly_is_one_sentence(llm, capsys, monkeypatch):
    from test_expand import KEY, completion

    from clipxai.ascent.expand import MAX_REPLY_BYTES

    nested = b'{"choices": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for reply, words in ((completion("a" * (MAX_REPLY_BYTES + 10)), ["more than 1 MB"]),
                         ((200, nested, {}), ["not chat-completions JSON"])):
        llm.script = [reply]
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        assert main(["expand", "dog", "--llm-base-url", llm.url, "--retries", "0"]) == 2
        message = one_sentence(capsys)
        assert all(w in message for w in words), message


def test_control_characters_never_leave_an_llm_caption(llm, capsys, monkeypatch):
    from test_expand import KEY, completion

    from clipxai.ascent.expand import expand_prompt, strip_controls

    hostile = "\x1b[2J\x1b]0;pwned\x07A red\x07 heart\x00 on\u202e a wall\u202c, \x9b31m\u2066glowing\u2069 👨\u200d👩"
    llm.script = [completion(hostile)]
    [caption] = expand_prompt("❤️", base_url=llm.url, api_key=KEY)
    assert caption == "A red heart on a wall, glowing 👨\u200d👩"
    assert all(c.isprintable() or c == "\u200d" for c in caption)
    assert strip_controls("a\tb\nc", keep_lines=True) == "a b\nc"
    llm.script = [completion(hostile)]
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert main(["expand", "dog", "--llm-base-url", llm.url]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out and "glowing" in out


# ---------------------------------------------------------------------------------------
# class 8: a damaged run is one sentence, exit 2 (or its damaged metrics line is skipped), never "unexpected"

@pytest.mark.parametrize("how, words", [
    ("0-d", ["embeddings.npy", "holds no rows"]),
    ("float16", ["embeddings.npy", "float16", "float32"]),
    ("row-shape", ["embeddings.npy", "rows of shape"]),
    ("cut", ["embeddings.npy", "cannot be read"]),
])
def test_analyze_and_load_run_name_a_damaged_array(elsewhere, capsys, how, words):
    from clipxai.errors import RunError
    from clipxai.runs.load import load_run

    work, _ = elsewhere
    run = write_run(Path("runs"), "x", n=30)
    file = run / "snapshots" / "embeddings.npy"
    emb = np.load(file)
    if how == "0-d":
        np.save(file, np.float32(1))
    elif how == "float16":
        np.save(file, emb.astype(np.float16))
    elif how == "row-shape":
        np.save(file, emb[:, :-1])
    else:
        file.write_bytes(file.read_bytes()[:-100])
    before = digest(work)
    assert main(["analyze", "runs/x", *FAST]) == 2
    message = one_sentence(capsys)
    assert all(w in message for w in words), message
    with pytest.raises(RunError):
        load_run("runs/x").embeddings
    assert digest(work) == before


DAMAGED = {"long-number": '{"step": 1' + "0" * 5000 + ', "loss": 1}',
           "nested": '{"step": 3, "x": ' + "[" * 50_000 + "]" * 50_000 + "}", "list": "[1, 2]", "text": '"text"'}


def _damaged_run(tmp_path, lines):
    from clipxai.runs.load import load_run

    run = write_run(tmp_path / "runs", "x", n=30)
    before = len(load_run(run).metrics())
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    assert len(load_run(run).metrics()) == before
    return run


def _viewer_reads(tmp_path):
    from starlette.testclient import TestClient

    from clipxai.view.app import create_app
    client = TestClient(create_app(tmp_path / "runs", hosts=("testserver",)))
    assert client.get("/api/run", params={"id": "x"}).status_code == 200


@pytest.mark.parametrize("line", list(DAMAGED.values()), ids=list(DAMAGED))
def test_a_damaged_metrics_line_is_skipped_by_the_run_and_the_viewer(tmp_path, line):
    _damaged_run(tmp_path, [line])
    _viewer_reads(tmp_path)


def test_every_kind_of_damaged_metrics_line_is_skipped_by_every_reader(tmp_path):
    # one analysis of a run holding all of them (an analysis each cost ~2.5 s: the figures)
    run = _damaged_run(tmp_path, list(DAMAGED.values()))
    _viewer_reads(tmp_path)
    assert main(["analyze", str(run), *FAST]) == 0


# ---------------------------------------------------------------------------------------
# class 9: a term that calls sys.exit never ends ascend with exit 0

@pytest.mark.parametrize("when", ["0", "1"])
def test_a_term_raising_system_exit_is_a_term_error_not_success(elsewhere, capsys, when):
    work, _ = elsewhere
    (work / "terms.py").write_text(f"def bye(step):\n    if step.index >= {when}:\n        raise SystemExit(0)\n"
                                   "    return step.image.mean(dim=(1, 2, 3)) * 0\n", encoding="utf-8")
    code = main(["ascend", "dog", "--term", "terms.py:bye", "--model", "toy", "--steps", "3", "--size", "16", "16",
                 "--out", "runs", "--quiet"])
    assert code == 2
    assert "SystemExit" in one_sentence(capsys)
    if when == "0":   # it fails while the objective is first checked: before any folder
        assert not list((work / "runs").iterdir())
