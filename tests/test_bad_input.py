"""Bad input, one row each: the exit code, one sentence naming the problem, and nothing touched.

Each row is a command line for ``clipxai.cli.commands.main`` (placeholders below), the exit code it
must give, and words its one-line message must contain. Every row runs in the same folder,
whose every file and folder (with sizes, times and permissions) must be exactly as before:
a refused command creates nothing and changes nothing. To cover a new bad input, add a row.

Placeholders: ``{tmp}`` the folder, ``{run}`` and ``{run2}`` two recorded runs in it (never
analysed, so an analysis started by mistake shows as a change), ``{file}`` a plain file
(``{tmp}/empty.npy`` an empty one), ``{readonly}`` a folder nobody may write, ``{bad_port}``
an LLM URL with a port out of range.
"""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

import pytest
import torch
from helpers_runs import write_run

from clipxai.ascent.compute import fast_on_cpu
from clipxai.cli.commands import main

BAD_PORT = "http://127.0.0.1:99999/v1"
ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False
MPS = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()

# (command line, exit code, words the message must contain)
ROWS = [
    # analyze
    ("analyze {tmp}/nothing-here", 2, ["does not exist"]),
    ("analyze {file}", 2, ["is not a folder"]),
    ("analyze {tmp}/plain", 2, ["is not a clipxai run"]),
    ("analyze {run} --k zero", 2, ["--k", "whole number"]),
    ("analyze {run} --projection pca,mds", 2, ["mds"]),
    ("analyze {run} --features activations:resblocks.99 --no-labels", 2, ["no layer 'resblocks.99'"]),
    ("analyze {run} --vocab {tmp}/no-words.txt", 2, ["no-words.txt"]),
    ("analyze {run} --vocab {tmp}/missing.txt", 2, ["missing.txt", "does not exist"]),
    ("analyze {run} --k-max 1", 2, ["--k-max"]),
    ("analyze {run} --k 0", 2, ["--k", "at least 1"]),
    ("analyze {run} --top-words 0", 2, ["--top-words"]),
    ("analyze {run} --method nope", 2, ["--method", "nope"]),
    ("analyze {run} --concepts ' , '", 2, ["concept"]),
    # report
    ("report {tmp}/nothing-here -o {tmp}/r.html", 2, ["does not exist"]),
    ("report {run} -o {tmp}", 2, ["-o", "is a directory"]),
    ("report {run} -o {run}/run.json", 2, ["run.json", "not a report", "--overwrite"]),
    ("report {run} -o {tmp}/notes.html", 2, ["notes.html", "not a report"]),
    ("report {run} -o {tmp}/new.html", 2, ["new.md", "not a report"]),   # its Markdown twin is someone's
    ("report {run} -o {tmp}/twin.md", 2, [".md", "Markdown twin"]),
    ("report {run} -o {file}/report.html", 2, ["cannot be written", "not a folder"]),
    ("report {run} -o {tmp}/r.html --k 0", 2, ["--k", "at least 1"]),
    # compare
    ("compare {run}", 2, ["at least two runs"]),
    ("compare {run} {tmp}/nothing-here -o {tmp}/cmp", 2, ["does not exist"]),
    ("compare {run} {run2} -o {file}/cmp", 2, ["cannot be written", "not a folder"]),
    ("compare {run} {run2} -o {tmp}/cmp --method nope", 2, ["--method", "nope"]),
    pytest.param("compare {run} {run2} -o {readonly}/cmp", 2, ["cannot be written", "readonly"],
                 marks=pytest.mark.skipif(ROOT, reason="root may write into a read-only folder")),
    # expand (no server is ever reached: every row fails before a request)
    ("expand '  '", 2, ["empty"]),
    ("expand dog --llm-base-url 127.0.0.1:8080", 2, ["not an http"]),
    ("expand dog --llm-base-url {bad_port}", 2, ["99999", "port"]),
    ("expand dog --llm-base-url http://127.0.0.1:0/v1", 2, ["port"]),
    ("expand dog", 2, ["OPENAI_API_KEY"]),
    ("expand dog -n 0 --llm-base-url http://127.0.0.1:9/v1", 2, ["-n"]),
    ("expand dog --timeout 0 --llm-base-url http://127.0.0.1:9/v1", 2, ["--timeout"]),
    ("expand dog --llm-base-url http://127.0.0.1:9/v1 --system-prompt @{tmp}/none.txt", 2, ["could not be read"]),
    ("expand dog --llm-base-url http://127.0.0.1:9/v1 --system-prompt ' '", 2, ["system prompt", "empty"]),
    ("expand dog --retries 11 --llm-base-url http://127.0.0.1:9/v1", 2, ["--retries"]),
    ("expand dog --temperature 3 --llm-base-url http://127.0.0.1:9/v1", 2, ["--temperature"]),
    ("expand dog --llm-model '' --llm-base-url http://127.0.0.1:9/v1", 2, ["model name", "empty"]),
    ("expand dog --timeout nan --llm-base-url http://127.0.0.1:9/v1", 2, ["timeout", "nan"]),
    ("expand dog --timeout inf --llm-base-url http://127.0.0.1:9/v1", 2, ["--timeout"]),
    ("expand dog --temperature nan --llm-base-url http://127.0.0.1:9/v1", 2, ["temperature", "nan"]),
    # the demo checks its prompt and steps before it makes anything
    ("demo --prompt love:2 -o {tmp}/demo", 2, ["one prompt", "love:2"]),
    ("demo --prompt 'a|b' -o {tmp}/demo", 2, ["one prompt"]),
    ("demo --steps 10 -o {tmp}/demo", 2, ["--steps 10", "--steps 21 or more"]),
    # video, analyze, opinion: numbers out of range
    ("video {run} --fps nan -o {tmp}/v.gif", 2, ["--fps"]),
    ("video {run} --fps inf -o {tmp}/v.gif", 2, ["--fps"]),
    ("analyze {run} --seed -1", 2, ["--seed"]),
    ("opinion {run} --seed 99999999999999999999999", 2, ["--seed"]),
    # ascend --expand goes through the same checks before anything is created
    ("ascend dog --expand 2 --llm-base-url {bad_port} --model random:tiny --out {tmp}/new-runs --quiet",
     2, ["99999", "port"]),
    ("ascend dog --expand 0 --model random:tiny --out {tmp}/new-runs --quiet", 2, ["--expand", "1 to 64"]),
    ("ascend dog --expand 1000 --model random:tiny --out {tmp}/new-runs --quiet", 2, ["--expand", "1 to 64"]),
    # ascend: requests that cannot work are refused before any folder exists
    ("ascend dog --size 100000 100000 --model random:tiny --out {tmp}/new-runs --quiet", 2, ["needs about", "GB"]),
    ("ascend dog --cutouts 200000 --model random:tiny --out {tmp}/new-runs --quiet", 2, ["--cutout-batch"]),
    ("ascend dog --cut-min 0.8 --cut-max 0.5 --model random:tiny --out {tmp}/new-runs --quiet", 2, ["--cut-min <= --cut-max"]),
    ("ascend dog --cut-min 0 --model random:tiny --out {tmp}/new-runs --quiet", 2, ["0 < --cut-min"]),
    ("ascend dog --cut-max 1.5 --model random:tiny --out {tmp}/new-runs --quiet", 2, ["--cut-max <= 1"]),
    ("ascend dog --name " + "n" * 300 + " --model random:tiny --out {tmp}/new-runs --quiet", 2, ["255 bytes"]),
    ("ascend dog --name 'two\nlines' --model random:tiny --out {tmp}/new-runs --quiet", 2, ["control characters"]),
    ("ascend dog --similarity logexp --temperature 0 --model random:tiny --out {tmp}/new-runs --quiet",
     2, ["--temperature", "positive"]),
    ("ascend dog --param fourier --init-image {file} --model random:tiny --out {tmp}/new-runs --quiet",
     2, ["--init-image", "applies to --param", "fourier"]),
    ("ascend dog -P nope=1 --model random:tiny --out {tmp}/new-runs --quiet", 2, ["does not take", "nope"]),
    ("ascend dog --tv nan --model random:tiny --out {tmp}/new-runs --quiet", 2, ["--tv", "finite"]),
    ("ascend dog --memory inf --model random:tiny --out {tmp}/new-runs --quiet", 2, ["--memory", "finite"]),
    ("ascend dog --jitter -1 --model random:tiny --out {tmp}/new-runs --quiet", 2, ["--jitter", "not negative"]),
    ("ascend dog --aug-noise nan --model random:tiny --out {tmp}/new-runs --quiet", 2, ["--aug-noise"]),
    ("ascend dog --weight-decay nan --model random:tiny --out {tmp}/new-runs --quiet", 2, ["--weight-decay"]),
    ("ascend dog --model toy:-1 --out {tmp}/new-runs --quiet", 2, ["weight", "positive"]),
    *([("ascend dog --precision fp16 --model random:tiny --out {tmp}/new-runs --quiet", 2,
        ["fp16 is refused on this CPU", "--force-precision"])] if fast_on_cpu("fp16") is False else []),
    ("ascend dog --device xla --model random:tiny --out {tmp}/new-runs --quiet", 2, ["--device xla", "not supported"]),
    ("ascend dog --device meta --model random:tiny --out {tmp}/new-runs --quiet", 2, ["--device meta", "not supported"]),
    ("ascend dog --device cpu:1 --model random:tiny --out {tmp}/new-runs --quiet", 2, ["--device cpu:1", "not supported"]),
    ("ascend dog --device cuda:99 --model random:tiny --out {tmp}/new-runs --quiet", 2, ["--device cuda:99"]),
    ("ascend dog --device nowhere --model random:tiny --out {tmp}/new-runs --quiet", 2, ["not a device name"]),
    pytest.param("ascend dog --device mps --model random:tiny --out {tmp}/new-runs --quiet", 2, ["--device mps", "MPS"],
                 marks=pytest.mark.skipif(MPS, reason="this machine has an Apple GPU")),
    ("ascend dog --init-image {tmp}/empty.npy --model random:tiny --out {tmp}/new-runs --quiet",
     2, ["empty.npy", "not a readable .npy array"]),
    ("ascend --term direction:visual.transformer.resblocks.1:{tmp}/empty.npy --model random:tiny --quiet",
     2, ["empty.npy", "not a readable .npy array"]),
    ("ascend --resume {run} --steps 1", 2, ["pass a --steps larger than"]),
    # sizes and weights no run can take, refused before any folder (more in tests/test_hostile.py)
    ("ascend 'dog:1e309' --model random:tiny --out {tmp}/new-runs --quiet", 2, ["1e309", "finite"]),
    ("ascend 'dog|cat:-1e400' --model random:tiny --out {tmp}/new-runs --quiet", 2, ["-1e400", "finite"]),
    ("ascend dog --steps 1000000000 --model random:tiny --out {tmp}/new-runs --quiet", 2, ["--steps", "at most"]),
    ("ascend dog --seeds 5000 --model random:tiny --out {tmp}/new-runs --quiet", 2, ["--seeds", "1 to 1024"]),
    ("ascend --resume {run} --steps 1000000000", 2, ["--steps", "at most"]),
    ("view {tmp} --allow-host '*' --port 0", 2, ["--allow-host", "'*'"]),
    ("ascend --resume {run} --lr 3", 2, ["Only --steps, --device and --quiet"]),
]


def snapshot(folder: Path) -> dict:
    """Every path under ``folder`` with its kind, size, modification time and permissions."""
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        out[p.relative_to(folder).as_posix()] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns,
                                                 stat.S_IMODE(st.st_mode))
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad-input")
    runs = {"run": write_run(tmp / "runs", "one", n=30), "run2": write_run(tmp / "runs", "two", n=30, seed=1)}
    (tmp / "afile.txt").write_text("a plain file\n")
    (tmp / "plain").mkdir()
    (tmp / "plain" / "notes.txt").write_text("not a run\n")
    (tmp / "no-words.txt").write_text("# nothing but a comment\n")
    (tmp / "notes.html").write_text("<p>my own notes</p>\n")
    (tmp / "new.md").write_text("# my own notes\n")
    (tmp / "empty.npy").write_bytes(b"")
    (tmp / "readonly").mkdir()
    (tmp / "readonly").chmod(0o555)
    values = {"tmp": str(tmp), "file": str(tmp / "afile.txt"), "readonly": str(tmp / "readonly"),
              "bad_port": BAD_PORT, **{k: str(v) for k, v in runs.items()}}
    yield tmp, values
    (tmp / "readonly").chmod(0o755)


@pytest.fixture(autouse=True)
def no_llm_settings(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("command, code, words", ROWS, ids=lambda v: v if isinstance(v, str) else None)
def test_bad_input(world, command, code, words, capsys, monkeypatch):
    tmp, values = world
    monkeypatch.chdir(tmp)  # commands with a default output folder would write here
    argv = [part.format(**values) for part in shlex.split(command)]
    before = snapshot(tmp)
    rc = main(argv)
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.lower().startswith("error:")]
    assert rc == code, err
    assert len(lines) == 1, err
    message = lines[0]
    for word in words:
        assert word.format(**values) in message, message
    for text in (out, err):
        assert "Traceback" not in text and "unexpected" not in text
    assert snapshot(tmp) == before


@pytest.mark.parametrize("command", ["compare {run} {run2} -o {readonly}/cmp --no-labels",
                                     "report {run} -o {readonly}/r.html --no-labels"])
def test_a_read_only_output_folder_is_refused_before_any_work(world, command, capsys, monkeypatch):
    """The row above, for any user: root may write anywhere, so the folder's refusal is simulated."""
    import clipxai.util.paths

    tmp, values = world
    readonly = Path(values["readonly"])
    real_access = os.access
    monkeypatch.setattr(clipxai.util.paths.os, "access",
                        lambda path, mode: False if Path(path) == readonly else real_access(path, mode))
    before = snapshot(tmp)
    assert main([part.format(**values) for part in shlex.split(command)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "cannot be written" in err and "not writable" in err
    assert snapshot(tmp) == before
